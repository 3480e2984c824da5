"""Unit tests of webhook delivery: routes validation, signature, backoff, breaker, offsets."""

from __future__ import annotations

import asyncio
import hashlib
import hmac

import pytest

from cxstream.deliver.endpoint import CircuitBreaker, backoff_s, retry_after_s, sign, verify
from cxstream.deliver.routes import RoutesError, load_routes, parse_routes
from cxstream.deliver.tracker import OffsetTracker

GOOD = """
endpoints:
  - name: crm
    url: https://crm.example.com/hooks/cx?token=abc
    match: {channel: care}
    secret_env: TEST_CX_SECRET
    timeout_s: 5
    max_attempts: 8
    concurrency: 16
  - name: campaigns
    url: http://automation.internal/cx
    match: {trigger: [retention_offer, priority_care]}
"""


def write(tmp_path, text):
    path = tmp_path / "routes.yaml"
    path.write_text(text)
    return path


def test_routes_load_and_match(tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_CX_SECRET", "s3cr3t-value")
    routes = load_routes(write(tmp_path, GOOD))
    crm, campaigns = routes.endpoints
    assert crm.secret == b"s3cr3t-value" and campaigns.secret is None
    assert crm.safe_url == "https://crm.example.com/hooks/cx"
    assert "s3cr3t" not in repr(routes) and "s3cr3t" not in str(routes.model_dump())
    assert [e.name for e in routes.matching("care", "outage_notice", None)] == ["crm"]
    assert [e.name for e in routes.matching("care", "priority_care", None)] == ["crm", "campaigns"]
    assert routes.matching("marketing", "other", None) == []


@pytest.mark.parametrize("text, expected", [
    ("endpoints:\n  - name: crm\n    url: ftp://x\n    match: {channel: care}\n",
     "endpoint 'crm': url: must be an http:// or https:// URL"),
    ("endpoints:\n  - name: crm\n    url: http://x\n    match: {channel: care}\n    timeout_s: 0\n",
     "endpoint 'crm': timeout_s: Input should be greater than 0"),
    ("endpoints:\n  - name: crm\n    url: http://x\n    match: {}\n",
     "endpoint 'crm': match: needs at least one of channel, trigger, type"),
    ("endpoints:\n  - name: crm\n    url: http://x\n    match: {chanel: care}\n",
     "endpoint 'crm': match.chanel: Extra inputs are not permitted"),
    ("endpoints:\n  - name: crm\n    match: {channel: care}\n", "endpoint 'crm': url: is required"),
    ("endpoints:\n  - url: http://x\n    match: {channel: care}\n", "endpoint #1: name: is required"),
    ("endpoints:\n  - name: crm\n    url: http://x\n    match: {channel: care}\n    secret_env: TEST_CX_UNSET\n",
     "endpoint 'crm': secret_env names TEST_CX_UNSET, which is not set or empty"),
    ("endpoints:\n  - {name: a, url: 'http://x', match: {channel: care}}\n"
     "  - {name: a, url: 'http://y', match: {channel: care}}\n", "endpoint name 'a' is used twice"),
    ("endpoints: []\n", "endpoints: List should have at least 1 item"),
    ("endpoints: [\n", "not valid YAML at line"),
])
def test_routes_errors_name_route_and_field(tmp_path, monkeypatch, text, expected):
    monkeypatch.delenv("TEST_CX_UNSET", raising=False)
    with pytest.raises(RoutesError) as caught:
        load_routes(write(tmp_path, text))
    message = str(caught.value)
    assert expected in message, message
    assert "\n" not in message


def test_secret_value_never_in_errors(monkeypatch):
    monkeypatch.setenv("TEST_CX_SECRET", "do-not-print-me")
    with pytest.raises(RoutesError) as caught:
        parse_routes({"endpoints": [{"name": "crm", "url": "http://x", "match": {"channel": "care"},
                                     "secret_env": "TEST_CX_SECRET", "timeout_s": -1}]})
    assert "do-not-print-me" not in str(caught.value)


def test_signature_is_hmac_sha256_of_exact_body():
    body = b'{"specversion":"1.0","id":"x"}'
    expected = "sha256=" + hmac.new(b"key", body, hashlib.sha256).hexdigest()
    assert sign(b"key", body) == expected
    assert verify(b"key", body, expected)
    assert not verify(b"key", body + b" ", expected)
    assert not verify(b"other", body, expected)
    assert not verify(b"key", body, None)


def test_retry_after_and_backoff():
    assert retry_after_s("3") == 3.0
    assert retry_after_s("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == pytest.approx(10.0)
    assert retry_after_s("soon") is None and retry_after_s(None) is None
    assert backoff_s(1, 0.5, 60, rng=lambda: 1.0) == 0.5
    assert backoff_s(4, 0.5, 60, rng=lambda: 1.0) == 4.0
    assert backoff_s(20, 0.5, 60, rng=lambda: 1.0) == 60.0
    assert backoff_s(3, 0.5, 60, rng=lambda: 0.0) == pytest.approx(0.2)


def test_circuit_breaker_opens_probes_and_closes():
    async def scenario():
        now = [0.0]
        changes = []
        breaker = CircuitBreaker(3, 10.0, changes.append, clock=lambda: now[0])
        for _ in range(3):
            assert await breaker.acquire() is False
            breaker.failure(probe=False)
        assert breaker.is_open and changes == [True]
        waiter = asyncio.ensure_future(breaker.acquire())
        await asyncio.sleep(0)
        assert not waiter.done()  # open: no request
        now[0] = 10.0
        breaker._changed.set()  # wake the waiter as its timeout would
        assert await asyncio.wait_for(waiter, 1) is True  # the probe
        second = asyncio.ensure_future(breaker.acquire())
        await asyncio.sleep(0)
        assert not second.done()  # half-open: others wait for the probe
        breaker.failure(probe=True)
        assert breaker.state == "open"
        now[0] = 20.0
        breaker._changed.set()
        assert await asyncio.wait_for(second, 1) is True
        breaker.success()
        assert breaker.state == "closed" and changes == [True, False]
    asyncio.run(scenario())


def test_offsets_commit_lowest_unfinished():
    tracker = OffsetTracker()
    for offset in (5, 6, 7, 8):
        tracker.start("t", 0, offset)
    assert tracker.to_commit() == {("t", 0): 5}
    tracker.finish("t", 0, 7)
    tracker.finish("t", 0, 6)
    assert tracker.to_commit() == {("t", 0): 5}
    tracker.finish("t", 0, 5)
    moves = tracker.to_commit()
    assert moves == {("t", 0): 8}
    tracker.committed(moves)
    assert tracker.to_commit() == {}
    tracker.finish("t", 0, 8)
    assert tracker.to_commit() == {("t", 0): 9}
    assert tracker.unfinished() == 0


def test_counting_receiver_verifies_and_drops_copies():
    from aiohttp.test_utils import TestClient, TestServer

    from cxstream.deliver.receiver import CountingReceiver

    async def scenario():
        receiver = CountingReceiver(b"k")
        async with TestClient(TestServer(receiver.app())) as client:
            body = b'{"id":"e1","data":{"trigger":"outage_notice"}}'
            headers = {"Idempotency-Key": "e1", "X-Cxstream-Signature": sign(b"k", body)}
            assert (await client.post("/hook", data=body, headers=headers)).status == 200
            assert (await client.post("/hook", data=body, headers=headers)).status == 200
            bad = {"Idempotency-Key": "e2", "X-Cxstream-Signature": sign(b"x", body)}
            assert (await client.post("/hook", data=body, headers=bad)).status == 401
            stats = await (await client.get("/stats")).json()
        assert stats == {"events": 1, "requests": 3, "copies": 1, "bad_signatures": 1,
                         "by_trigger": {"outage_notice": 1}}
    asyncio.run(scenario())


def test_a_delivery_outliving_a_revocation_cannot_finish_the_new_assignment():
    tracker = OffsetTracker()
    old = tracker.start("t", 0, 10)
    tracker.drop([("t", 0)])  # revoked
    new = tracker.start("t", 0, 10)  # re-assigned, read again
    old.finish(10)  # the old delivery ends
    assert tracker.to_commit() == {("t", 0): 10} and tracker.unfinished() == 1
    new.finish(10)
    assert tracker.to_commit() == {("t", 0): 11} and tracker.unfinished() == 0


def test_cxstream_deliver_stops_start_up_with_one_line(tmp_path, monkeypatch, capsys):
    from cxstream.ops.cli import main

    for key in [k for k in __import__("os").environ if k.startswith("CXSTREAM_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("CXSTREAM_BROKER", "kafka://127.0.0.1:1")
    monkeypatch.setenv("TEST_CX_SECRET", "never-shown-secret")
    assert main(["deliver"]) == 2
    assert "CXSTREAM_ROUTES is not set" in capsys.readouterr().err
    routes = write(tmp_path, "endpoints:\n  - name: crm\n    url: http://x\n    match: {channel: care}\n"
                             "    secret_env: TEST_CX_SECRET\n    concurrency: 0\n")
    monkeypatch.setenv("CXSTREAM_ROUTES", str(routes))
    assert main(["deliver"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "endpoint 'crm': concurrency: Input should be greater than or equal to 1" in err
    assert "never-shown-secret" not in err and "Traceback" not in err
