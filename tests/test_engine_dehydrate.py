"""Idle customers kept in their stored form behave exactly like live ones."""

from __future__ import annotations

import orjson
import pytest

from cxstream.domain.customer import CustomerState, event_id_hash
from cxstream.domain.engine import Engine, InputRecord
from cxstream.domain.rules import load_rules
from cxstream.outputs.cloudevents import cloudevent


def _records(n: int) -> list[InputRecord]:
    out = []
    for i in range(20):
        cid = f"C{i:02d}"
        out.append(InputRecord("customers", "c", i % 4, i, cid.encode(), orjson.dumps({
            "customer_id": cid, "value_tier": "gold", "marketing_consent": True,
            "resources": [f"CELL-{i % 3}"], "updated_at": "2026-11-22T08:00:00Z"}), 0.0))
    for k in range(n):
        cid = f"C{k % 20:02d}"
        minute = k // 20
        out.append(InputRecord("quality", "q", 0, 100 + k, cid.encode(), orjson.dumps({
            "event_id": f"q{k}", "customer_id": cid, "event_time": f"2026-11-22T09:{minute:02d}:00Z",
            "service": "voice", "metrics": {"call_dropped": k % 3 == 0, "mos": 1.5 + (k % 7) * 0.4}}), 0.0))
    return out


def _alarm(alarm_id: str, cell: str, at: str, clear: bool = False) -> InputRecord:
    alarm = {"id": alarm_id, "state": "cleared", "alarmClearedTime": at} if clear else {
        "id": alarm_id, "alarmedObject": {"id": cell}, "perceivedSeverity": "critical", "alarmRaisedTime": at}
    event = {"eventId": alarm_id + at, "eventTime": at,
             "eventType": "AlarmStateChangeEvent" if clear else "AlarmCreateEvent", "event": {"alarm": alarm}}
    return InputRecord("faults", "f", 0, 0, alarm_id.encode(), orjson.dumps(event), 0.0)


def _run(dehydrate: bool, **policy):
    engine = Engine(load_rules(), **policy)
    engine.go_live()
    records = _records(600)
    fired = []
    for start in range(0, len(records), 50):
        engine.process(records[start:start + 50])
        if start == 300:
            engine.apply_fault(_alarm("ALM-1", "CELL-1", "2026-11-22T09:20:00Z"))
        if start == 500:
            engine.apply_fault(_alarm("ALM-1", "CELL-1", "2026-11-22T09:27:00Z", clear=True))
        firings, _, _ = engine.drain()
        fired += [cloudevent(f, "urn:test") for f in firings]
        dirty, _ = engine.take_dirty()
        if dehydrate:
            engine.dehydrate_idle([s.customer_id for s in dirty[:3]])
    states = {cid: engine.state(cid).dump() for cid in sorted(engine.customers)}
    return fired, states, engine


@pytest.mark.parametrize("policy", [{}, {"idle_flushes": 2, "hot_max": 4}, {"idle_flushes": 5},
                                    {"idle_flushes": 100, "hot_max": 2}, {"hot_max": 0}])
def test_dehydrated_customers_give_the_same_results(policy):
    fired_live, states_live, _ = _run(dehydrate=False)
    fired_stored, states_stored, engine = _run(dehydrate=True, **policy)
    assert fired_live == fired_stored
    assert states_live == states_stored
    assert any(f["type"].endswith("outage_notice") for f in fired_live)


def test_idle_customers_are_kept_as_bytes_until_used():
    _, _, engine = _run(dehydrate=True)
    engine.dehydrate_idle([])
    assert all(isinstance(v, bytes) for v in engine.customers.values())
    state = engine.state("C05")
    assert isinstance(state, CustomerState) and isinstance(engine.customers["C05"], CustomerState)
    gone = engine.release({0, 1, 2, 3})
    assert len(gone) == 20 and not engine.customers and not engine.by_resource


def test_a_customer_changed_after_the_flush_took_its_dirty_set_stays_live():
    engine = Engine(load_rules())
    engine.go_live()
    records = _records(40)
    engine.process(records[:30])
    dirty, _ = engine.take_dirty()
    stored = {s.customer_id: s.dump() for s in dirty}  # what the flush writes
    engine.process(records[30:])  # the stream goes on while the flush awaits the broker
    changed = set(engine.dirty)
    assert changed
    engine.dehydrate_idle([], lambda customer_id, _: stored.get(customer_id))  # this flush's own customers are idle by now
    for customer_id in changed:
        assert isinstance(engine.customers[customer_id], CustomerState), "a change in flight was put away"
    assert engine.state(next(iter(changed))).dump() not in stored.values()


def _in_use(engine: Engine) -> set[str]:
    return {c for c, v in engine.customers.items() if isinstance(v, CustomerState)}


def test_a_customer_stays_in_use_until_idle_for_idle_flushes():
    engine = Engine(load_rules(), idle_flushes=3)
    engine.go_live()
    records = _records(40)
    engine.process(records)
    dirty, _ = engine.take_dirty()
    engine.dehydrate_idle([s.customer_id for s in dirty])  # flush 1: all just written
    everyone = set(engine.customers)
    engine.process([r for r in records if r.source == "quality" and r.key == b"C07"][:1])
    engine.take_dirty()
    engine.dehydrate_idle(["C07"])  # flush 2: C07 used again
    assert _in_use(engine) == everyone
    engine.dehydrate_idle([])  # flush 3
    assert _in_use(engine) == everyone
    engine.dehydrate_idle([])  # flush 4: three flushes since the others were last used
    assert _in_use(engine) == {"C07"} and engine.in_use == 1
    engine.dehydrate_idle([])
    assert _in_use(engine) == set() and engine.in_use == 0


def test_beyond_hot_max_the_least_recently_used_are_put_away_but_never_a_change_in_flight():
    engine = Engine(load_rules(), idle_flushes=100, hot_max=5)
    engine.go_live()
    records = _records(40)
    engine.process(records[:20])  # the 20 customer records
    dirty, _ = engine.take_dirty()
    engine.dehydrate_idle([s.customer_id for s in dirty])
    assert engine.in_use == 5
    recent = [f"C{i:02d}" for i in range(12, 20)]
    for cid in recent:
        engine.state(cid)
    engine.process([InputRecord("customers", "c", 0, 99, b"C19", orjson.dumps({
        "customer_id": "C19", "value_tier": "silver", "resources": ["CELL-1"]}), 0.0)])  # in flight
    engine.dehydrate_idle(recent[-3:])
    assert engine.in_use == 5 and "C19" in _in_use(engine)
    assert _in_use(engine) <= set(recent)


def test_hot_max_holds_between_batches_not_only_at_a_flush():
    """A burst of new customers must not make them all objects at once (the
    memory they free afterwards stays with the process)."""
    engine = Engine(load_rules(), idle_flushes=100, hot_max=4)
    engine.go_live()
    records = _records(60)
    for start in range(0, len(records), 10):
        engine.process(records[start:start + 10])
        assert engine.in_use <= 4
    assert len(engine.customers) == 20
    assert sum(isinstance(v, bytes) for v in engine.customers.values()) == 16


def test_the_flush_writes_customers_put_away_with_a_change_in_flight():
    """Customers put away with an unflushed change are read from their stored
    form by the flush, give the same documents, and are not brought back into use."""
    live = Engine(load_rules())
    bounded = Engine(load_rules(), idle_flushes=100, hot_max=3)
    for engine in (live, bounded):
        engine.go_live()
        engine.process(_records(100))
    ids, _ = bounded.take_dirty_ids()
    expected, _ = live.take_dirty()
    assert ids == [s.customer_id for s in expected] and len(ids) == 20
    assert bounded.in_use <= 3
    for state in expected:
        view, in_use = bounded.flush_view(state.customer_id)
        assert view.dump() == state.dump()
        assert in_use == isinstance(bounded.customers[state.customer_id], CustomerState)
        if not in_use:
            view.published = 42.0
            bounded.put_back(state.customer_id, view.dump())
            assert CustomerState.load(bounded.customers[state.customer_id]).published == 42.0
    assert bounded.in_use <= 3


def test_put_away_prefers_customers_not_used_since_the_last_flush():
    engine = Engine(load_rules(), idle_flushes=100, hot_max=10)
    engine.go_live()
    records = _records(0)  # the 20 customer records
    engine.process(records[:10])
    dirty, _ = engine.take_dirty()
    engine.dehydrate_idle([s.customer_id for s in dirty])  # C00..C09 last used at flush 0 -> 1
    engine.dehydrate_idle([])  # a flush later: C00..C09 not used since
    engine.process(records[:1])  # C00 used (changed) now
    engine.process(records[10:19])  # nine new ones: nine over hot_max
    assert _in_use(engine) == {"C00"} | {f"C{i:02d}" for i in range(10, 19)}


def test_stored_forms_of_earlier_formats_load_and_forget_their_recent_event_ids():
    state = CustomerState("C01", 2)
    state.remember(event_id_hash("q-1"))
    state.segment, state.resources = "consumer", ("CELL-1",)
    current = CustomerState.load(state.dump())
    assert current.recent == [event_id_hash("q-1")] and current.seen(event_id_hash("q-1"))
    older = orjson.loads(state.dump())
    older[0] = 2  # format 2 stored other hashes of the same ids
    loaded = CustomerState.load(orjson.dumps(older))
    assert loaded.recent == [] and loaded.partition == 2 and loaded.resources == ("CELL-1",)
    older[0] = 4
    with pytest.raises(ValueError, match="format 4"):
        CustomerState.load(orjson.dumps(older))


def test_event_id_hash_is_stable_and_tells_apart_a_customers_recent_ids():
    assert event_id_hash("q-1") == event_id_hash("q-1") == 7909236632721621200  # stored: must not change between releases
    ids = [f"m-7-{k}" for k in range(100_000)] + [f"{k:08x}-uuid" for k in range(100_000)]
    assert len({event_id_hash(i) for i in ids}) == len(ids)
    assert all(0 <= event_id_hash(i) < 2 ** 63 for i in ids[:1000])


def test_customers_without_entries_share_one_empty_mapping_that_nobody_writes():
    from cxstream.domain.customer import NO_ENTRIES

    fired, states, engine = _run(dehydrate=True, idle_flushes=100, hot_max=3)
    assert NO_ENTRIES == {}  # penalties, impacts and firings all happened in the run
    assert any(f["type"].endswith("outage_notice") for f in fired)
    loaded = [engine.state(cid) for cid in sorted(engine.customers)]
    assert any(s.fired is not NO_ENTRIES and s.fired for s in loaded)
    assert any(s.penalties is not NO_ENTRIES and s.penalties for s in loaded)
    fresh = CustomerState("NEW", 0)
    assert fresh.impacts is fresh.fired is fresh.penalties is fresh.fault_levels is NO_ENTRIES
    assert CustomerState.load(fresh.dump()).fired is NO_ENTRIES
