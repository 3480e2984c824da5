"""The alarm registry: TMF642 notifications merged by alarm id."""

from __future__ import annotations

import copy

import orjson
import pytest

from cxstream.domain.alarms import CLEARED_RETENTION_S, AlarmRegistry
from cxstream.models.alarm import parse_fault
from cxstream.models.common import format_time, parse_time
from cxstream.models.rejection import InvalidRecord

T0 = parse_time("2026-11-22T10:00:00Z")
HOUR = 3600.0


def full_alarm(alarm_id: str = "ALM-1", resource: str = "CELL-1", severity: str = "major",
               t: float = T0, **extra) -> dict:
    alarm = {"id": alarm_id, "alarmedObject": {"id": resource, "@referredType": "Cell"},
             "perceivedSeverity": severity, "alarmRaisedTime": format_time(t), "state": "raised",
             "alarmType": "communicationsAlarm", "probableCause": "lossOfSignal"}
    alarm.update(extra)
    return alarm


def envelope(event_type: str, t: float | None = None, **event) -> bytes:
    doc = {"eventId": f"ev-{event_type}-{t}", "eventType": event_type, "event": event}
    if t is not None:
        doc["eventTime"] = format_time(t)
    return orjson.dumps(doc)


def create(alarm_id="ALM-1", resource="CELL-1", severity="major", t=T0, **extra) -> bytes:
    return envelope("AlarmCreateEvent", t, alarm=full_alarm(alarm_id, resource, severity, t, **extra))


def change(event_type: str, t: float, **alarm) -> bytes:
    return envelope(event_type, t, alarm=alarm)


def apply(registry: AlarmRegistry, value: bytes, fallback: float = T0):
    return registry.apply(parse_fault(value), fallback)


@pytest.fixture
def registry() -> AlarmRegistry:
    return AlarmRegistry()


# --------------------------------------------------------------------------- create and merge


def test_create_registers_an_impacting_alarm(registry) -> None:
    [(alarm, touched, when)] = apply(registry, create(t=T0 + 5))
    assert alarm is registry.get("ALM-1")
    assert (alarm.resource_id, alarm.severity, alarm.raised_at, alarm.cleared_at) == ("CELL-1", "major", T0 + 5, None)
    assert (alarm.resource_type, alarm.alarm_type, alarm.probable_cause) == ("Cell", "communicationsAlarm",
                                                                           "lossOfSignal")
    assert alarm.active and alarm.impacting and alarm.service_affecting and not alarm.planned
    assert touched == {"CELL-1"} and when == T0 + 5
    assert registry.impacting_on("CELL-1") == {"ALM-1"}
    assert registry.impacting_on("CELL-2") == set()
    assert registry.active_count == 1 and registry.latest_time == T0 + 5


def test_a_bare_alarm_is_a_create(registry) -> None:
    apply(registry, orjson.dumps(full_alarm("7", "SITE-3", "CRITICAL")))
    assert registry.get("7").severity == "critical"
    assert registry.impacting_on("SITE-3") == {"7"}


def test_an_integer_id_and_its_string_are_one_alarm(registry) -> None:
    apply(registry, create(alarm_id=42))
    apply(registry, change("AlarmStateChangeEvent", T0 + 60, id="42", state="cleared"))
    assert not registry.get("42").active


def test_partial_notifications_merge_into_the_known_alarm(registry) -> None:
    apply(registry, create(t=T0))
    [(alarm, touched, when)] = apply(registry, change("AlarmAttributeValueChangeEvent", T0 + 60, id="ALM-1",
                                                      perceivedSeverity="critical", specificProblem="fibre cut",
                                                      alarmChangedTime=format_time(T0 + 30)))
    assert alarm.severity == "critical" and alarm.specific_problem == "fibre cut"
    # what the partial did not carry is kept
    assert (alarm.resource_id, alarm.raised_at, alarm.probable_cause) == ("CELL-1", T0, "lossOfSignal")
    assert alarm.active and touched == {"CELL-1"}
    assert when == T0 + 30  # the alarm's own change time before the envelope's
    assert alarm.changed_at == T0 + 30


def test_a_partial_that_moves_the_alarm_touches_both_resources(registry) -> None:
    apply(registry, create())
    [(alarm, touched, _)] = apply(registry, change("AlarmAttributeValueChangeEvent", T0 + 60, id="ALM-1",
                                                   alarmedObject={"id": "CELL-2"}))
    assert touched == {"CELL-1", "CELL-2"}
    assert registry.impacting_on("CELL-1") == set() and registry.impacting_on("CELL-2") == {"ALM-1"}


def test_correlated_and_parent_alarms_are_kept(registry) -> None:
    apply(registry, create("ALM-2", "SITE-1", correlatedAlarm=[{"id": "ALM-1"}], parentAlarm=[{"id": "ALM-0"}]))
    apply(registry, change("AlarmAttributeValueChangeEvent", T0 + 1, id="ALM-2", correlatedAlarm=[{"id": "ALM-9"}]))
    assert registry.get("ALM-2").related == ("ALM-0", "ALM-1", "ALM-9")


def test_planned_work_flag(registry) -> None:
    apply(registry, create(plannedOutageIndicator="OutOfService"))
    assert registry.get("ALM-1").planned
    apply(registry, change("AlarmAttributeValueChangeEvent", T0 + 1, id="ALM-1", plannedOutageIndicator="InService"))
    assert not registry.get("ALM-1").planned


# --------------------------------------------------------------------------- clears


@pytest.mark.parametrize(
    ("label", "value", "cleared_at"),
    [
        ("state cleared", change("AlarmStateChangeEvent", T0 + 600, id="ALM-1", state="cleared"), T0 + 600),
        ("severity cleared", change("AlarmAttributeValueChangeEvent", T0 + 600, id="ALM-1",
                                    perceivedSeverity="cleared"), T0 + 600),
        ("alarmClearedTime", change("AlarmAttributeValueChangeEvent", T0 + 900, id="ALM-1",
                                    alarmClearedTime=format_time(T0 + 600)), T0 + 600),
        ("delete", change("AlarmDeleteEvent", T0 + 600, id="ALM-1"), T0 + 600),
        ("v4 clear-alarms", envelope("ClearAlarmsCreateEvent", T0 + 600,
                                     clearAlarms={"clearedAlarm": [{"id": "ALM-1"}]}), T0 + 600),
        ("v5 clear-alarm", envelope("ClearAlarmCreateEvent", T0 + 900,
                                    clearAlarm={"alarmClearedTime": format_time(T0 + 600),
                                                "clearedAlarm": [{"id": "ALM-1"}]}), T0 + 600),
        ("bare alarm with state cleared", orjson.dumps(full_alarm(state="cleared")), T0 + 600),
    ],
)
def test_each_clear_condition_clears(registry, label, value, cleared_at) -> None:
    apply(registry, create(t=T0))
    [(alarm, touched, _)] = apply(registry, value, fallback=T0 + 600)
    assert not alarm.active and not alarm.impacting, label
    assert alarm.cleared_at == cleared_at, label
    assert touched == {"CELL-1"}
    assert registry.impacting_on("CELL-1") == set()
    assert registry.active_count == 0
    assert registry.get("ALM-1") is alarm  # kept for a while after its clear
    assert alarm.severity == "major"  # "cleared" is not a severity the alarm keeps


def test_clear_alarms_naming_several_ids(registry) -> None:
    for i, resource in enumerate(["CELL-1", "CELL-2", "SITE-1"]):
        apply(registry, create(f"ALM-{i}", resource))
    results = apply(registry, envelope("ClearAlarmsStateChangeEvent", T0 + 60,
                                       clearAlarms={"clearedAlarm": [{"id": "ALM-0"}, {"id": "ALM-2"},
                                                                     {"id": "never-seen"}]}))
    assert sorted(alarm.alarm_id for alarm, _, _ in results) == ["ALM-0", "ALM-2"]
    assert not registry.get("ALM-0").active and not registry.get("ALM-2").active
    assert registry.get("ALM-1").active
    assert registry.impacting_on("CELL-2") == {"ALM-1"} and registry.impacting_on("SITE-1") == set()


def test_a_clear_for_an_alarm_never_seen_is_no_error_and_no_change(registry) -> None:
    assert apply(registry, change("AlarmStateChangeEvent", T0, id="ghost", state="cleared")) == []
    assert registry.alarms == {}


def test_a_second_clear_keeps_the_first_clear_time(registry) -> None:
    apply(registry, create())
    apply(registry, change("AlarmStateChangeEvent", T0 + 60, id="ALM-1", state="cleared"))
    apply(registry, change("AlarmDeleteEvent", T0 + 120, id="ALM-1"))
    assert registry.get("ALM-1").cleared_at == T0 + 60


def test_the_envelope_time_then_the_fallback_time(registry) -> None:
    apply(registry, create(t=T0))
    apply(registry, envelope("AlarmStateChangeEvent", None, alarm={"id": "ALM-1", "state": "cleared"}),
          fallback=T0 + 77)
    assert registry.get("ALM-1").cleared_at == T0 + 77


# --------------------------------------------------------------------------- service affecting


def test_not_service_affecting_impacts_nobody(registry) -> None:
    apply(registry, create(serviceAffecting=False))
    alarm = registry.get("ALM-1")
    assert alarm.active and not alarm.impacting
    assert registry.impacting_on("CELL-1") == set()
    apply(registry, change("AlarmAttributeValueChangeEvent", T0 + 1, id="ALM-1", serviceAffecting=True))
    assert registry.impacting_on("CELL-1") == {"ALM-1"}
    apply(registry, change("AlarmAttributeValueChangeEvent", T0 + 2, id="ALM-1", serviceAffecting=False))
    assert registry.impacting_on("CELL-1") == set() and registry.get("ALM-1").active


# --------------------------------------------------------------------------- partials that cannot be placed


@pytest.mark.parametrize("event_type", ["AlarmAttributeValueChangeEvent", "AlarmStateChangeEvent"])
def test_a_partial_for_an_unknown_alarm_without_resource_is_rejected(registry, event_type) -> None:
    apply(registry, create("ALM-1", t=T0))
    before = copy.deepcopy((registry.alarms, registry.impacting_by_resource, registry.latest_time))
    notification = parse_fault(change(event_type, T0 + 3600, id="ALM-2", perceivedSeverity="critical"))
    reason = registry.check(notification)
    assert reason is not None and "'ALM-2'" in reason and "alarmedObject.id" in reason
    with pytest.raises(InvalidRecord) as caught:
        registry.apply(notification, T0 + 3600)
    assert caught.value.reason == reason
    assert (registry.alarms, registry.impacting_by_resource, registry.latest_time) == before


def test_a_partial_for_an_unknown_alarm_with_its_resource_is_placed(registry) -> None:
    apply(registry, change("AlarmAttributeValueChangeEvent", T0 + 10, id="ALM-5", alarmedObject={"id": "OLT-3"},
                           perceivedSeverity="minor"))
    alarm = registry.get("ALM-5")
    assert (alarm.resource_id, alarm.severity, alarm.raised_at) == ("OLT-3", "minor", T0 + 10)
    assert registry.impacting_on("OLT-3") == {"ALM-5"}


# --------------------------------------------------------------------------- raised again


def test_re_raise_after_a_clear_with_a_create(registry) -> None:
    apply(registry, create(t=T0))
    apply(registry, change("AlarmStateChangeEvent", T0 + HOUR, id="ALM-1", state="cleared"))
    [(alarm, _, _)] = apply(registry, create(t=T0 + 5 * HOUR, severity="critical"))
    assert alarm.active and alarm.cleared_at is None
    assert alarm.raised_at == T0 + 5 * HOUR and alarm.severity == "critical"
    assert registry.impacting_on("CELL-1") == {"ALM-1"}


def test_re_raise_after_a_clear_with_a_state_change(registry) -> None:
    apply(registry, create(t=T0))
    apply(registry, change("AlarmStateChangeEvent", T0 + HOUR, id="ALM-1", state="cleared"))
    [(alarm, _, _)] = apply(registry, change("AlarmStateChangeEvent", T0 + 5 * HOUR, id="ALM-1", state="raised"))
    assert alarm.active and registry.impacting_on("CELL-1") == {"ALM-1"}
    # a new fault on the same id: it was raised again now, not at the first raise
    assert alarm.raised_at == T0 + 5 * HOUR


def test_a_repeated_create_of_an_active_alarm_keeps_its_raise_time(registry) -> None:
    apply(registry, create(t=T0))
    apply(registry, create(t=T0 + 60))
    alarm = registry.get("ALM-1")
    assert alarm.raised_at == T0 and alarm.active


# --------------------------------------------------------------------------- prune


def test_prune_forgets_alarms_cleared_long_ago(registry) -> None:
    apply(registry, create("OLD", "CELL-1", t=T0))
    apply(registry, change("AlarmStateChangeEvent", T0 + HOUR, id="OLD", state="cleared"))
    apply(registry, create("RECENT", "CELL-2", t=T0))
    apply(registry, create("ACTIVE", "CELL-3", t=T0))
    later = T0 + HOUR + CLEARED_RETENTION_S + 60
    apply(registry, change("AlarmStateChangeEvent", later - 60, id="RECENT", state="cleared"))
    apply(registry, create("NEW", "CELL-4", t=later))
    assert registry.latest_time == later
    assert registry.prune() == 1
    assert set(registry.alarms) == {"RECENT", "ACTIVE", "NEW"}
    assert registry.prune() == 0
    # an explicit "now" far ahead forgets every cleared alarm, never an active one
    assert registry.prune(later + 2 * CLEARED_RETENTION_S) == 1
    assert set(registry.alarms) == {"ACTIVE", "NEW"}
