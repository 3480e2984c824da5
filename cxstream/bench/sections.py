"""The sections that run the real worker: cxstream, latency, fan-out, memory, recovery.

Each one starts ``cxstream worker`` as a child process (:class:`WorkerProcess`)
on the section's own topics and reads the worker from the outside only: its
``/metrics`` and ``/readyz``, ``/proc/<pid>`` for memory and CPU, and the
output topics with a consumer of our own.
"""

from __future__ import annotations

import math
import re
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from cxstream.ops.settings import Settings
from cxstream.ops.topics import ensure_topics
from cxstream.ops.worker_process import WorkerProcess
from cxstream.simulate.operator import DEFAULT_START, SyntheticOperator, iso_time
from cxstream.simulate.producer import producer_config
from cxstream.simulate.watch import Snapshot

from .common import (
    BenchContext, SectionError, create_topic, histogram_quantile, proc_cpu_seconds, proc_memory, quantiles, scrape,
    start_worker, stop_worker, wait_for, worker_failure,
)
from .workload import Workload, customer_value, produce_pairs, tracked_customers

__all__ = ["run_cxstream", "run_latency", "run_fanout", "run_memory", "run_recovery", "log_findings"]

#: Scrape interval of the worker's /metrics while it drains its input.
POLL_S = 0.1
#: A drain that makes no progress for this long is reported as a stall and ended.
STALL_S = 60.0
#: In the latency section, every this many records is a probe (a trigger-causing record).
PROBE_EVERY = 50
#: Consecutive probes per probe customer (a few bad calls in a row sink any score table's score).
PROBES_PER_CUSTOMER = 3
#: A probe record: voice completely broken. For a fresh gold customer with consent a few of
#: them fire priority_care (score below 40, gold) and retention_offer (below 50 or down 30
#: points, consent); which probe fires which depends on the rules' penalty table.
PROBE_METRICS = {"call_dropped": True, "call_setup_failed": True, "mos": 1.0}
#: A ping (broker round trip, no processing) goes with every this many offered records.
PING_EVERY = 100


# ----------------------------------------------------------------------------- helpers
_LOG_PROBLEM = re.compile(r"\b(ERROR|CRITICAL|Traceback|WARNING|stall|Timed out|timed out)\b")


def log_findings(path: Path, limit: int = 8) -> dict[str, Any]:
    """Warnings and errors in a worker log: how many, and the first few distinct ones."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return {"lines": 0, "examples": []}
    found: list[str] = []
    seen: set[str] = set()
    count = 0
    for line in text.splitlines():
        if line.startswith("%") or not _LOG_PROBLEM.search(line):
            continue
        count += 1
        shape = re.sub(r"\d+", "#", line.split("]", 2)[-1])[:120]
        if shape not in seen and len(found) < limit:
            seen.add(shape)
            found.append(line.strip()[:300])
    return {"lines": count, "examples": found}


def _events(snap: Snapshot | None) -> int:
    return snap.events_total if snap is not None else -1


def _drain(worker: WorkerProcess, expected: int, *, what: str, ready_timeout_s: float = 120.0
           ) -> dict[str, Any]:
    """Poll /metrics until the worker has counted ``expected`` input records.

    Returns the samples' summary: when the count first moved and reached
    ``expected``, the rate in between, the longest pause, CPU seconds.
    """
    pid = worker.process.pid  # type: ignore[union-attr]
    began = time.monotonic()
    samples: list[tuple[float, int, float | None]] = []
    ready_at = None
    moved_index = None
    last_change = began
    problem = None
    first: Snapshot | None = None
    last: Snapshot | None = None
    while True:
        failure = worker_failure(worker)
        if failure:
            problem = failure
            break
        snap = scrape(worker, timeout_s=5.0)
        now = time.monotonic()
        if snap is not None:
            if first is None:
                first = snap
            last = snap
            if ready_at is None and snap.ready >= 1:
                ready_at = now
            count = snap.events_total
            samples.append((now, count, proc_cpu_seconds(pid)))
            if len(samples) > 1 and count != samples[-2][1]:
                last_change = now
                if moved_index is None:
                    moved_index = len(samples) - 1
            if count >= expected:
                break
        if moved_index is None and now - began > ready_timeout_s + STALL_S:
            problem = f"{what}: the worker processed nothing within {now - began:.0f} s"
            break
        if moved_index is not None and now - last_change > STALL_S:
            problem = (f"{what}: stalled at {samples[-1][1]:,} of {expected:,} records "
                       f"(no progress for {now - last_change:.0f} s)")
            break
        time.sleep(POLL_S)
    result: dict[str, Any] = {"records": samples[-1][1] if samples else 0, "expected": expected,
                              "ready_s": (ready_at - began) if ready_at else None}
    if moved_index is None and samples and samples[0][1] >= expected and len(samples) == 1:
        problem = problem or f"{what}: the whole input was processed before the first scrape answered"
    if moved_index is not None:
        end_index = len(samples) - 1
        while end_index > moved_index and samples[end_index - 1][1] == samples[end_index][1]:
            end_index -= 1  # the time of the last count, not of a later identical sample
        start_index = moved_index
        if end_index == moved_index:
            # everything between two scrapes (a tiny input, or /metrics unanswered while the
            # worker was busy): time it from the scrape before, a lower bound of the rate
            start_index = moved_index - 1
            result["rate_is_lower_bound"] = True
        t0, c0, cpu0 = samples[start_index]
        t1, c1, cpu1 = samples[end_index]
        result["seconds"] = t1 - t0 if t1 > t0 else None
        result["events_per_s"] = (c1 - c0) / (t1 - t0) if t1 > t0 else None
        result["first_record_s"] = t0 - began
        result["cpu_s"] = (cpu1 - cpu0) if cpu0 is not None and cpu1 is not None else None
        if result["cpu_s"] is not None and result["seconds"]:
            result["cpu_share"] = result["cpu_s"] / result["seconds"]
        result["longest_pause_s"] = _longest_flat(samples[start_index:end_index + 1])
    result["complete"] = bool(samples) and samples[-1][1] >= expected
    if problem:
        result["problem"] = problem
    result["_first"], result["_last"] = first, last
    return result


def _longest_flat(samples: list[tuple[float, int, float | None]]) -> float:
    """The longest time the count stood still between two samples that moved."""
    longest = 0.0
    flat_since = None
    for i in range(1, len(samples)):
        if samples[i][1] == samples[i - 1][1]:
            if flat_since is None:
                flat_since = samples[i - 1][0]
        elif flat_since is not None:
            longest = max(longest, samples[i][0] - flat_since)
            flat_since = None
    return longest


def _wait_put_away(worker: WorkerProcess, timeout_s: float) -> int | None:
    """Until the worker holds no customer as an object (all idle); how many it still holds."""
    deadline = time.monotonic() + timeout_s
    in_use = None
    while time.monotonic() < deadline:
        try:
            _, body = worker.get("/readyz", timeout_s=2.0)
            in_use = orjson.loads(body).get("customers_in_use")
        except (OSError, ValueError):
            in_use = None
        if in_use == 0:
            return 0
        time.sleep(0.5)
    return in_use


def _wait_customers(worker: WorkerProcess, customers: int, records: int, timeout_s: float) -> Snapshot:
    """Until the worker tracks ``customers`` and has counted ``records`` input records."""
    last_seen: list[Snapshot | None] = [None]
    last_progress = [time.monotonic(), -1]

    def done() -> Snapshot | None:
        failure = worker_failure(worker)
        if failure:
            raise SectionError(failure)
        snap = scrape(worker)
        last_seen[0] = snap
        if snap is None:
            return None
        if snap.events_total != last_progress[1]:
            last_progress[:] = [time.monotonic(), snap.events_total]
        elif time.monotonic() - last_progress[0] > STALL_S:
            raise SectionError(f"the worker stalled at {snap.events_total:,} of {records:,} records and "
                               f"{int(snap.customers):,} of {customers:,} customers")
        return snap if snap.customers >= customers and snap.events_total >= records else None

    try:
        return wait_for(done, timeout_s, f"loading {customers:,} customers", interval_s=0.2)
    except SectionError as error:
        snap = last_seen[0]
        seen = (f" (at {int(snap.customers):,} customers, {snap.events_total:,} records)"
                if snap is not None else "")
        raise SectionError(f"{error}{seen}") from None


def _finish(result: dict[str, Any], worker: WorkerProcess | None, log: Path) -> dict[str, Any]:
    """Stop the worker, note how the stop went and what its log says."""
    if worker is not None:
        began = time.monotonic()
        problem = stop_worker(worker)
        result.setdefault("stop_s", time.monotonic() - began)
        if problem:
            result.setdefault("problems", []).append(problem)
    result["log"] = str(log)
    result["log_findings"] = log_findings(log)
    for key in [k for k in result if k.startswith("_")]:
        del result[key]
    return result


def _measuring_consumer(settings: Settings, topics: list[str]) -> Consumer:
    """A consumer of our own, no group, every partition from the beginning, fetches answered fast.

    ``fetch.wait.max.ms=5``: the bundled broker answers a fetch only when its
    wait expires, not when data arrives, so a long wait would be measured as
    latency of the service.
    """
    consumer = Consumer({**settings.confluent_config(), "group.id": f"cxbench-reader-{time.monotonic_ns()}",
                         "enable.auto.commit": False, "enable.auto.offset.store": False,
                         "fetch.wait.max.ms": 5, "log_level": 3})
    metadata = consumer.list_topics(timeout=10)
    assignment = []
    for topic in topics:
        entry = metadata.topics.get(topic)
        if entry is None or not entry.partitions:
            raise SectionError(f"topic {topic} is not there")
        assignment += [TopicPartition(topic, p, OFFSET_BEGINNING) for p in sorted(entry.partitions)]
    consumer.assign(assignment)
    return consumer


class Collector(threading.Thread):
    """Reads topics in the background; keeps ``(topic, key, value, received_at)``."""

    def __init__(self, settings: Settings, topics: list[str], count_topics: tuple[str, ...] = (),
                 count_prefix: bytes = b""):
        super().__init__(name="bench-collector", daemon=True)
        self.consumer = _measuring_consumer(settings, topics)
        self.messages: list[tuple[str, bytes | None, bytes | None, float]] = []
        # messages on count_topics whose key starts with count_prefix, counted as they come
        self.count_topics = count_topics
        self.count_prefix = count_prefix
        self.counted = 0
        self.stopping = threading.Event()
        self.fetching = threading.Event()
        self.error: str | None = None

    def run(self) -> None:
        consume = self.consumer.consume
        keep = self.messages.append
        try:
            while not self.stopping.is_set():
                batch = consume(1000, 0.005)
                now = time.time()
                self.fetching.set()
                counting = self.count_topics
                for message in batch:
                    if message.error() is not None:
                        continue
                    topic, key = message.topic(), message.key()
                    keep((topic, key, message.value(), now))
                    if topic in counting and key is not None and key.startswith(self.count_prefix):
                        self.counted += 1
        except Exception as error:  # reported by the section
            self.error = f"{type(error).__name__}: {error}"
        finally:
            self.consumer.close()

    def stop(self) -> None:
        self.stopping.set()
        self.join(10)


def _settle(settings: Settings) -> None:
    """Let the worker's flush write the loaded customers' scores and state (two flush intervals)."""
    time.sleep(2 * settings.flush_interval_s + 0.5)


# ----------------------------------------------------------------------------- cxstream
def run_cxstream(ctx: BenchContext, workload: Workload) -> dict[str, Any]:
    """The real worker from a cold start on the pre-produced workload, until it is drained."""
    settings = ctx.section_settings("cxstream")
    ensure_topics(settings)
    customers, quality = workload.customers(), workload.quality()
    produce_pairs(settings, settings.topics.customers, customers)
    produce_pairs(settings, settings.topics.quality, quality)
    expected = len(customers) + len(quality)
    log = ctx.log_path("cxstream", "worker")
    worker = WorkerProcess(settings, log).start()
    result: dict[str, Any] = {}
    try:
        result = _drain(worker, expected, what="cxstream")
        last: Snapshot | None = result.get("_last")
        memory = proc_memory(worker.process.pid)  # type: ignore[union-attr]
        result["peak_rss_bytes"] = memory.get("hwm")
        result["rss_bytes"] = memory.get("rss")
        result["cpu_total_s"] = proc_cpu_seconds(worker.process.pid)  # type: ignore[union-attr]
        if last is not None:
            result["outcomes"] = {f"{s}/{o}": int(n) for (s, o), n in sorted(last.events.items()) if n}
            result["triggers"] = {f"{c}/{t}": int(n) for (c, t), n in sorted(last.triggers.items()) if n}
            result["customers_tracked"] = int(last.customers)
            first: Snapshot | None = result.get("_first")
            if first is not None:
                p99 = histogram_quantile(0.99, first.latency_buckets, last.latency_buckets)
                result["processing_p99_s"] = p99
        result["input"] = {"customers": len(customers), "quality": len(quality)}
        if not result.get("complete"):
            raise SectionError(result.get("problem") or "the worker did not drain its input")
    finally:
        _finish(result, worker, log)
    return result


# ----------------------------------------------------------------------------- latency
def _latency_offer(workload: Workload, total: int) -> tuple[list[tuple[bytes, bytes, str, int, bool]], list[str]]:
    """The offered records and the probe customers.

    Background quality records from the workload's operator (same customers, no
    duplicates); every PROBE_EVERY-th record is instead a probe for a probe
    customer, PROBES_PER_CUSTOMER consecutive probes each, at the event time of
    the background record before it. Returns ``[(key, value, customer id,
    event time ms, is probe)]`` and the probe customers' ids.
    """
    slots = sum(1 for i in range(total) if i % PROBE_EVERY == PROBE_EVERY // 2)
    probes = [f"PRB{i:07d}" for i in range(math.ceil(slots / PROBES_PER_CUSTOMER))]
    operator = SyntheticOperator(seed=workload.seed, customers=workload.n_customers, sites=workload.sites,
                                 duplicate_ratio=0.0, degrading=0)
    background = operator.stream(total - slots, include_customers=False, scenario=False)
    offered: list[tuple[bytes, bytes, str, int, bool]] = []
    last_time = DEFAULT_START
    slot = 0
    for i in range(total):
        if i % PROBE_EVERY == PROBE_EVERY // 2:
            cid = probes[slot // PROBES_PER_CUSTOMER]
            value = orjson.dumps({"event_id": f"probe-{slot}", "customer_id": cid,
                                  "event_time": iso_time(last_time), "service": "voice",
                                  "metrics": PROBE_METRICS})
            offered.append((cid.encode(), value, cid, int(round(last_time * 1000)), True))
            slot += 1
            continue
        record = next(background)
        last_time = record.event_time
        offered.append((record.key, record.value, record.key.decode(), int(round(record.event_time * 1000)),
                        False))
    return offered, probes


def _trigger_total(snap: Snapshot | None) -> int:
    return int(sum(snap.triggers.values())) if snap is not None else 0


def run_latency(ctx: BenchContext, workload: Workload) -> dict[str, Any]:
    """A fixed offered load against a ready worker with its customers loaded."""
    args = ctx.args
    rate, duration = float(args.latency_rate), float(args.latency_seconds)
    total = max(PROBE_EVERY, int(rate * duration))
    settings = ctx.section_settings("latency")
    ensure_topics(settings)
    topics = settings.topics
    ping_topic = topics.quality + "-ping"
    create_topic(settings, ping_topic, 1)
    customers = workload.customers()
    offered, probes = _latency_offer(workload, total)
    probe_customers = [(cid.encode(), customer_value(cid, [f"CELL-PRB-{i % 16:02d}", "SITE-PRB"], tier="gold",
                                                        consent=True))
                       for i, cid in enumerate(probes)]
    produce_pairs(settings, topics.customers, customers)
    produce_pairs(settings, topics.customers, probe_customers)
    loaded = len(customers) + len(probe_customers)
    log = ctx.log_path("latency", "worker")
    worker: WorkerProcess | None = None
    collector: Collector | None = None
    result: dict[str, Any] = {"rate": rate, "seconds": duration, "probe_every": PROBE_EVERY,
                              "probe_customers": len(probes)}
    try:
        worker = start_worker(settings, log)
        _wait_customers(worker, loaded, loaded, timeout_s=300)
        _settle(settings)
        trigger_topics = (topics.care, topics.marketing)
        collector = Collector(settings, [*trigger_topics, ping_topic], count_topics=trigger_topics)
        collector.start()
        collector.fetching.wait(10)
        time.sleep(0.5)
        before = scrape(worker)
        if before is None:
            raise SectionError("the worker's /metrics did not answer")
        sent, pings = _paced_produce(settings, topics.quality, offered, rate, ping_topic)
        after_producing = scrape(worker)
        t_produced = time.monotonic()
        expected_records = loaded + len(offered)
        seen: list[Snapshot | None] = [None]

        def drained() -> bool:
            failure = worker_failure(worker)
            if failure:
                raise SectionError(failure)
            seen[0] = snap = scrape(worker)
            return (snap is not None and snap.events_total >= expected_records
                    and collector.counted >= _trigger_total(snap) - _trigger_total(before))

        try:
            wait_for(drained, 60, "processing every offered record and seeing its triggers", interval_s=0.1)
        except SectionError as error:
            snap = seen[0]
            result.setdefault("problems", []).append(
                f"{error} (worker counted {snap.events_total if snap else 0:,} of {expected_records:,} "
                f"records and sent {_trigger_total(snap) - _trigger_total(before):,} triggers; "
                f"{collector.counted:,} seen)")
        result["drain_after_produce_s"] = time.monotonic() - t_produced
        after = seen[0] or scrape(worker)
        time.sleep(0.3)
        collector.stop()
        if collector.error:
            result.setdefault("problems", []).append(f"collector: {collector.error}")
        send_times = [t for t in sent if t is not None]
        result["offered"] = len(offered)
        result["sent"] = len(send_times)
        result["achieved_rate"] = ((len(send_times) - 1) / (send_times[-1] - send_times[0])
                                   if len(send_times) > 1 else None)
        if after_producing is not None:
            result["backlog_at_end_of_produce"] = max(0, expected_records - after_producing.events_total)
        if after is not None:
            result["processing"] = {
                **{f"p{int(q * 100)}": histogram_quantile(q, before.latency_buckets, after.latency_buckets)
                   for q in (0.50, 0.95, 0.99)},
                "count": int(after.latency_count - before.latency_count),
                "method": "worker histogram cxstream_processing_seconds, difference over the run, "
                          "linear interpolation within buckets",
            }
            result["triggers_sent"] = {f"{c}/{t}": int(n - before.triggers.get((c, t), 0))
                                       for (c, t), n in sorted(after.triggers.items()) if n}
        result["end_to_end"] = _trigger_latencies(collector.messages, offered, sent, trigger_topics)
        result["broker_round_trip"] = _ping_latencies(collector.messages, pings, ping_topic)
        memory = proc_memory(worker.process.pid)  # type: ignore[union-attr]
        result["peak_rss_bytes"] = memory.get("hwm")
    finally:
        if collector is not None and collector.is_alive():
            collector.stop()
        _finish(result, worker, log)
    return result


def _paced_produce(settings: Settings, topic: str, offered: list, rate: float, ping_topic: str
                   ) -> tuple[list[float | None], list[float]]:
    """Produce ``offered`` at ``rate`` records/s, and a ping every PING_EVERY records.

    Returns each offered record's send time and each ping's (``time.time()``).
    """
    producer = Producer(producer_config(settings, **{"linger.ms": 1}))
    sent: list[float | None] = [None] * len(offered)
    pings: list[float] = []
    interval = 1.0 / rate
    produce, poll = producer.produce, producer.poll
    began = time.monotonic()
    for i, (key, value, _, _, _) in enumerate(offered):
        wait = began + i * interval - time.monotonic()
        if wait > 0.0005:
            poll(0)
            time.sleep(wait)  # pacing to the offered rate
        sent[i] = now = time.time()
        while True:
            try:
                produce(topic, value, key)
                break
            except BufferError:
                poll(0.01)
        if i % PING_EVERY == 0:
            produce(ping_topic, str(len(pings)).encode(), b"ping")
            pings.append(now)
        if i % 50 == 0:
            poll(0)
    if producer.flush(60):
        raise SectionError("the paced producer's records were not acknowledged within 60 s")
    return sent, pings


def _trigger_latencies(messages, offered, sent, trigger_topics) -> dict[str, Any]:
    """Produce-to-visible of each trigger CloudEvent, matched to the record that caused it.

    A CloudEvent's ``subject`` is the customer and its ``time`` the event time
    of the record that caused it; in the offered records that pair is unique.
    """
    sent_at = {(o[2], o[3]): (t, o[4]) for o, t in zip(offered, sent) if t is not None}
    latencies: list[float] = []
    probe_latencies: list[float] = []
    by_trigger: dict[str, int] = {}
    unmatched = 0
    for topic, key, value, received in messages:
        if topic not in trigger_topics or value is None:
            continue
        event = orjson.loads(value)
        match = sent_at.get((event.get("subject"), _parse_ms(event.get("time", "1970-01-01T00:00:00Z"))))
        if match is None:
            unmatched += 1
            continue
        trigger = event.get("data", {}).get("trigger", "?")
        by_trigger[trigger] = by_trigger.get(trigger, 0) + 1
        latencies.append(received - match[0])
        if match[1]:
            probe_latencies.append(received - match[0])
    return {**quantiles(latencies), "count": len(latencies), "from_probes": len(probe_latencies),
            "unmatched": unmatched, "by_trigger": by_trigger,
            "method": "every trigger CloudEvent on the care and marketing topics, matched to the offered "
                      "record that caused it by (subject, time); consumer receipt time minus producer send "
                      "time, one clock. Probe records (a fresh gold customer with consent, voice fully "
                      "broken) make sure there are plenty"}


def _ping_latencies(messages, pings: list[float], ping_topic: str) -> dict[str, Any]:
    """Produce-to-visible of the pings: the broker's round trip under the same load, no processing."""
    latencies = []
    for topic, key, value, received in messages:
        if topic == ping_topic and value is not None:
            index = int(value)
            if index < len(pings):
                latencies.append(received - pings[index])
    return {**quantiles(latencies), "count": len(latencies), "expected": len(pings),
            "method": f"a small record every {PING_EVERY} offered records, same producer, to a topic of its "
                      "own read by the same consumer: the floor set by the broker and the clients under "
                      "the same load"}


def _parse_ms(text: str) -> int:
    return int(round(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000))


# ----------------------------------------------------------------------------- fan-out
def run_fanout(ctx: BenchContext, workload: Workload) -> dict[str, Any]:
    """A critical site alarm: time to the last of the site's customers' outage_notice."""
    fanout = int(ctx.args.fanout)
    total = max(int(ctx.args.customers), fanout)
    settings = ctx.section_settings("fanout")
    ensure_topics(settings)
    topics = settings.topics
    sites = max(30, total // 500)
    operator = SyntheticOperator(seed=workload.seed, customers=total, sites=sites, outage_share=fanout / total,
                                 degrading=0)
    on_site = len(operator.outage_customers)
    site_id = operator.site_ids[operator.outage_site]
    produce_pairs(settings, topics.customers, [(r.key, r.value) for r in operator.customers_records(True)])
    log = ctx.log_path("fanout", "worker")
    worker: WorkerProcess | None = None
    collector: Collector | None = None
    result: dict[str, Any] = {"customers": total, "on_site": on_site, "site": site_id, "cells": sites * 3}
    try:
        worker = start_worker(settings, log)
        _wait_customers(worker, total, total, timeout_s=300)
        _settle(settings)
        collector = Collector(settings, [topics.care])
        collector.start()
        collector.fetching.wait(10)
        time.sleep(1.0)  # the collector is fetching steadily before the alarm goes out
        noise = len(collector.messages)
        alarm_id = f"ALM-BENCH-{ctx.run_id}"
        raised = iso_time(DEFAULT_START + 3600)
        alarm = {"id": alarm_id, "alarmedObject": {"id": site_id, "@referredType": "Site"},
                 "perceivedSeverity": "critical", "alarmRaisedTime": raised, "state": "raised",
                 "alarmType": "equipmentAlarm", "probableCause": "powerProblem", "serviceAffecting": True}
        value = orjson.dumps({"eventId": f"EVT-{alarm_id}", "eventTime": raised, "eventType": "AlarmCreateEvent",
                              "event": {"alarm": alarm}})
        producer = Producer(producer_config(settings, **{"linger.ms": 0}))
        produced_at = time.time()
        producer.produce(topics.faults, value, alarm_id.encode())
        if producer.flush(30):
            raise SectionError("the alarm was not acknowledged within 30 s")
        acked_at = time.time()

        def notices() -> list[float]:
            return [received for topic, key, value, received in collector.messages[noise:]
                    if value is not None and b'"outage_notice"' in value]

        try:
            wait_for(lambda: len(notices()) >= on_site, 120, f"{on_site:,} outage notices", interval_s=0.05)
        except SectionError as error:
            result.setdefault("problems", []).append(str(error))
        times = sorted(notices())
        collector.stop()
        result.update({
            "notices": len(times),
            "expected": on_site,
            "alarm_ack_s": acked_at - produced_at,
            "first_s": times[0] - produced_at if times else None,
            "last_s": times[-1] - produced_at if len(times) >= on_site else None,
            "last_seen_s": times[-1] - produced_at if times else None,
            "notices_before_alarm": noise,
        })
        if times and len(times) > 1:
            result["p50_s"] = times[len(times) // 2] - produced_at
    finally:
        if collector is not None and collector.is_alive():
            collector.stop()
        _finish(result, worker, log)
    if result.get("last_s") is None:
        raise SectionError(f"{result.get('notices', 0):,} of {on_site:,} outage notices seen")
    return result


# ----------------------------------------------------------------------------- memory
def run_memory(ctx: BenchContext, workload: Workload) -> dict[str, Any]:
    """Resident memory per tracked customer, for each size in --memory-customers."""
    points = []
    problems = []
    for n in ctx.args.memory_customers:
        try:
            points.append(_memory_point(ctx, n, workload.seed))
        except SectionError as error:
            problems.append(f"{n:,} customers: {error}")
            points.append({"customers": n, "problem": str(error)})
        ctx.delete_topics()
    result: dict[str, Any] = {"points": points}
    measured = [p for p in points if p.get("bytes_per_customer") is not None]
    if measured:
        result["baseline_rss_bytes"] = measured[0]["baseline_rss_bytes"]
    if len(measured) >= 2:
        # the cost of one more customer, between the smallest and the largest count: what the
        # worker holds besides its customers (buffers, allocator slack) cancels out
        low, high = measured[0], measured[-1]
        grown = (high["rss_bytes"] - high["baseline_rss_bytes"]) - (low["rss_bytes"] - low["baseline_rss_bytes"])
        if high["customers"] > low["customers"]:
            result["marginal_bytes_per_customer"] = grown / (high["customers"] - low["customers"])
    if problems:
        result["problems"] = problems
        if not measured:
            raise SectionError("; ".join(problems))
    return result


def _memory_point(ctx: BenchContext, n: int, seed: int) -> dict[str, Any]:
    settings = ctx.section_settings(f"memory-{n}")
    ensure_topics(settings)
    topics = settings.topics
    log = ctx.log_path("memory", f"worker-{n}")
    worker: WorkerProcess | None = None
    point: dict[str, Any] = {"customers": n}
    try:
        worker = start_worker(settings, log)
        pid = worker.process.pid  # type: ignore[union-attr]
        _settle(settings)
        point["baseline_rss_bytes"] = proc_memory(pid).get("rss")
        began = time.monotonic()
        customer_records, quality_records = tracked_customers(n, seed)
        produce_pairs(settings, topics.customers, customer_records)
        produce_pairs(settings, topics.quality, quality_records)
        _wait_customers(worker, n, 2 * n, timeout_s=max(300.0, n / 1000.0))
        point["load_s"] = time.monotonic() - began
        # steady state: every customer idle in its stored form (CXSTREAM_HOT_IDLE_S after its last use)
        _settle(settings)
        # (the flushes that write a burst of new customers run behind it: at a
        # million, the last ones become idle some 30 s after the load)
        point["in_use_at_measure"] = _wait_put_away(
            worker, settings.hot_idle_s + 10 * settings.flush_interval_s + n / 20_000)
        memory = proc_memory(pid)
        point["rss_bytes"] = memory.get("rss")
        point["peak_rss_bytes"] = memory.get("hwm")
        snap = scrape(worker)
        point["customers_tracked"] = int(snap.customers) if snap is not None else None
        if point["rss_bytes"] and point["baseline_rss_bytes"]:
            point["bytes_per_customer"] = (point["rss_bytes"] - point["baseline_rss_bytes"]) / n
    finally:
        _finish(point, worker, log)
    return point


# ----------------------------------------------------------------------------- recovery
def run_recovery(ctx: BenchContext, workload: Workload) -> dict[str, Any]:
    """A worker with N customers in its changelog is stopped; time for a new one to be ready with them."""
    n = int(ctx.args.recovery_customers)
    settings = ctx.section_settings("recovery")
    ensure_topics(settings)
    topics = settings.topics
    customer_records, quality_records = tracked_customers(n, workload.seed, prefix="R")
    produce_pairs(settings, topics.customers, customer_records)
    produce_pairs(settings, topics.quality, quality_records)
    first_log = ctx.log_path("recovery", "worker-first")
    second_log = ctx.log_path("recovery", "worker-restarted")
    result: dict[str, Any] = {"customers": n}
    first: WorkerProcess | None = None
    second: WorkerProcess | None = None
    try:
        first = start_worker(settings, first_log, ready_timeout_s=180)
        _wait_customers(first, n, 2 * n, timeout_s=max(300.0, n / 1000.0))
        _settle(settings)
        began = time.monotonic()
        problem = stop_worker(first)
        result["clean_stop_s"] = time.monotonic() - began
        if problem:
            raise SectionError(f"the first worker did not stop cleanly: {problem}")
        result["first_worker_log"] = log_findings(first_log)
        first = None

        started = time.monotonic()
        second = WorkerProcess(settings, second_log).start()
        ready_s = restored_s = None
        deadline = started + 300
        while time.monotonic() < deadline and (ready_s is None or restored_s is None):
            failure = worker_failure(second)
            if failure:
                raise SectionError(failure)
            try:
                status, _ = second.get("/readyz", timeout_s=2.0)
            except OSError:
                status = 0
            snap = scrape(second, timeout_s=2.0) if status else None
            now = time.monotonic()
            if ready_s is None and status == 200:
                ready_s = now - started
            if restored_s is None and snap is not None and snap.customers >= n:
                restored_s = now - started
            time.sleep(POLL_S)
        result["ready_s"] = ready_s
        result["customers_restored_s"] = restored_s
        result["recovered_s"] = max(ready_s, restored_s) if ready_s is not None and restored_s is not None else None
        snap = scrape(second)
        result["customers_tracked"] = int(snap.customers) if snap is not None else None
        memory = proc_memory(second.process.pid)  # type: ignore[union-attr]
        result["rss_after_restore_bytes"] = memory.get("rss")
        if result["recovered_s"] is None:
            raise SectionError(f"the restarted worker was not ready with {n:,} customers within 300 s "
                               f"(ready after {ready_s} s, customers {result['customers_tracked']})")
    finally:
        if first is not None:
            stop_worker(first)
        _finish(result, second, second_log)
    return result
