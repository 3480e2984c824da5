"""Webhook delivery against the real broker and real HTTP receivers started by the test.

Each test starts ``cxstream deliver`` as a process (consumer group ``<app_id>-deliver``)
and aiohttp.web receivers in threads; events are real trigger CloudEvents built by
``cxstream.outputs.cloudevents`` and produced to the test's trigger topics.
"""

from __future__ import annotations

import random
import threading
import time

import orjson
import pytest

from cxstream.deliver.endpoint import CONTENT_TYPE, verify
from cxstream.ops.topics import ensure_topics
from cxstream.simulate.reader import read_topic

from deliver_harness import DeliverProcess, Receiver, event_id, make_events, produce, write_routes
from conftest import on_both_brokers

pytestmark = [on_both_brokers, pytest.mark.timeout(120)]

FAST = {"backoff_initial_s": 0.05, "backoff_max_s": 0.5, "circuit_open_s": 0.5}


@pytest.fixture
def deliver_settings(make_settings):
    def factory(**overrides):
        settings = make_settings(**overrides)
        settings = settings.model_copy(update={
            "deliver_deadletter_topic": f"{settings.topics.deadletter}.delivery",
            "deliver_web_port": __import__("conftest").free_port()})
        ensure_topics(settings)
        return settings
    return factory


@pytest.fixture
def started(tmp_path):
    """Collects receivers and processes to stop at the end of the test."""
    things: list = []
    yield things
    for thing in reversed(things):
        thing.stop()


def test_every_trigger_reaches_the_receivers_its_route_matches_and_no_other(deliver_settings, tmp_path, started):
    settings = deliver_settings()
    care, outage, marketing = (Receiver().start() for _ in range(3))
    started.extend([care, outage, marketing])
    routes = write_routes(tmp_path / "routes.yaml", [
        {"name": "care-desk", "url": care.url, "match": {"channel": "care"}, "secret_env": "TEST_SECRET_CARE"},
        {"name": "noc", "url": outage.url, "match": {"trigger": ["outage_notice", "service_restored"]}},
        {"name": "campaigns", "url": marketing.url, "match": {"channel": "marketing"},
         "secret_env": "TEST_SECRET_MKT"},
    ])
    events = make_events(settings, 100)
    produce(settings, events)
    by_id = {event_id(value): (topic, value) for topic, _, value in events}
    want_care = {i for i, (t, _) in by_id.items() if t == settings.topics.care}
    want_marketing = {i for i, (t, _) in by_id.items() if t == settings.topics.marketing}
    want_noc = {i for i, (_, v) in by_id.items()
                if orjson.loads(v)["data"]["trigger"] in ("outage_notice", "service_restored")}
    assert want_care and want_marketing and want_noc

    deliver = DeliverProcess(settings, routes, tmp_path / "deliver.log",
                             {"TEST_SECRET_CARE": "care-key-123", "TEST_SECRET_MKT": "mkt-key-456"}).start()
    started.append(deliver)
    deliver.wait_ready()
    for receiver, want in ((care, want_care), (outage, want_noc), (marketing, want_marketing)):
        receiver.wait_for(lambda r, want=want: r.accepted_ids() >= want, 30, "all matching events")
    deliver.wait_metric("cxstream_delivery_unfinished", lambda v: v == 0, 10)
    total = len(want_care) + len(want_noc) + len(want_marketing)
    deliver.wait_metric("cxstream_deliveries_total", lambda v: v == len(want_care), 10,
                        endpoint="care-desk", outcome="delivered")

    for receiver, want, secret in ((care, want_care, b"care-key-123"), (outage, want_noc, None),
                                   (marketing, want_marketing, b"mkt-key-456")):
        assert [s.event_id for s in receiver.seen if s.event_id not in want] == []  # no other
        assert len(receiver.seen) == len(want)  # each once
        for seen in receiver.seen:
            assert seen.body == by_id[seen.event_id][1]  # the CloudEvent as it stood on the topic
            assert seen.headers["Content-Type"] == CONTENT_TYPE
            if secret is None:
                assert "X-Cxstream-Signature" not in seen.headers
            else:
                assert verify(secret, seen.body, seen.headers["X-Cxstream-Signature"])
    assert sum(len(r.seen) for r in (care, outage, marketing)) == total

    metrics = deliver.get("/metrics")[1]
    assert 'cxstream_delivery_circuit_open{endpoint="noc"} 0.0' in metrics
    assert "cxstream_delivery_seconds_bucket" in metrics
    assert deliver.get("/healthz")[0] == 200
    assert deliver.stop() == 0
    log = (tmp_path / "deliver.log").read_text()
    assert "care-key-123" not in log and "mkt-key-456" not in log and "care-key-123" not in metrics


def test_a_flaky_receiver_still_gets_every_event_exactly_once_after_dropping_copies(deliver_settings, tmp_path,
                                                                                   started):
    settings = deliver_settings()
    rng = random.Random(42)
    lock = threading.Lock()

    def flaky(event_id: str, n: int):
        with lock:
            roll = rng.random()
        if roll < 0.2:
            return 503, {}, 0.0
        if roll < 0.3:
            return 500, {}, 0.0
        if roll < 0.4:
            return 429, {"Retry-After": "1"}, 0.0
        if roll < 0.5:
            return 200, {}, 1.5  # answered after the client's timeout: a copy will follow
        return 200, {}, 0.0

    receiver = Receiver(flaky).start()
    started.append(receiver)
    routes = write_routes(tmp_path / "routes.yaml", [
        {"name": "flaky", "url": receiver.url, "match": {"channel": ["care", "marketing"]}, "timeout_s": 0.5,
         "max_attempts": 30, "concurrency": 8, **FAST}])
    events = make_events(settings, 120)
    produce(settings, events)
    want = {event_id(value) for _, _, value in events}
    deliver = DeliverProcess(settings, routes, tmp_path / "deliver.log").start()
    started.append(deliver)
    deliver.wait_ready()
    receiver.wait_for(lambda r: r.accepted_ids() >= want, 60, "every event accepted once")
    deliver.wait_metric("cxstream_delivery_unfinished", lambda v: v == 0, 20)

    assert receiver.accepted_ids() == want  # after dropping copies by Idempotency-Key: exactly once
    statuses = [s.status for s in receiver.seen]
    assert statuses.count(429) and statuses.count(503) and len(receiver.seen) > len(want)
    assert deliver.metric("cxstream_deliveries_total", endpoint="flaky", outcome="delivered") == len(want)
    assert deliver.metric("cxstream_deliveries_total", endpoint="flaky", outcome="retried") > 0
    assert deliver.metric("cxstream_deliveries_total", endpoint="flaky", outcome="dead_lettered") == 0
    # Retry-After is honoured: the next request for an id answered 429 comes at least ~1 s later
    by_id: dict[str, list] = {}
    for seen in receiver.seen:
        by_id.setdefault(seen.event_id, []).append(seen)
    gaps = [later.at - first.at for requests in by_id.values()
            for first, later in zip(requests, requests[1:]) if first.status == 429]
    assert gaps and min(gaps) >= 0.95, gaps


def test_a_receiver_answering_400_gets_each_event_once_and_they_are_dead_lettered(deliver_settings, tmp_path,
                                                                                  started):
    settings = deliver_settings()
    receiver = Receiver(lambda event_id, n: (400, {}, 0.0)).start()
    started.append(receiver)
    routes = write_routes(tmp_path / "routes.yaml", [
        {"name": "strict", "url": receiver.url + "?token=hidden-token", "match": {"channel": "care"}, **FAST}])
    events = [e for e in make_events(settings, 60) if e[0] == settings.topics.care]
    produce(settings, events)
    by_id = {event_id(value): value for _, _, value in events}
    deliver = DeliverProcess(settings, routes, tmp_path / "deliver.log").start()
    started.append(deliver)
    deliver.wait_ready()
    dead = read_topic(settings, settings.deliver_deadletter_topic, until=lambda m: len(m) >= len(by_id),
                      timeout_s=30)
    deliver.wait_metric("cxstream_delivery_unfinished", lambda v: v == 0, 10)

    assert sorted(s.event_id for s in receiver.seen) == sorted(by_id)  # each once, never retried
    assert len(dead) == len(by_id)
    for message in dead:
        letter = orjson.loads(message["value"])
        assert letter["endpoint"] == "strict" and letter["status"] == 400 and letter["attempts"] == 1
        assert "400" in letter["error"]
        assert letter["event"] == orjson.loads(by_id[letter["event"]["id"]])
        assert letter["source_topic"] == settings.topics.care
        assert message["key"] == letter["event"]["subject"].encode()
        assert b"hidden-token" not in message["value"]
    assert deliver.metric("cxstream_deliveries_total", endpoint="strict", outcome="dead_lettered") == len(by_id)
    deliver.stop()
    assert "hidden-token" not in (tmp_path / "deliver.log").read_text()


def test_deliver_killed_mid_stream_and_restarted_loses_nothing(deliver_settings, tmp_path, started):
    settings = deliver_settings()
    receiver = Receiver(lambda event_id, n: (200, {}, 0.01)).start()
    started.append(receiver)
    routes = write_routes(tmp_path / "routes.yaml", [
        {"name": "crm", "url": receiver.url, "match": {"channel": ["care", "marketing"]}, "concurrency": 4, **FAST}])
    events = make_events(settings, 1500)
    produce(settings, events)
    want = {event_id(value) for _, _, value in events}
    first = DeliverProcess(settings, routes, tmp_path / "deliver-1.log").start()
    started.append(first)
    first.wait_ready()
    receiver.wait_for(lambda r: len(r.accepted_ids()) >= 300, 30, "a part delivered")
    first.kill()  # SIGKILL: no shutdown, no final commit
    got_before = len(receiver.accepted_ids())
    assert got_before < len(want), "the kill came too late to test anything"

    second = DeliverProcess(settings, routes, tmp_path / "deliver-2.log").start()
    started.append(second)
    second.wait_ready()
    receiver.wait_for(lambda r: r.accepted_ids() >= want, 60, "every event after the restart")
    assert receiver.accepted_ids() == want  # nothing missing (copies allowed, dropped by id)
    second.wait_metric("cxstream_delivery_unfinished", lambda v: v == 0, 10)


def test_an_endpoint_down_does_not_slow_another(deliver_settings, tmp_path, started):
    """Bound: with one endpoint hanging (every request times out) for the whole test, the healthy
    endpoint gets all 400 events within 5 s of `deliver` being ready, and p99 of
    (arrival - first arrival) stays under 3 s; it is not held back by the other's retries."""
    settings = deliver_settings()
    healthy = Receiver().start()
    hanging = Receiver(lambda event_id, n: (200, {}, 30.0)).start()
    started.extend([healthy, hanging])
    routes = write_routes(tmp_path / "routes.yaml", [
        {"name": "healthy", "url": healthy.url, "match": {"channel": ["care", "marketing"]}},
        {"name": "down", "url": hanging.url, "match": {"channel": ["care", "marketing"]}, "timeout_s": 1,
         "max_attempts": 5, "concurrency": 4, "circuit_failures": 4, "circuit_open_s": 2,
         "backoff_initial_s": 0.2, "backoff_max_s": 1},
    ])
    events = make_events(settings, 400)
    produce(settings, events)
    want = {event_id(value) for _, _, value in events}
    deliver = DeliverProcess(settings, routes, tmp_path / "deliver.log").start()
    started.append(deliver)
    deliver.wait_ready()
    ready_at = time.monotonic()
    healthy.wait_for(lambda r: r.accepted_ids() >= want, 5, "healthy endpoint gets everything within 5 s")
    took = time.monotonic() - ready_at
    arrivals = sorted(s.at for s in healthy.seen)
    p99 = arrivals[int(len(arrivals) * 0.99) - 1] - arrivals[0]
    assert p99 < 3.0, p99
    # the other endpoint is still down, its events unfinished, its circuit open
    assert deliver.metric("cxstream_deliveries_total", endpoint="down", outcome="delivered") == 0
    assert deliver.metric("cxstream_deliveries_total", endpoint="healthy", outcome="delivered") == len(want)
    deliver.wait_metric("cxstream_delivery_circuit_open", lambda v: v == 1, 10, endpoint="down")
    assert deliver.metric("cxstream_delivery_unfinished") > 0
    print(f"healthy endpoint: {len(want)} events in {took:.2f} s with the other endpoint down")
    deliver.kill()  # its unfinished events would be redelivered by the next run
