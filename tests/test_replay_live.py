"""`cxstream replay` over a topic time range matches what the live worker sent.

A real worker process reads a generated stretch of traffic (the synthetic
operator: a site outage with a correlated cell alarm, planned work, a warning,
degrading customers, late customer records, tombstones, malformed input). The
traffic goes in phases: each alarm, each customer record after the snapshot,
and each run of quality records is produced only once the worker has counted
the previous phase as processed, so the order in which the worker met alarms
and quality records is unambiguous (the replay orders input by Kafka record
timestamp; docs/replay.md explains the limit). Then `cxstream replay` reads
the same topics over the same time range and must produce exactly the
CloudEvents the worker wrote: the same ids, the same documents, the same counts
by rule, and the same number of rejected records as dead letters.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import orjson
from confluent_kafka import Producer

from cxstream.models.common import format_time
from cxstream.ops.topics import ensure_topics
from cxstream.ops.worker_process import WorkerProcess
from cxstream.simulate.operator import SyntheticOperator
from cxstream.simulate.reader import read_topic
from conftest import on_both_brokers

pytestmark = on_both_brokers

EVENTS = 6000
CUSTOMERS = 400


def phases(records: list, snapshot: int) -> list[list]:
    """The customer snapshot is one phase, so is each run of quality records;
    every other record (an alarm, a late customer record, a tombstone) is a
    phase of its own."""
    out: list[list] = [records[:snapshot]]
    for record in records[snapshot:]:
        if record.role == "quality" and out[-1][-1].role == "quality":
            out[-1].append(record)
        else:
            out.append([record])
    return out


def counters(worker: WorkerProcess) -> Counter:
    """cxstream_events_total by source, every outcome added up."""
    status, text = worker.get("/metrics")
    assert status == 200
    found: Counter = Counter()
    for match in re.finditer(r'^cxstream_events_total\{([^}]*)\} (\S+)$', text.decode(), re.M):
        labels = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1)))
        found[labels["source"]] += int(float(match.group(2)))
    return found


def wait_processed(worker: WorkerProcess, expected: Counter, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    seen: Counter = Counter()
    while time.monotonic() < deadline:
        seen = counters(worker)
        if all(seen[source] >= n for source, n in expected.items()):
            return
        if worker.process.poll() is not None:
            raise AssertionError("worker exited:\n" + worker.log_tail())
        time.sleep(0.05)  # polling interval of the condition above
    raise TimeoutError(f"worker processed {dict(seen)} of {dict(expected)} within {timeout_s:.0f} s")


def test_replay_matches_the_live_worker(make_settings, tmp_path: Path):
    settings = make_settings()
    ensure_topics(settings)
    operator = SyntheticOperator(seed=11, customers=CUSTOMERS, late_customers=3, tombstones=2,
                                 malformed_ratio=0.004)
    records = list(operator.stream(EVENTS))
    story = operator.describe(EVENTS)
    plan = phases(records, len(operator.customers_records()))
    site_alarm = story["outage"]["alarm_id"].encode()

    def phase_of(event_type: str) -> int:
        return next(i for i, phase in enumerate(plan) if phase[0].role == "faults" and phase[0].key == site_alarm
                    and orjson.loads(phase[0].value)["eventType"] == event_type)

    raised, cleared = phase_of("AlarmCreateEvent"), phase_of("AlarmStateChangeEvent")

    began = time.time() - 1.0
    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    try:
        worker.wait_ready()
        producer = Producer({**settings.confluent_config(), "partitioner": "murmur2_random", "linger.ms": 2})
        topics = {role: getattr(settings.topics, role) for role in ("faults", "quality", "customers")}
        expected: Counter = Counter()
        marks: list[int] = []  # after each phase: a ms timestamp with every output it caused before it
        for phase in plan:
            for record in phase:
                producer.produce(topics[record.role], record.value, record.key)
                expected[record.role] += 1
            assert producer.flush(30) == 0
            wait_processed(worker, expected)
            # timestamps are whole milliseconds: the next phase's records come after the mark
            marks.append(int(time.time() * 1000) + 1)
            while time.time() * 1000 < marks[-1] + 1:
                pass
        code = worker.stop()  # a clean stop sends everything the worker still holds
        assert code == 0, worker.log_tail()
    finally:
        worker.kill()
        print(worker.log_tail(30))
    ended = time.time() + 1.0

    sent = [m for topic in (settings.topics.care, settings.topics.marketing)
            for m in read_topic(settings, topic, idle_s=1.0)]
    live = [orjson.loads(m["value"]) for m in sent]
    dead = read_topic(settings, settings.topics.deadletter, idle_s=0.5)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CXSTREAM_")}
    env.update(settings.to_env())

    def replay(name: str, *argv: str) -> tuple[dict, list[dict], str]:
        json_path, events_path = tmp_path / f"{name}.json", tmp_path / f"{name}.jsonl"
        result = subprocess.run(
            [sys.executable, "-m", "cxstream", "replay", *argv, "--json", str(json_path), "--events", str(events_path)],
            env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        print(result.stdout)
        return (orjson.loads(json_path.read_bytes()),
                [orjson.loads(line) for line in events_path.read_bytes().splitlines()], result.stdout)

    # the traffic did what it was generated for: every rule fired live
    live_by_rule = Counter(e["data"]["rule_id"] for e in live)
    outage = len(story["outage"]["customer_ids"])
    assert live_by_rule["outage_notice"] == outage and live_by_rule["service_restored"] == outage
    assert live_by_rule["service_credit"] >= outage
    assert live_by_rule["priority_care"] > 0 and live_by_rule["retention_offer"] > 0
    assert len({e["id"] for e in live}) == len(live), "the worker sent a trigger twice"

    # the whole stretch: the replay reads everything and sends exactly what the worker sent
    figures, replayed, text = replay("all", "--from", format_time(began), "--to", format_time(ended))
    roles = Counter(r.role for r in records)
    assert figures["input"]["by_topic"] == {role: roles[role] for role in ("faults", "customers", "quality")}
    assert figures["input"]["records_before_from"] == 0
    assert sorted(e["id"] for e in replayed) == sorted(e["id"] for e in live)
    by_id = {e["id"]: e for e in live}
    assert [e for e in replayed if by_id[e["id"]] != e] == []
    replay_by_rule = {r["rule"]: r["events"] for r in figures["current"]["triggers"]["by_rule"]}
    assert replay_by_rule == dict(live_by_rule)
    assert figures["current"]["rejections"]["total"] == len(dead) > 0
    assert "outage_notice" in text and "Nothing was written to Kafka" in text

    # from just after the site alarm was raised to just after it cleared: the state
    # before --from (the alarm, the outage episodes, scores) is built first, and the
    # replay sends what the worker sent in that window, no more
    low, high = marks[raised], marks[cleared]
    window = [orjson.loads(m["value"]) for m in sent if low <= m["timestamp"] < high]
    figures, replayed, _ = replay("window", "--from", format_time(low / 1000), "--to", format_time(high / 1000),
                                  "--warmup", "1d")
    window_by_rule = Counter(e["data"]["rule_id"] for e in window)
    assert window_by_rule["service_restored"] == outage
    assert window_by_rule["outage_notice"] == len(story["late_customer_ids"]) > 0  # customers who arrived late
    assert sorted(e["id"] for e in replayed) == sorted(e["id"] for e in window)
    assert [e for e in replayed if by_id[e["id"]] != e] == []
    assert figures["current"]["fired_before_from"] >= outage - len(story["late_customer_ids"])
    assert 0 < figures["input"]["records_before_from"] < len(records)
    assert sum(figures["input"]["by_topic"].values()) + figures["input"]["records_before_from"] < len(records)
