"""TMF642 alarms and notifications (v4 and v5), normalised into AlarmChange."""

from __future__ import annotations

import copy
from datetime import datetime, timezone

import orjson
import pytest

from cxstream.models import (
    ACCEPTED_EVENT_TYPES,
    AlarmChange,
    AlarmNotification,
    InvalidRecord,
    Severity,
    parse_fault,
)

RAISED = "2026-11-22T10:00:00Z"
T_RAISED = datetime(2026, 11, 22, 10, 0, tzinfo=timezone.utc)

BARE_V5 = {
    "id": "ALM-77",
    "href": "https://fm.example/tmf-api/alarmManagement/v5/alarm/ALM-77",
    "@type": "Alarm",
    "alarmedObject": {"id": "CELL-0042", "@referredType": "Cell", "@type": "AlarmedObjectRef"},
    "alarmedObjectType": "Cell",
    "perceivedSeverity": "critical",
    "state": "raised",
    "alarmRaisedTime": RAISED,
    "alarmChangedTime": "2026-11-22T10:00:01Z",
    "alarmType": "communicationsAlarm",
    "probableCause": "lossOfSignal",
    "specificProblem": "S1 link down",
    "serviceAffecting": True,
    "plannedOutageIndicator": "InService",
    "isRootCause": True,
    "ackState": "unacknowledged",
    "sourceSystemId": "OSS-1",
    "externalAlarmId": "ext-1",
    "affectedService": [{"id": "svc-1"}],
    "comment": [{"comment": "looking", "userId": "noc"}],
    "crossedThresholdInformation": {"thresholdId": "t1"},
}

BARE_V4 = {
    "id": 77,
    "alarmedObject": {"id": "CELL-0042"},
    "alarmedObjectType": "Cell",
    "perceivedSeverity": "major",
    "alarmRaisedTime": RAISED,
    "alarmType": "CommunicationsAlarm",
    "probableCause": "Loss of signal",
    "correlatedAlarm": [{"id": 76}, {"id": 75}],
    "parentAlarm": [{"id": 70}],
}


def envelope(event_type: str, event: dict, **extra: object) -> dict:
    doc = {"eventId": "evt-1", "eventTime": "2026-11-22T10:00:02Z", "eventType": event_type, "event": event}
    doc.update(extra)
    return doc


def parse(doc: object) -> AlarmNotification:
    return parse_fault(orjson.dumps(doc))


def only(notification: AlarmNotification) -> AlarmChange:
    assert len(notification.changes) == 1
    return notification.changes[0]


def reason_for(value: object) -> str:
    raw = value if isinstance(value, (bytes, type(None))) else orjson.dumps(value)
    with pytest.raises(InvalidRecord) as caught:
        parse_fault(raw)
    assert caught.value.reason == str(caught.value) != ""
    return caught.value.reason


# --------------------------------------------------------------------------- bare alarms


def test_bare_v5_alarm() -> None:
    notification = parse(BARE_V5)
    assert notification.event_type == "Alarm"
    assert notification.event_id is None
    change = only(notification)
    assert change.alarm_id == "ALM-77"
    assert change.event_type == "Alarm"
    assert change.full is True
    assert change.clears is False
    assert change.resource_id == "CELL-0042"
    assert change.resource_type == "Cell"
    assert change.severity is Severity.critical
    assert change.state == "raised"
    assert change.raised_time == T_RAISED
    assert change.changed_time == datetime(2026, 11, 22, 10, 0, 1, tzinfo=timezone.utc)
    assert change.cleared_time is None
    assert change.service_affecting is True
    assert change.planned is False
    assert change.alarm_type == "communicationsAlarm"
    assert change.probable_cause == "lossOfSignal"
    assert change.specific_problem == "S1 link down"
    assert change.is_root_cause is True
    assert change.related_alarm_ids == ()
    assert change.event_time is None


def test_bare_v4_alarm_integer_ids_are_normalised() -> None:
    change = only(parse(BARE_V4))
    assert change.alarm_id == "77"
    assert change.related_alarm_ids == ("70", "76", "75")
    assert change.severity is Severity.major
    assert change.alarm_type == "CommunicationsAlarm"
    assert change.service_affecting is None  # not stated: the policy default is the consumer's
    assert change.planned is None
    assert change.state is None


@pytest.mark.parametrize("field", ["alarmedObject", "perceivedSeverity", "alarmRaisedTime"])
def test_bare_alarm_needs_its_full_fields(field: str) -> None:
    doc = copy.deepcopy(BARE_V4)
    del doc[field]
    wanted = "alarmedObject.id" if field == "alarmedObject" else field
    assert reason_for(doc) == f"{wanted} is required for a bare TMF642 alarm"


def test_bare_alarm_alarmed_object_without_id() -> None:
    doc = {**BARE_V4, "alarmedObject": {"@referredType": "Cell"}}
    assert reason_for(doc) == "alarmedObject.id is required for a bare TMF642 alarm"


def test_bare_alarm_missing_everything_lists_every_field() -> None:
    reason = reason_for({"id": "A1"})
    assert reason.split("; ") == [
        "alarmedObject.id is required for a bare TMF642 alarm",
        "perceivedSeverity is required for a bare TMF642 alarm",
        "alarmRaisedTime is required for a bare TMF642 alarm",
    ]


def test_bare_alarm_without_id() -> None:
    doc = {k: v for k, v in BARE_V5.items() if k != "id"}
    assert reason_for(doc) == "id is required"


# --------------------------------------------------------------------------- ids


@pytest.mark.parametrize(("raw", "normalised"), [("ALM-1", "ALM-1"), (1, "1"), (0, "0"), (2**40, str(2**40))])
def test_id_string_or_integer(raw: object, normalised: str) -> None:
    change = only(parse(envelope("AlarmStateChangeEvent", {"alarm": {"id": raw, "state": "updated"}})))
    assert change.alarm_id == normalised


@pytest.mark.parametrize(("raw", "text"), [(True, "true"), (1.5, "1.5"), ([1], "a list"), ({"id": 1}, "an object"), (None, "null")])
def test_id_of_another_type_is_invalid(raw: object, text: str) -> None:
    reason = reason_for(envelope("AlarmStateChangeEvent", {"alarm": {"id": raw}}))
    assert reason == f"event.alarm.id must be a string or an integer (got {text})"


def test_empty_id_is_invalid() -> None:
    assert reason_for(envelope("AlarmDeleteEvent", {"alarm": {"id": ""}})).startswith("event.alarm.id must not be empty")


@pytest.mark.parametrize("event_type", ["AlarmCreateEvent", "AlarmAttributeValueChangeEvent", "AlarmStateChangeEvent", "AlarmDeleteEvent"])
def test_id_is_required_in_every_alarm_event(event_type: str) -> None:
    alarm = {k: v for k, v in BARE_V5.items() if k != "id"}
    assert "event.alarm.id is required" in reason_for(envelope(event_type, {"alarm": alarm}))


def test_event_id_integer_is_normalised() -> None:
    notification = parse(envelope("AlarmDeleteEvent", {"alarm": {"id": 5}}, eventId=1234))
    assert notification.event_id == "1234"


def test_event_id_is_optional() -> None:
    doc = envelope("AlarmDeleteEvent", {"alarm": {"id": 5}})
    del doc["eventId"]
    assert parse(doc).event_id is None


# --------------------------------------------------------------------------- event types


def test_alarm_create_event() -> None:
    notification = parse(envelope("AlarmCreateEvent", {"alarm": BARE_V5}))
    assert notification.event_type == "AlarmCreateEvent"
    assert notification.event_id == "evt-1"
    change = only(notification)
    assert change.event_type == "AlarmCreateEvent"
    assert change.full is True
    assert change.clears is False
    assert change.resource_id == "CELL-0042"
    assert change.event_time == datetime(2026, 11, 22, 10, 0, 2, tzinfo=timezone.utc)


@pytest.mark.parametrize("field", ["alarmedObject", "perceivedSeverity", "alarmRaisedTime"])
def test_alarm_create_event_needs_its_full_fields(field: str) -> None:
    alarm = {k: v for k, v in BARE_V5.items() if k != field}
    wanted = "alarmedObject.id" if field == "alarmedObject" else field
    assert reason_for(envelope("AlarmCreateEvent", {"alarm": alarm})) == f"event.alarm.{wanted} is required for AlarmCreateEvent"


@pytest.mark.parametrize("event_type", ["AlarmAttributeValueChangeEvent", "AlarmStateChangeEvent", "AlarmDeleteEvent"])
def test_partial_notifications_need_only_the_id(event_type: str) -> None:
    change = only(parse(envelope(event_type, {"alarm": {"id": "ALM-77"}})))
    assert change.alarm_id == "ALM-77"
    assert change.event_type == event_type
    assert change.full is False
    assert change.resource_id is None
    assert change.severity is None
    assert change.service_affecting is None


def test_attribute_change_carries_what_changed() -> None:
    alarm = {"id": "ALM-77", "perceivedSeverity": "Minor", "alarmChangedTime": "2026-11-22T10:05:00+02:00", "ackState": "acknowledged"}
    change = only(parse(envelope("AlarmAttributeValueChangeEvent", {"alarm": alarm})))
    assert change.severity is Severity.minor
    assert change.changed_time == datetime(2026, 11, 22, 8, 5, tzinfo=timezone.utc)
    assert change.clears is False


def test_partial_notification_may_carry_the_resource() -> None:
    alarm = {"id": "ALM-9", "alarmedObject": {"id": "SITE-0007"}, "state": "updated"}
    assert only(parse(envelope("AlarmStateChangeEvent", {"alarm": alarm}))).resource_id == "SITE-0007"


def test_every_accepted_event_type_is_covered() -> None:
    assert set(ACCEPTED_EVENT_TYPES) == {
        "AlarmCreateEvent",
        "AlarmAttributeValueChangeEvent",
        "AlarmStateChangeEvent",
        "AlarmDeleteEvent",
        "ClearAlarmCreateEvent",
        "ClearAlarmStateChangeEvent",
        "ClearAlarmsCreateEvent",
        "ClearAlarmsStateChangeEvent",
    }


@pytest.mark.parametrize("event_type", ACCEPTED_EVENT_TYPES)
def test_every_accepted_event_type_parses(event_type: str) -> None:
    if event_type.startswith("Clear"):
        key = "clearAlarm" if event_type.startswith("ClearAlarm") and not event_type.startswith("ClearAlarms") else "clearAlarms"
        event = {key: {"clearedAlarm": [{"id": "ALM-77"}]}}
    else:
        event = {"alarm": BARE_V5}
    notification = parse(envelope(event_type, event))
    assert notification.event_type == event_type
    assert [c.alarm_id for c in notification.changes] == ["ALM-77"]


@pytest.mark.parametrize("event_type", ["alarmcreateevent", "ALARMCREATEEVENT", "alarmCreateEvent"])
def test_event_type_case_is_normalised(event_type: str) -> None:
    assert parse(envelope(event_type, {"alarm": BARE_V5})).event_type == "AlarmCreateEvent"


@pytest.mark.parametrize("event_type", ["AlarmFooEvent", "AckAlarmsCreateEvent", "CommentAlarmsCreateEvent", "GroupAlarmsCreateEvent", ""])
def test_other_event_types_are_rejected_by_name(event_type: str) -> None:
    reason = reason_for(envelope(event_type, {"alarm": BARE_V5}))
    assert reason.startswith(f"eventType '{event_type}' is not a TMF642 alarm notification cxstream accepts")
    assert "AlarmCreateEvent" in reason and "ClearAlarmsCreateEvent" in reason


@pytest.mark.parametrize("event_type", [None, 3, ["AlarmCreateEvent"]])
def test_event_type_must_be_a_string(event_type: object) -> None:
    assert reason_for(envelope("x", {"alarm": BARE_V5}, eventType=event_type)).startswith("eventType must be a string")


def test_envelope_without_event_type() -> None:
    assert reason_for({"eventId": "e", "event": {"alarm": BARE_V5}}).startswith("eventType is required")


def test_envelope_without_event() -> None:
    assert reason_for({"eventId": "e", "eventType": "AlarmCreateEvent"}) == (
        "event is required in a TMF642 notification (eventType AlarmCreateEvent)"
    )


@pytest.mark.parametrize("event", [[], "x", None, 3])
def test_event_must_be_an_object(event: object) -> None:
    assert reason_for(envelope("AlarmStateChangeEvent", event)).startswith("event must be a JSON object")


@pytest.mark.parametrize("event", [{}, {"alarm": None}, {"clearAlarm": {"clearedAlarm": [{"id": 1}]}}])
def test_alarm_event_needs_event_alarm(event: dict) -> None:
    assert reason_for(envelope("AlarmStateChangeEvent", event)) == "event.alarm is required for AlarmStateChangeEvent"


@pytest.mark.parametrize("alarm", [[], "ALM-1", 5])
def test_event_alarm_must_be_an_object(alarm: object) -> None:
    assert reason_for(envelope("AlarmStateChangeEvent", {"alarm": alarm})).startswith("event.alarm must be a JSON object")


def test_envelope_extra_fields_are_ignored() -> None:
    doc = envelope(
        "AlarmCreateEvent",
        {"alarm": BARE_V5, "somethingElse": 1},
        correlationId="c-1",
        domain="fault",
        priority="1",
        timeOccurred="2026-11-22T10:00:00Z",
        timeOcurred="not even a time",  # v4's spelling; ignored as well
        title="t",
        description="d",
        href="https://x",
        id="event-object-id",
        reportingSystem={"id": "fm"},
        source={"id": "fm"},
    )
    assert only(parse(doc)).alarm_id == "ALM-77"


@pytest.mark.parametrize("event_time", ["2026-11-22T10:00:02", "soon", 1795341602])
def test_envelope_event_time_must_be_rfc3339(event_time: object) -> None:
    assert reason_for(envelope("AlarmDeleteEvent", {"alarm": {"id": 1}}, eventTime=event_time)).startswith("eventTime must")


def test_envelope_event_time_is_optional() -> None:
    doc = envelope("AlarmDeleteEvent", {"alarm": {"id": 1}})
    del doc["eventTime"]
    assert only(parse(doc)).event_time is None


# --------------------------------------------------------------------------- clears


@pytest.mark.parametrize(
    "alarm",
    [
        {"id": "A", "state": "cleared"},
        {"id": "A", "state": "CLEARED"},
        {"id": "A", "perceivedSeverity": "cleared"},
        {"id": "A", "perceivedSeverity": "Cleared"},
        {"id": "A", "alarmClearedTime": "2026-11-22T11:00:00Z"},
    ],
)
def test_clear_conditions_in_an_alarm(alarm: dict) -> None:
    for event_type in ("AlarmStateChangeEvent", "AlarmAttributeValueChangeEvent"):
        assert only(parse(envelope(event_type, {"alarm": alarm}))).clears is True


def test_cleared_time_is_kept() -> None:
    change = only(parse(envelope("AlarmStateChangeEvent", {"alarm": {"id": "A", "state": "cleared", "alarmClearedTime": "2026-11-22T11:00:00Z"}})))
    assert change.cleared_time == datetime(2026, 11, 22, 11, 0, tzinfo=timezone.utc)
    assert change.state == "cleared"


def test_bare_alarm_can_arrive_cleared() -> None:
    change = only(parse({**BARE_V5, "state": "cleared", "perceivedSeverity": "cleared"}))
    assert change.clears is True and change.full is True


def test_delete_event_clears() -> None:
    assert only(parse(envelope("AlarmDeleteEvent", {"alarm": {"id": "A"}}))).clears is True


@pytest.mark.parametrize(
    "alarm",
    [
        {"id": "A", "state": "updated"},
        {"id": "A", "state": "raised", "perceivedSeverity": "major"},
        {"id": "A", "alarmClearedTime": None},
        {"id": "A", "ackState": "acknowledged"},
    ],
)
def test_not_clearing(alarm: dict) -> None:
    assert only(parse(envelope("AlarmAttributeValueChangeEvent", {"alarm": alarm}))).clears is False


def test_clear_alarm_v5() -> None:
    event = {
        "clearAlarm": {
            "id": "task-1",
            "state": "done",
            "alarmClearedTime": "2026-11-22T11:00:00Z",
            "clearSystemId": "noc",
            "clearedAlarm": [{"id": "ALM-1", "@referredType": "Alarm", "href": "x"}, {"id": "ALM-2"}],
        }
    }
    notification = parse(envelope("ClearAlarmCreateEvent", event))
    assert notification.event_type == "ClearAlarmCreateEvent"
    assert [c.alarm_id for c in notification.changes] == ["ALM-1", "ALM-2"]
    for change in notification.changes:
        assert change.clears is True
        assert change.full is False
        assert change.event_type == "ClearAlarmCreateEvent"
        assert change.cleared_time == datetime(2026, 11, 22, 11, 0, tzinfo=timezone.utc)
        assert change.event_time == datetime(2026, 11, 22, 10, 0, 2, tzinfo=timezone.utc)


def test_clear_alarms_v4_integer_ids_and_duplicates() -> None:
    event = {"clearAlarms": {"clearedAlarm": [{"id": 1}, {"id": "2"}, {"id": 1}], "alarmPattern": [{"alarmType": "x"}]}}
    notification = parse(envelope("ClearAlarmsStateChangeEvent", event))
    assert [c.alarm_id for c in notification.changes] == ["1", "2"]
    assert all(c.clears and c.cleared_time is None for c in notification.changes)


def test_cleared_alarm_may_carry_its_own_cleared_time_and_resource() -> None:
    event = {
        "clearAlarm": {
            "alarmClearedTime": "2026-11-22T11:00:00Z",
            "clearedAlarm": [{"id": "A", "alarmClearedTime": "2026-11-22T10:59:00Z", "alarmedObject": {"id": "CELL-1"}}],
        }
    }
    change = only(parse(envelope("ClearAlarmStateChangeEvent", event)))
    assert change.cleared_time == datetime(2026, 11, 22, 10, 59, tzinfo=timezone.utc)
    assert change.resource_id == "CELL-1"


@pytest.mark.parametrize(("event_type", "key"), [("ClearAlarmCreateEvent", "clearAlarms"), ("ClearAlarmsCreateEvent", "clearAlarm")])
def test_clear_payload_under_the_other_versions_name(event_type: str, key: str) -> None:
    notification = parse(envelope(event_type, {key: {"clearedAlarm": [{"id": "A"}]}}))
    assert [c.alarm_id for c in notification.changes] == ["A"]


@pytest.mark.parametrize(("event_type", "key"), [("ClearAlarmCreateEvent", "clearAlarm"), ("ClearAlarmsCreateEvent", "clearAlarms")])
def test_clear_pattern_only_cannot_be_applied(event_type: str, key: str) -> None:
    event = {key: {"alarmPattern": [{"alarmType": "communicationsAlarm", "alarmedObject": {"id": "CELL-1"}}]}}
    reason = reason_for(envelope(event_type, event))
    assert reason.startswith(f"event.{key}.clearedAlarm names no alarm id, only an alarmPattern")
    assert "cannot be applied" in reason


@pytest.mark.parametrize("cleared", [None, []])
def test_clear_naming_nothing_cannot_be_applied(cleared: object) -> None:
    reason = reason_for(envelope("ClearAlarmCreateEvent", {"clearAlarm": {"clearedAlarm": cleared}}))
    assert reason.startswith("event.clearAlarm.clearedAlarm must name at least one cleared alarm by id")


def test_clear_event_without_payload() -> None:
    assert reason_for(envelope("ClearAlarmCreateEvent", {"alarm": {"id": 1}})) == "event.clearAlarm is required for ClearAlarmCreateEvent"
    assert reason_for(envelope("ClearAlarmsCreateEvent", {})) == "event.clearAlarms is required for ClearAlarmsCreateEvent"


def test_cleared_alarm_entry_without_id_is_named() -> None:
    reason = reason_for(envelope("ClearAlarmCreateEvent", {"clearAlarm": {"clearedAlarm": [{"id": "A"}, {"href": "x"}]}}))
    assert reason == "event.clearAlarm.clearedAlarm[1].id is required"


def test_clear_alarm_must_be_an_object() -> None:
    assert reason_for(envelope("ClearAlarmCreateEvent", {"clearAlarm": ["A"]})).startswith("event.clearAlarm must be a JSON object")


# --------------------------------------------------------------------------- fields


@pytest.mark.parametrize(("raw", "severity"), [("CRITICAL", "critical"), ("Major", "major"), ("mInOr", "minor"), ("WARNING", "warning"), ("Indeterminate", "indeterminate")])
def test_severity_is_case_insensitive(raw: str, severity: str) -> None:
    change = only(parse({**BARE_V5, "perceivedSeverity": raw}))
    assert change.severity is Severity(severity)


@pytest.mark.parametrize("raw", ["NORMAL", "high", "", 3])
def test_unknown_severity_is_named(raw: object) -> None:
    assert reason_for({**BARE_V5, "perceivedSeverity": raw}).startswith("perceivedSeverity must be one of critical, major")


@pytest.mark.parametrize(("raw", "state"), [("RAISED", "raised"), ("Updated", "updated"), ("cleared", "cleared")])
def test_state_is_case_insensitive(raw: str, state: str) -> None:
    assert only(parse({**BARE_V5, "state": raw})).state == state


@pytest.mark.parametrize("raw", ["ACTIVE", "closed", 1])
def test_unknown_state_is_named(raw: object) -> None:
    assert reason_for(envelope("AlarmStateChangeEvent", {"alarm": {"id": "A", "state": raw}})).startswith(
        "event.alarm.state must be one of raised, updated, cleared"
    )


@pytest.mark.parametrize(
    ("raw", "planned"),
    [("OutOfService", True), ("InService", False), ("OUT_OF_SERVICE", True), ("in-service", False), ("outofservice", True)],
)
def test_planned_outage_indicator(raw: str, planned: bool) -> None:
    assert only(parse({**BARE_V5, "plannedOutageIndicator": raw})).planned is planned


def test_planned_outage_indicator_absent_or_null() -> None:
    doc = {k: v for k, v in BARE_V5.items() if k != "plannedOutageIndicator"}
    assert only(parse(doc)).planned is None
    assert only(parse({**BARE_V5, "plannedOutageIndicator": None})).planned is None


def test_unknown_planned_outage_indicator_is_named() -> None:
    assert reason_for({**BARE_V5, "plannedOutageIndicator": "Maintenance"}).startswith(
        "plannedOutageIndicator must be InService or OutOfService"
    )


@pytest.mark.parametrize(("raw", "value"), [(False, False), (True, True), (None, None), ("false", False)])
def test_service_affecting(raw: object, value: bool | None) -> None:
    assert only(parse({**BARE_V5, "serviceAffecting": raw})).service_affecting is value


@pytest.mark.parametrize("field", ["serviceAffecting", "isRootCause"])
def test_booleans_that_are_not(field: str) -> None:
    assert reason_for({**BARE_V5, field: "perhaps"}).startswith(f"{field} must be a JSON boolean")


@pytest.mark.parametrize(
    ("alarmed_object", "alarmed_object_type", "resource_type"),
    [
        ({"id": "X", "@referredType": "Cell", "@type": "CellRef"}, "Site", "Cell"),
        ({"id": "X", "@type": "Cell"}, "Site", "Cell"),
        ({"id": "X", "@type": "AlarmedObjectRef"}, "Site", "Site"),
        ({"id": "X", "@referredType": ""}, "Site", "Site"),
        ({"id": "X"}, "Site", "Site"),
        ({"id": "X"}, None, None),
    ],
)
def test_resource_type(alarmed_object: dict, alarmed_object_type: str | None, resource_type: str | None) -> None:
    doc = {**BARE_V5, "alarmedObject": alarmed_object, "alarmedObjectType": alarmed_object_type}
    assert only(parse(doc)).resource_type == resource_type


def test_alarmed_object_id_must_not_be_empty() -> None:
    assert reason_for({**BARE_V5, "alarmedObject": {"id": ""}}).startswith("alarmedObject.id must not be empty")


def test_alarmed_object_must_be_an_object() -> None:
    assert reason_for({**BARE_V5, "alarmedObject": "CELL-1"}).startswith("alarmedObject must be a JSON object")


def test_related_alarms_from_parents_and_correlated() -> None:
    doc = {
        **BARE_V5,
        "parentAlarm": [{"id": "P1"}, {"id": ""}, {"href": "no id"}, {"id": None}],
        "correlatedAlarm": [{"id": 5}, {"id": "P1"}, {"id": "ALM-77"}],
    }
    assert only(parse(doc)).related_alarm_ids == ("P1", "5")


@pytest.mark.parametrize("field", ["parentAlarm", "correlatedAlarm"])
def test_related_alarms_must_be_a_list_of_references(field: str) -> None:
    assert reason_for({**BARE_V5, field: "P1"}).startswith(f"{field} must be a list")
    assert reason_for({**BARE_V5, field: ["P1"]}).startswith(f"{field}[0] must be")


@pytest.mark.parametrize("spelling", ["alarmType", "alarmtype", "AlarmType"])
def test_alarm_type_spellings(spelling: str) -> None:
    doc = {k: v for k, v in BARE_V5.items() if k != "alarmType"}
    doc[spelling] = "equipmentAlarm"
    assert only(parse(doc)).alarm_type == "equipmentAlarm"


def test_free_strings_accept_numbers() -> None:
    change = only(parse({**BARE_V5, "probableCause": 351, "specificProblem": 12.5, "alarmType": 1}))
    assert (change.probable_cause, change.specific_problem, change.alarm_type) == ("351", "12.5", "1")


@pytest.mark.parametrize("field", ["alarmRaisedTime", "alarmChangedTime", "alarmClearedTime"])
@pytest.mark.parametrize("value", ["2026-11-22T10:00:00", "2026-11-22", "1795341600", 1795341600, "later"])
def test_alarm_times_must_be_rfc3339(field: str, value: object) -> None:
    reason = reason_for({**BARE_V5, field: value})
    assert reason.startswith(f"{field} must be an RFC 3339 timestamp")


def test_unknown_alarm_fields_are_ignored() -> None:
    doc = {**BARE_V5, "vendorExtension": {"deep": [1, {"x": None}]}, "alarmDetails": "text", "place": [{"id": "p"}]}
    assert only(parse(doc)).alarm_id == "ALM-77"


def test_problems_are_joined_and_prefixed() -> None:
    alarm = {"id": "A", "perceivedSeverity": "bad", "state": "gone"}
    parts = reason_for(envelope("AlarmAttributeValueChangeEvent", {"alarm": alarm})).split("; ")
    assert [p.split(" ")[0] for p in parts] == ["event.alarm.perceivedSeverity", "event.alarm.state"]


# --------------------------------------------------------------------------- unreadable


@pytest.mark.parametrize(
    ("value", "start"),
    [
        (None, "value is empty"),
        (b"", "value is not valid JSON"),
        (b"<alarm/>", "value is not valid JSON"),
        (b"\xff", "value is not valid JSON"),
        (b"[]", "value must be a JSON object"),
        (b"null", "value must be a JSON object"),
        (b"42", "value must be a JSON object"),
    ],
)
def test_unreadable_values(value: bytes | None, start: str) -> None:
    assert reason_for(value).startswith(start)
