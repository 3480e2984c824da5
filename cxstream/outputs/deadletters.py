"""Dead letters: unusable input, with a reason a person can act on."""

from __future__ import annotations

import base64
import time

import orjson

from ..domain.engine import InputRecord
from ..models.common import format_time


def _text(raw: bytes | None) -> tuple[str | None, bool]:
    if raw is None:
        return None, True
    try:
        return raw.decode("utf-8"), True
    except UnicodeDecodeError:
        return None, False


def dead_letter(record: InputRecord, reason: str, received_at: float | None = None) -> dict:
    key, _ = _text(record.key)
    if record.key is not None and key is None:
        key = base64.b64encode(record.key).decode()
    doc = {
        "source_topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "key": key,
        "error": reason,
        "received_at": format_time(time.time() if received_at is None else received_at),
    }
    payload, is_text = _text(record.value)
    if is_text:
        doc["payload"] = payload
    else:
        doc["payload_b64"] = base64.b64encode(record.value).decode()
    return doc


def encode(record: InputRecord, reason: str) -> bytes:
    return orjson.dumps(dead_letter(record, reason))
