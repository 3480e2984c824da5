"""Output documents: the contract's examples validate; drift from the contract does not."""

from __future__ import annotations

import base64
import copy

import orjson
import pytest
from pydantic import ValidationError

from cxstream.models import CloudEvent, DeadLetter, ScoreDocument, TriggerData, describe_validation_error

SCORE = {
    "customer_id": "C100042",
    "score": 63.5,
    "previous_score": 81.0,
    "dimensions": {"voice": 40.0, "data": 88.0, "video": 100.0, "messaging": 100.0, "availability": 55.0},
    "reasons": [{"code": "voice.call_dropped", "impact": -18.2}, {"code": "fault.CELL-0042", "impact": -12.0}],
    "active_faults": ["ALM-77"],
    "updated_at": "2026-11-22T10:00:05Z",
}

TRIGGER = {
    "specversion": "1.0",
    "id": "3f2a9c1e-outage_notice-C100042-ep1",
    "source": "urn:cxstream:default",
    "type": "io.cxstream.trigger.outage_notice",
    "subject": "C100042",
    "time": "2026-11-22T10:00:05Z",
    "datacontenttype": "application/json",
    "partitionkey": "C100042",
    "data": {
        "customer_id": "C100042",
        "trigger": "outage_notice",
        "channel": "care",
        "rule_id": "outage_notice",
        "score": 63.5,
        "previous_score": 81.0,
        "reasons": [{"code": "fault.CELL-0042", "impact": -12.0}],
        "faults": ["ALM-77"],
        "value_tier": "gold",
        "segment": "consumer",
    },
}

DEAD = {
    "source_topic": "cx.service.quality",
    "partition": 3,
    "offset": 1234,
    "key": "C100042",
    "error": "metrics.mos must be a number between 1 and 5 (got 7.2)",
    "payload": '{"metrics": {"mos": 7.2}}',
    "received_at": "2026-11-22T10:00:05.120Z",
}


def test_score_example_validates_from_json_and_python() -> None:
    assert ScoreDocument.model_validate_json(orjson.dumps(SCORE)).score == 63.5
    assert ScoreDocument.model_validate(SCORE).dimensions.availability == 55.0


def test_score_first_document_has_no_previous_score() -> None:
    assert ScoreDocument.model_validate({**SCORE, "previous_score": None}).previous_score is None


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"score": 101}, "score"),
        ({"score": -0.1}, "score"),
        ({"score": "63.5"}, "score"),
        ({"previous_score": 120}, "previous_score"),
        ({"updated_at": "2026-11-22T10:00:05"}, "updated_at"),
        ({"updated_at": 1795341605}, "updated_at"),
        ({"extra": 1}, "extra"),
        ({"reasons": [{"code": "x"}]}, "reasons[0].impact"),
        ({"reasons": [{"code": "", "impact": 1}]}, "reasons[0].code"),
        ({"dimensions": {"voice": 1, "data": 1, "video": 1, "messaging": 1}}, "dimensions.availability"),
        ({"dimensions": {"voice": 1, "data": 1, "video": 1, "messaging": 1, "availability": 1, "sms": 3}}, "dimensions.sms"),
    ],
)
def test_score_drift_is_caught(change: dict, field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        ScoreDocument.model_validate_json(orjson.dumps({**SCORE, **change}))
    assert describe_validation_error(caught.value).startswith(field)


@pytest.mark.parametrize("field", ["previous_score", "active_faults", "reasons", "dimensions", "updated_at"])
def test_score_fields_are_all_present(field: str) -> None:
    doc = {k: v for k, v in SCORE.items() if k != field}
    with pytest.raises(ValidationError):
        ScoreDocument.model_validate(doc)


def test_trigger_example_validates() -> None:
    event = CloudEvent.model_validate_json(orjson.dumps(TRIGGER))
    assert isinstance(event.data, TriggerData)
    assert event.data.value_tier.value == "gold"
    assert CloudEvent.model_validate(TRIGGER).data.channel == "care"


@pytest.mark.parametrize(
    "change",
    [
        {"specversion": "0.3"},
        {"datacontenttype": "text/json"},
        {"type": "io.cxstream.trigger.retention_offer"},  # not data.trigger
        {"type": "trigger.outage_notice"},
        {"subject": "C9"},
        {"partitionkey": "C9"},
        {"source": "cxstream"},
        {"time": "2026-11-22 10:00:05"},
        {"traceparent": "00-abc"},
    ],
)
def test_trigger_drift_is_caught(change: dict) -> None:
    with pytest.raises(ValidationError):
        CloudEvent.model_validate({**TRIGGER, **change})


@pytest.mark.parametrize(
    "change",
    [{"channel": "sms"}, {"value_tier": "diamond"}, {"score": 140}, {"faults": "ALM-77"}, {"segment": 1}],
)
def test_trigger_data_drift_is_caught(change: dict) -> None:
    event = copy.deepcopy(TRIGGER)
    event["data"].update(change)
    with pytest.raises(ValidationError):
        CloudEvent.model_validate(event)


def test_marketing_trigger_without_segment() -> None:
    event = copy.deepcopy(TRIGGER)
    event["type"] = "io.cxstream.trigger.retention_offer"
    event["data"].update(trigger="retention_offer", rule_id="retention_offer", channel="marketing", segment=None, faults=[])
    assert CloudEvent.model_validate(event).data.segment is None


def test_dead_letter_examples() -> None:
    assert DeadLetter.model_validate_json(orjson.dumps(DEAD)).offset == 1234
    binary = {**DEAD, "payload": None, "payload_b64": base64.b64encode(b"\xff\x00").decode()}
    assert DeadLetter.model_validate(binary).payload_b64 == "/wA="
    null_value = {k: v for k, v in DEAD.items() if k != "payload"} | {"key": None}
    assert DeadLetter.model_validate(null_value).payload is None


@pytest.mark.parametrize(
    "change",
    [
        {"payload_b64": "/wA="},  # both payloads
        {"payload": None, "payload_b64": "not base64!"},
        {"partition": -1},
        {"offset": "12"},
        {"error": ""},
        {"received_at": "now"},
        {"source": "x"},
    ],
)
def test_dead_letter_drift_is_caught(change: dict) -> None:
    with pytest.raises(ValidationError):
        DeadLetter.model_validate({**DEAD, **change})


def test_fault_impact_documents_validate_and_drift_is_caught() -> None:
    from cxstream.domain.alarms import Alarm
    from cxstream.domain.impact import combine
    from cxstream.models.outputs import FaultImpact

    alarm = Alarm("ALM-1", "SITE-1", "critical", raised_at=1763805600.0, changed_at=1763805600.0)
    partial = {"raised_at": alarm.raised_at, "total": 2, "by_tier": {"gold": 2},
               "by_segment": {"consumer": 2}, "score_sum": 120.0}
    active = combine(alarm, [partial])
    assert FaultImpact.model_validate(active).mean_score == 60.0
    alarm.cleared_at = alarm.raised_at + 600
    cleared = FaultImpact.model_validate(combine(alarm, [partial]))
    assert not cleared.active and cleared.duration_s == 600
    with pytest.raises(ValidationError):
        FaultImpact.model_validate({**active, "active": False})
    with pytest.raises(ValidationError):
        FaultImpact.model_validate({**active, "extra": 1})
