"""Property-based (hypothesis): the engine with the shipped rules, and every
output encoder, driven with inputs that pass the models but sit at their edges.

Times near 1970, near 9999 and around the worker's future bound, with any UTC
offset; huge strings; hundreds of alarms on one resource; customers on many
resources; alarms raised, changed and cleared in odd orders (and never raised);
tombstones interleaved; flushes and restarts in between.

Properties: nothing escapes the engine *and* nothing inside it fails (an
isolated exception would be a rejection "could not be processed", counted in
``Tally.errors``: there must be none); every CloudEvent, score document and
dead letter encodes to JSON under 1,000,000 bytes (the broker's default limit);
the bounds hold (impacting alarms per resource, alarms per episode, no clock
past the future bound); an erased id stays erased until a customer record
registers it again.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cxstream.domain.customer import CustomerState, is_erased_marker, read_erased_marker
from cxstream.domain.engine import Engine, InputRecord
from cxstream.domain.limits import Limits
from cxstream.domain.rules import load_rules
from cxstream.models.common import parse_time
from cxstream.outputs import cloudevents, deadletters, scores

SOURCE = "urn:cxstream:property"
NOW = parse_time("2026-11-22T12:00:00Z")  # the worker's clock in this test
NOW_DT = datetime(2026, 11, 22, 12, 0, 0)
LIMIT = 1_000_000
RULES = load_rules()
LIMITS = Limits()

# --------------------------------------------------------------------------- strategies

offsets = st.one_of(st.none(), st.sampled_from([-1439, -60, 0, 330, 1439]), st.integers(-1439, 1439))
local_times = st.one_of(
    st.datetimes(datetime(1970, 1, 1), datetime(1970, 1, 2, 23, 59, 59)),  # the start of the calendar
    st.datetimes(datetime(9999, 12, 30), datetime(9999, 12, 31, 23, 59, 59)),  # its end
    st.datetimes(NOW_DT - timedelta(hours=2), NOW_DT + timedelta(seconds=1000)),  # around the future bound
    st.datetimes(NOW_DT - timedelta(days=40), NOW_DT),  # the recent past
)


@st.composite
def times(draw, local_times=local_times) -> str:
    """An RFC 3339 text with Z or an offset (the offset moves the instant: near the
    calendar's ends it may leave it, which the models and the engine must refuse)."""
    local = draw(local_times)
    text = local.strftime("%Y-%m-%dT%H:%M:%S")
    if draw(st.booleans()):
        text += "." + str(draw(st.integers(0, 999_999))).rjust(6, "0")[: draw(st.integers(1, 6))]
    offset = draw(offsets)
    if offset is None:
        return text + "Z"
    sign = "-" if offset < 0 else "+"
    return f"{text}{sign}{abs(offset) // 60:02d}:{abs(offset) % 60:02d}"


usable_times = times(st.datetimes(NOW_DT - timedelta(days=2), NOW_DT - timedelta(days=1)))
huge = st.sampled_from(["x" * 10_000, "é" * 5_000, "\u0001\u001f\"\\" * 2_500, "🛰" * 3_000])
ids = st.one_of(st.sampled_from(["C1", "C2", "C3", "C4"]), huge.map(lambda s: "C" + s))
alarm_ids = st.one_of(st.sampled_from([f"ALM-{n}" for n in range(8)]), st.integers(0, 5), huge)
resources = st.one_of(st.sampled_from(["CELL-1", "CELL-2", "SITE-1", "OLT-1"]), huge.map(lambda s: "R" + s))
severities = st.sampled_from(["critical", "major", "minor", "warning", "indeterminate", "CRITICAL", "cleared"])
metrics = st.fixed_dictionaries({"mos": st.floats(1, 5)}, optional={
    "call_dropped": st.booleans(), "call_setup_failed": st.booleans(),
    "latency_ms": st.one_of(st.floats(0, 1e9), st.just(1.7e308)), "jitter_ms": st.floats(0, 1e6),
    "packet_loss_pct": st.floats(0, 100), "throughput_mbps": st.floats(0, 1e6),
    "video_stall_ratio": st.floats(0, 1), "message_failed": st.booleans(),
})

customer_op = st.tuples(
    st.just("customer"), ids,
    st.one_of(st.lists(resources, max_size=6), st.just([f"R-{n}" for n in range(300)])),  # many resources
    st.sampled_from(["platinum", "gold", "silver", "bronze", None]), st.booleans(),
    st.one_of(st.none(), st.sampled_from(["consumer", "business"]), huge), st.one_of(st.none(), times()))
tombstone_op = st.tuples(st.just("tombstone"), ids)
quality_op = st.tuples(st.just("quality"), ids, st.one_of(st.sampled_from(["q-1", "q-2"]), st.uuids().map(str)),
                       times(), st.sampled_from(["voice", "data", "video", "messaging"]), metrics,
                       st.one_of(st.none(), resources), st.booleans())
raise_op = st.tuples(st.just("raise"), alarm_ids, resources, severities, st.one_of(usable_times, times()),
                     st.booleans(),
                     st.one_of(st.none(), st.booleans()), st.lists(alarm_ids, max_size=3))
change_op = st.tuples(st.just("change"), alarm_ids,
                      st.sampled_from(["AlarmAttributeValueChangeEvent", "AlarmStateChangeEvent"]),
                      st.fixed_dictionaries({}, optional={
                          "perceivedSeverity": severities, "state": st.sampled_from(["raised", "updated", "cleared"]),
                          "alarmChangedTime": times(), "alarmRaisedTime": times(), "serviceAffecting": st.booleans(),
                          "plannedOutageIndicator": st.sampled_from(["InService", "OutOfService"]),
                          "alarmedObject": resources.map(lambda r: {"id": r})}),
                      st.one_of(st.none(), times()))
clear_op = st.tuples(st.just("clear"), st.lists(alarm_ids, min_size=1, max_size=4), st.one_of(usable_times, times()),
                     st.sampled_from(["state", "delete", "clearAlarms"]))
burst_op = st.tuples(st.just("burst"), st.sampled_from(["CELL-1", "SITE-1"]), st.integers(50, 260),
                     st.one_of(usable_times, times()))
garbage_op = st.tuples(st.just("garbage"), st.sampled_from(["quality", "customers", "faults"]),
                       st.one_of(st.binary(max_size=64), st.just(b"\x00" * 1500), st.just(b"{" * 3000)))
simple_op = st.sampled_from([("flush",), ("prune",), ("restart",)])
operations = st.lists(st.one_of(customer_op, tombstone_op, quality_op, quality_op, raise_op, raise_op, change_op,
                                clear_op, burst_op, garbage_op, simple_op), min_size=1, max_size=40)


# --------------------------------------------------------------------------- driving the engine


class Drive:
    def __init__(self) -> None:
        self.engine = self._engine()
        self.offset = 0
        self.faults: list[InputRecord] = []  # the faults topic so far (a restart re-reads it)
        self.erased: set[str] = set()  # ids tombstoned and not registered again since
        self.sizes: list[int] = []
        # two customers on the resources the alarms below favour
        self.apply(("customer", "C1", ["CELL-1", "SITE-1"], "gold", True, "consumer", None))
        self.apply(("customer", "C2", ["CELL-1"], "platinum", False, None, None))

    @staticmethod
    def _engine() -> Engine:
        engine = Engine(RULES, hot_max=50, limits=LIMITS, clock=lambda: NOW)
        engine.go_live()
        return engine

    def record(self, source: str, key, value, timestamp: float = NOW) -> InputRecord:
        self.offset += 1
        if isinstance(key, str):
            key = key.encode()
        if isinstance(value, (dict, list)):
            value = orjson.dumps(value)
        return InputRecord(source, f"cx.{source}", self.offset % 4, self.offset, key, value, timestamp)

    def fault(self, doc) -> None:
        record = self.record("faults", None, doc)
        self.faults.append(record)
        reason = self.engine.apply_fault(record)
        if reason is not None:
            self.letter(record, reason)

    def customers(self, record: InputRecord) -> None:
        self.engine.process([record])
        for customer_id, forwarded in self.engine.take_forwards():
            self.engine.process([InputRecord(forwarded.source, forwarded.topic, forwarded.partition, forwarded.offset,
                                             customer_id.encode(), forwarded.value, forwarded.timestamp, True)])

    def apply(self, op: tuple) -> None:
        kind = op[0]
        if kind == "customer":
            _, cid, res, tier, consent, segment, updated = op
            doc = {"customer_id": cid, "resources": res, "value_tier": tier, "marketing_consent": consent,
                   "segment": segment}
            if updated is not None:
                doc["updated_at"] = updated
            self.customers(self.record("customers", cid, doc))
            if cid in self.engine.customers:
                self.erased.discard(cid)
        elif kind == "tombstone":
            self.customers(self.record("customers", op[1], None))
            self.erased.add(op[1])
        elif kind == "quality":
            _, cid, event_id, when, service, values, resource, keyed = op
            doc = {"event_id": event_id, "customer_id": cid, "event_time": when, "service": service, "metrics": values}
            if resource is not None:
                doc["resource_id"] = resource
            self.customers(self.record("quality", cid if keyed else None, doc))
            if cid in self.erased:
                assert cid not in self.engine.customers, "a quality record brought an erased customer back"
        elif kind == "raise":
            _, alarm_id, resource, severity, raised, planned, affecting, related = op
            alarm = {"id": alarm_id, "alarmedObject": {"id": resource}, "perceivedSeverity": severity,
                     "alarmRaisedTime": raised, "state": "raised",
                     "correlatedAlarm": [{"id": r} for r in related]}
            if planned:
                alarm["plannedOutageIndicator"] = "OutOfService"
            if affecting is not None:
                alarm["serviceAffecting"] = affecting
            self.fault({"eventType": "AlarmCreateEvent", "eventTime": raised, "event": {"alarm": alarm}})
        elif kind == "change":
            _, alarm_id, event_type, fields, event_time = op
            doc = {"eventType": event_type, "event": {"alarm": {"id": alarm_id, **fields}}}
            if event_time is not None:
                doc["eventTime"] = event_time
            self.fault(doc)
        elif kind == "clear":
            _, cleared, when, form = op
            if form == "clearAlarms":
                self.fault({"eventType": "ClearAlarmsCreateEvent", "eventTime": when,
                            "event": {"clearAlarms": {"alarmClearedTime": when,
                                                      "clearedAlarm": [{"id": a} for a in cleared]}}})
            else:
                for alarm_id in cleared:
                    event_type = "AlarmDeleteEvent" if form == "delete" else "AlarmStateChangeEvent"
                    self.fault({"eventType": event_type, "eventTime": when,
                                "event": {"alarm": {"id": alarm_id, "state": "cleared", "alarmClearedTime": when}}})
        elif kind == "burst":  # hundreds of alarms on one resource
            _, resource, count, when = op
            for n in range(count):
                self.fault({"id": f"B{self.offset}-{n}", "alarmedObject": {"id": resource},
                            "perceivedSeverity": "major", "alarmRaisedTime": when})
        elif kind == "garbage":
            _, source, value = op
            record = self.record(source, "C1", value)
            if source == "faults":
                self.fault(value)
            else:
                self.customers(record)
        elif kind == "flush":
            self.flush()
        elif kind == "prune":
            self.engine.prune_alarms()
        elif kind == "restart":
            self.restart()
        self.outputs()

    # --- what the stream layer would produce -------------------------------
    def letter(self, record: InputRecord, reason: str) -> None:
        assert not reason.startswith("could not be processed"), reason
        self.fits(deadletters.encode(record, reason))

    def fits(self, raw: bytes) -> None:
        orjson.loads(raw)
        assert len(raw) < LIMIT
        self.sizes.append(len(raw))

    def outputs(self) -> None:
        engine = self.engine
        firings, rejections, tally = engine.drain()
        assert not tally.errors, tally.errors
        for firing in firings:
            self.fits(cloudevents.encode(firing, SOURCE))
            assert len(firing.faults) <= LIMITS.max_episode_alarms
        for rejection in rejections:
            self.letter(rejection.record, rejection.reason)
        alarms = engine.alarms
        assert all(len(ids) <= LIMITS.max_alarms_per_resource for ids in alarms.impacting_by_resource.values())
        assert alarms.latest_time <= NOW + LIMITS.max_future_s

    def flush(self) -> None:
        engine = self.engine
        ids, erased = engine.take_dirty_ids()
        for customer_id in ids:
            state, in_use = engine.flush_view(customer_id)
            if state is None:
                continue
            self.fits(scores.encode(scores.score_document(engine, state)))
            assert state.clock <= NOW + LIMITS.max_future_s and state.quality_clock <= NOW + LIMITS.max_future_s
            if state.episode is not None:
                assert len(state.episode["alarms"]) <= LIMITS.max_episode_alarms
            stored = state.dump()
            assert CustomerState.load(stored).dump() == stored
            if not in_use:
                engine.put_back(customer_id, stored)
        for customer_id in erased:
            marker = engine.erased_marker(customer_id)
            assert marker is None or is_erased_marker(marker)
        engine.dehydrate_idle(ids)

    def restart(self) -> None:
        """A new worker: its customers and erased markers from the changelog, the faults topic re-read."""
        old, new = self.engine, self._engine()
        new.live = False
        for customer_id, value in old.customers.items():
            raw = value if value.__class__ is bytes else value.dump()
            new.adopt(CustomerState.load(raw), raw)
        for customer_id in self.erased:
            marker = old.erased_marker(customer_id)
            if marker is not None:
                new.adopt_erased(customer_id, *read_erased_marker(marker))
        for record in self.faults:
            new.apply_fault(record)
        new.go_live()
        # (what the restart sends again is another test's business; that nothing failed is this one's)
        assert not new.drain()[2].errors
        self.engine = new


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(operations)
def test_no_input_at_the_edges_escapes_or_breaks_the_engine_and_every_output_fits(ops) -> None:
    drive = Drive()
    for op in ops:
        drive.apply(op)
    drive.flush()
    drive.outputs()


@pytest.mark.parametrize("source", ["quality", "customers", "faults"])
def test_the_largest_usable_record_of_control_bytes_is_a_dead_letter_that_fits(source) -> None:
    """A record just within CXSTREAM_MAX_RECORD_BYTES, all control bytes (not JSON): its dead
    letter escapes each byte to six characters, so the encoder must shorten it."""
    drive = Drive()
    value = b"\x01" * LIMITS.max_record_bytes
    record = drive.record(source, "C1", value)
    if source == "faults":
        reason = drive.engine.apply_fault(record)
    else:
        drive.engine.process([record])
        [rejection] = drive.engine.drain()[1]
        reason = rejection.reason
    raw = deadletters.encode(record, reason)
    orjson.loads(raw)
    assert len(raw) < LIMIT, f"a dead letter of {len(raw):,} bytes"
    assert orjson.loads(raw)["payload_truncated"] is True
