"""Triggers as CloudEvents 1.0 in structured mode.

The id is a UUIDv5 of (source, rule, customer, episode), so the same firing in
a replay or after a redelivery carries the same id and a subscriber can drop
the copy; the source is part of it so two deployments never collide.
"""

from __future__ import annotations

import uuid

import orjson

from ..domain.engine import Firing
from ..models.common import format_time

CONTENT_TYPE = b"application/cloudevents+json; charset=UTF-8"
HEADERS = [("content-type", CONTENT_TYPE)]
_NAMESPACE = uuid.UUID("6f1c7a52-3d64-5c53-9a55-2f0c8a7f4b11")


def event_id(source: str, rule_id: str, customer_id: str, episode: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"{source}\x1f{rule_id}\x1f{customer_id}\x1f{episode}"))


def cloudevent(firing: Firing, source: str) -> dict:
    rule = firing.rule
    return {
        "specversion": "1.0",
        "id": event_id(source, rule.id, firing.customer_id, firing.episode),
        "source": source,
        "type": rule.event_type,
        "subject": firing.customer_id,
        "time": format_time(firing.time),
        "datacontenttype": "application/json",
        "partitionkey": firing.customer_id,
        "data": {
            "customer_id": firing.customer_id,
            "trigger": rule.trigger,
            "channel": rule.channel,
            "rule_id": rule.id,
            "score": firing.score,
            "previous_score": firing.previous_score,
            "reasons": firing.reasons,
            "faults": firing.faults,
            "value_tier": firing.value_tier,
            "segment": firing.segment,
        },
    }


def encode(firing: Firing, source: str) -> bytes:
    return orjson.dumps(cloudevent(firing, source))
