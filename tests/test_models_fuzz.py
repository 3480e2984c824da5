"""Property tests: any bytes in → a model or InvalidRecord with a reason; never another exception."""

from __future__ import annotations

import copy
import json
from typing import Any, Callable

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cxstream.models import (
    AlarmNotification,
    CustomerRecord,
    CustomerTombstone,
    InvalidRecord,
    QualityRecord,
    parse_customer,
    parse_fault,
    parse_quality,
)

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

QUALITY = {
    "event_id": "q-1",
    "customer_id": "C1",
    "event_time": "2026-11-22T10:00:05Z",
    "service": "voice",
    "resource_id": "CELL-1",
    "metrics": {"call_dropped": True, "mos": 2.1, "latency_ms": 40, "video_stall_ratio": 0.1},
}
CUSTOMER = {
    "customer_id": "C1",
    "segment": "consumer",
    "value_tier": "gold",
    "marketing_consent": True,
    "resources": ["CELL-1", "SITE-1"],
    "updated_at": "2026-11-22T09:00:00Z",
}
ALARM = {
    "id": "ALM-1",
    "alarmedObject": {"id": "CELL-1", "@referredType": "Cell"},
    "perceivedSeverity": "major",
    "state": "raised",
    "alarmRaisedTime": "2026-11-22T10:00:00Z",
    "serviceAffecting": True,
    "plannedOutageIndicator": "InService",
    "parentAlarm": [{"id": "ALM-0"}],
    "correlatedAlarm": [{"id": 7}],
}
ALARMS = [
    ALARM,
    {**ALARM, "id": 77},
    {"eventId": "e1", "eventTime": "2026-11-22T10:00:01Z", "eventType": "AlarmCreateEvent", "event": {"alarm": ALARM}},
    {"eventId": 5, "eventType": "AlarmStateChangeEvent", "event": {"alarm": {"id": "ALM-1", "state": "cleared"}}},
    {"eventType": "AlarmAttributeValueChangeEvent", "event": {"alarm": {"id": "ALM-1", "perceivedSeverity": "minor"}}},
    {"eventType": "AlarmDeleteEvent", "event": {"alarm": {"id": "ALM-1"}}},
    {
        "eventType": "ClearAlarmCreateEvent",
        "event": {"clearAlarm": {"alarmClearedTime": "2026-11-22T11:00:00Z", "clearedAlarm": [{"id": "ALM-1"}]}},
    },
    {"eventType": "ClearAlarmsStateChangeEvent", "event": {"clearAlarms": {"clearedAlarm": [{"id": 1}, {"id": 2}]}}},
]

FIELD_NAMES = sorted(
    {
        *QUALITY,
        *QUALITY["metrics"],
        "call_setup_failed",
        "jitter_ms",
        "packet_loss_pct",
        "throughput_mbps",
        "message_failed",
        *CUSTOMER,
        *ALARM,
        "alarmedObjectType",
        "alarmChangedTime",
        "alarmClearedTime",
        "alarmType",
        "probableCause",
        "isRootCause",
        "@type",
        "eventId",
        "eventTime",
        "eventType",
        "event",
        "alarm",
        "clearAlarm",
        "clearAlarms",
        "clearedAlarm",
        "alarmPattern",
    }
)
INTERESTING_TEXT = [
    "",
    "voice",
    "Voice",
    "gold",
    "cleared",
    "CLEARED",
    "critical",
    "OutOfService",
    "AlarmCreateEvent",
    "ClearAlarmsCreateEvent",
    "2026-11-22T10:00:05Z",
    "2026-11-22T10:00:05",
    "2026-11-22T10:00:05.123456789+14:00",
    "9999-12-31T23:59:59Z",
    "0000-01-01T00:00:00Z",
    "true",
    "3.2",
    "NaN",
    "\x00",
    "\ud800",
    "é" * 3,
]

leaves = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.sampled_from(INTERESTING_TEXT)
)
keys = st.sampled_from(FIELD_NAMES) | st.text(max_size=6)
json_values = st.recursive(
    leaves,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=5),
    max_leaves=16,
)


def encode(value: Any) -> bytes:
    """JSON text, NaN/Infinity tokens and lone surrogates included (parsers must cope)."""
    return json.dumps(value).encode("utf-8", "surrogatepass")


def paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    found = [prefix]
    if isinstance(node, dict):
        for key, child in node.items():
            found += paths(child, prefix + (key,))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            found += paths(child, prefix + (index,))
    return found


def mutate(data: st.DataObject, base: Any) -> Any:
    """One to three edits anywhere in a valid document: replace, delete or add a field."""
    doc = copy.deepcopy(base)
    for _ in range(data.draw(st.integers(1, 3), label="edits")):
        path = data.draw(st.sampled_from(paths(doc)), label="path")
        if not path:
            doc = data.draw(json_values, label="whole")
            continue
        parent = doc
        for part in path[:-1]:
            parent = parent[part]
        action = data.draw(st.sampled_from(["replace", "delete", "add"]), label="action")
        if action == "replace":
            parent[path[-1]] = data.draw(json_values, label="value")
        elif action == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[data.draw(keys, label="key")] = data.draw(json_values, label="value")
        else:
            parent.append(data.draw(json_values, label="value"))
    return doc


def outcome(parse: Callable[..., Any], *args: Any) -> Any:
    """The model, or None after checking the InvalidRecord's reason. Anything else fails."""
    try:
        return parse(*args)
    except InvalidRecord as error:
        assert isinstance(error.reason, str) and error.reason.strip()
        assert str(error) == error.reason
        return None


def check_quality(value: bytes | None) -> None:
    record = outcome(parse_quality, value)
    if record is not None:
        assert isinstance(record, QualityRecord)
        assert record.event_id and record.customer_id
        assert record.event_time.tzinfo is not None
        m = record.metrics
        assert any(getattr(m, name) is not None for name in type(m).model_fields)
        assert m.mos is None or 1 <= m.mos <= 5
        assert m.packet_loss_pct is None or 0 <= m.packet_loss_pct <= 100
        assert m.video_stall_ratio is None or 0 <= m.video_stall_ratio <= 1
        for name in ("latency_ms", "jitter_ms", "throughput_mbps"):
            assert getattr(m, name) is None or getattr(m, name) >= 0
        for name in ("call_dropped", "call_setup_failed", "message_failed"):
            assert getattr(m, name) in (None, True, False)


def check_customer(key: bytes | None, value: bytes | None) -> None:
    result = outcome(parse_customer, key, value)
    if isinstance(result, CustomerTombstone):
        assert value is None and key and result.customer_id == key.decode()
    elif result is not None:
        assert isinstance(result, CustomerRecord)
        assert result.customer_id
        assert not key or key.decode() == result.customer_id
        assert all(isinstance(r, str) and r for r in result.resources)
        assert result.marketing_consent in (True, False)


def check_fault(value: bytes | None) -> None:
    notification = outcome(parse_fault, value)
    if notification is not None:
        assert isinstance(notification, AlarmNotification)
        assert notification.changes
        for change in notification.changes:
            assert isinstance(change.alarm_id, str) and change.alarm_id
            assert change.event_type == notification.event_type
            if change.full:
                assert change.resource_id and change.severity is not None and change.raised_time is not None
            if change.state == "cleared" or change.cleared_time is not None:
                assert change.clears


@FUZZ
@given(value=st.none() | st.binary(max_size=300), key=st.none() | st.binary(max_size=12))
def test_arbitrary_bytes(value: bytes | None, key: bytes | None) -> None:
    check_quality(value)
    check_customer(key, value)
    check_fault(value)


@FUZZ
@given(value=json_values, key=st.none() | st.sampled_from([b"C1", b"", b"\xff"]) | st.binary(max_size=4))
def test_arbitrary_json(value: Any, key: bytes | None) -> None:
    raw = encode(value)
    check_quality(raw)
    check_customer(key, raw)
    check_fault(raw)


@FUZZ
@given(data=st.data())
def test_mutated_quality_records(data: st.DataObject) -> None:
    check_quality(encode(mutate(data, QUALITY)))


@FUZZ
@given(data=st.data(), key=st.sampled_from([None, b"C1", b"C2"]))
def test_mutated_customer_records(data: st.DataObject, key: bytes | None) -> None:
    check_customer(key, encode(mutate(data, CUSTOMER)))


@FUZZ
@given(data=st.data(), base=st.sampled_from(ALARMS))
def test_mutated_alarms(data: st.DataObject, base: dict) -> None:
    check_fault(encode(mutate(data, base)))


@FUZZ
@given(
    base=st.sampled_from([QUALITY, CUSTOMER, *ALARMS]),
    cut=st.integers(min_value=0, max_value=400),
    flip=st.integers(min_value=0, max_value=400),
    byte=st.integers(min_value=0, max_value=255),
)
def test_damaged_json_text(base: dict, cut: int, flip: int, byte: int) -> None:
    raw = bytearray(encode(base))
    if flip < len(raw):
        raw[flip] = byte
    damaged = bytes(raw[: max(cut, 1)])
    check_quality(damaged)
    check_customer(b"C1", damaged)
    check_fault(damaged)


def test_valid_bases_parse() -> None:
    assert isinstance(parse_quality(encode(QUALITY)), QualityRecord)
    assert isinstance(parse_customer(b"C1", encode(CUSTOMER)), CustomerRecord)
    for base in ALARMS:
        assert isinstance(parse_fault(encode(base)), AlarmNotification)


def test_deep_nesting_is_rejected_not_crashed() -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    nested_object = b'{"metrics":' * 5_000 + b"1" + b"}" * 5_000
    for raw in (deep, nested_object):
        check_quality(raw)
        check_customer(None, raw)
        check_fault(raw)
