"""Triggers as CloudEvents 1.0 in structured mode.

The id is a UUIDv5 of (source, rule, customer, episode), so the same firing in
a replay or after a redelivery carries the same id and a subscriber can drop
the copy; the source is part of it so two deployments never collide.

A trigger lists at most MAX_LISTED_REASONS (50) reasons and MAX_LISTED_FAULTS (100) alarm
ids in ``faults`` (cxstream/models/limits.py), so its message fits the broker's 1 MB.
"""

from __future__ import annotations

import uuid

import orjson

from ..domain.engine import Firing
from ..models.common import format_time
from .fit import MAX_MESSAGE_BYTES, capped_faults, capped_reasons, shrink_strings, too_large

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
            "reasons": capped_reasons(firing.reasons),
            "faults": capped_faults(firing.faults),
            "value_tier": firing.value_tier,
            "segment": firing.segment,
        },
    }


def encode(firing: Firing, source: str) -> bytes:
    """The CloudEvent as JSON, under MAX_MESSAGE_BYTES; ValueError only when even its cut
    form is not (a customer id or source of hundreds of kilobytes, which no valid input has)."""
    event = cloudevent(firing, source)
    raw = orjson.dumps(event)
    if len(raw) < MAX_MESSAGE_BYTES:
        return raw
    shrink_strings(event["data"], "faults")
    raw = orjson.dumps(event)
    if len(raw) < MAX_MESSAGE_BYTES:
        return raw
    raise too_large(f"the CloudEvent of {firing.rule.id} for a customer", len(raw))
