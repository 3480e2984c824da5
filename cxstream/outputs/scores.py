"""Score documents for the compacted ``cx.scores`` topic and the HTTP API."""

from __future__ import annotations

import orjson

from ..domain.customer import CustomerState
from ..domain.engine import Engine
from ..models.common import format_time


def score_document(engine: Engine, state: CustomerState) -> dict:
    score, dimensions, reasons = engine.score_view(state)
    return {
        "customer_id": state.customer_id,
        "score": round(score, 1),
        "previous_score": None if state.published is None else round(state.published, 1),
        "dimensions": {name: round(value, 1) for name, value in dimensions.items()},
        "reasons": reasons,
        "active_faults": sorted(state.impacts),
        "updated_at": format_time(state.updated_at or state.clock),
    }


def encode(document: dict) -> bytes:
    return orjson.dumps(document)
