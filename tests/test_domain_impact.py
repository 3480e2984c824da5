"""Fault impact (partials that add up across workers), the 24 h trend and
reasons in plain words: pure domain logic, no broker."""

from __future__ import annotations

from test_domain_engine import DAY, HOUR, MIN, T0, H

from cxstream.domain import trend
from cxstream.domain.customer import CustomerState
from cxstream.domain.impact import combine, impact_order
from cxstream.outputs.scores import care_view


def partials(h: H) -> list[dict]:
    return [p for _, _, p in h.engine.impact.take_changed() if p is not None]


def site_with_customers(h: H, partition_of: dict[str, int], tiers: dict[str, str]) -> None:
    for cid, partition in partition_of.items():
        h.engine.process([h.record("customers", cid, {
            "customer_id": cid, "segment": "business" if cid.endswith("b") else "consumer",
            "value_tier": tiers.get(cid, "bronze"), "marketing_consent": True,
            "resources": ["CELL-1", "SITE-1"], "updated_at": "2026-11-22T08:00:00Z"}, T0, partition=partition)])


def test_partials_of_two_workers_add_up_to_every_impacted_customer():
    # two engines stand for two workers, each owning some of the partitions
    a, b = H(), H()
    site_with_customers(a, {"C1": 0, "C2b": 0, "C3": 1}, {"C1": "platinum", "C2b": "gold"})
    site_with_customers(b, {"C4": 2, "C5": 3}, {"C4": "gold"})
    b.customer("C6", ["CELL-9"])  # elsewhere: not impacted
    for h in (a, b):
        h.raise_("ALM-1", "SITE-1", T0 + 10 * MIN)
    found = partials(a) + partials(b)
    assert sorted((p["alarm_id"], p["partition"], p["total"]) for p in found) == [
        ("ALM-1", 0, 2), ("ALM-1", 1, 1), ("ALM-1", 2, 1), ("ALM-1", 3, 1)]
    document = combine(a.engine.alarms.get("ALM-1"), found)
    assert document["impacted"] == {
        "total": 5, "by_tier": {"platinum": 1, "gold": 2, "silver": 0, "bronze": 2},
        "by_segment": {"business": 1, "consumer": 4}}
    assert document["active"] and document["cleared_at"] is None and document["resource_id"] == "SITE-1"
    scores = [h.engine.customers[c].score for h, cs in ((a, ("C1", "C2b", "C3")), (b, ("C4", "C5"))) for c in cs]
    assert document["mean_score"] == round(sum(scores) / 5, 1) < 100
    # nothing changed: nothing to publish again
    assert a.engine.impact.take_changed() == []


def test_a_clear_keeps_the_final_totals_and_a_move_does_not():
    h = H()
    site_with_customers(h, {"C1": 0, "C2": 0}, {})
    h.customer("C3", ["CELL-2"])
    h.raise_("ALM-1", "SITE-1", T0 + 10 * MIN)
    h.raise_("ALM-2", "CELL-2", T0 + 10 * MIN)
    partials(h)
    # C3 moves away from the faulty cell while the fault is active: no longer counted
    h.customer("C3", ["CELL-7"])
    assert h.engine.impact.take_changed() == [("ALM-2", 0, None)]
    h.clear("ALM-1", T0 + 55 * MIN)
    final = combine(h.engine.alarms.get("ALM-1"), [h.engine.impact.partial("ALM-1", 0)])
    assert final["impacted"]["total"] == 2
    assert not final["active"] and final["duration_s"] == 45 * MIN
    assert h.engine.impact.customers("ALM-1") == [(0, "C1"), (0, "C2")]


def test_a_tombstone_a_release_and_a_reraise_change_the_partials():
    h = H()
    site_with_customers(h, {"C1": 0, "C2": 1}, {})
    h.raise_("ALM-1", "SITE-1", T0)
    partials(h)
    h.engine.process([h.record("customers", "C1", None, T0 + MIN)])  # tombstone
    assert h.engine.impact.take_changed() == [("ALM-1", 0, None)]
    h.engine.release({1})  # partition 1 moved: its next owner writes its partial
    assert h.engine.impact.take_changed() == []
    assert h.engine.impact.customers("ALM-1") == []
    # pruned alarms are erased from the partials
    h2 = H()
    site_with_customers(h2, {"C1": 0}, {})
    h2.raise_("ALM-1", "SITE-1", T0)
    h2.clear("ALM-1", T0 + HOUR)
    partials(h2)
    h2.raise_("ALM-9", "CELL-X", T0 + 2 * DAY)  # moves the registry's clock a day on
    h2.engine.prune_alarms()
    assert h2.engine.impact.take_changed() == [("ALM-1", 0, None)]


def test_impact_order_puts_valuable_customers_first():
    def doc(alarm_id, platinum, gold, total, active=True):
        return {"alarm_id": alarm_id, "active": active, "raised_at": "2026-11-22T10:00:00Z",
                "impacted": {"total": total, "by_tier": {"platinum": platinum, "gold": gold}}}
    documents = [doc("many-bronze", 0, 0, 900), doc("one-platinum", 1, 0, 3), doc("gold", 0, 5, 10),
                 doc("cleared", 9, 9, 99, active=False)]
    assert [d["alarm_id"] for d in sorted(documents, key=impact_order)] == [
        "one-platinum", "gold", "many-bronze", "cleared"]


def test_trend_folds_close_changes_keeps_the_dip_and_stays_bounded():
    t: list[int] = []
    trend.record(t, 1000, 100.0, 100.0)
    assert t == []  # never left 100: nothing stored
    trend.record(t, 1000, 100.0, 80.2)
    assert t == [1000, 100, 1000, 80]
    trend.record(t, 1002, 80.2, 60.0)  # within the step: folds in, lowest kept
    trend.record(t, 1003, 60.0, 70.0)
    assert t == [1000, 100, 1000, 60]
    trend.record(t, 1010, 70.0, 70.4)
    assert t[-2:] == [1010, 70]
    trend.record(t, 1020, 70.4, 70.0)  # the same rounded score: no new point
    assert len(t) == 6
    for i in range(200):  # a very busy day
        trend.record(t, 1100 + 7 * i, 50.0, float(i % 50))
    assert len(t) <= 2 * trend.POINTS
    minutes = t[0::2]
    assert minutes == sorted(minutes) and minutes[-1] == 1100 + 7 * 199
    assert 0 in t[1::2]  # the dips survive the merging
    trend.record(t, minutes[-1] + 3 * 24 * 60, 10.0, 90.0)  # days later: the old points go
    assert t[0::2][-2] >= minutes[-1] and len(t) == 4


def test_state_with_trend_and_incidents_round_trips_and_format_1_still_loads():
    h = H()
    h.customer("C1", ["CELL-1"])
    h.quality("C1", T0, call_dropped=True)
    state = h.state("C1")
    assert state.trend and state.incidents
    again = CustomerState.load(state.dump())
    assert (again.trend, again.incidents) == (state.trend, state.incidents)
    import orjson
    old = orjson.loads(state.dump())[:-2]
    old[0] = 1
    restored = CustomerState.load(orjson.dumps(old))
    assert restored.trend is None and restored.incidents is None and restored.score == state.score


def test_care_view_says_what_went_wrong_in_plain_words():
    h = H()
    h.customer("C1", ["CELL-0042", "SITE-7"])
    for minute in (5, 7, 9):
        h.engine.process([h.record("quality", "C1", {
            "event_id": f"q{minute}", "customer_id": "C1", "event_time": f"2026-11-22T10:{minute:02d}:00Z",
            "service": "voice", "resource_id": "CELL-0042", "metrics": {"call_dropped": True}}, T0)])
    h.engine.process([h.record("quality", "C1", {
        "event_id": "d1", "customer_id": "C1", "event_time": "2026-11-22T10:12:00Z", "service": "data",
        "metrics": {"latency_ms": 900}}, T0)])
    h.raise_("ALM-77", "SITE-7", T0 + 20 * MIN, severity="major")
    view = care_view(h.engine, h.engine.state("C1"))
    texts = [e["text"] for e in view["explanations"]]
    assert "3 dropped calls on CELL-0042 since 10:05 UTC" in texts
    assert "1 data session with high latency since 10:12 UTC" in texts
    assert "Major fault on SITE-7 (alarm ALM-77) since 10:20 UTC" in texts
    assert view["faults"] == [{"alarm_id": "ALM-77", "resource_id": "SITE-7", "severity": "major",
                               "planned": False, "since": "2026-11-22T10:20:00Z"}]
    assert [(t["trigger"], t["channel"]) for t in view["recent_triggers"]][:1] == [("outage_notice", "care")]
    scores = [p["score"] for p in view["history"]]
    assert scores[0] == 100 and min(scores) < 70 and view["history"][-1]["time"] == "2026-11-22T10:20:00Z"
    # hours later the points have faded: counting starts afresh
    h.clear("ALM-77", T0 + HOUR)
    h.engine.process([h.record("quality", "C1", {
        "event_id": "late", "customer_id": "C1", "event_time": "2026-11-22T18:00:00Z", "service": "voice",
        "resource_id": "CELL-0043", "metrics": {"call_dropped": True}}, T0)])
    texts = [e["text"] for e in care_view(h.engine, h.engine.state("C1"))["explanations"]]
    assert "1 dropped call on CELL-0043 since 18:00 UTC" in texts


def test_a_healthy_customer_stores_no_trend_and_no_incidents():
    h = H()
    h.customer("C1", ["CELL-1"])
    h.quality("C1", T0, mos=4.4)
    state = h.state("C1")
    assert state.trend is None and state.incidents is None
    stored = state.dump()
    assert stored.endswith(b"]") and len(orjson_loads(stored)) == 1 + 19  # the two fields left out
    again = CustomerState.load(stored)
    assert again.trend is None and again.incidents is None and again.dump() == stored


def orjson_loads(raw: bytes):
    import orjson
    return orjson.loads(raw)


def test_customers_on_one_partition_are_that_partitions_share_of_all():
    h = H()
    site_with_customers(h, {"C1": 0, "C2": 1, "C3": 1}, {})
    h.raise_("ALM-1", "SITE-1", T0)
    assert h.engine.impact.customers_on("ALM-1", 1) == ["C2", "C3"]
    assert h.engine.impact.customers_on("ALM-1", 2) == [] == h.engine.impact.customers_on("ALM-9", 0)
    assert [c for p, c in h.engine.impact.customers("ALM-1") if p == 1] == ["C2", "C3"]
