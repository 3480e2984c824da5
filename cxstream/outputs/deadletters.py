"""Dead letters: unusable input, with a reason a person can act on.

Every dead letter fits the broker's default message limit (contract v2, "Bounds"): when
the record's value is larger than ``max_record_bytes`` (CXSTREAM_MAX_RECORD_BYTES), or the
whole dead letter would be over DEADLETTER_BUDGET_BYTES (a value of control bytes escapes
to six JSON characters a byte), it carries only the first TRUNCATED_PAYLOAD_BYTES of the
value, with ``"payload_truncated": true`` and ``"payload_bytes": <original size>``. The key
it echoes is cut the same way beyond MAX_ECHOED_KEY_BYTES (``key_truncated``, ``key_bytes``)
and the reason beyond MAX_ERROR_CHARS characters, so the result always fits.
"""

from __future__ import annotations

import base64
import time

import orjson

from ..domain.engine import InputRecord
from ..models.common import format_time
from ..models.limits import MAX_MESSAGE_BYTES
from ..models.rejection import cap_text

__all__ = [
    "dead_letter",
    "encode",
    "message_key",
    "DEFAULT_MAX_RECORD_BYTES",
    "DEADLETTER_BUDGET_BYTES",
    "TRUNCATED_PAYLOAD_BYTES",
    "MAX_ECHOED_KEY_BYTES",
    "MAX_KEY_BYTES",
    "MAX_ERROR_CHARS",
    "MAX_MESSAGE_BYTES",
]

#: CXSTREAM_MAX_RECORD_BYTES' default: a larger value is dead-lettered truncated.
DEFAULT_MAX_RECORD_BYTES = 262144
#: A dead letter's value and its Kafka key together stay under this (MAX_MESSAGE_BYTES
#: less room for the record's headers and the broker's framing).
DEADLETTER_BUDGET_BYTES = 900_000
#: How much of the original value a truncated dead letter carries.
TRUNCATED_PAYLOAD_BYTES = 4096
#: How much of the original key the dead letter's ``key`` field carries.
MAX_ECHOED_KEY_BYTES = 1024
#: The Kafka key a dead letter is produced with (:func:`message_key`): the original key,
#: cut to this many bytes in the (absurd) case it is longer.
MAX_KEY_BYTES = 65536
#: The ``error`` sentence is cut (ending in "…") beyond this many characters.
MAX_ERROR_CHARS = 2000


def _text(raw: bytes | None) -> tuple[str | None, bool]:
    if raw is None:
        return None, True
    try:
        return raw.decode("utf-8"), True
    except UnicodeDecodeError:
        return None, False


def _head(raw: bytes, limit: int) -> tuple[str | None, bytes]:
    """The first ``limit`` bytes of ``raw``: (text, head) when they are UTF-8, cut back to a
    character boundary when the cut falls inside one; (None, head) when they are not UTF-8."""
    head = raw[:limit]
    try:
        return head.decode("utf-8"), head
    except UnicodeDecodeError as error:
        # Only a character cut by the limit itself (at most 3 bytes before its end) is cut back.
        if len(raw) > limit and error.end == len(head) and error.start >= len(head) - 3:
            head = head[: error.start]
            try:
                return head.decode("utf-8"), head
            except UnicodeDecodeError:  # pragma: no cover - the bytes before the first error are valid
                pass
        return None, raw[:limit]


def message_key(record: InputRecord) -> bytes | None:
    """The Kafka key to produce a dead letter with: the original key (cut to MAX_KEY_BYTES)."""
    key = record.key
    return key if key is None or len(key) <= MAX_KEY_BYTES else key[:MAX_KEY_BYTES]


def _key_fields(doc: dict, key: bytes | None) -> None:
    if key is None:
        doc["key"] = None
        return
    if len(key) <= MAX_ECHOED_KEY_BYTES:
        text, is_text = _text(key)
        doc["key"] = text if is_text else base64.b64encode(key).decode()
        return
    text, head = _head(key, MAX_ECHOED_KEY_BYTES)
    doc["key"] = text if text is not None else base64.b64encode(head).decode()
    doc["key_truncated"] = True
    doc["key_bytes"] = len(key)


def _payload_fields(doc: dict, value: bytes | None, truncate: bool) -> None:
    doc.pop("payload", None)
    doc.pop("payload_b64", None)
    if value is None:
        doc["payload"] = None
        return
    if truncate:
        text, head = _head(value, TRUNCATED_PAYLOAD_BYTES)
        if text is not None:
            doc["payload"] = text
        else:
            doc["payload_b64"] = base64.b64encode(head).decode()
        doc["payload_truncated"] = True
        doc["payload_bytes"] = len(value)
        return
    text, is_text = _text(value)
    if is_text:
        doc["payload"] = text
    else:
        doc["payload_b64"] = base64.b64encode(value).decode()


def _build(record: InputRecord, reason: str, received_at: float | None, max_record_bytes: int) -> tuple[dict, bytes]:
    origin = getattr(record, "origin", None) or (record.topic, record.partition, record.offset)
    doc: dict = {
        # where its sender produced it, also when cxstream forwarded it first
        "source_topic": origin[0],
        "partition": origin[1],
        "offset": origin[2],
    }
    _key_fields(doc, record.key)
    doc["error"] = cap_text(str(reason).strip() or "record could not be used", MAX_ERROR_CHARS)
    doc["received_at"] = format_time(time.time() if received_at is None else received_at)
    value = record.value
    too_large = value is not None and len(value) > max_record_bytes
    _payload_fields(doc, value, too_large)
    raw = orjson.dumps(doc)
    key = message_key(record)
    if not too_large and len(raw) + (0 if key is None else len(key)) > DEADLETTER_BUDGET_BYTES:
        _payload_fields(doc, value, True)
        raw = orjson.dumps(doc)
    return doc, raw


def dead_letter(record: InputRecord, reason: str, received_at: float | None = None,
                max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES) -> dict:
    """The dead letter of ``record`` as a dict (what :func:`encode` encodes)."""
    return _build(record, reason, received_at, max_record_bytes)[0]


def encode(record: InputRecord, reason: str, max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
           received_at: float | None = None) -> bytes:
    """The dead letter of ``record`` as JSON bytes; with :func:`message_key` as its Kafka key
    it stays under DEADLETTER_BUDGET_BYTES, whatever the record."""
    return _build(record, reason, received_at, max_record_bytes)[1]
