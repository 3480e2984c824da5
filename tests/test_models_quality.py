"""Quality records: the contract's example parses; every bad input names its field."""

from __future__ import annotations

import copy
from datetime import datetime, timezone

import orjson
import pytest

from cxstream.models import METRIC_NAMES, InvalidRecord, QualityRecord, Service, parse_quality

EXAMPLE = {
    "event_id": "q-000123",
    "customer_id": "C100042",
    "event_time": "2026-11-22T10:00:05Z",
    "service": "voice",
    "resource_id": "CELL-0042",
    "metrics": {"call_dropped": True, "mos": 2.1},
}


def encode(doc: object) -> bytes:
    return orjson.dumps(doc)


def with_changes(**changes: object) -> dict:
    doc = copy.deepcopy(EXAMPLE)
    for key, value in changes.items():
        if key.startswith("metrics__"):
            doc["metrics"][key.removeprefix("metrics__")] = value
        else:
            doc[key] = value
    return doc


def reason_for(doc_or_bytes: object) -> str:
    value = doc_or_bytes if isinstance(doc_or_bytes, (bytes, type(None))) else encode(doc_or_bytes)
    with pytest.raises(InvalidRecord) as caught:
        parse_quality(value)
    reason = caught.value.reason
    assert reason and str(caught.value) == reason
    return reason


def test_contract_example_parses() -> None:
    record = parse_quality(encode(EXAMPLE))
    assert isinstance(record, QualityRecord)
    assert record.event_id == "q-000123"
    assert record.customer_id == "C100042"
    assert record.service is Service.voice
    assert record.resource_id == "CELL-0042"
    assert record.event_time == datetime(2026, 11, 22, 10, 0, 5, tzinfo=timezone.utc)
    assert record.metrics.call_dropped is True
    assert record.metrics.mos == 2.1
    assert record.metrics.latency_ms is None


def test_contract_example_text_parses_as_written() -> None:
    text = (
        b'{"event_id": "q-000123", "customer_id": "C100042", "event_time": "2026-11-22T10:00:05Z",\n'
        b' "service": "voice", "resource_id": "CELL-0042",\n'
        b' "metrics": {"call_dropped": true, "mos": 2.1}}'
    )
    assert parse_quality(text).metrics.mos == 2.1


def test_resource_id_is_optional() -> None:
    doc = with_changes()
    del doc["resource_id"]
    assert parse_quality(encode(doc)).resource_id is None
    assert parse_quality(encode(with_changes(resource_id=None))).resource_id is None


def test_time_with_offset_is_converted_to_the_same_instant() -> None:
    record = parse_quality(encode(with_changes(event_time="2026-11-22T11:00:05.250+01:00")))
    assert record.event_time.timestamp() == datetime(2026, 11, 22, 10, 0, 5, 250000, tzinfo=timezone.utc).timestamp()


@pytest.mark.parametrize("service", ["voice", "data", "video", "messaging"])
def test_every_service(service: str) -> None:
    assert parse_quality(encode(with_changes(service=service))).service.value == service


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("call_dropped", False),
        ("call_setup_failed", True),
        ("mos", 1),
        ("mos", 5.0),
        ("latency_ms", 0),
        ("latency_ms", 123.4),
        ("jitter_ms", 0.0),
        ("packet_loss_pct", 0),
        ("packet_loss_pct", 100),
        ("throughput_mbps", 0),
        ("throughput_mbps", 940.5),
        ("video_stall_ratio", 0),
        ("video_stall_ratio", 1),
        ("message_failed", True),
    ],
)
def test_each_metric_alone_is_enough(name: str, value: object) -> None:
    record = parse_quality(encode(with_changes(metrics={name: value})))
    assert getattr(record.metrics, name) == value
    assert set(METRIC_NAMES) == set(type(record.metrics).model_fields)


def test_integers_are_numbers() -> None:
    record = parse_quality(encode(with_changes(metrics={"mos": 4, "latency_ms": 20})))
    assert record.metrics.mos == 4.0 and isinstance(record.metrics.mos, float)


def test_unknown_fields_and_metrics_are_ignored() -> None:
    doc = with_changes(extra_field={"nested": [1, 2]}, metrics__rsrp_dbm=-95, metrics__foo="bar")
    record = parse_quality(encode(doc))
    assert record.metrics.mos == 2.1
    assert not hasattr(record.metrics, "rsrp_dbm")


@pytest.mark.parametrize("field", ["event_id", "customer_id", "event_time", "service", "metrics"])
def test_missing_required_field_is_named(field: str) -> None:
    doc = with_changes()
    del doc[field]
    assert f"{field} is required" in reason_for(doc)


@pytest.mark.parametrize("field", ["event_id", "customer_id", "event_time", "service", "metrics"])
def test_null_required_field_is_named(field: str) -> None:
    assert reason_for(with_changes(**{field: None})).startswith(field)


@pytest.mark.parametrize("field", ["event_id", "customer_id", "resource_id"])
def test_empty_ids_are_invalid(field: str) -> None:
    reason = reason_for(with_changes(**{field: ""}))
    assert reason == f"{field} must not be empty (got '')"


@pytest.mark.parametrize("field", ["event_id", "customer_id"])
def test_ids_must_be_strings(field: str) -> None:
    assert reason_for(with_changes(**{field: 42})) == f"{field} must be a string (got 42)"


def test_unknown_service_names_the_choices() -> None:
    assert reason_for(with_changes(service="fax")) == "service must be one of voice, data, video, messaging (got 'fax')"


@pytest.mark.parametrize("service", ["Voice", "VOICE", " voice"])
def test_service_case_is_exact(service: str) -> None:
    assert reason_for(with_changes(service=service)).startswith("service must be one of")


def test_mos_out_of_range_reason() -> None:
    assert reason_for(with_changes(metrics__mos=7.2)) == "metrics.mos must be a number between 1 and 5 (got 7.2)"


@pytest.mark.parametrize(
    ("name", "value", "wanted"),
    [
        ("mos", 0.99, "between 1 and 5"),
        ("mos", 5.01, "between 1 and 5"),
        ("latency_ms", -1, "at least 0"),
        ("jitter_ms", -0.5, "at least 0"),
        ("packet_loss_pct", 100.1, "between 0 and 100"),
        ("packet_loss_pct", -1, "between 0 and 100"),
        ("throughput_mbps", -3, "at least 0"),
        ("video_stall_ratio", 1.5, "between 0 and 1"),
        ("video_stall_ratio", -0.1, "between 0 and 1"),
    ],
)
def test_out_of_range_metric_names_field_and_range(name: str, value: float, wanted: str) -> None:
    reason = reason_for(with_changes(**{f"metrics__{name}": value}))
    assert reason.startswith(f"metrics.{name} must be")
    assert wanted in reason
    assert repr(value) in reason


@pytest.mark.parametrize("name", ["call_dropped", "call_setup_failed", "message_failed"])
@pytest.mark.parametrize("value", ["true", 1, 0, "false", "yes"])
def test_booleans_must_be_json_booleans(name: str, value: object) -> None:
    reason = reason_for(with_changes(metrics={name: value}))
    assert reason.startswith(f"metrics.{name} must be a JSON boolean")


@pytest.mark.parametrize("name", ["mos", "latency_ms", "jitter_ms", "packet_loss_pct", "throughput_mbps", "video_stall_ratio"])
@pytest.mark.parametrize("value", ["3.2", True, [1], {"v": 1}])
def test_numbers_must_be_json_numbers(name: str, value: object) -> None:
    assert reason_for(with_changes(metrics={name: value})).startswith(f"metrics.{name} must be")


@pytest.mark.parametrize("token", [b"NaN", b"Infinity", b"-Infinity", b"1e400"])
def test_non_finite_numbers_are_invalid(token: bytes) -> None:
    value = encode(with_changes(metrics={"latency_ms": 1})).replace(b'"latency_ms":1', b'"latency_ms":' + token)
    assert b"latency_ms\":" + token in value
    assert reason_for(value).startswith("metrics.latency_ms must be")


@pytest.mark.parametrize(
    "event_time",
    ["2026-11-22T10:00:05", "2026-11-22", "yesterday", "", 1795341605, 1795341605.5, "22/11/2026 10:00"],
)
def test_event_time_must_be_rfc3339_with_offset(event_time: object) -> None:
    reason = reason_for(with_changes(event_time=event_time))
    assert reason.startswith("event_time must")
    assert "'Z' or an offset" in reason


@pytest.mark.parametrize(
    "metrics",
    [{}, {"mos": None}, {"mos": None, "call_dropped": None}, {"rsrp_dbm": -90}],
)
def test_metrics_needs_at_least_one_known_metric(metrics: dict) -> None:
    reason = reason_for(with_changes(metrics=metrics))
    assert reason.startswith("metrics must contain at least one of call_dropped")


@pytest.mark.parametrize("metrics", [[], "mos=2", 3])
def test_metrics_must_be_an_object(metrics: object) -> None:
    assert reason_for(with_changes(metrics=metrics)).startswith("metrics must be a JSON object")


def test_several_problems_are_joined() -> None:
    reason = reason_for(with_changes(service="fax", metrics__mos=9, event_id=""))
    parts = reason.split("; ")
    assert len(parts) == 3
    assert any(p.startswith("service ") for p in parts)
    assert any(p.startswith("metrics.mos ") for p in parts)
    assert any(p.startswith("event_id ") for p in parts)


@pytest.mark.parametrize(
    ("value", "start"),
    [
        (None, "value is empty"),
        (b"", "value is not valid JSON"),
        (b"{", "value is not valid JSON"),
        (b"not json", "value is not valid JSON"),
        (b"\xff\xfe\x00", "value is not valid JSON"),
        (b'{"event_id": "\xff"}', "value is not valid JSON"),
        (b"[1, 2]", "value must be a JSON object"),
        (b"null", "value must be a JSON object"),
        (b'"text"', "value must be a JSON object"),
        (b"3", "value must be a JSON object"),
    ],
)
def test_unreadable_values(value: bytes | None, start: str) -> None:
    assert reason_for(value).startswith(start)


def test_invalid_record_is_a_value_error() -> None:
    error = InvalidRecord("x is required")
    assert isinstance(error, ValueError)
    assert str(error) == error.reason == "x is required"
