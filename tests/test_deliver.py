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

pytestmark = pytest.mark.timeout(120)

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
