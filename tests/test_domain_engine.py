"""The engine, driven the way the stream layer drives it: the contract's trigger table, row by row,
and each hold-back reason; duplicates, lateness, erasure, restart safety and determinism.

The trigger rules are the shipped ones. The scoring weights are the test's own (each 0-1, adding
up to 1) so that the numbers below do not move when the shipped weights are tuned:
with them a critical alarm costs 25 points (75), a major one 17.5 (82.5), and :meth:`H.crash`
sinks the score to 25 (:meth:`H.degrade` to 45).
"""

from __future__ import annotations

import copy

import orjson
import pytest

from cxstream.domain.customer import RECENT_IDS, CustomerState
from cxstream.domain.engine import Engine, Firing, InputRecord
from cxstream.domain.rules import RuleBook, Scoring, load_rules
from cxstream.models.common import format_time, parse_time
from cxstream.outputs.cloudevents import cloudevent

T0 = parse_time("2026-11-22T10:00:00Z")
MIN, HOUR, DAY = 60.0, 3600.0, 86400.0
WEIGHTS = {"voice": 0.30, "data": 0.25, "video": 0.10, "messaging": 0.10, "availability": 0.25}
SOURCE = "urn:cxstream:test"

from scoring_table import TEST_METRICS  # noqa: E402


def test_rules() -> RuleBook:
    shipped = load_rules()
    scoring = shipped.scoring.model_dump()
    scoring["weights"] = dict(WEIGHTS)
    scoring["metrics"] = dict(TEST_METRICS)
    return RuleBook(scoring=Scoring.model_validate(scoring), rules=shipped.rules)


test_rules.__test__ = False  # a helper, not a test


class H:
    """A harness: builds contract-shaped records and feeds them to one engine."""

    def __init__(self, live: bool = True, half_life_s: float = 1800.0, allowed_lateness_s: float = 900.0,
                 rules: RuleBook | None = None):
        self.engine = Engine(rules or test_rules(), half_life_s, allowed_lateness_s)
        self.offset = 0
        self.seq = 0
        if live:
            self.engine.go_live()

    # --- records ------------------------------------------------------------
    def record(self, source: str, key: str | bytes | None, value: dict | bytes | None, t: float,
               placed: bool = False, partition: int = 0) -> InputRecord:
        self.offset += 1
        if isinstance(key, str):
            key = key.encode()
        if isinstance(value, dict):
            value = orjson.dumps(value)
        return InputRecord(source, f"cx.{source}", partition, self.offset, key, value, t, placed)

    def customer_record(self, cid: str, resources=(), tier: str = "gold", consent: bool = True,
                        t: float = T0, segment: str = "consumer") -> InputRecord:
        return self.record("customers", cid, {
            "customer_id": cid, "segment": segment, "value_tier": tier, "marketing_consent": consent,
            "resources": list(resources), "updated_at": format_time(t)}, t)

    def quality_record(self, cid: str, t: float, service: str = "voice", event_id: str | None = None,
                       **metrics) -> InputRecord:
        if event_id is None:
            self.seq += 1
            event_id = f"q-{self.seq}"
        return self.record("quality", cid, {
            "event_id": event_id, "customer_id": cid, "event_time": format_time(t), "service": service,
            "metrics": metrics or {"mos": 4.4}}, t)

    def alarm_record(self, alarm_id: str, resource: str, t: float, severity: str = "critical", **extra) -> InputRecord:
        alarm = {"id": alarm_id, "alarmedObject": {"id": resource}, "perceivedSeverity": severity,
                 "alarmRaisedTime": format_time(t), "state": "raised"}
        alarm.update(extra)
        return self.record("faults", alarm_id, {"eventId": f"{alarm_id}-raise-{t}", "eventTime": format_time(t),
                                                "eventType": "AlarmCreateEvent", "event": {"alarm": alarm}}, t)

    def clear_record(self, alarm_id: str, t: float) -> InputRecord:
        return self.record("faults", alarm_id, {
            "eventId": f"{alarm_id}-clear-{t}", "eventTime": format_time(t), "eventType": "AlarmStateChangeEvent",
            "event": {"alarm": {"id": alarm_id, "state": "cleared", "alarmClearedTime": format_time(t)}}}, t)

    # --- feeding --------------------------------------------------------------
    def customer(self, cid: str, resources=(), **kw) -> None:
        self.engine.process([self.customer_record(cid, resources, **kw)])

    def quality(self, cid: str, t: float, service: str = "voice", **metrics) -> None:
        self.engine.process([self.quality_record(cid, t, service, **metrics)])

    def raise_(self, alarm_id: str, resource: str, t: float, severity: str = "critical", **extra) -> None:
        assert self.engine.apply_fault(self.alarm_record(alarm_id, resource, t, severity, **extra)) is None

    def clear(self, alarm_id: str, t: float) -> None:
        assert self.engine.apply_fault(self.clear_record(alarm_id, t)) is None

    def fault(self, t: float, event_type: str, **alarm) -> str | None:
        return self.engine.apply_fault(self.record("faults", alarm.get("id"), {
            "eventTime": format_time(t), "eventType": event_type, "event": {"alarm": alarm}}, t))

    def crash(self, cid: str, t: float) -> None:
        """Voice, data, video and messaging at their worst: the score falls to 25."""
        self.quality(cid, t, "voice", call_dropped=True, call_setup_failed=True, mos=1.0)
        self.degrade_rest(cid, t, ("data", "video", "messaging"))

    def degrade(self, cid: str, t: float) -> None:
        """Voice and data at their worst: the score falls to 45."""
        self.quality(cid, t, "voice", call_dropped=True, call_setup_failed=True, mos=1.0)
        self.degrade_rest(cid, t, ("data",))

    def degrade_rest(self, cid: str, t: float, services) -> None:
        own = {"data": {}, "video": {"video_stall_ratio": 1.0}, "messaging": {"message_failed": True}}
        for service in services:
            self.quality(cid, t, service, latency_ms=10_000, packet_loss_pct=100, throughput_mbps=0, **own[service])

    # --- looking --------------------------------------------------------------
    def drain(self):
        return self.engine.drain()

    def firings(self) -> list[Firing]:
        return self.engine.drain()[0]

    def state(self, cid: str) -> CustomerState:
        return self.engine.customers[cid]


def fired(firings: list[Firing]) -> list[tuple[str, str]]:
    return [(f.rule.id, f.customer_id) for f in firings]


def suppressed(tally) -> dict[tuple[str, str], int]:
    return {(trigger, reason): n for (_, trigger, reason), n in tally.suppressed.items()}


# =========================================================================== outage_notice


@pytest.mark.parametrize("severity", ["critical", "major", "CRITICAL"])
def test_outage_notice_once_per_impacted_customer(severity) -> None:
    h = H()
    h.customer("C1", ["CELL-1", "SITE-1"])
    h.customer("C2", ["CELL-1"], tier="bronze", segment="business")
    h.customer("C3", ["CELL-2"])
    h.drain()
    h.raise_("ALM-1", "CELL-1", T0 + MIN, severity)
    firings, rejections, tally = h.drain()
    assert fired(firings) == [("outage_notice", "C1"), ("outage_notice", "C2")]
    assert rejections == [] and tally.suppressed == {}
    assert tally.triggers == {("care", "outage_notice"): 2}
    notice = firings[0]
    assert notice.time == T0 + MIN  # the alarm's event time
    assert notice.faults == ["ALM-1"] and notice.previous_score == 100.0
    assert notice.score < 100.0 and notice.reasons[0]["code"] == "fault.CELL-1"
    assert (notice.value_tier, notice.segment) == ("gold", "consumer")
    assert (firings[1].value_tier, firings[1].segment) == ("bronze", "business")
    assert h.state("C3").impacts == {} and h.state("C3").score == 100.0
    assert h.state("C1").impacts == {"ALM-1": T0 + MIN}
    # the same raise again (a redelivery) changes nothing
    h.raise_("ALM-1", "CELL-1", T0 + MIN, severity)
    assert h.firings() == []


def test_minor_and_warning_alarms_send_no_notice_but_lower_the_score() -> None:
    h = H()
    h.customer("C1", ["CELL-1", "SITE-1"])
    h.raise_("ALM-1", "CELL-1", T0, "minor")
    h.raise_("ALM-2", "SITE-1", T0, "warning")
    firings, _, tally = h.drain()
    assert firings == [] and tally.suppressed == {}
    assert h.state("C1").score == pytest.approx(100 - 0.25 * 40)
    assert sorted(h.state("C1").impacts) == ["ALM-1", "ALM-2"]
    h.clear("ALM-1", T0 + HOUR)
    h.clear("ALM-2", T0 + HOUR)
    firings, _, tally = h.drain()
    assert firings == [] and tally.suppressed == {}  # nobody was told, so nobody is told it is back
    assert h.state("C1").episode is None


def test_an_alarm_that_is_not_service_affecting_impacts_nobody() -> None:
    h = H()
    h.customer("C1", ["CELL-1"])
    h.raise_("ALM-1", "CELL-1", T0, serviceAffecting=False)
    assert h.firings() == [] and h.state("C1").score == 100.0 and h.state("C1").impacts == {}


def test_an_escalation_to_major_sends_the_notice() -> None:
    h = H()
    h.customer("C1", ["CELL-1"])
    h.raise_("ALM-1", "CELL-1", T0, "minor")
    assert h.firings() == []
    assert h.fault(T0 + 10 * MIN, "AlarmAttributeValueChangeEvent", id="ALM-1", perceivedSeverity="major") is None
    firings = h.firings()
    assert fired(firings) == [("outage_notice", "C1")]
    assert firings[0].time == T0 + 10 * MIN and firings[0].faults == ["ALM-1"]
    # a further escalation in the same episode: told once
    h.fault(T0 + 20 * MIN, "AlarmAttributeValueChangeEvent", id="ALM-1", perceivedSeverity="critical")
    assert h.firings() == []
    h.clear("ALM-1", T0 + HOUR)
    assert fired(h.firings()) == [("service_restored", "C1")]


def test_planned_work_that_turns_into_an_outage_is_told() -> None:
    h = H()
    h.customer("C1", ["CELL-1"])
    h.raise_("ALM-1", "CELL-1", T0, plannedOutageIndicator="OutOfService")
    assert h.firings() == []
    h.fault(T0 + HOUR, "AlarmAttributeValueChangeEvent", id="ALM-1", plannedOutageIndicator="InService")
    firings = h.firings()
    assert fired(firings) == [("outage_notice", "C1")] and firings[0].time == T0 + HOUR
    # an acknowledgement or a comment later changes nothing
    h.fault(T0 + 2 * HOUR, "AlarmAttributeValueChangeEvent", id="ALM-1", ackState="acknowledged")
    assert h.firings() == []


# =========================================================================== outage episodes


def test_a_second_alarm_joins_the_episode_and_restored_waits_for_the_last_clear() -> None:
    h = H()
    h.customer("C1", ["CELL-1", "SITE-1"])
    h.customer("C2", ["SITE-1"])
    h.raise_("CELL-ALM", "CELL-1", T0)
    assert fired(h.firings()) == [("outage_notice", "C1")]
    # the site alarm after its cell's, correlated with it
    h.raise_("SITE-ALM", "SITE-1", T0 + 2 * MIN, "major", correlatedAlarm=[{"id": "CELL-ALM"}])
    firings, _, tally = h.drain()
    assert fired(firings) == [("outage_notice", "C2")]  # C2's first fault; C1 already told
    assert suppressed(tally) == {("outage_notice", "same_episode"): 1}
    episode = h.state("C1").episode
    assert episode["alarms"] == ["CELL-ALM", "SITE-ALM"] and episode["notified"]
    # the cell clears: C1 still has the site alarm, no restored yet
    h.clear("CELL-ALM", T0 + 30 * MIN)
    assert h.firings() == []
    assert sorted(h.state("C1").impacts) == ["SITE-ALM"]
    # the last clears: one restored each, C1's listing both faults, dated at the clear
    h.clear("SITE-ALM", T0 + HOUR)
    firings = h.firings()
    assert fired(firings) == [("service_restored", "C1"), ("service_restored", "C2")]
    assert firings[0].faults == ["CELL-ALM", "SITE-ALM"] and firings[1].faults == ["SITE-ALM"]
    assert firings[0].time == T0 + HOUR
    assert h.state("C1").episode is None and h.state("C1").impacts == {}


def test_several_failures_at_once_are_told_once() -> None:
    h = H()
    h.customer("C1", ["CELL-1", "SITE-1", "OLT-3"])
    for i, resource in enumerate(["CELL-1", "SITE-1", "OLT-3"]):
        h.raise_(f"ALM-{i}", resource, T0 + i)
    firings, _, tally = h.drain()
    assert fired(firings) == [("outage_notice", "C1")]
    assert suppressed(tally) == {("outage_notice", "same_episode"): 2}
    for i in range(3):
        h.clear(f"ALM-{i}", T0 + HOUR + i)
    firings = h.firings()
    assert fired(firings) == [("service_restored", "C1")]
    assert firings[0].faults == ["ALM-0", "ALM-1", "ALM-2"]


def test_a_new_episode_after_the_last_clear_is_told_again() -> None:
    h = H()
    h.customer("C1", ["CELL-1"])
    h.raise_("ALM-1", "CELL-1", T0)
    h.clear("ALM-1", T0 + HOUR)
    h.raise_("ALM-2", "CELL-1", T0 + 2 * HOUR)
    firings = h.firings()
    assert fired(firings) == [("outage_notice", "C1"), ("service_restored", "C1"), ("outage_notice", "C1")]
    ids = [cloudevent(f, SOURCE)["id"] for f in firings]
    assert ids[0] != ids[2]  # another episode, another event
    assert firings[1].episode == firings[0].episode  # restored belongs to the notice's episode


def test_a_minor_alarm_then_a_critical_one_in_the_same_episode() -> None:
    h = H()
    h.customer("C1", ["CELL-1", "SITE-1"])
    h.raise_("MINOR", "CELL-1", T0, "minor")
    h.raise_("CRIT", "SITE-1", T0 + MIN)
    firings = h.firings()
    assert fired(firings) == [("outage_notice", "C1")] and firings[0].faults == ["MINOR", "CRIT"]
    h.clear("CRIT", T0 + HOUR)
    assert h.firings() == []  # the minor alarm is still part of the episode
    h.clear("MINOR", T0 + 2 * HOUR)
    assert fired(h.firings()) == [("service_restored", "C1")]


def test_re_raise_by_state_change_is_a_new_fault() -> None:
    h = H()
    h.customer("C1", ["CELL-1"])
    h.raise_("ALM-1", "CELL-1", T0)
    h.clear("ALM-1", T0 + HOUR)
    assert fired(h.firings()) == [("outage_notice", "C1"), ("service_restored", "C1")]
    # raised again nine hours later by a state change, cleared an hour after that
    assert h.fault(T0 + 10 * HOUR, "AlarmStateChangeEvent", id="ALM-1", state="raised") is None
    h.clear("ALM-1", T0 + 11 * HOUR)
    firings = h.firings()
    # a one-hour fault, twice: no service credit for the ten hours in between
    assert fired(firings) == [("outage_notice", "C1"), ("service_restored", "C1")]
    assert firings[0].time == T0 + 10 * HOUR


# =========================================================================== planned work


def test_planned_work_sends_nothing_of_its_own_but_lowers_the_score_and_holds_retention() -> None:
    h = H()
    h.customer("C1", ["CELL-1"], consent=True)
    h.raise_("PLANNED", "CELL-1", T0, plannedOutageIndicator="OutOfService")
    firings, _, tally = h.drain()
    assert firings == []
    assert suppressed(tally) == {("outage_notice", "planned_work"): 1}
    assert h.state("C1").score == pytest.approx(75.0)
    assert h.state("C1").impacts == {"PLANNED": T0}
    # the score falls under 50 during the work: retention_offer is held back
    h.degrade("C1", T0 + MIN)
    firings, _, tally = h.drain()
    assert "retention_offer" not in [f.rule.id for f in firings]
    assert suppressed(tally)[("retention_offer", "active_fault")] >= 1
    # five hours of work end: no restored, no credit
    h.clear("PLANNED", T0 + 5 * HOUR)
    firings, _, tally = h.drain()
    assert firings == []
    assert suppressed(tally) == {("service_restored", "planned_work"): 1, ("service_credit", "planned_work"): 1}


def test_an_unplanned_alarm_during_planned_work_is_told() -> None:
    h = H()
    h.customer("C1", ["CELL-1", "SITE-1"])
    h.raise_("PLANNED", "CELL-1", T0, plannedOutageIndicator="OutOfService")
    h.raise_("FAILURE", "SITE-1", T0 + MIN)
    assert fired(h.firings()) == [("outage_notice", "C1")]
    h.clear("FAILURE", T0 + HOUR)
    h.clear("PLANNED", T0 + 2 * HOUR)
    firings = h.firings()
    assert fired(firings) == [("service_restored", "C1")]
    assert firings[0].faults == ["PLANNED", "FAILURE"]


# =========================================================================== service_credit


@pytest.mark.parametrize(("duration", "credit"), [(4 * HOUR + 1, True), (4 * HOUR, False), (3 * HOUR, False)])
def test_service_credit_only_after_more_than_four_hours(duration, credit) -> None:
    h = H()
    h.customer("C1", ["CELL-1"])
    h.customer("C2", ["CELL-2"])
    h.raise_("ALM-1", "CELL-1", T0, "major")
    h.drain()
    h.clear("ALM-1", T0 + duration)
    firings = h.firings()
    expected = [("service_credit", "C1")] if credit else []
    assert fired(firings) == expected + [("service_restored", "C1")]
    if credit:
        assert firings[0].time == T0 + duration and firings[0].faults == ["ALM-1"]
        assert firings[0].rule.channel == "care"


def test_service_credit_once_per_episode_when_it_ends_naming_every_alarm() -> None:
    # contract v2: once per outage episode, however many of its alarms lasted that long
    h = H()
    h.customer("C1", ["CELL-1", "SITE-1"])
    h.raise_("CELL-ALM", "CELL-1", T0)
    h.raise_("SITE-ALM", "SITE-1", T0 + 3 * HOUR)
    h.clear("CELL-ALM", T0 + 5 * HOUR)  # 5 h, but the episode goes on: nothing yet
    assert fired(h.firings()) == [("outage_notice", "C1")]
    h.clear("SITE-ALM", T0 + 6 * HOUR)
    firings = h.firings()
    assert fired(firings) == [("service_credit", "C1"), ("service_restored", "C1")]
    credit, restored = firings
    assert credit.faults == ["CELL-ALM", "SITE-ALM"] and credit.time == T0 + 6 * HOUR
    assert credit.episode == restored.episode == f"CELL-ALM@{T0}"


def test_a_site_alarm_and_its_correlated_cell_alarm_give_one_credit() -> None:
    h = H()
    h.customer("C1", ["CELL-1", "SITE-1"])
    h.customer("C2", ["SITE-1"])
    h.raise_("SITE-ALM", "SITE-1", T0)
    h.raise_("CELL-ALM", "CELL-1", T0 + MIN, correlatedAlarm=[{"id": "SITE-ALM"}])
    h.clear("CELL-ALM", T0 + 5 * HOUR)
    h.clear("SITE-ALM", T0 + 5 * HOUR + MIN)
    firings = h.firings()
    credits = [f for f in firings if f.rule.id == "service_credit"]
    assert [(f.customer_id, f.faults) for f in credits] == [("C1", ["SITE-ALM", "CELL-ALM"]), ("C2", ["SITE-ALM"])]
    ids = [cloudevent(f, SOURCE)["id"] for f in credits]
    assert len(set(ids)) == 2
    # the same input again gives the same CloudEvent ids (deterministic per episode)
    again = H()
    again.customer("C1", ["CELL-1", "SITE-1"])
    again.customer("C2", ["SITE-1"])
    again.raise_("SITE-ALM", "SITE-1", T0)
    again.raise_("CELL-ALM", "CELL-1", T0 + MIN, correlatedAlarm=[{"id": "SITE-ALM"}])
    again.clear("CELL-ALM", T0 + 5 * HOUR)
    again.clear("SITE-ALM", T0 + 5 * HOUR + MIN)
    assert [cloudevent(f, SOURCE)["id"] for f in again.firings() if f.rule.id == "service_credit"] == ids


def test_an_episode_of_short_alarms_that_lasted_more_than_four_hours_is_credited() -> None:
    h = H()
    h.customer("C1", ["CELL-1", "SITE-1"])
    h.raise_("CELL-ALM", "CELL-1", T0)
    h.raise_("SITE-ALM", "SITE-1", T0 + 2 * HOUR)
    h.clear("CELL-ALM", T0 + 3 * HOUR)  # 3 h
    h.clear("SITE-ALM", T0 + 5 * HOUR)  # 3 h; the episode: 5 h
    firings = h.firings()
    assert fired(firings) == [("outage_notice", "C1"), ("service_credit", "C1"), ("service_restored", "C1")]


def test_two_episodes_of_five_hours_give_two_credits() -> None:
    h = H()
    h.customer("C1", ["CELL-1"])
    for n, start in enumerate((T0, T0 + DAY)):
        h.raise_(f"ALM-{n}", "CELL-1", start)
        h.clear(f"ALM-{n}", start + 5 * HOUR)
    credits = [f for f in h.firings() if f.rule.id == "service_credit"]
    assert [f.episode for f in credits] == [f"ALM-0@{T0}", f"ALM-1@{T0 + DAY}"]


def test_planned_work_in_an_episode_gives_no_credit_of_its_own() -> None:
    h = H()
    h.customer("C1", ["CELL-1", "SITE-1"])
    h.raise_("PLANNED", "CELL-1", T0, plannedOutageIndicator="OutOfService")
    h.raise_("FAILURE", "SITE-1", T0 + HOUR)
    h.clear("FAILURE", T0 + 2 * HOUR)  # the failure: 1 h
    h.clear("PLANNED", T0 + 6 * HOUR)  # the work: 6 h
    firings, _, tally = h.drain()
    assert fired(firings) == [("outage_notice", "C1"), ("service_restored", "C1")]
    assert suppressed(tally)[("service_credit", "planned_work")] == 1


def test_service_credit_also_for_a_minor_alarm() -> None:
    # the contract's row: "a cleared alarm impacted the customer for more than 4 hours"
    h = H()
    h.customer("C1", ["CELL-1"])
    h.raise_("ALM-1", "CELL-1", T0, "minor")
    h.clear("ALM-1", T0 + 5 * HOUR)
    assert fired(h.firings()) == [("service_credit", "C1")]


# =========================================================================== priority_care


@pytest.mark.parametrize(("tier", "fires"), [("platinum", True), ("gold", True), ("silver", False), ("bronze", False)])
def test_priority_care_for_platinum_and_gold_under_40(tier, fires) -> None:
    h = H()
    h.customer("C1", tier=tier, consent=False)
    h.crash("C1", T0)
    assert h.state("C1").score == pytest.approx(25.0)
    firings = [f for f in h.firings() if f.rule.id == "priority_care"]
    assert len(firings) == (1 if fires else 0)
    if fires:
        assert firings[0].score < 40 and firings[0].rule.channel == "care"  # the first record under 40
        assert firings[0].time == T0 and firings[0].value_tier == tier


def test_priority_care_not_at_45() -> None:
    h = H()
    h.customer("C1", tier="platinum")
    h.degrade("C1", T0)
    assert h.state("C1").score == pytest.approx(45.0)
    assert "priority_care" not in [f.rule.id for f in h.firings()]


def test_priority_care_at_most_once_a_day() -> None:
    h = H()
    h.customer("C1", tier="gold", consent=False)
    h.crash("C1", T0)
    assert [f.rule.id for f in h.firings()].count("priority_care") == 1
    h.crash("C1", T0 + 23 * HOUR)
    firings, _, tally = h.drain()
    assert "priority_care" not in [f.rule.id for f in firings]
    assert suppressed(tally)[("priority_care", "cooldown")] >= 1
    h.crash("C1", T0 + DAY + MIN)
    assert [f.rule.id for f in h.firings()].count("priority_care") == 1


def test_priority_care_when_an_alarm_sinks_the_score() -> None:
    h = H()
    h.customer("C1", ["CELL-1"], tier="platinum", consent=False)
    h.degrade("C1", T0)
    h.drain()
    h.raise_("ALM-1", "CELL-1", T0 + MIN)  # 45 - 25 = 20
    firings = h.firings()
    assert fired(firings) == [("outage_notice", "C1"), ("priority_care", "C1")]
    assert firings[1].time == T0 + MIN and firings[1].faults == ["ALM-1"]


# =========================================================================== retention_offer


def test_retention_offer_under_50_with_consent() -> None:
    h = H(half_life_s=1e9)  # no fading
    h.customer("C1", tier="bronze", consent=True)
    h.degrade_rest("C1", T0, ["data"])  # 75: neither under 50 nor down 30
    assert h.firings() == []
    h.quality("C1", T0 + 2 * DAY, "voice", call_dropped=True, call_setup_failed=True, mos=2.1)  # 48: down 27
    firings = h.firings()
    assert fired(firings) == [("retention_offer", "C1")]
    offer = firings[0]
    assert offer.rule.channel == "marketing" and offer.score == 48.0 and offer.faults == []
    assert offer.time == T0 + 2 * DAY
    impacts = [r["impact"] for r in offer.reasons]
    assert offer.reasons and impacts == sorted(impacts) and all(i < 0 for i in impacts)


def test_retention_offer_never_without_consent() -> None:
    h = H()
    h.customer("C1", tier="bronze", consent=False)
    h.degrade("C1", T0)
    firings, _, tally = h.drain()
    assert firings == []
    assert suppressed(tally)[("retention_offer", "no_consent")] >= 1


def test_a_customer_never_seen_has_no_consent() -> None:
    h = H()
    h.degrade("C9", T0)  # quality for a customer whose record has not arrived
    firings, _, tally = h.drain()
    assert firings == [] and suppressed(tally)[("retention_offer", "no_consent")] >= 1
    assert h.state("C9").value_tier == "bronze" and not h.state("C9").profile


def test_retention_offer_on_a_drop_of_30_within_24_hours() -> None:
    h = H()
    h.customer("C1", tier="bronze", consent=True)
    h.quality("C1", T0, "voice", mos=4.4)
    h.quality("C1", T0 + 3 * HOUR, "voice", call_dropped=True, call_setup_failed=True, mos=2.1)  # 100 - 27
    h.quality("C1", T0 + 3 * HOUR, "messaging", message_failed=True)  # 71: down 29, not under 50
    assert h.firings() == []
    h.quality("C1", T0 + 3 * HOUR, "messaging", message_failed=True)  # 69: down 31
    firings = h.firings()
    assert fired(firings) == [("retention_offer", "C1")]
    assert firings[0].score == pytest.approx(69.0)


@pytest.mark.parametrize("history", ["new customer", "quiet for three days"])
def test_retention_offer_on_a_sudden_drop_of_30(history) -> None:
    h = H()
    h.customer("C1", tier="bronze", consent=True)
    t = T0
    if history != "new customer":
        h.quality("C1", T0, mos=4.4)
        h.drain()
        t = T0 + 3 * DAY
    # one record: voice at its worst and a failed message, 100 -> 68
    h.quality("C1", t, "voice", call_dropped=True, call_setup_failed=True, mos=1.0, message_failed=True)
    firings = h.firings()
    assert h.state("C1").score == pytest.approx(68.0)
    assert fired(firings) == [("retention_offer", "C1")] and firings[0].previous_score == 100.0


def test_a_drop_spread_over_more_than_24_hours_is_not_a_drop() -> None:
    h = H(half_life_s=1e9)  # no fading: the score only goes down
    h.customer("C1", tier="bronze", consent=True)
    h.quality("C1", T0, mos=4.4)
    h.quality("C1", T0 + HOUR, "data", latency_ms=10_000, packet_loss_pct=100)  # 100 - 0.25 * 70 = 82.5
    h.quality("C1", T0 + 30 * HOUR, "voice", mos=2.0)  # 82.5 - 0.3 * 48 = 68.1: down 31.9 in 30 h
    firings = h.firings()
    assert firings == [] and h.state("C1").score == pytest.approx(68.1, abs=0.01)


def test_retention_offer_never_while_a_fault_impacts_the_customer() -> None:
    h = H()
    h.customer("C1", ["CELL-1"], tier="bronze", consent=True)
    h.raise_("ALM-1", "CELL-1", T0, "minor")  # no notice, but a fault
    h.degrade("C1", T0 + MIN)
    firings, _, tally = h.drain()
    assert firings == []
    assert suppressed(tally)[("retention_offer", "active_fault")] >= 1
    h.clear("ALM-1", T0 + 2 * MIN)  # a clear only raises the score: no rule looks at it
    assert h.firings() == []
    h.quality("C1", T0 + 3 * MIN, mos=4.4)  # still under 50, and no fault any more
    firings = h.firings()
    assert fired(firings) == [("retention_offer", "C1")] and firings[0].time == T0 + 3 * MIN


def test_retention_offer_at_most_once_in_7_days() -> None:
    h = H(half_life_s=1e9)  # no fading: the score stays under 50
    h.customer("C1", tier="bronze", consent=True)
    h.degrade("C1", T0)
    assert fired(h.firings()) == [("retention_offer", "C1")]
    for day in (1, 3, 6):
        h.quality("C1", T0 + day * DAY, mos=4.4)
        firings, _, tally = h.drain()
        assert firings == [] and suppressed(tally) == {("retention_offer", "cooldown"): 1}
    h.quality("C1", T0 + 7 * DAY, mos=4.4)
    assert fired(h.firings()) == [("retention_offer", "C1")]


# =========================================================================== duplicates, lateness, order


def test_a_duplicate_event_id_changes_nothing() -> None:
    h = H()
    h.customer("C1")
    record = h.quality_record("C1", T0, call_dropped=True, event_id="q-000123")
    h.engine.process([record])
    h.drain()
    h.engine.take_dirty()
    state = h.state("C1")
    before = state.dump()
    again = h.quality_record("C1", T0 + MIN, call_dropped=True, event_id="q-000123")  # a redelivery
    h.engine.process([record, again])
    firings, rejections, tally = h.drain()
    assert tally.events == {("quality", "duplicate"): 2}
    assert firings == [] and rejections == []
    assert state.dump() == before
    assert h.engine.take_dirty() == ([], {})


def test_duplicates_are_remembered_per_customer_for_the_last_ids() -> None:
    h = H()
    h.quality("C1", T0, event_id="shared", mos=4.4)
    h.quality("C2", T0, event_id="shared", mos=4.4)  # another customer's id space
    assert h.drain()[2].events == {("quality", "ok"): 2}
    for i in range(RECENT_IDS):
        h.quality("C1", T0 + i + 1, event_id=f"later-{i}", mos=4.4)
    h.drain()
    h.quality("C1", T0 + 100, event_id="later-0", mos=4.4)
    h.quality("C1", T0 + 100, event_id="shared", mos=4.4)  # pushed out of the window
    assert h.drain()[2].events == {("quality", "duplicate"): 1, ("quality", "ok"): 1}


def test_a_late_record_is_dropped_and_counted() -> None:
    h = H(allowed_lateness_s=900.0)
    h.quality("C1", T0 + HOUR, mos=4.4)
    h.drain()
    before = h.state("C1").dump()
    h.quality("C1", T0 + HOUR - 901, call_dropped=True)
    firings, _, tally = h.drain()
    assert tally.events == {("quality", "late"): 1} and firings == []
    assert h.state("C1").dump() == before


def test_allowed_lateness_is_a_setting() -> None:
    h = H(allowed_lateness_s=2 * HOUR)
    h.quality("C1", T0 + 3 * HOUR, mos=4.4)
    h.quality("C1", T0 + HOUR + 1, call_dropped=True)
    assert h.drain()[2].events == {("quality", "ok"): 2}


def test_out_of_order_within_lateness_is_applied_as_if_in_order() -> None:
    in_order, shuffled = H(), H()
    in_order.quality("C1", T0, call_dropped=True)
    in_order.quality("C1", T0 + 10 * MIN, mos=2.1)
    shuffled.quality("C1", T0 + 10 * MIN, mos=2.1)
    shuffled.quality("C1", T0, call_dropped=True)  # ten minutes late, within 15
    assert shuffled.drain()[2].events == {("quality", "ok"): 2}
    a, b = in_order.state("C1"), shuffled.state("C1")
    assert b.clock == T0 + 10 * MIN
    assert b.penalties == pytest.approx(a.penalties)
    assert b.penalties["voice.call_dropped"] == pytest.approx(25 * 0.5 ** (10 / 30))
    assert b.score == pytest.approx(a.score)


# =========================================================================== arrival order of alarm and customer


def test_an_alarm_raised_before_the_customer_record_still_impacts_the_customer() -> None:
    h = H()
    h.raise_("ALM-1", "CELL-1", T0)
    assert h.firings() == []
    h.customer("C1", ["CELL-1"], t=T0 + 10 * MIN)
    firings = h.firings()
    assert fired(firings) == [("outage_notice", "C1")]
    assert firings[0].time == T0 + 10 * MIN and firings[0].faults == ["ALM-1"]
    assert h.state("C1").score == pytest.approx(75.0)
    h.clear("ALM-1", T0 + HOUR)
    assert fired(h.firings()) == [("service_restored", "C1")]


def test_quality_before_the_customer_record_then_the_record() -> None:
    h = H()
    h.raise_("ALM-1", "CELL-1", T0)
    h.quality("C1", T0 + MIN, call_dropped=True)  # no resources known yet: no impact
    assert h.firings() == [] and h.state("C1").impacts == {}
    h.customer("C1", ["CELL-1"], t=T0 + 2 * MIN)
    assert fired(h.firings()) == [("outage_notice", "C1")]


def test_moving_onto_a_faulty_cell_and_off_it() -> None:
    h = H()
    h.raise_("ALM-1", "CELL-1", T0)
    h.customer("C1", ["CELL-9"], t=T0 + MIN)
    assert h.firings() == []
    h.customer("C1", ["CELL-1"], t=T0 + 10 * MIN)  # moves onto the faulty cell
    firings = h.firings()
    assert fired(firings) == [("outage_notice", "C1")] and firings[0].time == T0 + 10 * MIN
    assert h.state("C1").impacts == {"ALM-1": T0 + 10 * MIN}
    h.customer("C1", ["CELL-9"], t=T0 + 5 * HOUR + 20 * MIN)  # and off it, five hours later
    firings = h.firings()
    # the episode is over for this customer; no credit: the alarm did not clear
    assert fired(firings) == [("service_restored", "C1")] and firings[0].time == T0 + 5 * HOUR + 20 * MIN
    assert h.state("C1").impacts == {} and h.state("C1").episode is None and h.state("C1").fault_levels == {}
    h.clear("ALM-1", T0 + 6 * HOUR)
    assert h.firings() == []


def test_moving_off_a_fault_after_another_of_the_episode_cleared_credits_what_cleared() -> None:
    h = H()
    h.customer("C1", ["CELL-1", "SITE-1"])
    h.raise_("CELL-ALM", "CELL-1", T0)
    h.raise_("SITE-ALM", "SITE-1", T0 + MIN)
    h.clear("CELL-ALM", T0 + 5 * HOUR)  # cleared after 5 h; the site alarm goes on
    assert fired(h.firings()) == [("outage_notice", "C1")]
    h.customer("C1", ["CELL-1"], t=T0 + 6 * HOUR)  # moves off the site: the episode ends
    firings = h.firings()
    # credited for the 5 h that ended with a clear (not for the hour after it)
    assert fired(firings) == [("service_credit", "C1"), ("service_restored", "C1")]
    assert firings[0].time == T0 + 6 * HOUR and firings[0].faults == ["CELL-ALM", "SITE-ALM"]
    # a customer moved off a fault that never cleared for them gets none (above); nor does this
    # one when the site alarm clears later
    h.clear("SITE-ALM", T0 + 7 * HOUR)
    assert h.firings() == []


# =========================================================================== erasure


def test_a_tombstone_erases_the_customer() -> None:
    h = H()
    h.customer("C1", ["CELL-1"])
    h.raise_("ALM-1", "CELL-1", T0)
    h.quality("C1", T0 + MIN, call_dropped=True)
    h.drain()
    h.engine.take_dirty()
    h.engine.process([h.record("customers", "C1", None, T0 + 2 * MIN, partition=3)])
    firings, _, tally = h.drain()
    assert firings == [] and tally.events == {("customers", "ok"): 1}
    assert "C1" not in h.engine.customers
    assert "C1" not in h.engine.by_resource.get("CELL-1", [])
    assert h.engine.take_dirty() == ([], {"C1": 0})  # the partition the customer lived on
    # the alarm clears: nothing for a customer who is gone
    h.clear("ALM-1", T0 + 5 * HOUR)
    assert h.firings() == []
    # (v2) erasure holds: a later quality record is dropped and counted, not a new customer
    h.quality("C1", T0 + 6 * HOUR, call_dropped=True)
    _, rejections, tally = h.drain()
    assert rejections == [] and tally.events == {("quality", "erased"): 1}
    assert "C1" not in h.engine.customers and h.engine.is_erased("C1")
    assert h.engine.take_dirty() == ([], {})
    # a new customer record registers the id afresh, from nothing
    h.customer("C1", ["CELL-2"], t=T0 + 7 * HOUR)
    h.quality("C1", T0 + 7 * HOUR, mos=4.4)
    state = h.state("C1")
    assert state.score == 100.0 and state.penalties == {} and state.profile and state.fired == {}
    assert not h.engine.is_erased("C1")
    dirty, erased = h.engine.take_dirty()
    assert [s.customer_id for s in dirty] == ["C1"] and erased == {}


def test_a_tombstone_for_an_unknown_customer_is_still_reported() -> None:
    h = H()
    h.engine.process([h.record("customers", "C7", None, T0, partition=2)])
    assert h.engine.take_dirty() == ([], {"C7": 2})


# =========================================================================== state storage and restart


def test_customer_state_dump_and_load_round_trip() -> None:
    h = H()
    h.customer("C1", ["CELL-1", "SITE-1"], tier="platinum", consent=True, segment="business")
    h.raise_("ALM-1", "CELL-1", T0)
    h.crash("C1", T0 + MIN)
    state = h.state("C1")
    state.published = 61.5
    restored = CustomerState.load(state.dump())
    for name in CustomerState.__slots__:
        assert getattr(restored, name) == getattr(state, name), name
    assert restored.dump() == state.dump()
    assert isinstance(restored.resources, tuple)


def test_a_restarted_engine_does_not_fire_again() -> None:
    first = H()
    first.customer("C1", ["CELL-1", "SITE-1"])
    first.customer("C2", ["SITE-1"])
    alarms = [first.alarm_record("ALM-1", "CELL-1", T0), first.alarm_record("ALM-2", "SITE-1", T0 + MIN)]
    for record in alarms:
        assert first.engine.apply_fault(record) is None
    first.crash("C1", T0 + 2 * MIN)
    before = first.firings()
    assert fired(before)[:2] == [("outage_notice", "C1"), ("outage_notice", "C2")]
    dirty, _ = first.engine.take_dirty()
    stored = {s.customer_id: s.dump() for s in dirty}

    # a new worker: restores the customers from the changelog, replays the faults topic, goes live
    second = H(live=False)
    for raw in stored.values():
        second.engine.adopt(CustomerState.load(raw))
    for record in alarms:
        assert second.engine.apply_fault(record) is None
    second.engine.go_live()
    firings, _, tally = second.drain()
    assert firings == [] and tally.suppressed == {}
    # the replayed notifications once more, live: still nothing
    for record in alarms:
        second.engine.apply_fault(record)
    assert second.firings() == []
    # and the clears are told once, as they would have been
    second.clear("ALM-1", T0 + HOUR)
    second.clear("ALM-2", T0 + HOUR)
    firings = second.firings()
    assert fired(firings) == [("service_restored", "C1"), ("service_restored", "C2")]
    assert firings[0].faults == ["ALM-1", "ALM-2"]


def test_an_alarm_cleared_while_the_worker_was_down_is_told_on_restart() -> None:
    first = H()
    first.customer("C1", ["CELL-1"])
    raise_ = first.alarm_record("ALM-1", "CELL-1", T0)
    first.engine.apply_fault(raise_)
    [notice] = first.firings()
    stored = first.state("C1").dump()
    second = H(live=False)
    second.engine.adopt(CustomerState.load(stored))
    second.engine.apply_fault(raise_)
    second.engine.apply_fault(second.clear_record("ALM-1", T0 + HOUR))
    assert second.firings() == []  # not live yet
    second.engine.go_live()
    [restored] = second.firings()
    assert restored.rule.id == "service_restored" and restored.time == T0 + HOUR
    assert restored.episode == notice.episode


def test_adopting_a_customer_after_going_live_reconciles_it() -> None:
    first = H()
    first.customer("C1", ["CELL-1"])
    stored = first.state("C1").dump()
    second = H()
    second.raise_("ALM-1", "CELL-1", T0 + MIN)
    second.engine.adopt(CustomerState.load(stored))
    firings = second.firings()
    assert fired(firings) == [("outage_notice", "C1")] and firings[0].time == T0 + MIN


def test_release_forgets_the_customers_of_lost_partitions() -> None:
    h = H()
    h.engine.process([h.record("customers", "C1", {"customer_id": "C1", "resources": ["CELL-1"]}, T0, partition=1),
                      h.record("customers", "C2", {"customer_id": "C2", "resources": ["CELL-1"]}, T0, partition=2)])
    assert h.engine.release({1}) == ["C1"]
    assert set(h.engine.customers) == {"C2"} and h.engine.by_resource["CELL-1"] == ["C2"]
    assert [s.customer_id for s in h.engine.take_dirty()[0]] == ["C2"]


def test_not_live_no_customer_is_reconciled() -> None:
    h = H(live=False)
    h.customer("C1", ["CELL-1"])
    h.raise_("ALM-1", "CELL-1", T0)
    assert h.firings() == [] and h.state("C1").impacts == {}
    h.engine.go_live()
    firings = h.firings()
    assert fired(firings) == [("outage_notice", "C1")]
    assert firings[0].time == T0  # the alarm's own time when catching up


# =========================================================================== determinism


def scenario(h: H) -> list:
    h.customer("C1", ["CELL-1", "SITE-1"], tier="platinum", consent=True)
    h.customer("C2", ["CELL-1"], tier="bronze", consent=True)
    h.raise_("ALM-1", "CELL-1", T0)
    h.raise_("ALM-2", "SITE-1", T0 + MIN, "major")
    h.crash("C1", T0 + 2 * MIN)
    h.degrade("C2", T0 + 3 * MIN)
    h.clear("ALM-1", T0 + 5 * HOUR)
    h.clear("ALM-2", T0 + 6 * HOUR)
    h.quality("C2", T0 + 6 * HOUR + MIN, mos=3.0)
    return h.firings()


def test_the_same_input_twice_gives_the_same_firings_and_event_ids() -> None:
    first, second = scenario(H()), scenario(H())
    assert len(first) >= 6
    assert first == second
    events = [cloudevent(f, SOURCE) for f in first]
    assert events == [cloudevent(f, SOURCE) for f in second]
    assert len({e["id"] for e in events}) == len(events)
    assert {f.rule.id for f in first} >= {"outage_notice", "service_restored", "service_credit", "priority_care"}


# =========================================================================== input that cannot be used


def test_malformed_input_is_rejected_naming_the_field_and_processing_goes_on() -> None:
    h = H()
    good = h.quality_record("C1", T0 + HOUR, call_dropped=True)
    bad_mos = h.quality_record("C1", T0, mos=7.2)
    bad_service = h.record("quality", "C1", {"event_id": "q-x", "customer_id": "C1", "event_time": format_time(T0),
                                             "service": "fax", "metrics": {"mos": 3.0}}, T0)
    no_time = h.record("quality", "C1", {"event_id": "q-y", "customer_id": "C1", "service": "voice",
                                         "metrics": {"mos": 3.0}}, T0)
    not_json = h.record("quality", "C1", b"\xff\xfe not json", T0)
    bad_tier = h.record("customers", "C1", {"customer_id": "C1", "value_tier": "diamond"}, T0)
    h.engine.process([bad_mos, bad_service, no_time, not_json, bad_tier, good])
    firings, rejections, tally = h.drain()
    assert [r.record for r in rejections] == [bad_mos, bad_service, no_time, not_json, bad_tier]
    reasons = [r.reason for r in rejections]
    assert "metrics.mos" in reasons[0] and "7.2" in reasons[0]
    assert "service" in reasons[1] and "'fax'" in reasons[1]
    assert "event_time" in reasons[2]
    assert "JSON" in reasons[3]
    assert "value_tier" in reasons[4]
    assert tally.events == {("quality", "invalid"): 4, ("customers", "invalid"): 1, ("quality", "ok"): 1}
    assert h.state("C1").penalties == {"voice.call_dropped": 25.0}


def test_unusable_fault_notifications_are_reported_and_change_nothing() -> None:
    h = H()
    h.customer("C1", ["CELL-1"])
    reason = h.fault(T0, "AlarmStateChangeEvent", id="ALM-9", perceivedSeverity="critical")
    assert reason is not None and "alarmedObject.id" in reason and "'ALM-9'" in reason
    reason = h.engine.apply_fault(h.record("faults", None, {"eventType": "AlarmExplodedEvent", "event": {}}, T0))
    assert reason is not None and "AlarmExplodedEvent" in reason
    assert h.engine.apply_fault(h.record("faults", None, b"{", T0)) is not None
    assert h.engine.alarms.alarms == {} and h.firings() == []


def test_records_not_keyed_by_their_customer_are_forwarded_not_applied() -> None:
    h = H()
    unkeyed = h.record("quality", None, {"event_id": "q-1", "customer_id": "C1", "event_time": format_time(T0),
                                         "service": "voice", "metrics": {"call_dropped": True}}, T0)
    h.engine.process([unkeyed])
    assert h.engine.customers == {} and h.engine.take_forwards() == [("C1", unkeyed)]
    placed = copy.copy(unkeyed)
    placed.placed = True  # as read back from the repartition topic
    h.engine.process([placed])
    assert h.state("C1").penalties == {"voice.call_dropped": 25.0}
    assert h.engine.take_forwards() == []
