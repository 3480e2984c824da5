"""A worker stopped mid-stream and started again resumes from its changelogs.

Stopped cleanly (SIGTERM): nothing is repeated — no second outage_notice, the
priority_care cooldown is remembered, already-applied event ids are dropped.
Killed (SIGKILL): the uncommitted tail is processed again; any trigger sent
twice carries the same CloudEvent id, so a subscriber can drop the copy. (How
many replayed records are recognised as duplicates after a kill depends on
where the last flush and commit fell, so that count is only checked after a
clean stop.)
"""

from __future__ import annotations

import re
from collections import defaultdict

import orjson
import pytest

from cxstream.ops.topics import ensure_topics
from cxstream.ops.worker_process import WorkerProcess
from cxstream.simulate.reader import read_topic
from e2e import Feed, triggers_of
from conftest import on_both_brokers

pytestmark = on_both_brokers

CUSTOMERS = [f"X{i:02d}" for i in range(40)]
ON_CELL = CUSTOMERS[:6]


def metric(worker: WorkerProcess, name: str, **labels) -> float:
    status, body = worker.get("/metrics")
    assert status == 200
    for line in body.decode().splitlines():
        match = re.match(rf"^{re.escape(name)}\{{(.*)\}} (\S+)$", line)
        if match and dict(re.findall(r'(\w+)="([^"]*)"', match.group(1))) == labels:
            return float(match.group(2))
    return 0.0


def wait_metric(worker, name, at_least, timeout_s=60.0, **labels):
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = metric(worker, name, **labels)
        if value >= at_least:
            return value
        time.sleep(0.2)
    raise TimeoutError(f"{name}{labels} stayed below {at_least} (last {value}):\n{worker.log_tail()}")


def quality_burst(feed: Feed, start_minute: int, count: int, ids: list[str]) -> None:
    for n in range(count):
        cid = CUSTOMERS[n % len(CUSTOMERS)]
        minute = start_minute + n // len(CUSTOMERS)
        event_id = f"burst-{start_minute}-{n}"
        ids.append(event_id)
        feed.quality(cid, f"2026-11-22T{10 + minute // 60:02d}:{minute % 60:02d}:00Z", event_id=event_id,
                     mos=4.2)


@pytest.mark.parametrize("stop,store", [("sigterm", "memory"), ("sigkill", "memory"), ("sigterm", "rocksdb")])
def test_restart_resumes_without_repeating(make_settings, tmp_path, stop, store):
    settings = make_settings(store=store)
    ensure_topics(settings)
    feed = Feed(settings)
    topics = settings.topics
    for cid in CUSTOMERS:
        feed.customer(cid, ["CELL-X" if cid in ON_CELL else "CELL-Y", "SITE-9"], tier="gold")
    feed.flush()

    first = WorkerProcess(settings, tmp_path / "first.log").start()
    try:
        first.wait_ready()
        feed.alarm_raise("ALM-X", "CELL-X", "2026-11-22T09:30:00Z")
        for minute in range(3):  # X00's voice fails: score below 40, gold -> priority_care
            feed.quality("X00", f"2026-11-22T09:4{minute}:00Z", call_dropped=True, mos=1.1)
        feed.flush()
        read_topic(settings, topics.care, until=lambda m: len(triggers_of(m, "outage_notice")) >= 6
                   and len(triggers_of(m, "priority_care")) >= 1)
        applied: list[str] = []
        quality_burst(feed, 0, 1200, applied)
        feed.flush()
        wait_metric(first, "cxstream_events_total", 300, source="quality", outcome="ok")
    finally:
        if stop == "sigterm":
            assert first.stop() == 0, first.log_tail()
        else:
            first.kill()

    # while it is down: more input, including a repeat of what was applied
    for minute in range(3):  # still failing, an hour later: cooldown, no second priority_care
        feed.quality("X00", f"2026-11-22T10:5{minute}:00Z", call_dropped=True, mos=1.1)
    feed.flush()

    second = WorkerProcess(settings, tmp_path / "second.log").start()
    try:
        second.wait_ready()
        status, doc = second.get_json("/customers/X01")
        assert status == 200 and doc["active_faults"] == ["ALM-X"], "state restored from the changelog"
        # replay 200 already-applied records: duplicates, not applied again (each
        # customer remembers its last 32 event ids; X00 has had 36 events since
        # burst-0-0, so the replay starts after it)
        for event_id in applied[40:240]:
            n = int(event_id.rsplit("-", 1)[1])
            cid = CUSTOMERS[n % len(CUSTOMERS)]
            minute = n // len(CUSTOMERS)
            feed.quality(cid, f"2026-11-22T{10 + minute // 60:02d}:{minute % 60:02d}:00Z",
                         event_id=event_id, mos=4.2)
        feed.alarm_clear("ALM-X", "2026-11-22T11:00:00Z")
        feed.flush()
        care = read_topic(settings, topics.care,
                          until=lambda m: len({e["subject"] for e in triggers_of(m, "service_restored")}) >= 6)
        if stop == "sigterm":
            # a clean stop wrote every applied event id to the changelog
            wait_metric(second, "cxstream_events_total", 200, source="quality", outcome="duplicate")
        care = read_topic(settings, topics.care, idle_s=1.5)
    finally:
        assert second.stop() == 0, second.log_tail()

    events = [orjson.loads(m["value"]) for m in care]
    ids_by_firing = defaultdict(set)
    for event in events:
        ids_by_firing[(event["type"], event["subject"])].add(event["id"])
    # a redelivered trigger carries the same id as the original
    assert all(len(ids) == 1 for ids in ids_by_firing.values()), [
        (e["type"], e["subject"], e["time"], e["id"][:8]) for e in events if len(ids_by_firing[(e["type"], e["subject"])]) > 1]
    assert {s for (t, s) in ids_by_firing if t.endswith("outage_notice")} == set(ON_CELL)
    assert {s for (t, s) in ids_by_firing if t.endswith("service_restored")} == set(ON_CELL)
    assert {s for (t, s) in ids_by_firing if t.endswith("priority_care")} == {"X00"}
    if stop == "sigterm":
        # a clean stop repeats nothing at all
        kinds = [(e["type"], e["subject"]) for e in events]
        assert len(kinds) == len(set(kinds)), sorted(kinds)
