"""End to end on the embedded broker: the real `cxstream worker` process.

One worker run walks the contract: customers on cells, an alarm on one cell,
its clear, consent and active-fault hold-backs, dead letters between good
records, a tombstone, the TMF642 listener and the metrics.
"""

from __future__ import annotations

import re

import orjson
import pytest

from cxstream.models.outputs import CloudEvent, DeadLetter, ScoreDocument
from cxstream.simulate.reader import read_topic
from e2e import Feed, notification, running_worker, triggers_of, values
from conftest import on_both_brokers

pytestmark = on_both_brokers

CELL_A = ["A1", "A2", "A3", "A4", "A5"]
CELL_B = ["B1", "B2", "B3"]


def latest_scores(messages: list[dict]) -> dict[str, dict | None]:
    latest: dict[str, dict | None] = {}
    for m in messages:
        latest[m["key"].decode()] = None if m["value"] is None else orjson.loads(m["value"])
    return latest


def wait_scores(settings, predicate, timeout_s=60.0) -> dict[str, dict | None]:
    found: dict = {}

    def done(messages):
        found.clear()
        found.update(latest_scores(messages))
        return predicate(found)

    read_topic(settings, settings.topics.scores, until=done, timeout_s=timeout_s)
    return dict(found)


SECRET = "s3cr3t-never-logged"


@pytest.fixture
def settings(make_settings):
    # a password in the environment (unused on PLAINTEXT) must never show up anywhere
    return make_settings(sasl_password=SECRET)


@pytest.fixture
def worker(settings, tmp_path):
    with running_worker(settings, tmp_path / "worker.log", log_lines=60) as process:
        yield process
    assert SECRET not in process.log_path.read_text(errors="replace"), "a secret reached the log"


def test_contract_walkthrough(settings, worker):
    feed = Feed(settings)
    topics = settings.topics
    for cid in CELL_A:
        feed.customer(cid, ["CELL-A", "SITE-1"])
    for cid in CELL_B:
        feed.customer(cid, ["CELL-B", "SITE-1"])
    feed.customer("N1", ["CELL-C"], tier="silver", consent=False)
    feed.customer("R1", ["CELL-C"], tier="silver", consent=True)
    feed.flush()
    everyone = CELL_A + CELL_B + ["N1", "R1"]
    wait_scores(settings, lambda s: all(c in s for c in everyone))

    # --- an alarm on CELL-A: one outage_notice per customer on it, none elsewhere
    feed.alarm_raise("ALM-A", "CELL-A", "2026-11-22T10:00:00Z", severity="critical")
    feed.flush()
    care = read_topic(settings, topics.care, until=lambda m: len(triggers_of(m, "outage_notice")) >= 5)
    notices = triggers_of(care, "outage_notice")
    assert sorted(e["subject"] for e in notices) == CELL_A
    for event in notices:
        CloudEvent.model_validate(event)
        assert event["type"] == "io.cxstream.trigger.outage_notice"
        assert event["source"] == "urn:cxstream:default"
        assert event["time"] == "2026-11-22T10:00:00Z"
        assert event["data"]["faults"] == ["ALM-A"]
        assert event["partitionkey"] == event["subject"]
    headers = {m["key"]: m["headers"] for m in care}
    assert headers[b"A1"]["content-type"] == b"application/cloudevents+json; charset=UTF-8"

    # --- quality: the bad, the good and the malformed, interleaved
    bad = dict(call_dropped=True, mos=1.2)
    for minute in range(10, 20):
        at = f"2026-11-22T10:{minute:02d}:00Z"
        feed.quality("N1", at, **bad)      # no consent: never a retention offer
        feed.quality("R1", at, **bad)      # consent, no fault: retention offer
        feed.quality("A1", at, **bad)      # consent but under an active fault: held back
    feed.send(topics.quality, "R1", b"{not json")
    feed.send(topics.quality, "R1", {"event_id": "q-bad-mos", "customer_id": "R1",
                                     "event_time": "2026-11-22T10:30:00Z", "service": "voice",
                                     "metrics": {"mos": 7.5}})
    feed.send(topics.quality, "R1", {"event_id": "q-bad-svc", "customer_id": "R1",
                                     "event_time": "2026-11-22T10:30:00Z", "service": "fax",
                                     "metrics": {"mos": 4.0}})
    feed.send(topics.faults, "ALM-X", notification("AlarmExplodeEvent", "2026-11-22T10:30:00Z", {"id": "ALM-X"}))
    feed.quality("B2", "2026-11-22T10:31:00Z", mos=4.4)  # good record after the bad ones
    feed.flush()

    dead = read_topic(settings, topics.deadletter, until=lambda m: len(m) >= 4)
    letters = values(dead)
    assert len(letters) == 4
    for letter in letters:
        DeadLetter.model_validate(letter)
    errors = " | ".join(letter["error"] for letter in letters)
    assert "JSON" in errors
    assert "metrics.mos" in errors
    assert "service" in errors
    assert "AlarmExplodeEvent" in errors
    by_offset = {(d["source_topic"], d["payload"]) for d in letters}
    assert (topics.quality, "{not json") in by_offset

    scores = wait_scores(settings, lambda s: s.get("B2", {}).get("updated_at") == "2026-11-22T10:31:00Z"
                         and all(s.get(c, {}).get("score", 100) < 50 for c in ("N1", "R1", "A1")))
    for doc in scores.values():
        ScoreDocument.model_validate(doc)
    assert scores["A1"]["active_faults"] == ["ALM-A"]
    assert any(r["code"] == "voice.call_dropped" for r in scores["R1"]["reasons"])

    marketing = read_topic(settings, topics.marketing, until=lambda m: len(m) >= 1)
    marketing = read_topic(settings, topics.marketing, idle_s=1.5)
    offers = triggers_of(marketing, "retention_offer")
    assert [e["subject"] for e in offers] == ["R1"], "only the consenting customer without a fault"

    # --- the clear: service_restored for every notified customer, and a credit (> 4 h)
    feed.alarm_clear("ALM-A", "2026-11-22T14:30:00Z")
    feed.flush()
    care = read_topic(settings, topics.care, until=lambda m: len(triggers_of(m, "service_restored")) >= 5
                      and len(triggers_of(m, "service_credit")) >= 5)
    restored = triggers_of(care, "service_restored")
    assert sorted(e["subject"] for e in restored) == CELL_A
    assert all(e["data"]["faults"] == ["ALM-A"] for e in restored)
    assert all(e["time"] == "2026-11-22T14:30:00Z" for e in restored)
    assert len(triggers_of(care, "outage_notice")) == 5, "no second notice"

    # --- the TMF642 listener: 201 once stored, 400 with the dead-letter reason
    body = orjson.dumps(notification("AlarmCreateEvent", "2026-11-22T15:00:00Z", {
        "id": 4242, "alarmedObject": {"id": "CELL-B"}, "perceivedSeverity": "MAJOR",
        "alarmRaisedTime": "2026-11-22T15:00:00Z"}))
    status, answer = worker.post("/tmf-api/alarmManagement/v4/listener/alarmCreateEvent", body)
    assert status == 201, answer
    status, answer = worker.post("/tmf-api/alarmManagement/v5/listener/alarmCreateEvent",
                                 orjson.dumps(notification("AlarmCreateEvent", "2026-11-22T15:00:00Z",
                                                           {"id": "ALM-Q"})))
    assert status == 400 and b"alarmedObject" in answer, answer
    care = read_topic(settings, topics.care, until=lambda m: len(triggers_of(m, "outage_notice")) >= 8)
    assert sorted(e["subject"] for e in triggers_of(care, "outage_notice")) == sorted(CELL_A + CELL_B)

    # --- a tombstone erases the customer and tombstones its score
    feed.tombstone("B1")
    feed.flush()
    wait_scores(settings, lambda s: "B1" in s and s["B1"] is None)
    status, _ = worker.get("/customers/B1")
    assert status == 404
    status, doc = worker.get_json("/customers/B2")
    assert status == 200 and doc["active_faults"] == ["4242"]

    # --- metrics, by the contract's names
    status, text = worker.get("/metrics")
    text = text.decode()
    assert SECRET not in text
    def sample(name: str, **labels) -> float:
        for line in text.splitlines():
            match = re.match(rf"^{re.escape(name)}\{{(.*)\}} (\S+)$", line)
            if match and dict(re.findall(r'(\w+)="([^"]*)"', match.group(1))) == labels:
                return float(match.group(2))
        raise AssertionError(f"{name}{labels} missing from /metrics:\n{text}")
    assert sample("cxstream_events_total", source="quality", outcome="invalid") == 3
    assert sample("cxstream_events_total", source="faults", outcome="invalid") == 1
    assert sample("cxstream_events_total", source="faults", outcome="ok") == 3
    assert sample("cxstream_events_total", source="quality", outcome="ok") == 31
    assert sample("cxstream_triggers_total", channel="care", trigger="outage_notice") == 8
    assert sample("cxstream_triggers_total", channel="marketing", trigger="retention_offer") == 1
    assert sample("cxstream_triggers_suppressed_total", channel="marketing", trigger="retention_offer",
                  reason="no_consent") >= 1
    assert sample("cxstream_triggers_suppressed_total", channel="marketing", trigger="retention_offer",
                  reason="active_fault") >= 1
    assert "cxstream_processing_seconds_bucket" in text
    assert re.search(r"^cxstream_customers 9\.0$", text, re.M)
    assert re.search(r"^cxstream_active_faults 1\.0$", text, re.M)
    assert "cxstream_score_bucket" in text
