"""The synthetic operator (records, scenario, determinism) and the producer."""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter, defaultdict
from datetime import datetime

import orjson
import pytest

from cxstream.ops.topics import ensure_topics
from cxstream.simulate.operator import DEFAULT_START, SimRecord, SyntheticOperator
from cxstream.simulate.producer import ProduceError, produce
from cxstream.simulate.reader import read_topic

# ----------------------------------------------------------------- contract checks
# Written from CONTRACT.md directly (not via cxstream.models) on purpose.

SERVICES = {"voice", "data", "video", "messaging"}
BOOL_METRICS = {"call_dropped", "call_setup_failed", "message_failed"}
RANGES = {
    "mos": (1, 5),
    "latency_ms": (0, float("inf")),
    "jitter_ms": (0, float("inf")),
    "packet_loss_pct": (0, 100),
    "throughput_mbps": (0, float("inf")),
    "video_stall_ratio": (0, 1),
}
SEVERITIES = {"critical", "major", "minor", "warning", "indeterminate", "cleared"}
FULL_EVENTS = {"AlarmCreateEvent"}
PARTIAL_EVENTS = {"AlarmAttributeValueChangeEvent", "AlarmStateChangeEvent", "AlarmDeleteEvent"}
CLEAR_EVENTS = {
    "ClearAlarmCreateEvent": "clearAlarm", "ClearAlarmStateChangeEvent": "clearAlarm",
    "ClearAlarmsCreateEvent": "clearAlarms", "ClearAlarmsStateChangeEvent": "clearAlarms",
}
TIERS = {"platinum", "gold", "silver", "bronze"}


def rfc3339(value) -> datetime:
    assert isinstance(value, str) and ("T" in value) and (value.endswith("Z") or "+" in value[10:])
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def check_quality(key: bytes | None, raw: bytes) -> dict:
    value = orjson.loads(raw)
    assert set(value) <= {"event_id", "customer_id", "event_time", "service", "resource_id", "metrics"}
    for field in ("event_id", "customer_id", "event_time", "service", "metrics"):
        assert field in value, field
    assert isinstance(value["event_id"], str) and value["event_id"]
    assert isinstance(value["customer_id"], str) and key == value["customer_id"].encode()
    rfc3339(value["event_time"])
    assert value["service"] in SERVICES
    if "resource_id" in value:
        assert isinstance(value["resource_id"], str)
    metrics = value["metrics"]
    assert isinstance(metrics, dict) and metrics
    for name, metric in metrics.items():
        if name in BOOL_METRICS:
            assert isinstance(metric, bool), name
        else:
            low, high = RANGES[name]
            assert isinstance(metric, (int, float)) and not isinstance(metric, bool), name
            assert low <= metric <= high, (name, metric)
    return value


def check_fault(key: bytes | None, raw: bytes) -> dict:
    envelope = orjson.loads(raw)
    for field in ("eventId", "eventTime", "eventType", "event"):
        assert field in envelope, field
    rfc3339(envelope["eventTime"])
    kind = envelope["eventType"]
    if kind in FULL_EVENTS | PARTIAL_EVENTS:
        alarm = envelope["event"]["alarm"]
        assert isinstance(alarm["id"], (str, int)) and not isinstance(alarm["id"], bool)
        assert key == str(alarm["id"]).encode()
        if kind in FULL_EVENTS:
            assert isinstance(alarm["alarmedObject"]["id"], str)
            assert alarm["perceivedSeverity"].lower() in SEVERITIES
            rfc3339(alarm["alarmRaisedTime"])
        for field in ("alarmRaisedTime", "alarmChangedTime", "alarmClearedTime"):
            if field in alarm:
                rfc3339(alarm[field])
        if "state" in alarm:
            assert alarm["state"] in {"raised", "updated", "cleared"}
        if "perceivedSeverity" in alarm:
            assert alarm["perceivedSeverity"].lower() in SEVERITIES
        if "plannedOutageIndicator" in alarm:
            assert alarm["plannedOutageIndicator"] in {"InService", "OutOfService"}
        if "serviceAffecting" in alarm:
            assert isinstance(alarm["serviceAffecting"], bool)
        for field in ("parentAlarm", "correlatedAlarm", "affectedService"):
            if field in alarm:
                assert all("id" in ref for ref in alarm[field])
    else:
        assert kind in CLEAR_EVENTS, kind
        clear = envelope["event"][CLEAR_EVENTS[kind]]
        ids = [ref["id"] for ref in clear["clearedAlarm"]]
        assert ids and key == str(ids[0]).encode()
    return envelope


def check_customer(key: bytes | None, raw: bytes | None) -> dict | None:
    assert key
    if raw is None:
        return None
    value = orjson.loads(raw)
    assert key == value["customer_id"].encode()
    assert value["value_tier"] in TIERS
    assert value["segment"] in {"consumer", "business"}
    assert isinstance(value["marketing_consent"], bool)
    assert value["resources"] and all(isinstance(r, str) for r in value["resources"])
    rfc3339(value["updated_at"])
    return value


CHECKS = {"quality": check_quality, "faults": check_fault, "customers": check_customer}


def is_valid(record: SimRecord) -> bool:
    try:
        CHECKS[record.role](record.key, record.value)
        return True
    except (AssertionError, KeyError, TypeError, ValueError, orjson.JSONDecodeError):
        return False


# ----------------------------------------------------------------- the operator

def test_deterministic():
    first = list(SyntheticOperator(seed=11, customers=500, malformed_ratio=0.01).stream(5000))
    second = list(SyntheticOperator(seed=11, customers=500, malformed_ratio=0.01).stream(5000))
    assert first == second
    other = list(SyntheticOperator(seed=12, customers=500, malformed_ratio=0.01).stream(5000))
    assert [r.value for r in other] != [r.value for r in first]


def test_ratios_do_not_change_the_rest_of_the_stream():
    plain = list(SyntheticOperator(customers=400, duplicate_ratio=0.02).stream(3000))
    noisy = list(SyntheticOperator(customers=400, duplicate_ratio=0.02, malformed_ratio=0.05).stream(3000))
    assert len(plain) == len(noisy)
    # malformed records replace good ones one for one; everything else is identical
    differing = [(a, b) for a, b in zip(plain, noisy) if a != b]
    assert len(differing) > 100
    assert all(b.note and b.note.startswith("malformed:") for _, b in differing)
    assert any(a.note == "duplicate" for a, _ in differing)  # a duplicate of a malformed record


def test_every_record_is_valid_except_the_malformed_ones():
    op = SyntheticOperator(seed=3, customers=800, malformed_ratio=0.03, late_customers=5, tombstones=4)
    records = list(op.stream(20_000))
    kinds = Counter()
    for record in records:
        if record.note and record.note.startswith("malformed:"):
            kinds[record.note] += 1
            assert not is_valid(record), record
        else:
            CHECKS[record.role](record.key, record.value)  # raises with the reason
    assert sum(kinds.values()) == op.stats["malformed"] > 300
    assert len(kinds) == 10  # every kind of malformed input occurs
    assert op.stats["customers"] == 800 + 4  # 795 in the snapshot, 5 late, 4 tombstones
    event_ids = Counter(orjson.loads(r.value)["event_id"] for r in records if r.role == "quality" and r.note is None)
    assert max(event_ids.values()) == 1  # event ids are unique apart from duplicates


def test_customers_snapshot():
    op = SyntheticOperator()
    values = [orjson.loads(r.value) for r in op.customers_records()]
    assert len(values) == 3000 and len({v["customer_id"] for v in values}) == 3000
    tiers = Counter(v["value_tier"] for v in values)
    assert tiers["platinum"] < tiers["gold"] < tiers["silver"] < tiers["bronze"]
    assert 0.5 < sum(v["marketing_consent"] for v in values) / 3000 < 0.7
    assert {v["segment"] for v in values} == {"consumer", "business"}
    resources = [v["resources"] for v in values]
    assert all(r[0].startswith("CELL-") and r[1].startswith("SITE-") for r in resources)
    assert 0.2 < sum(any(x.startswith("OLT-") for x in r) for r in resources) / 3000 < 0.5


def test_outage_touches_hundreds_and_degrades_their_quality():
    op = SyntheticOperator()
    records = list(op.stream(60_000))
    scenario = op.describe()
    outage = scenario["outage"]
    snapshot = [orjson.loads(r.value) for r in records if r.role == "customers"]
    on_site = {v["customer_id"] for v in snapshot if outage["site_id"] in v["resources"]}
    assert len(on_site) == outage["customers"] >= 200
    assert on_site == set(outage["customer_ids"])
    cell_customers = {v["customer_id"] for v in snapshot if outage["cell_id"] in v["resources"]}
    assert cell_customers and cell_customers <= on_site

    at = {e["what"]: e["epoch"] for e in scenario["timeline"]}
    during, outside = [], []
    for r in records:
        if r.role != "quality" or r.note:
            continue
        value = orjson.loads(r.value)
        if value["customer_id"] in on_site:
            (during if at["outage_raise"] < r.event_time < at["outage_clear"] else outside).append(value)
    assert len(during) > 1000

    def failing(v):
        m = v["metrics"]
        return m.get("call_setup_failed") or m.get("message_failed") or m.get("packet_loss_pct", 0) >= 50 \
            or m.get("video_stall_ratio", 0) >= 0.5
    assert all(failing(v) for v in during)
    assert sum(map(failing, outside)) / len(outside) < 0.05


def test_timeline_scales_with_events():
    for events in (1_000, 50_000):
        op = SyntheticOperator(customers=300)
        records = list(op.stream(events))
        scenario = op.describe()
        assert scenario["events"] == events
        at = {e["what"]: e for e in scenario["timeline"]}
        assert at["outage_raise"]["index"] == events // 5
        assert at["outage_clear"]["index"] == events * 3 // 5
        assert scenario["outage_duration_s"] > 4 * 3600 and scenario["service_credit_expected"]
        assert 0 < scenario["planned_duration_s"] < scenario["outage_duration_s"]

        timeline = records[300:]  # after the customer snapshot
        assert len(timeline) == events
        times = [r.event_time for r in records]
        assert times == sorted(times)
        assert times[0] == DEFAULT_START
        assert timeline[-1].event_time - timeline[0].event_time == pytest.approx(12 * 3600, rel=0.01)
        for entry in scenario["timeline"]:
            record = timeline[entry["index"]]
            assert record.event_time == entry["epoch"]
            if "alarm_id" in entry:
                assert record.role == "faults" and record.key == str(entry["alarm_id"]).encode()

        faults = [orjson.loads(r.value) for r in records if r.role == "faults"]
        kinds = [(f["eventType"], f["event"].get("alarm", {}).get("id")) for f in faults]
        outage, planned = scenario["outage"], scenario["planned"]
        assert kinds.index(("AlarmCreateEvent", outage["alarm_id"])) < kinds.index(
            ("AlarmStateChangeEvent", outage["alarm_id"]))
        created = {f["event"]["alarm"]["id"]: f["event"]["alarm"] for f in faults if f["eventType"] == "AlarmCreateEvent"}
        assert created[outage["alarm_id"]]["perceivedSeverity"] == "critical"
        assert created[outage["alarm_id"]]["alarmedObject"]["id"] == outage["site_id"]
        assert created[outage["cell_alarm_id"]]["correlatedAlarm"] == [{"id": outage["alarm_id"]}]
        assert created[planned["alarm_id"]]["plannedOutageIndicator"] == "OutOfService"
        assert created[scenario["warning"]["alarm_id"]]["serviceAffecting"] is False
        assert isinstance(scenario["warning"]["alarm_id"], int)  # a v4-style integer id


def test_explicit_step_and_too_few_events():
    op = SyntheticOperator(customers=100, step_s=1.0)
    scenario = op.describe(events=1000)
    assert scenario["step_s"] == 1.0 and not scenario["service_credit_expected"]
    with pytest.raises(ValueError, match="at least"):
        next(iter(op.stream(50)))
    assert len(list(op.stream(50, scenario=False, include_customers=False))) == 50


def test_degrading_customers_get_worse():
    op = SyntheticOperator()
    scenario = op.describe(events=40_000)
    degrading = set(scenario["degrading_ids"])
    assert len(degrading) == 20
    assert not degrading & set(scenario["outage"]["customer_ids"])
    tiers = Counter(d["value_tier"] for d in scenario["degrading"])
    assert tiers["gold"] + tiers["platinum"] >= 5
    consents = Counter(d["marketing_consent"] for d in scenario["degrading"])
    assert consents[True] >= 10 and consents[False] >= 1

    mos = defaultdict(list)
    for r in op.stream(40_000, include_customers=False):
        if r.role == "quality" and r.note is None:
            value = orjson.loads(r.value)
            if value["customer_id"] in degrading and "mos" in value["metrics"]:
                mos[r.event_time < DEFAULT_START + 3 * 3600].append(value["metrics"]["mos"])
    early, late = mos[True], mos[False]
    assert len(late) > 200
    assert sum(early) / len(early) > 4.0
    tail = late[-50:]
    assert sum(tail) / len(tail) < 2.0


def test_duplicates_resend_the_previous_record():
    op = SyntheticOperator(customers=200, duplicate_ratio=0.05)
    records = list(op.stream(5000, include_customers=False))
    duplicates = [i for i, r in enumerate(records) if r.note == "duplicate"]
    assert len(duplicates) == op.stats["duplicates"] > 100
    for i in duplicates:
        assert records[i].value == records[i - 1].value and records[i].key == records[i - 1].key


def test_late_customers_and_tombstones():
    op = SyntheticOperator(customers=1000, late_customers=10, tombstones=5)
    records = list(op.stream(10_000))
    scenario = op.describe()
    late, gone = set(scenario["late_customer_ids"]), set(scenario["tombstone_ids"])
    assert len(late) == 10 and late <= set(scenario["outage"]["customer_ids"]) and len(gone) == 5
    snapshot = {r.key.decode() for r in records[:990]}
    assert not late & snapshot and len(snapshot) == 990
    arrived = {r.key.decode(): i for i, r in enumerate(records) if r.role == "customers" and i >= 990 and r.value}
    erased = {r.key.decode(): i for i, r in enumerate(records) if r.role == "customers" and r.value is None}
    assert set(arrived) == late and set(erased) == gone
    outage_at = next(i for i, r in enumerate(records) if r.key == scenario["outage"]["alarm_id"].encode())
    assert min(arrived.values()) > outage_at  # the alarm comes first
    for i, r in enumerate(records):
        if r.role == "quality":
            customer = r.key.decode()
            assert customer not in late or i > arrived[customer]
            assert customer not in gone or i < erased[customer]


def test_endless_stream_cycles_with_new_alarm_ids():
    op = SyntheticOperator(customers=200, cycle_events=1000)
    records = list(itertools.islice(op.stream(None), 200 + 3000))
    faults = Counter(r.key for r in records if r.role == "faults")
    first, second = op.describe(cycle=0), op.describe(cycle=1)
    assert first["outage"]["alarm_id"] != second["outage"]["alarm_id"]
    for scenario in (first, second):
        assert faults[scenario["outage"]["alarm_id"].encode()] == 3  # raise, ack, clear
    times = [r.event_time for r in records]
    assert times == sorted(times)


def test_generation_speed():
    op = SyntheticOperator()
    began = time.perf_counter()
    count = sum(1 for _ in op.stream(200_000))
    elapsed = time.perf_counter() - began
    print(f"\ngenerated {count} records in {elapsed:.2f} s: {count / elapsed:,.0f} records/s")


# ----------------------------------------------------------------- the producer

def test_produce_and_read_back(settings):
    ensure_topics(settings)
    op = SyntheticOperator(seed=5, customers=500, malformed_ratio=0.01, tombstones=3)
    records = list(op.stream(5000))
    progress = []
    count = produce(settings, records, progress=progress.append)
    assert count == len(records) == 5500
    assert progress[-1] == count and progress == sorted(progress)

    expected = Counter(r.role for r in records)
    got = {
        role: read_topic(settings, getattr(settings.topics, role),
                         until=lambda messages, n=expected[role]: len(messages) >= n, timeout_s=60)
        for role in ("faults", "quality", "customers")
    }
    assert {role: len(messages) for role, messages in got.items()} == dict(expected)
    # nothing beyond the expected counts arrives
    for role, messages in got.items():
        assert len(read_topic(settings, getattr(settings.topics, role), idle_s=0.5)) == expected[role]

    # contents, per key in order
    for role, messages in got.items():
        sent = defaultdict(list)
        for r in records:
            if r.role == role:
                sent[r.key].append(r.value)
        received = defaultdict(list)
        for m in sorted(messages, key=lambda m: (m["partition"], m["offset"])):
            received[m["key"]].append(m["value"])
        assert received == sent

    # murmur2 partitioning: a customer's quality records share its customer record's partition
    customer_partition = {m["key"]: m["partition"] for m in got["customers"]}
    assert all(customer_partition[m["key"]] == m["partition"] for m in got["quality"])


def test_produce_paced(settings):
    ensure_topics(settings)
    records = list(SyntheticOperator(customers=50).stream(400, scenario=False, include_customers=False))
    began = time.monotonic()
    assert produce(settings, records, rate=2000) == 400
    assert time.monotonic() - began >= 399 / 2000


def test_produce_stops_on_request(settings):
    ensure_topics(settings)
    stop = threading.Event()

    def progress(count):
        if count >= 2000:
            stop.set()

    endless = SyntheticOperator(customers=100).stream(None)
    count = produce(settings, endless, rate=20_000, progress=progress, stop=stop)
    assert 2000 <= count < 3000
    messages = read_topic(settings, settings.topics.quality,
                          until=lambda m: len(m) >= count - 100, timeout_s=30)
    assert len(messages) >= count - 100


def test_produce_unreachable_broker_is_a_clear_error(make_settings):
    from conftest import free_port

    settings = make_settings(broker=f"kafka://127.0.0.1:{free_port()}")
    records = list(SyntheticOperator(customers=10).stream(20, scenario=False, include_customers=False))
    with pytest.raises(ProduceError, match="unacknowledged"):
        produce(settings, records, flush_timeout=1)
