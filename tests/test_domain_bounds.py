"""Contract v2 in the engine: bounds on input (size, times ahead of the worker's
clock), on growth (alarms per resource and per episode, alarms left active,
erased ids), failure isolation per record, and erasure that holds.

The worker's clock is injected (``Engine(clock=...)``), so nothing here depends
on when the tests run.
"""

from __future__ import annotations

import logging

import orjson
import pytest

from cxstream.domain.alarms import CLEARED_RETENTION_S, AlarmRegistry
from cxstream.domain.customer import CustomerState, erased_marker, is_erased_marker, read_erased_marker
from cxstream.domain.engine import Engine
from cxstream.domain.limits import Limits
from cxstream.models.common import format_time

from test_domain_engine import DAY, HOUR, MIN, T0, H, fired, test_rules  # noqa: E402

NOW = T0 + HOUR  # the worker's wall clock in these tests


class B(H):
    """The engine harness, with bounds and a clock of the test's own."""

    def __init__(self, limits: Limits = Limits(), now: float = NOW, live: bool = True):
        super().__init__(live=False)
        self.now = now
        self.engine = Engine(test_rules(), limits=limits, clock=lambda: self.now)
        if live:
            self.engine.go_live()

    def tombstone(self, cid: str, t: float, partition: int = 0) -> None:
        self.engine.process([self.record("customers", cid, None, t, partition=partition)])


def padded(doc: dict, size: int) -> bytes:
    """``doc`` as JSON of exactly ``size`` bytes (an unknown field carries the padding)."""
    raw = orjson.dumps({**doc, "padding": ""})
    return orjson.dumps({**doc, "padding": "x" * (size - len(raw))})


# =========================================================================== limits


def test_the_limits_default_to_the_contract() -> None:
    limits = Limits()
    assert (limits.max_future_s, limits.max_record_bytes, limits.alarm_max_age_s, limits.erased_retention_s) == (
        900.0, 262144, 7 * DAY, 30 * DAY)
    assert (limits.max_alarms_per_resource, limits.max_episode_alarms, limits.max_erased) == (100, 100, 1_000_000)
    with pytest.raises(ValueError, match="max_record_bytes"):
        Limits(max_record_bytes=0)
    with pytest.raises(AttributeError):
        limits.max_future_s = 1.0  # frozen


# =========================================================================== size


def test_a_record_larger_than_the_limit_is_rejected_with_its_size() -> None:
    h = B()
    doc = {"event_id": "q-1", "customer_id": "C1", "event_time": format_time(T0), "service": "voice",
           "metrics": {"call_dropped": True}}
    big = h.record("quality", "C1", padded(doc, 300_000), T0)
    fits = h.record("quality", "C1", padded({**doc, "event_id": "q-2"}, 262_144), T0)
    customer = h.record("customers", "C2", padded({"customer_id": "C2"}, 262_145), T0)
    h.engine.process([big, fits, customer])
    _, rejections, tally = h.drain()
    assert [(r.record, r.reason) for r in rejections] == [
        (big, "value is 300000 bytes, more than the limit of 262144 (CXSTREAM_MAX_RECORD_BYTES)"),
        (customer, "value is 262145 bytes, more than the limit of 262144 (CXSTREAM_MAX_RECORD_BYTES)")]
    assert tally.events == {("quality", "invalid"): 1, ("customers", "invalid"): 1, ("quality", "ok"): 1}
    assert set(h.engine.customers) == {"C1"}
    alarm = {"id": "ALM-1", "alarmedObject": {"id": "CELL-1"}, "perceivedSeverity": "major",
             "alarmRaisedTime": format_time(T0)}
    reason = h.engine.apply_fault(h.record("faults", "ALM-1", padded(alarm, 262_145), T0))
    assert reason == "value is 262145 bytes, more than the limit of 262144 (CXSTREAM_MAX_RECORD_BYTES)"
    assert h.engine.alarms.alarms == {}


def test_the_size_limit_is_configurable_and_applies_to_the_hot_path_too() -> None:
    h = B(Limits(max_record_bytes=300))
    record = h.quality_record("C1", T0)
    record.value = padded(orjson.loads(record.value), 301)
    h.engine.process_fetch("quality", "cx.quality", 0, [_Fetched(record)])
    [rejection] = h.drain()[1]
    assert rejection.reason.startswith("value is 301 bytes, more than the limit of 300")
    assert rejection.record.offset == record.offset and rejection.record.topic == "cx.quality"


class _Fetched:
    """A fetched Kafka record as process_fetch sees it (timestamp in ms)."""

    def __init__(self, record):
        self.key, self.value, self.offset, self.timestamp = record.key, record.value, record.offset, \
            record.timestamp * 1000


# =========================================================================== times ahead of the clock


def test_a_quality_record_far_in_the_future_is_rejected_and_moves_no_clock() -> None:
    h = B()
    h.customer("C1", ["CELL-1"])
    future = h.quality_record("C1", T0 + 4 * 365 * DAY, call_dropped=True)
    h.engine.process([future])
    [rejection] = h.drain()[1]
    assert rejection.record is future
    assert rejection.reason == (f"event_time {format_time(T0 + 4 * 365 * DAY)} is in the future "
                                "(more than 900 s ahead of this worker's clock)")
    state = h.state("C1")
    assert state.quality_clock == 0.0 and state.clock == T0 and state.penalties == {}
    # the real records after it are not late
    h.quality("C1", T0 + MIN, call_dropped=True)
    _, rejections, tally = h.drain()
    assert rejections == [] and tally.events == {("quality", "ok"): 1}


def test_up_to_max_future_s_ahead_is_accepted_and_the_bound_is_configurable() -> None:
    h = B()
    h.quality("C1", NOW + 900)
    h.quality("C2", NOW + 901)
    _, rejections, tally = h.drain()
    assert [r.reason.split()[0] for r in rejections] == ["event_time"] and set(h.engine.customers) == {"C1"}
    tight = B(Limits(max_future_s=60))
    tight.quality("C1", NOW + 61)
    [rejection] = tight.drain()[1]
    assert "more than 60 s ahead of this worker's clock" in rejection.reason


def test_a_customer_record_updated_in_the_future_is_rejected() -> None:
    h = B()
    h.customer("C1", ["CELL-1"], t=T0)
    h.customer("C1", ["CELL-2"], t=T0 + 10 * DAY)
    [rejection] = h.drain()[1]
    assert rejection.reason.startswith(f"updated_at {format_time(T0 + 10 * DAY)} is in the future")
    assert h.state("C1").resources == ("CELL-1",) and h.state("C1").clock == T0


def test_a_broker_timestamp_in_the_future_moves_no_clock_past_the_bound() -> None:
    h = B()
    record = h.record("customers", "C1", {"customer_id": "C1", "resources": ["CELL-1"]}, T0 + 100 * DAY)
    h.engine.process([record])  # no updated_at: the Kafka timestamp stands in, bounded
    assert h.state("C1").clock == NOW + 900


@pytest.mark.parametrize("field", ["alarmRaisedTime", "alarmChangedTime", "alarmClearedTime", "eventTime"])
def test_an_alarm_with_a_time_in_the_future_is_rejected(field) -> None:
    h = B()
    h.customer("C1", ["CELL-1"])
    record = h.alarm_record("ALM-1", "CELL-1", T0)
    doc = orjson.loads(record.value)
    target = doc if field == "eventTime" else doc["event"]["alarm"]
    target[field] = "2030-01-01T00:00:00Z"
    record.value = orjson.dumps(doc)
    reason = h.engine.apply_fault(record)
    assert reason == (f"alarm 'ALM-1': {field} 2030-01-01T00:00:00Z is in the future "
                      "(more than 900 s ahead of this worker's clock)")
    assert h.engine.alarms.alarms == {} and h.engine.alarms.latest_time == 0.0 and h.firings() == []


def test_a_far_future_alarm_does_not_make_the_registry_forget_cleared_alarms() -> None:
    h = B(now=T0 + 2 * HOUR)
    h.raise_("OLD", "CELL-1", T0)
    h.clear("OLD", T0 + HOUR)
    assert h.engine.apply_fault(h.alarm_record("FUTURE", "CELL-2", T0 + 400 * DAY)) is not None
    h.engine.prune_alarms()
    assert set(h.engine.alarms.alarms) == {"OLD"}
    # and even a registry whose clock was moved (as before v2): prune never looks past the worker's clock
    h.engine.alarms.latest_time = T0 + 400 * DAY
    h.engine.prune_alarms()
    assert set(h.engine.alarms.alarms) == {"OLD"}
    h.now = T0 + HOUR + CLEARED_RETENTION_S + 1000
    h.engine.prune_alarms()
    assert h.engine.alarms.alarms == {}


# =========================================================================== failure isolation


def _raise_for(engine: Engine, customer_id: str, exc: Exception, step: str = "_selects"):
    """Make one step of the engine (by default its rule selection, as a bug in a
    rule might) raise for one customer."""
    original = getattr(engine, step)

    def broken(*args):
        if any(isinstance(a, CustomerState) and a.customer_id == customer_id for a in args):
            raise exc
        return original(*args)

    setattr(engine, step, broken)


def test_an_exception_while_applying_one_record_rejects_that_record_and_the_next_is_applied(caplog) -> None:
    h = B()
    _raise_for(h.engine, "BAD", ZeroDivisionError("division by zero " + "x" * 500), "_rescore")
    bad = h.quality_record("BAD", T0, call_dropped=True)
    good = h.quality_record("GOOD", T0, call_dropped=True)
    bad_again = h.quality_record("BAD", T0 + MIN, call_dropped=True)
    with caplog.at_level(logging.WARNING, logger="cxstream.domain.engine"):
        h.engine.process([bad, good, bad_again])
        h.engine.process_fetch("quality", "cx.quality", 0, [_Fetched(h.quality_record("BAD", T0 + 2 * MIN))])
    _, rejections, tally = h.drain()
    assert [r.record.offset for r in rejections][:2] == [bad.offset, bad_again.offset]
    reason = rejections[0].reason
    assert reason.startswith("could not be processed: ZeroDivisionError: division by zero xxx")
    assert len(reason) < 260 and reason.endswith("…")
    assert tally.events[("quality", "invalid")] == 3 and tally.events[("quality", "ok")] == 1
    assert tally.errors == {"quality": 3}
    assert h.state("GOOD").penalties == {"voice.call_dropped": 25.0}
    # logged at warning each time, with the traceback the first time only
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 3 and warnings[0].exc_info is not None
    assert [r.exc_info for r in warnings[1:]] == [None, None]


def test_an_exception_for_one_customer_record_rejects_it_and_processing_goes_on() -> None:
    h = B()
    h.raise_("ALM-1", "CELL-1", T0)
    _raise_for(h.engine, "BAD", KeyError("boom"))
    bad, good = h.customer_record("BAD", ["CELL-1"]), h.customer_record("GOOD", ["CELL-1"])
    h.engine.process([bad, good])
    firings, rejections, _ = h.drain()
    assert [(r.record, r.reason) for r in rejections] == [(bad, "could not be processed: KeyError: 'boom'")]
    assert fired(firings) == [("outage_notice", "GOOD")]


def test_an_exception_for_one_customer_of_an_alarm_still_reconciles_the_others() -> None:
    h = B()
    for cid in ("A", "BAD", "C"):
        h.customer(cid, ["CELL-1"])
    _raise_for(h.engine, "BAD", RuntimeError("rule broke"))
    reason = h.engine.apply_fault(h.alarm_record("ALM-1", "CELL-1", T0))
    assert reason == "customer 'BAD' could not be processed: RuntimeError: rule broke"
    firings, _, tally = h.drain()
    assert fired(firings) == [("outage_notice", "A"), ("outage_notice", "C")]
    assert tally.errors == {"reconcile": 1}
    # the alarm is applied; the next alarm is too
    assert h.engine.alarms.get("ALM-1").active
    assert h.engine.apply_fault(h.clear_record("ALM-1", T0 + HOUR)) is not None  # BAD still fails
    assert fired(h.firings()) == [("service_restored", "A"), ("service_restored", "C")]


def test_an_exception_inside_the_registry_is_the_alarms_rejection(monkeypatch) -> None:
    h = B()

    def broken(self, notification, fallback):
        raise TypeError("registry bug")

    monkeypatch.setattr(AlarmRegistry, "apply", broken)
    assert h.engine.apply_fault(h.alarm_record("ALM-1", "CELL-1", T0)) == (
        "could not be processed: TypeError: registry bug")


# =========================================================================== alarms per resource


def test_at_most_max_alarms_per_resource_impacting_alarms_on_one_resource() -> None:
    h = B()
    h.customer("C1", ["CELL-1"])
    for n in range(100):
        h.raise_(f"ALM-{n}", "CELL-1", T0 + n)
    latest = h.engine.alarms.latest_time
    reason = h.engine.apply_fault(h.alarm_record("ALM-100", "CELL-1", T0 + 200))
    assert reason == ("alarmedObject.id 'CELL-1' already has 100 active service-affecting alarms, the most "
                      "cxstream keeps for one resource: alarm 'ALM-100' is not applied (clear some of them first)")
    assert "ALM-100" not in h.engine.alarms.alarms and h.engine.alarms.latest_time == latest
    assert len(h.state("C1").impacts) == 100
    # updates of alarms already there still apply; not service-affecting ones do not count
    assert h.fault(T0 + 300, "AlarmAttributeValueChangeEvent", id="ALM-5", perceivedSeverity="minor") is None
    h.raise_("INFO", "CELL-1", T0 + 300, serviceAffecting=False)
    # a clear makes room
    h.clear("ALM-0", T0 + 400)
    h.raise_("ALM-100", "CELL-1", T0 + 500)
    assert len(h.engine.alarms.impacting_on("CELL-1")) == 100


def test_an_alarm_moved_onto_a_full_resource_is_refused_and_stays_where_it_was() -> None:
    h = B(Limits(max_alarms_per_resource=2))
    h.raise_("A", "CELL-1", T0)
    h.raise_("B", "CELL-1", T0)
    h.raise_("C", "CELL-2", T0, "major")
    reason = h.fault(T0 + MIN, "AlarmAttributeValueChangeEvent", id="C", alarmedObject={"id": "CELL-1"},
                     perceivedSeverity="critical")
    assert reason is not None and "'CELL-1' already has 2" in reason
    alarm = h.engine.alarms.get("C")
    assert (alarm.resource_id, alarm.severity, alarm.changed_at) == ("CELL-2", "major", T0)
    assert h.engine.alarms.impacting_on("CELL-2") == {"C"} and h.engine.alarms.impacting_on("CELL-1") == {"A", "B"}


# =========================================================================== alarms left active


def test_an_alarm_active_longer_than_the_max_age_expires_like_a_clear_without_a_credit() -> None:
    h = B(Limits(alarm_max_age_s=DAY), now=T0 + 3 * DAY)
    h.customer("C1", ["CELL-1"])
    h.raise_("STUCK", "CELL-1", T0)
    assert fired(h.firings()) == [("outage_notice", "C1")]
    h.engine.prune_alarms()
    assert h.engine.alarms.get("STUCK").active  # the registry's clock is still at T0
    h.raise_("OTHER", "CELL-9", T0 + DAY + MIN)  # event time moves on
    h.engine.alarm_changes.clear()
    h.engine.prune_alarms()
    alarm = h.engine.alarms.get("STUCK")
    assert alarm.expired and alarm.cleared_at == T0 + DAY and not h.engine.alarms.impacting_on("CELL-1")
    assert h.engine.alarms.expired_total == 1 and h.engine.alarm_changes == {"STUCK"}
    firings, _, tally = h.drain()
    assert fired(firings) == [("service_restored", "C1")] and firings[0].time == T0 + DAY
    assert tally.limits == {"alarms_expired": 1}  # (no service_credit: the outage was never seen to end)
    assert h.state("C1").impacts == {} and h.state("C1").episode is None
    # the fault manager re-sending the same alarm does not raise it again; a new raise does
    h.raise_("STUCK", "CELL-1", T0)
    assert h.engine.alarms.get("STUCK").expired and h.firings() == []
    h.raise_("STUCK", "CELL-1", T0 + DAY + 2 * MIN)
    assert h.engine.alarms.get("STUCK").active and fired(h.firings()) == [("outage_notice", "C1")]


def test_expiry_never_runs_ahead_of_the_wall_clock() -> None:
    h = B(Limits(alarm_max_age_s=DAY), now=T0 + HOUR)
    h.raise_("A", "CELL-1", T0)
    h.engine.alarms.latest_time = T0 + 10 * DAY  # as one far-future record would have moved it
    h.engine.prune_alarms()
    assert h.engine.alarms.get("A").active and h.engine.alarms.expired_total == 0


def test_an_alarm_raised_longer_ago_than_the_max_age_is_expired_at_once() -> None:
    h = B(Limits(alarm_max_age_s=DAY), now=T0 + 10 * DAY)
    h.customer("C1", ["CELL-1"])
    h.raise_("NEW", "CELL-2", T0 + 5 * DAY)
    h.raise_("ANCIENT", "CELL-1", T0)
    firings, _, tally = h.drain()
    assert firings == [] and h.engine.alarms.get("ANCIENT").expired and tally.limits == {"alarms_expired": 1}


def test_an_alarm_expired_by_a_clock_ahead_of_it_keeps_its_own_earlier_clear() -> None:
    # reading the faults topic from the beginning: another partition is days ahead
    h = B(Limits(alarm_max_age_s=DAY), now=T0 + 10 * DAY, live=False)
    h.raise_("AHEAD", "CELL-9", T0 + 5 * DAY)
    h.raise_("BEHIND", "CELL-1", T0)
    assert h.engine.alarms.get("BEHIND").expired
    h.clear("BEHIND", T0 + HOUR)
    alarm = h.engine.alarms.get("BEHIND")
    assert not alarm.expired and alarm.cleared_at == T0 + HOUR
    h.clear("AHEAD", T0 + 5 * DAY + HOUR)
    h.raise_("LATE", "CELL-2", T0 + 3 * DAY)
    h.clear("LATE", T0 + 9 * DAY)  # a clear after the expiry: the alarm stays expired at raise + max age
    alarm = h.engine.alarms.get("LATE")
    assert alarm.expired and alarm.cleared_at == T0 + 4 * DAY


# =========================================================================== episodes


def test_an_episode_lists_at_most_max_episode_alarms_the_rest_still_count() -> None:
    h = B(Limits(max_episode_alarms=3), now=T0 + DAY)
    resources = [f"CELL-{n}" for n in range(5)]
    h.customer("C1", resources)
    for n, resource in enumerate(resources):
        h.raise_(f"ALM-{n}", resource, T0 + n, "minor")
    state = h.state("C1")
    assert state.episode["alarms"] == ["ALM-0", "ALM-1", "ALM-2"] and len(state.impacts) == 5
    assert set(state.fault_levels) == set(resources)
    assert h.drain()[2].limits == {"episode_alarms": 2}
    for n in range(5):
        h.clear(f"ALM-{n}", T0 + 5 * HOUR)
    [credit] = h.firings()
    assert credit.rule.id == "service_credit" and credit.faults == ["ALM-0", "ALM-1", "ALM-2"]


# =========================================================================== erasure that holds


def test_a_quality_record_after_a_tombstone_in_the_same_flush_keeps_the_erasure() -> None:
    h = B()
    h.customer("C1", ["CELL-1"])
    h.quality("C1", T0 + MIN, call_dropped=True)
    h.engine.take_dirty()
    h.drain()
    h.tombstone("C1", T0 + 2 * MIN, partition=3)
    h.quality("C1", T0 + 3 * MIN, call_dropped=True)
    _, _, tally = h.drain()
    assert tally.events == {("customers", "ok"): 1, ("quality", "erased"): 1}
    assert "C1" not in h.engine.customers
    dirty, erased = h.engine.take_dirty_ids()
    assert dirty == [] and erased == {"C1": 0}
    marker = h.engine.erased_marker("C1")
    assert is_erased_marker(marker) and read_erased_marker(marker) == (0, T0 + 2 * MIN)
    assert orjson.loads(marker) == ["erased", 0, T0 + 2 * MIN]


def test_an_unkeyed_quality_record_for_an_erased_id_is_dropped_where_it_lands() -> None:
    h = B()
    h.tombstone("C9", T0)
    unkeyed = h.record("quality", None, orjson.loads(h.quality_record("C9", T0 + MIN).value), T0 + MIN)
    h.engine.process([unkeyed])
    [(cid, forwarded)] = h.engine.take_forwards()
    forwarded.placed = True
    h.engine.process([forwarded])
    assert h.drain()[2].events[("quality", "erased")] == 1 and "C9" not in h.engine.customers


def test_erasure_survives_a_restart_through_its_marker() -> None:
    first = B()
    first.customer("C1", ["CELL-1"])
    first.customer("C2", ["CELL-1"])
    first.tombstone("C1", T0 + MIN)
    dirty, erased = first.engine.take_dirty()
    changelog = {s.customer_id: s.dump() for s in dirty}
    changelog.update({cid: first.engine.erased_marker(cid) for cid in erased})
    # a new worker restores the table: customers and erased markers
    second = B(live=False)
    for cid, raw in changelog.items():
        if is_erased_marker(raw):
            second.engine.adopt_erased(cid, *read_erased_marker(raw))
        else:
            second.engine.adopt(CustomerState.load(raw), raw)
    second.engine.go_live()
    assert second.engine.is_erased("C1") and set(second.engine.customers) == {"C2"}
    second.quality("C1", T0 + 2 * MIN, call_dropped=True)
    assert second.drain()[2].events == {("quality", "erased"): 1} and "C1" not in second.engine.customers
    with pytest.raises(ValueError, match="erased marker"):
        CustomerState.load(changelog["C1"])


def test_a_customer_record_registers_an_erased_id_afresh() -> None:
    h = B()
    h.tombstone("C1", T0)
    h.customer("C1", ["CELL-1"], t=T0 + MIN)
    assert not h.engine.is_erased("C1") and h.state("C1").profile
    dirty, erased = h.engine.take_dirty()
    assert [s.customer_id for s in dirty] == ["C1"] and erased == {}
    assert h.engine.erased_marker("C1") is None
    h.quality("C1", T0 + 2 * MIN)
    assert h.drain()[2].events[("quality", "ok")] == 1
    # and it can be erased again
    h.tombstone("C1", T0 + 3 * MIN)
    h.quality("C1", T0 + 4 * MIN)
    assert h.drain()[2].events[("quality", "erased")] == 1


def test_an_erased_id_is_remembered_for_the_retention_then_a_real_null_is_asked_for() -> None:
    h = B(Limits(erased_retention_s=DAY), now=T0 + 10 * DAY)
    h.tombstone("C1", T0)
    h.tombstone("C2", T0 + DAY / 2)
    h.engine.take_dirty()
    h.quality("C3", T0 + DAY - MIN)  # the latest event time: C1's retention not over yet
    assert h.engine.is_erased("C1") and h.engine.take_dirty()[1] == {}
    h.quality("C3", T0 + DAY + MIN)  # now it is
    assert not h.engine.is_erased("C1") and h.engine.is_erased("C2") and h.engine.erased_count == 1
    assert h.engine.take_dirty()[1] == {"C1": 0} and h.engine.erased_marker("C1") is None
    # past the retention a quality record starts a customer again
    h.quality("C2", T0 + DAY / 2 + DAY + MIN)
    assert "C2" in h.engine.customers and h.engine.erased_count == 0
    assert h.engine.take_dirty()[1] == {}  # the customer's state overwrites the marker


def test_the_retention_is_judged_on_event_time_never_ahead_of_the_wall_clock() -> None:
    h = B(Limits(erased_retention_s=DAY), now=T0 + HOUR)
    h.tombstone("C1", T0)
    h.engine.event_clock = T0 + 5 * DAY  # as one far-future record would have moved it
    h.quality("C1", T0 + HOUR)
    assert h.drain()[2].events == {("customers", "ok"): 1, ("quality", "erased"): 1}


def test_at_most_max_erased_ids_the_oldest_forgotten_first() -> None:
    h = B(Limits(max_erased=2))
    h.tombstone("C1", T0, partition=1)
    h.tombstone("C2", T0 + MIN, partition=2)
    h.tombstone("C3", T0 + 2 * MIN, partition=1)
    assert h.engine.erased_count == 2
    assert [h.engine.is_erased(c) for c in ("C1", "C2", "C3")] == [False, True, True]
    assert h.drain()[2].limits == {"erased_forgotten": 1}
    assert h.engine.erased_marker("C1") is None and h.engine.take_dirty()[1] == {"C1": 1, "C2": 2, "C3": 1}


def test_restored_markers_out_of_order_are_forgotten_oldest_first() -> None:
    h = B(Limits(max_erased=2))
    h.engine.adopt_erased("NEW", 0, T0 + HOUR)
    h.engine.adopt_erased("OLD", 0, T0)
    h.tombstone("C3", T0 + 2 * HOUR)
    assert [h.engine.is_erased(c) for c in ("OLD", "NEW", "C3")] == [False, True, True]


def test_released_partitions_take_their_erased_ids_with_them() -> None:
    h = B()
    h.tombstone("C1", T0, partition=1)
    h.tombstone("C2", T0, partition=2)
    h.engine.release({1})
    assert not h.engine.is_erased("C1") and h.engine.is_erased("C2") and h.engine.erased_count == 1


def test_an_erased_marker_is_recognisable_and_a_state_is_not() -> None:
    h = B()
    h.customer("C1", ["CELL-1"])
    assert not is_erased_marker(h.state("C1").dump()) and not is_erased_marker(None)
    assert erased_marker(7, 1.5) == b'["erased",7,1.5]'
    with pytest.raises(ValueError):
        read_erased_marker(h.state("C1").dump())
