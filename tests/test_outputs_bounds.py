"""Every message cxstream produces fits the broker's 1 MB default (contract v2, "Bounds").

Dead letters of any record (values up to 1 MB of control or non-UTF-8 bytes, huge keys and
reasons) are JSON under 1,000,000 bytes, the payload truncated to its first 4096 bytes with
payload_truncated/payload_bytes when the value is over CXSTREAM_MAX_RECORD_BYTES or its dead
letter would not fit. CloudEvents and score documents built from input at every model bound
(and from larger lists than the domain keeps) stay under the limit too.
"""

from __future__ import annotations

import base64

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cxstream.domain.engine import Engine, Firing, InputRecord
from cxstream.domain.rules import load_rules
from cxstream.models.common import format_time
from cxstream.models.limits import (
    MAX_EPOCH,
    MAX_ID_LENGTH,
    MAX_LISTED_FAULTS,
    MAX_LISTED_REASONS,
    MAX_MESSAGE_BYTES,
    MAX_RESOURCES_PER_CUSTOMER,
    MAX_TEXT_LENGTH,
    MIN_EPOCH,
)
from cxstream.models.outputs import CloudEvent, DeadLetter, ScoreDocument
from cxstream.outputs import MAX_MESSAGE_BYTES as EXPORTED_MAX_MESSAGE_BYTES
from cxstream.outputs import cloudevents, deadletters, scores

PROPERTY = settings(max_examples=200, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
MB = 1_000_000
SOURCE = "urn:cxstream:default"
RULES = load_rules()
NOW = 1_795_000_000.0  # 2026-11-18


def test_the_message_limit_is_exported() -> None:
    assert MAX_MESSAGE_BYTES == EXPORTED_MAX_MESSAGE_BYTES == 1_000_000
    assert deadletters.DEADLETTER_BUDGET_BYTES == 900_000 < MAX_MESSAGE_BYTES


# --------------------------------------------------------------------------- dead letters


def record(value: bytes | None, key: bytes | None = b"C1", source: str = "quality") -> InputRecord:
    return InputRecord(source, f"cx.{source}", 3, 1234, key, value, NOW)


def letter(rec: InputRecord, reason: str = "value is not valid JSON", **kw) -> tuple[bytes, dict]:
    raw = deadletters.encode(rec, reason, **kw)
    doc = orjson.loads(raw)
    DeadLetter.model_validate_json(raw)
    return raw, doc


def payload_bytes(doc: dict) -> bytes | None:
    if doc.get("payload_b64") is not None:
        return base64.b64decode(doc["payload_b64"])
    return None if doc["payload"] is None else doc["payload"].encode()


def test_the_reported_180_kb_of_control_bytes_is_a_truncated_dead_letter() -> None:
    """Issue 11: its dead letter was over 1 MB, produce raised MSG_SIZE_TOO_LARGE."""
    value = b"\x01" * 180_000
    assert len(orjson.dumps(value.decode())) > MB  # what the whole payload escapes to
    raw, doc = letter(record(value))
    assert len(raw) < 30_000
    assert doc["payload_truncated"] is True and doc["payload_bytes"] == 180_000
    assert doc["payload"] == "\x01" * 4096 and "payload_b64" not in doc


def test_a_value_over_the_record_limit_is_truncated_and_one_within_is_whole() -> None:
    within = b'{"x": "' + b"a" * (262144 - 9) + b'"}'
    assert len(within) == 262144
    _, doc = letter(record(within))
    assert doc["payload"] == within.decode() and "payload_truncated" not in doc and "payload_bytes" not in doc
    over = within + b" "
    _, doc = letter(record(over))
    assert doc["payload"] == over[:4096].decode()
    assert (doc["payload_truncated"], doc["payload_bytes"]) == (True, 262145)
    _, doc = letter(record(over), max_record_bytes=300_000)  # the worker's CXSTREAM_MAX_RECORD_BYTES
    assert doc["payload"] == over.decode()


@pytest.mark.parametrize("char, cut", [("é", 1), ("€", 2), ("🛰", 3)])
def test_a_truncated_text_payload_is_cut_on_a_character_boundary(char: str, cut: int) -> None:
    value = ("a" * cut + char * 100_000).encode()
    _, doc = letter(record(value), max_record_bytes=1000)
    assert doc["payload_truncated"] is True and doc["payload_bytes"] == len(value)
    head = doc["payload"].encode()
    assert value.startswith(head) and 4096 - len(char.encode()) < len(head) <= 4096


def test_a_truncated_payload_that_is_not_utf8_is_base64_of_the_first_4096_bytes() -> None:
    value = b"\xff\xfe" * 300_000
    _, doc = letter(record(value))
    assert "payload" not in doc and base64.b64decode(doc["payload_b64"]) == value[:4096]
    assert doc["payload_bytes"] == 600_000
    # invalid bytes right before the cut are not mistaken for a cut character
    value = b"a" * 4094 + b"\xe2\x28" + b"b" * 300_000
    _, doc = letter(record(value))
    assert base64.b64decode(doc["payload_b64"]) == value[:4096]


def test_a_huge_key_and_reason_are_cut() -> None:
    key = "ключ".encode() * 200_000  # 1.6 MB, multi-byte
    raw, doc = letter(record(b"{}", key=key), reason="metrics.mos must be " + "x" * 100_000)
    assert len(raw) < 20_000
    assert doc["key_truncated"] is True and doc["key_bytes"] == len(key)
    assert key.startswith(doc["key"].encode()) and len(doc["key"].encode()) <= deadletters.MAX_ECHOED_KEY_BYTES
    assert len(doc["error"]) == deadletters.MAX_ERROR_CHARS and doc["error"].endswith("…")
    assert doc["payload"] == "{}"
    assert deadletters.message_key(record(b"{}", key=key)) == key[: deadletters.MAX_KEY_BYTES]
    assert deadletters.message_key(record(b"{}", key=b"C1")) == b"C1"


def test_the_budget_counts_the_kafka_key() -> None:
    """A value that fits alone but not next to a large key is truncated."""
    value = b"v" * 262_000
    _, alone = letter(record(value, key=b"C1"))
    assert "payload_truncated" not in alone
    key = b"k" * deadletters.MAX_KEY_BYTES
    raw, doc = letter(record(b"\x00" * 140_000, key=key))  # 840 kB escaped + 64 kB key: over the budget
    assert doc["payload_truncated"] is True
    assert len(raw) + len(deadletters.message_key(record(None, key=key))) <= deadletters.DEADLETTER_BUDGET_BYTES


values = st.one_of(
    st.none(),
    st.binary(max_size=64),
    st.text(max_size=64).map(str.encode),
    st.builds(lambda chunk, n: (chunk * n)[:MB], st.sampled_from([b"\x00", b"\x01\x1f", b"\xff", b"\xc3\xa9", "🛰".encode(),
                                                                   b'"', b"\\", b"a", b"\xed\xa0\x80"]),
              st.sampled_from([4095, 4096, 4097, 150_000, 262_144, 262_145, 500_000, MB])),
    st.builds(lambda pad, tail: b"a" * pad + tail, st.integers(4090, 4097),
              st.sampled_from(["é".encode(), "€".encode(), "🛰".encode(), b"\xff", b"\xe2\x28"])).map(lambda v: v * 70),
)
keys = st.one_of(st.none(), st.binary(max_size=16), st.just("C" * 2000),
                 st.sampled_from([b"\xff" * 5000, "é".encode() * 600, b"k" * 900_000])).map(
    lambda k: k.encode() if isinstance(k, str) else k)
reasons = st.one_of(st.text(min_size=1, max_size=200), st.just("\x00" * 50_000), st.just("é" * 100_000), st.just(""))


@PROPERTY
@given(values, keys, reasons, st.sampled_from([262144, 1000, 4096, 10 * MB]),
       st.sampled_from(["quality", "customers", "faults"]))
def test_any_dead_letter_is_json_under_1_mb(value, key, reason, max_record_bytes, source) -> None:
    rec = record(value, key=key, source=source)
    raw, doc = letter(rec, reason, max_record_bytes=max_record_bytes)
    message_key = deadletters.message_key(rec)
    assert len(raw) + (0 if message_key is None else len(message_key)) <= deadletters.DEADLETTER_BUDGET_BYTES
    assert len(raw) < MAX_MESSAGE_BYTES
    assert (doc["source_topic"], doc["partition"], doc["offset"]) == (f"cx.{source}", 3, 1234)
    carried = payload_bytes(doc)
    if value is None:
        assert carried is None and "payload_truncated" not in doc
    elif doc.get("payload_truncated"):
        assert doc["payload_bytes"] == len(value) and value.startswith(carried)
        assert len(carried) <= deadletters.TRUNCATED_PAYLOAD_BYTES
        assert len(carried) > deadletters.TRUNCATED_PAYLOAD_BYTES - 4 or len(carried) == len(value)
        assert len(value) > max_record_bytes or len(value) > 100_000  # only when needed
    else:
        assert carried == value and len(value) <= max_record_bytes
    if key is not None and not doc.get("key_truncated"):
        assert (doc["key"].encode() == key) or base64.b64decode(doc["key"]) == key


# --------------------------------------------------------------------------- CloudEvents

edge_ids = st.builds(lambda c, n, i: (c * n)[: MAX_ID_LENGTH - 6] + f"{i:06d}",
                     st.sampled_from(["x", "\u0001", "🛰", '"']), st.sampled_from([1, MAX_ID_LENGTH]),
                     st.integers(0, 999_999))


def many_ids(low: int, high: int) -> st.SearchStrategy[list[str]]:
    """Between low and high distinct ids at their bound (built, not drawn one by one: fast)."""
    return st.builds(lambda c, n: [(c * MAX_ID_LENGTH)[: MAX_ID_LENGTH - 6] + f"{i:06d}" for i in range(n)],
                     st.sampled_from(["x", "\u0001", "🛰", '"']), st.integers(low, high))


edge_reasons = st.lists(st.builds(lambda code, impact: {"code": "fault." + code, "impact": impact}, edge_ids,
                                  st.floats(-100, -0.1)), max_size=300)


@PROPERTY
@given(st.sampled_from(RULES.rules), st.sampled_from([MIN_EPOCH, MAX_EPOCH, NOW]),
       st.one_of(st.lists(edge_ids, max_size=5), many_ids(150, 3000)),
       edge_reasons, st.one_of(st.none(), st.just("\u0001" * MAX_TEXT_LENGTH), st.just("🛰" * MAX_TEXT_LENGTH)),
       edge_ids)
def test_any_cloudevent_at_the_bounds_is_json_under_1_mb(rule, when, faults, reasons_, segment, customer_id) -> None:
    firing = Firing(rule, customer_id, when, "e" * 300, 0.0, 100.0, reasons_, faults, "gold", segment)
    raw = cloudevents.encode(firing, SOURCE)
    assert len(raw) < MAX_MESSAGE_BYTES
    event = CloudEvent.model_validate_json(raw)
    assert event.time == format_time(when)
    assert event.data.faults == faults[:MAX_LISTED_FAULTS]
    assert len(event.data.reasons) == min(len(reasons_), MAX_LISTED_REASONS)


def test_a_cloudevent_from_state_beyond_the_bounds_still_fits() -> None:
    """Strings longer than any model accepts (state from before the bounds): cut, not over 1 MB."""
    firing = Firing(RULES.rules[0], "C1", NOW, "e", 10.0, None,
                    [{"code": "fault." + "\x00" * 50_000, "impact": -1.0}] * 50, ["\x00" * 20_000] * 100,
                    "gold", "\x00" * 100_000)
    raw = cloudevents.encode(firing, SOURCE)
    assert len(raw) < MAX_MESSAGE_BYTES
    data = orjson.loads(raw)["data"]
    assert len(data["faults"]) == 100 and len(data["faults"][0]) == MAX_ID_LENGTH
    assert len(data["segment"]) == MAX_TEXT_LENGTH
    with pytest.raises(ValueError, match="MAX_MESSAGE_BYTES"):
        cloudevents.encode(Firing(RULES.rules[0], "\x00" * 300_000, NOW, "e", 10.0, None, [], [], "gold", None),
                           SOURCE)


# --------------------------------------------------------------------------- score documents


def test_a_customer_at_every_bound_gets_a_score_document_under_1_mb() -> None:
    """64 resources, 8 of them with 100 impacting alarms each (the bound per resource), every
    id at its bound in control characters: 800 active alarms, 1.2 MB of ids, are listed as the
    first 100. (All 64 resources would be 6,400 alarms, 10 MB; the engine takes ~25 s for that.)"""
    engine = Engine(RULES, clock=lambda: NOW)
    engine.go_live()
    fill = "\u0001" * (MAX_ID_LENGTH - 8)
    resources = [f"{fill}R{n:07d}" for n in range(MAX_RESOURCES_PER_CUSTOMER)]
    customer_id = fill + "C0000001"
    value = orjson.dumps({"customer_id": customer_id, "resources": resources, "segment": "\u0001" * MAX_TEXT_LENGTH,
                          "updated_at": format_time(NOW - 3600)})
    engine.process([InputRecord("customers", "cx.customers", 0, 0, customer_id.encode(), value, NOW)])
    offset = 0
    for resource in resources[:8]:
        for n in range(engine.limits.max_alarms_per_resource):
            offset += 1
            alarm = {"id": f"{fill}{offset:08d}", "alarmedObject": {"id": resource}, "perceivedSeverity": "major",
                     "alarmRaisedTime": format_time(NOW - 60)}
            assert engine.apply_fault(InputRecord("faults", "cx.faults", 0, offset, None, orjson.dumps(alarm),
                                                  NOW)) is None
    state = engine.customers[customer_id]
    assert len(state.impacts) == 8 * engine.limits.max_alarms_per_resource
    assert len(orjson.dumps(sorted(state.impacts))) > MB
    document = scores.score_document(engine, state)
    raw = scores.encode(document)
    assert len(raw) < MAX_MESSAGE_BYTES
    parsed = ScoreDocument.model_validate_json(raw)
    assert parsed.active_faults == sorted(state.impacts)[:MAX_LISTED_FAULTS]
    assert len(parsed.reasons) <= MAX_LISTED_REASONS


score_docs = st.fixed_dictionaries({
    "customer_id": edge_ids, "score": st.floats(0, 100), "previous_score": st.one_of(st.none(), st.floats(0, 100)),
    "dimensions": st.just({"voice": 1.0, "data": 2.0, "video": 3.0, "messaging": 4.0, "availability": 5.0}),
    "reasons": edge_reasons,
    "active_faults": st.one_of(st.lists(edge_ids, max_size=5), many_ids(500, 3000)),
    "updated_at": st.sampled_from([MIN_EPOCH, MAX_EPOCH, NOW]).map(format_time),
})


@PROPERTY
@given(score_docs)
def test_any_score_document_is_json_under_1_mb(document: dict) -> None:
    raw = scores.encode(document)
    assert len(raw) < MAX_MESSAGE_BYTES
    parsed = orjson.loads(raw)
    if len(orjson.dumps(document)) < MAX_MESSAGE_BYTES:
        assert parsed == document  # unchanged when it fits
    else:
        assert parsed["active_faults"] == sorted(document["active_faults"])[:MAX_LISTED_FAULTS]
        assert len(parsed["reasons"]) <= MAX_LISTED_REASONS


def test_the_dead_letter_model_checks_the_truncation_fields() -> None:
    base = {"source_topic": "cx.quality", "partition": 0, "offset": 1, "key": "C1", "error": "too large",
            "received_at": "2026-11-22T10:00:05Z", "payload": "{"}
    DeadLetter.model_validate({**base, "payload_truncated": True, "payload_bytes": 300_000})
    DeadLetter.model_validate({**base, "key_truncated": True, "key_bytes": 5000})
    for bad in ({"payload_truncated": True}, {"payload_bytes": 10}, {"payload_truncated": True, "payload_bytes": 10,
                                                                    "payload": None},
                {"key_truncated": True}, {"key_truncated": True, "key_bytes": 5000, "key": None}):
        with pytest.raises(ValueError):
            DeadLetter.model_validate({**base, **bad})
