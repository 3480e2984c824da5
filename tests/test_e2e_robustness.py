"""Production trust (issue 11), end to end on the real `cxstream worker`: what
an operator's tooling, a real fault manager and a failing broker do.

- poison input on every input topic and through the listener, then normal
  traffic, then a restart that re-reads the poison: nothing stops the worker;
- a customer record without a key is applied (a consent withdrawal holds), a
  tombstone holds against a later quality record, also across a restart;
- topics created by the operator with 8 partitions: the worker follows them
  with default settings; co-partitioned inputs that disagree are refused;
- the broker frozen: /readyz 503 while it is gone, 200 after; SIGTERM with the
  broker frozen exits within the bound.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import orjson
import pytest

from cxstream.ops.topics import admin_client, changelog_topic, ensure_topics, topic_plan
from cxstream.ops.worker_process import WorkerProcess
from cxstream.simulate.reader import read_topic
from e2e import Feed, notification, running_worker, triggers_of, values

NOW = "2026-11-22T10:00:00Z"


def wait_for(predicate, timeout_s: float, what: str, every_s: float = 0.2):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(every_s)  # polling interval of a condition with a deadline
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


def stays_ready(worker: WorkerProcess, seconds: float) -> None:
    """/readyz answers 200 on every look for ``seconds`` (the worker is not crash-looping)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        assert worker.process.poll() is None, "worker exited"
        status, _ = worker.get("/readyz")
        assert status == 200, f"/readyz answered {status}"
        time.sleep(0.25)


def field_of(worker: WorkerProcess, path: str, name: str):
    status, document = worker.get_json(path)
    for part in name.split("."):
        if status != 200 or not isinstance(document, dict):
            return None
        document = document.get(part)
    return document


def dead_letters(settings, count: int, timeout_s: float = 60.0) -> list[dict]:
    messages = read_topic(settings, settings.topics.deadletter, until=lambda m: len(m) >= count,
                          timeout_s=timeout_s)
    return values(messages)


def latest_score(settings, customer_id: str, predicate, timeout_s: float = 60.0) -> dict:
    found = {}

    def done(messages):
        for m in messages:
            if m["key"] == customer_id.encode() and m["value"] is not None:
                found["doc"] = orjson.loads(m["value"])
        return "doc" in found and predicate(found["doc"])

    read_topic(settings, settings.topics.scores, until=done, timeout_s=timeout_s)
    return found["doc"]


def test_poison_input_never_stops_a_worker_and_a_restart_reads_it_again(settings, tmp_path):
    feed = Feed(settings)
    topics = settings.topics
    huge_control = bytes(range(32)) * (180 * 1024 // 32)  # 180 KB of control bytes
    poison = [
        (topics.quality, b"P1", huge_control),
        (topics.quality, b"P2", b"\xff\xfe" * 200_000),  # 400 KB, not UTF-8: over the record bound
        (topics.quality, b"P3", orjson.dumps({  # far-future event time: would make real records late
            "event_id": "q-future", "customer_id": "P3", "event_time": "2099-01-01T00:00:00Z",
            "service": "voice", "metrics": {"mos": 1.2}})),
        (topics.faults, b"ALM-X", orjson.dumps(notification("AlarmCreateEvent", NOW, {
            "id": "ALM-X", "alarmedObject": {"id": "CELL-P"}, "perceivedSeverity": "critical",
            "alarmRaisedTime": "9999-12-31T23:59:59-23:59"}))),
        (topics.customers, b"P4", orjson.dumps({"customer_id": "P4", "resources": ["R"] * 1000})),
    ]
    with running_worker(settings, tmp_path / "worker.log", log_lines=80) as worker:
        # the listener refuses the calendar's end at once, with the field named
        body = orjson.dumps(notification("AlarmCreateEvent", NOW, {
            "id": "ALM-Y", "alarmedObject": {"id": "CELL-P"}, "perceivedSeverity": "critical",
            "alarmRaisedTime": "9999-12-31T23:59:59-23:59"}))
        status, answer = worker.post("/tmf-api/alarmManagement/v4/listener/alarmCreateEvent", body)
        assert status == 400 and b"alarmRaisedTime" in answer, (status, answer)
        for topic, key, value in poison:
            feed.send(topic, key, value)
        feed.customer("OK1", ["CELL-OK"], tier="gold")
        feed.customer("P3", ["CELL-OK"], tier="gold")
        feed.flush()
        feed.quality("OK1", "2026-11-22T10:00:05Z", call_dropped=True)
        feed.quality("P3", "2026-11-22T10:00:06Z", call_dropped=True)  # not late: the future one was refused
        feed.alarm_raise("ALM-OK", "CELL-OK", "2026-11-22T10:01:00Z")
        feed.flush()
        letters = dead_letters(settings, len(poison))
        by_key = {letter["key"]: letter for letter in letters}
        assert set(by_key) >= {"P1", "P2", "P3", "ALM-X", "P4"}, by_key.keys()
        for letter in letters:
            assert len(orjson.dumps(letter)) < 1_000_000
            assert letter["error"]
        assert by_key["P1"]["payload_truncated"] is True or len(orjson.dumps(by_key["P1"])) < 1_000_000
        assert by_key["P2"]["payload_truncated"] is True and by_key["P2"]["payload_bytes"] == 400_000
        assert "CXSTREAM_MAX_RECORD_BYTES" in by_key["P2"]["error"]
        assert "future" in by_key["P3"]["error"]
        assert "alarmRaisedTime" in by_key["ALM-X"]["error"]
        assert "resources" in by_key["P4"]["error"]
        care = read_topic(settings, topics.care, until=lambda m: len(triggers_of(m, "outage_notice")) >= 2)
        assert sorted(e["subject"] for e in triggers_of(care, "outage_notice")) == ["OK1", "P3"]
        assert latest_score(settings, "P3", lambda d: d["score"] < 100)["score"] < 100
        stays_ready(worker, 2)
        _, metrics = worker.get("/metrics")
        assert b'cxstream_events_total{outcome="invalid",source="quality"}' in metrics
    # a restart reads the faults topic from the start again, poison included
    with running_worker(settings, tmp_path / "worker2.log", log_lines=80) as worker:
        feed.quality("OK1", "2026-11-22T10:02:00Z", call_dropped=True)
        feed.flush()
        latest_score(settings, "OK1", lambda d: d["updated_at"] == "2026-11-22T10:02:00Z")
        stays_ready(worker, 3)


def test_unkeyed_consent_withdrawal_holds_and_erasure_holds(settings, tmp_path):
    feed = Feed(settings)
    topics = settings.topics
    with running_worker(settings, tmp_path / "worker.log", log_lines=80) as worker:
        feed.customer("U1", ["CELL-U"], tier="silver", consent=True)
        feed.customer("E1", ["CELL-E"], tier="silver", consent=True)
        feed.flush()
        # the operator's tooling sends the consent withdrawal without a key
        feed.send(topics.customers, None, {"customer_id": "U1", "value_tier": "silver",
                                           "marketing_consent": False, "resources": ["CELL-U"],
                                           "updated_at": "2026-11-22T09:00:00Z"})
        feed.flush()
        latest_score(settings, "U1", lambda d: True)
        # wait until the withdrawal is applied: its care view says so
        wait_for(lambda: field_of(worker, "/customers/U1?view=care", "care.marketing_consent") is False,
                 60, "the unkeyed consent withdrawal to be applied")
        for n in range(6):  # sink the score below the retention threshold
            feed.quality("U1", f"2026-11-22T10:00:{n:02d}Z", call_dropped=True, call_setup_failed=True,
                         mos=1.0)
        feed.tombstone("E1")
        feed.flush()
        wait_for(lambda: worker.get("/customers/E1")[0] == 404, 60, "the tombstone to erase E1")
        feed.quality("E1", "2026-11-22T10:05:00Z", call_dropped=True)
        feed.quality("U1", "2026-11-22T10:05:01Z", mos=1.0)  # a marker: after E1's record
        feed.flush()
        wait_for(lambda: field_of(worker, "/customers/U1", "updated_at") == "2026-11-22T10:05:01Z",
                 60, "U1's last record")
        assert worker.get("/customers/E1")[0] == 404, "a quality record brought an erased customer back"
        _, metrics = worker.get("/metrics")
        assert b'outcome="erased",source="quality"' in metrics
    marketing = read_topic(settings, topics.marketing, idle_s=2)
    assert not [e for e in values(marketing) if e["subject"] == "U1"], "an offer without consent"
    # the erasure is remembered across a restart (the changelog holds its marker)
    with running_worker(settings, tmp_path / "worker2.log", log_lines=80) as worker:
        feed.quality("E1", "2026-11-22T10:06:00Z", call_dropped=True)
        feed.quality("U1", "2026-11-22T10:06:01Z", mos=1.0)
        feed.flush()
        wait_for(lambda: field_of(worker, "/customers/U1", "updated_at") == "2026-11-22T10:06:01Z",
                 60, "U1's last record")
        assert worker.get("/customers/E1")[0] == 404, "after a restart a quality record revived E1"
    scores = read_topic(settings, topics.scores, idle_s=2)
    after = [m for m in scores if m["key"] == b"E1"]
    assert after and after[-1]["value"] is None, "E1's last score document is not its tombstone"


def test_worker_follows_the_operators_partition_count(make_settings, tmp_path):
    made = make_settings(partitions=8)
    ensure_topics(made)  # the operator's tooling: 8 partitions
    settings = made.model_copy(update={"partitions": 4})  # the worker left at its default
    feed = Feed(settings)
    with running_worker(settings, tmp_path / "worker.log", log_lines=80) as worker:
        customers = [f"C{n}" for n in range(40)]
        for cid in customers:
            feed.customer(cid, ["CELL-8", "SITE-8"])
        feed.flush()
        # a site alarm and its correlated cell alarm, both cleared after 5 h: one
        # outage episode, so one notice, one restored and one credit per customer
        feed.alarm_raise("ALM-SITE", "SITE-8", NOW)
        feed.alarm_raise("ALM-CELL", "CELL-8", "2026-11-22T10:01:00Z")
        feed.flush()
        care = read_topic(settings, settings.topics.care,
                          until=lambda m: len(triggers_of(m, "outage_notice")) >= len(customers))
        feed.alarm_clear("ALM-CELL", "2026-11-22T15:00:00Z")
        feed.alarm_clear("ALM-SITE", "2026-11-22T15:01:00Z")
        feed.flush()
        care = read_topic(settings, settings.topics.care,
                          until=lambda m: len(triggers_of(m, "service_credit")) >= len(customers))
        care = read_topic(settings, settings.topics.care, idle_s=2)  # and anything after them
        for trigger in ("outage_notice", "service_restored", "service_credit"):
            subjects = sorted(e["subject"] for e in triggers_of(care, trigger))
            assert subjects == sorted(customers), (trigger, subjects)
        credit = triggers_of(care, "service_credit")[0]
        assert sorted(credit["data"]["faults"]) == ["ALM-CELL", "ALM-SITE"]
        for cid in customers[:5]:
            assert worker.get(f"/customers/{cid}")[0] == 200
    topics = admin_client(settings).list_topics(timeout=10).topics
    assert len(topics[changelog_topic(settings.app_id)].partitions) == 8


def run_worker_until_exit(settings, timeout_s: float = 90.0) -> subprocess.CompletedProcess:
    env = {**os.environ, **settings.to_env()}
    return subprocess.run([sys.executable, "-m", "cxstream", "worker"], env=env, capture_output=True,
                          text=True, timeout=timeout_s)


def test_inputs_that_disagree_stop_start_up_with_one_line(make_settings):
    settings = make_settings(partitions=4)
    six = settings.model_copy(update={"partitions": 6})
    ensure_topics(six, [spec for spec in topic_plan(six) if spec.role == "customers"])
    ensure_topics(settings)  # the rest with 4: quality and customers disagree
    result = run_worker_until_exit(settings)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert settings.topics.customers in lines[0] and settings.topics.quality in lines[0]
    assert "Traceback" not in result.stderr


def test_rocksdb_without_its_extra_is_one_line(settings, tmp_path):
    code = ("import sys, builtins\n"
            "real = builtins.__import__\n"
            "def fake(name, *a, **k):\n"
            "    if name == 'rocksdict': raise ImportError('no rocksdict')\n"
            "    return real(name, *a, **k)\n"
            "builtins.__import__ = fake\n"
            "from cxstream.ops.cli import main\n"
            "sys.exit(main(['worker']))\n")
    env = {**os.environ, **settings.to_env(), "CXSTREAM_STORE": "rocksdb"}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "pip install 'cxstream[rocksdb]'" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_readiness_follows_the_broker_and_stop_is_bounded(broker, make_settings, tmp_path):
    pid = getattr(broker, "pid", None)
    if pid is None:
        pytest.skip("the session broker is not a process this test can freeze")
    settings = make_settings(broker_lost_s=3, shutdown_timeout_s=5)
    feed = Feed(settings)
    ensure_topics(settings)
    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    try:
        worker.wait_ready()
        feed.customer("F1", ["CELL-F"])
        feed.flush()
        latest_score(settings, "F1", lambda d: True)
        os.kill(pid, signal.SIGSTOP)
        try:
            wait_for(lambda: worker.get("/readyz")[0] == 503, 30, "/readyz to answer 503")
            assert worker.get("/healthz")[0] == 200
        finally:
            os.kill(pid, signal.SIGCONT)
        wait_for(lambda: worker.get("/readyz")[0] == 200, 60, "/readyz to answer 200 again")
        feed.quality("F1", "2026-11-22T10:00:00Z", call_dropped=True)
        feed.flush()
        latest_score(settings, "F1", lambda d: d["score"] < 100)  # nothing lost: it goes on
        # a stop with the broker gone: within the bound, and the log says why
        feed.quality("F1", "2026-11-22T10:00:10Z", call_dropped=True)
        feed.flush()
        os.kill(pid, signal.SIGSTOP)
        try:
            started = time.monotonic()
            worker.process.send_signal(signal.SIGTERM)
            worker.process.wait(5 + 10 + 20)
            took = time.monotonic() - started
        finally:
            os.kill(pid, signal.SIGCONT)
        assert took < 5 + 10 + 15, f"stop took {took:.1f} s"
        assert "not committed" in worker.log_path.read_text(errors="replace")
    finally:
        worker.kill()
        print(worker.log_tail(80))


@pytest.mark.parametrize("layout", [8, 12])
def test_two_workers_one_killed_on_operator_made_partitions(make_settings, tmp_path, layout):
    from cxstream.ops.broker import free_port

    made = make_settings(partitions=layout)
    ensure_topics(made)  # the operator's tooling
    settings_a = made.model_copy(update={"partitions": 4})  # the workers at their default
    port_b = free_port()
    settings_b = settings_a.model_copy(update={
        "web_port": port_b, "data_dir": settings_a.data_dir.parent / (settings_a.data_dir.name + "-b")})
    settings_b.data_dir.mkdir(parents=True, exist_ok=True)
    feed = Feed(settings_a)
    customers = [f"K{n:02d}" for n in range(48)]
    for cid in customers:
        feed.customer(cid, ["CELL-K"])
    feed.flush()
    a = WorkerProcess(settings_a, tmp_path / "worker-a.log").start()
    b = WorkerProcess(settings_b, tmp_path / "worker-b.log").start()
    try:
        a.wait_ready()
        b.wait_ready()
        for n, cid in enumerate(customers):  # mid-stream: quality records going on
            feed.quality(cid, f"2026-11-22T09:59:{n % 60:02d}Z", mos=4.0)
        feed.flush()
        b.kill()  # SIGKILL: no final flush, no commit
        feed.alarm_raise("ALM-K", "CELL-K", NOW)
        feed.flush()
        care = read_topic(settings_a, settings_a.topics.care, timeout_s=120,
                          until=lambda m: {e["subject"] for e in triggers_of(m, "outage_notice")}
                          >= set(customers))
        assert {e["subject"] for e in triggers_of(care, "outage_notice")} == set(customers)
        wait_for(lambda: all(a.get(f"/customers/{cid}")[0] == 200 for cid in customers), 60,
                 "the survivor to serve every customer")
    finally:
        b.kill()
        code = a.stop()
        print(a.log_tail(60))
        print(b.log_tail(30))
    assert code == 0
