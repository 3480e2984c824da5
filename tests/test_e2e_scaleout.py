"""Two workers in one consumer group, one stopped mid-stream.

Real broker, real ``cxstream worker`` processes sharing one app id (group,
changelog) with their own web ports and data directories. Customers of one
cell are spread over every partition, so an alarm on it impacts customers on
both workers:

- both run: every impacted customer gets exactly one outage_notice, and each
  worker answers ``GET /customers/{id}`` for every customer, routing to the
  other for the customers it owns (a forwarded request is never forwarded
  again; an unknown customer is a 404 from whichever worker is asked);
- one is stopped (SIGTERM) while quality traffic flows, and the alarm clears:
  every service_restored still appears (a redelivered trigger would carry the
  same CloudEvent id: one id per type and customer), and the survivor serves
  every customer's score, with the traffic sent meanwhile applied.

Fault impact with two workers: each holds half the impacted customers, yet
either answers ``GET /faults`` with all of them counted, pages the impacted
ids of ``/faults/{id}`` across both, and ``cx.fault_impact`` ends with the
fault's final document after the clear.
"""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from collections import Counter, defaultdict
from datetime import datetime, timedelta, timezone

import orjson
import pytest
from aiokafka.partitioner import murmur2

from cxstream.models.outputs import FaultImpact
from cxstream.ops.broker import free_port
from cxstream.ops.topics import ensure_topics
from cxstream.ops.web import ROUTED_BY, SERVED_BY
from cxstream.ops.worker_process import WorkerProcess
from cxstream.simulate.reader import read_topic
from e2e import Feed, triggers_of, values
from conftest import on_both_brokers

pytestmark = on_both_brokers

PARTITIONS = 4
ON_CELL_PER_PARTITION = 3
OTHERS = 24
T0 = datetime(2026, 11, 22, 10, 0, tzinfo=timezone.utc)


def partition_of(customer_id: str, partitions: int = PARTITIONS) -> int:
    """murmur2, as the test's producer (and every producer of keyed input) places keys."""
    return (murmur2(customer_id.encode()) & 0x7FFFFFFF) % partitions


def spread_customers(partitions: int = PARTITIONS) -> tuple[list[str], list[str]]:
    """Customers on the cell (the same number on every partition) and the others."""
    on_cell: dict[int, list[str]] = defaultdict(list)
    n = 0
    while any(len(on_cell[p]) < ON_CELL_PER_PARTITION for p in range(partitions)):
        cid = f"S{n:03d}"
        if len(on_cell[partition_of(cid, partitions)]) < ON_CELL_PER_PARTITION:
            on_cell[partition_of(cid, partitions)].append(cid)
        n += 1
    return sorted(c for p in on_cell.values() for c in p), [f"O{i:03d}" for i in range(OTHERS)]


def at(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def http_get(worker: WorkerProcess, path: str, headers: dict | None = None) -> tuple[int, dict, bytes]:
    request = urllib.request.Request(worker.base_url + path, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def wait_for(condition, what: str, timeout_s: float, *workers: WorkerProcess, interval_s: float = 0.2):
    """Poll ``condition()`` until it returns a true value, or fail naming ``what``."""
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        try:
            last = condition()
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(interval_s)
    logs = "\n".join(f"--- {w.log_path.name}\n{w.log_tail(30)}" for w in workers)
    raise TimeoutError(f"{what}: not within {timeout_s:.0f} s (last: {last!r})\n{logs}")


def readyz(worker: WorkerProcess) -> dict:
    status, _, body = http_get(worker, "/readyz")
    return {"status": status, **orjson.loads(body)}


def quality_ok(worker: WorkerProcess) -> float:
    status, _, body = http_get(worker, "/metrics")
    for line in body.decode().splitlines():
        if line.startswith("cxstream_events_total{") and 'source="quality"' in line and 'outcome="ok"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


class Traffic(threading.Thread):
    """Good quality records for every customer, round after round, until stopped.

    Each round advances event time by 10 s; ``last`` keeps the event time of
    the last record sent per customer.
    """

    def __init__(self, settings, customers: list[str], start_s: float, rounds_per_s: float = 2.5):
        super().__init__(daemon=True)
        self.feed = Feed(settings)
        self.customers = customers
        self.clock = start_s
        self.period = 1.0 / rounds_per_s
        self.last: dict[str, str] = {}
        self.sent = 0
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            self.clock += 10
            for cid in self.customers:
                self.feed.quality(cid, at(self.clock), event_id=f"t-{cid}-{self.clock:.0f}", mos=4.3)
                self.last[cid] = at(self.clock)
                self.sent += 1
            self.feed.producer.poll(0)
            self.stopping.wait(self.period)  # pacing, not synchronisation
        self.feed.flush()

    def stop(self) -> None:
        self.stopping.set()
        self.join(30)
        assert not self.is_alive(), "traffic thread did not stop"


# the operator's tooling made the topics with 4, 8 or 12 partitions; the workers
# run with the default CXSTREAM_PARTITIONS (4) and follow the topics (contract v2)
@pytest.mark.parametrize("layout", [4, 8, 12])
def test_two_workers_share_the_load_and_survive_one_stopping(make_settings, tmp_path, layout):
    started = time.monotonic()
    port_a, port_b = free_port(), free_port()
    # advertised as localhost, not the bound 127.0.0.1 (faust's default canonical_url): the
    # owners named in the answers below prove CXSTREAM_WEB_ADVERTISED_URL reaches the group
    settings_a = make_settings(web_port=port_a, web_advertised_url=f"http://localhost:{port_a}",
                               partitions=PARTITIONS)
    settings_b = settings_a.model_copy(update={
        "web_port": port_b, "web_advertised_url": f"http://localhost:{port_b}",
        "data_dir": settings_a.data_dir.parent / (settings_a.data_dir.name + "-b"),
    })
    settings_b.data_dir.mkdir(parents=True, exist_ok=True)
    topics = settings_a.topics
    ensure_topics(settings_a.model_copy(update={"partitions": layout}))

    on_cell, others = spread_customers(layout)
    everyone = on_cell + others
    feed = Feed(settings_a)
    for cid in on_cell:
        feed.customer(cid, ["CELL-S", "SITE-2"])
    for cid in others:
        feed.customer(cid, ["CELL-O", "SITE-2"], tier="silver")
    feed.flush()

    a = WorkerProcess(settings_a, tmp_path / "worker-a.log").start()
    b = WorkerProcess(settings_b, tmp_path / "worker-b.log").start()
    url_a, url_b = settings_a.advertised_url, settings_b.advertised_url
    traffic: Traffic | None = None
    try:
        a.wait_ready()
        b.wait_ready()

        def settled():
            ra, rb = readyz(a), readyz(b)
            return (ra["ready"] and rb["ready"] and ra["customers"] > 0 and rb["customers"] > 0
                    and ra["customers"] + rb["customers"] == len(everyone)) and (ra, rb)

        ra, rb = wait_for(settled, "both workers ready, each holding some customers", 45, a, b)

        # --- quality traffic, then an alarm on the cell: one outage_notice each
        for cid in everyone:
            feed.quality(cid, at(60), event_id=f"warm-{cid}", mos=4.4)
        feed.flush()
        feed.alarm_raise("ALM-S", "CELL-S", at(300), severity="critical")
        feed.flush()
        read_topic(settings_a, topics.care, timeout_s=30,
                   until=lambda m: {e["subject"] for e in triggers_of(m, "outage_notice")} == set(on_cell))
        care = read_topic(settings_a, topics.care, idle_s=1.0)
        notices = Counter(e["subject"] for e in triggers_of(care, "outage_notice"))
        assert notices == Counter({cid: 1 for cid in on_cell}), notices

        # --- any worker answers for any customer; the owner decides
        served_by: dict[str, str] = {}
        for cid in everyone:
            answers = [http_get(w, f"/customers/{cid}") for w in (a, b)]
            for (status, headers, body), w in zip(answers, (a, b)):
                assert status == 200, (w.log_path.name, cid, status, body)
                doc = orjson.loads(body)
                assert doc["customer_id"] == cid
                assert doc["active_faults"] == (["ALM-S"] if cid in on_cell else [])
            owners = {headers[SERVED_BY] for _, headers, _ in answers}
            assert len(owners) == 1 and owners <= {url_a, url_b}, (cid, owners)
            served_by[cid] = owners.pop()
        owned = Counter(served_by.values())

        # --- fault impact: either worker counts every impacted customer
        def fault_views():
            answers = [http_get(w, "/faults") for w in (a, b)]
            if any(status != 200 for status, _, _ in answers):
                return False
            bodies = [orjson.loads(body) for _, _, body in answers]
            if not all(b["complete"] and b["as_of"] for b in bodies):
                return False
            listed = [b["faults"] for b in bodies]
            if not all(len(docs) == 1 and docs[0]["impacted"]["total"] == len(on_cell) for docs in listed):
                return False
            return listed

        listed = wait_for(fault_views, "both workers counting every customer ALM-S impacts", 20, a, b)
        assert listed[0] == listed[1]
        impact = listed[0][0]
        FaultImpact.model_validate(impact)
        assert (impact["alarm_id"], impact["resource_id"], impact["severity"], impact["active"]) == \
            ("ALM-S", "CELL-S", "critical", True)
        assert impact["impacted"]["by_tier"] == {"platinum": 0, "gold": len(on_cell), "silver": 0, "bronze": 0}
        assert impact["impacted"]["by_segment"] == {"consumer": len(on_cell)}
        assert impact["mean_score"] is not None and impact["mean_score"] < 100
        assert {served_by[cid] for cid in on_cell} == {url_a, url_b}  # so the ids live on both
        for w in (a, b):  # a page of ids gathered from both workers, whichever is asked
            collected: list[str] = []
            while True:
                status, _, body = http_get(w, f"/faults/ALM-S?offset={len(collected)}&limit=5")
                assert status == 200, (w.log_path.name, status, body)
                page = orjson.loads(body)["customers"]
                assert page["total"] == len(on_cell) and len(page["items"]) <= 5
                if not page["items"]:
                    break
                collected += page["items"]
            assert sorted(collected) == on_cell and len(set(collected)) == len(collected), collected
        assert http_get(b, "/faults/ALM-NOPE")[0] == 404
        assert owned == Counter({url_a: ra["customers"], url_b: rb["customers"]}), (owned, ra, rb)
        # the alarm's customers are on both workers
        assert {served_by[cid] for cid in on_cell} == {url_a, url_b}
        # every partition has one owner
        owner_of_partition = defaultdict(set)
        for cid, url in served_by.items():
            owner_of_partition[partition_of(cid, layout)].add(url)
        assert all(len(urls) == 1 for urls in owner_of_partition.values()), owner_of_partition

        for w in (a, b):  # unknown: a 404, whether asked of the owner or routed to it
            status, headers, body = http_get(w, "/customers/NOBODY-1")
            assert status == 404, (w.log_path.name, status, body)
        # a forwarded request is not forwarded again: a's answer for b's customer, asked as if routed
        theirs = next(cid for cid in everyone if served_by[cid] == url_b)
        status, headers, body = http_get(a, f"/customers/{theirs}", {ROUTED_BY: "http://127.0.0.1:1"})
        assert status == 503 and headers[SERVED_BY] == url_a, (status, headers, body)

        # --- stop b mid-stream, then clear the alarm while traffic flows
        before = quality_ok(b)
        traffic = Traffic(settings_a, everyone, start_s=400)
        traffic.start()
        wait_for(lambda: quality_ok(b) >= before + 20, "b processing the traffic", 20, a, b)
        assert b.stop() == 0, b.log_tail(60)
        feed.alarm_clear("ALM-S", at(3000))  # while b's partitions have no owner
        feed.flush()

        # until a takes b's partitions over, it says so (503 with a reason), never "unknown" (404)
        probes: list[tuple[int, dict, bytes]] = []

        def served_after_handover():
            probes.append(http_get(a, f"/customers/{theirs}"))
            return probes[-1][0] == 200

        wait_for(served_after_handover, "a serving b's customer after the handover", 45, a)
        waiting = [(status, orjson.loads(body)) for status, _, body in probes[:-1]]
        # (on Apache Kafka b's LeaveGroup can hand its partitions over before the first probe:
        # then there is no waiting to look at, and nothing was answered 404 either)
        assert all(status == 503 and "retry" in doc["error"] for status, doc in waiting), waiting
        assert all(headers.get("Retry-After") for _, headers, _ in probes[:-1])
        print("during the handover:", dict(Counter(doc["error"] for _, doc in waiting)))
        read_topic(settings_a, topics.care, timeout_s=45,
                   until=lambda m: {e["subject"] for e in triggers_of(m, "service_restored")} == set(on_cell))
        traffic.stop()
        last = dict(traffic.last)

        # --- the survivor serves every customer, with everything sent applied
        def survivor_serves_all():
            if readyz(a)["customers"] != len(everyone):
                return False
            for cid in everyone:
                status, headers, body = http_get(a, f"/customers/{cid}")
                if status != 200:
                    return False
                doc = orjson.loads(body)
                if headers[SERVED_BY] != url_a or doc["active_faults"] or doc["updated_at"] < last[cid]:
                    return False
            return True

        wait_for(survivor_serves_all, "the surviving worker serving every customer, up to date", 30, a)

        care = read_topic(settings_a, topics.care, idle_s=1.0)
        ids = defaultdict(set)
        for event in values(care):
            ids[(event["type"], event["subject"])].add(event["id"])
        assert all(len(found) == 1 for found in ids.values()), {k: v for k, v in ids.items() if len(v) > 1}
        kinds = {t.rsplit(".", 1)[1] for t, _ in ids}
        subjects = {kind: {s for t, s in ids if t.endswith("." + kind)} for kind in kinds}
        assert subjects["outage_notice"] == set(on_cell)
        assert subjects["service_restored"] == set(on_cell)
        restored = triggers_of(care, "service_restored")
        assert all(e["data"]["faults"] == ["ALM-S"] and e["time"] == at(3000) for e in restored)

        # --- cx.fault_impact ends with the fault's final document
        def final_impact():
            documents = [v for v in values(read_topic(settings_a, topics.fault_impact, idle_s=0.5)) if v]
            return documents and not documents[-1]["active"] and documents
        documents = wait_for(final_impact, "the final ALM-S document on cx.fault_impact", 20, a)
        assert {d["alarm_id"] for d in documents} == {"ALM-S"}
        for document in documents:
            FaultImpact.model_validate(document)
        assert documents[0]["active"] and documents[0]["cleared_at"] is None
        final = documents[-1]
        assert final["cleared_at"] == at(3000) and final["duration_s"] == 2700
        assert final["impacted"]["total"] == len(on_cell)
    finally:
        if traffic is not None and traffic.is_alive():
            traffic.stop()
        codes = {w.log_path.name: w.stop() for w in (a, b)}
        print(f"two-worker test: {time.monotonic() - started:.1f} s")
        for w in (a, b):
            print(f"--- {w.log_path.name}\n{w.log_tail(40)}")
    assert all(code in (0, None) for code in codes.values()), codes
