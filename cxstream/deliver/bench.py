"""Measure webhook delivery: throughput and p99 latency of one ``cxstream deliver`` process.

    python -m cxstream.deliver.bench [--events 20000] [--rate 500] [--seconds 10]

Starts the embedded broker (unless CXSTREAM_BROKER is set), a local aiohttp
receiver answering 200, and one ``cxstream deliver`` process (its own process,
as in production, one endpoint with the default concurrency 16, HMAC signing on).

* throughput: ``--events`` triggers already on the topics when ``deliver`` becomes
  ready; events/s from the first to the last arrival at the receiver;
* latency: then ``--rate`` events/s for ``--seconds``; per event, arrival at the
  receiver minus the moment the broker acknowledged it to the producer; p50/p99/max.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import orjson
import yaml
from aiohttp import web
from confluent_kafka import Producer

from ..domain.engine import Firing
from ..domain.rules import load_rules
from ..ops.broker import EmbeddedBroker, free_port
from ..ops.settings import Settings
from ..ops.topics import ensure_topics
from ..outputs import cloudevents


def _events(settings: Settings, start: int, count: int) -> list[tuple[str, str, bytes, str]]:
    rules = load_rules().rules
    out = []
    for i in range(start, start + count):
        rule = rules[i % len(rules)]
        firing = Firing(rule=rule, customer_id=f"C{i:07d}", time=1_795_000_000.0 + i, episode=f"bench-{i}",
                        score=35.0, previous_score=80.0, reasons=[{"code": "voice.call_dropped", "impact": -20.0}],
                        faults=["ALM-1"], value_tier="gold", segment="consumer")
        event = cloudevents.cloudevent(firing, settings.source)
        topic = settings.topics.care if rule.channel == "care" else settings.topics.marketing
        out.append((topic, firing.customer_id, orjson.dumps(event), event["id"]))
    return out


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, max(0, int(round(q * len(values))) - 1))]


async def _bench(args: argparse.Namespace, broker_url: str) -> dict:
    uid = os.urandom(4).hex()
    base = Settings(broker=broker_url)
    settings = base.model_copy(update={
        "app_id": f"cxbench-{uid}", "session_timeout_s": 6, "heartbeat_interval_s": 1,
        "deliver_web_port": free_port(), "web_host": "127.0.0.1",
        "deliver_deadletter_topic": f"b{uid}.deadletter.delivery",
        "topics": base.topics.model_copy(update={"care": f"b{uid}.care", "marketing": f"b{uid}.marketing"}),
    })
    ensure_topics(settings)
    arrivals: dict[str, float] = {}
    everything = asyncio.Event()
    expected = [args.events]

    async def hook(request: web.Request) -> web.Response:
        await request.read()
        arrivals.setdefault(request.headers["Idempotency-Key"], time.monotonic())
        if len(arrivals) >= expected[0]:
            everything.set()
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()

    workdir = Path(tempfile.mkdtemp(prefix="cxbench-"))
    routes = workdir / "routes.yaml"
    routes.write_text(yaml.safe_dump({"endpoints": [{
        "name": "bench", "url": f"http://127.0.0.1:{port}/hook", "match": {"channel": ["care", "marketing"]},
        "secret_env": "CXBENCH_SECRET"}]}))
    producer = Producer({**settings.confluent_config(), "partitioner": "murmur2_random", "linger.ms": 2})
    for topic, key, value, _ in _events(settings, 0, args.events):
        while True:
            try:
                producer.produce(topic, value, key.encode(), headers=cloudevents.HEADERS)
                break
            except BufferError:
                producer.poll(0.05)
    assert producer.flush(60) == 0, "backlog not acknowledged"

    env = {k: v for k, v in os.environ.items() if not k.startswith("CXSTREAM_")}
    env.update(settings.to_env())
    env.update({"CXSTREAM_ROUTES": str(routes), "CXBENCH_SECRET": "bench-secret", "CXSTREAM_LOG_LEVEL": "WARNING"})
    log = open(workdir / "deliver.log", "wb")
    process = subprocess.Popen([sys.executable, "-m", "cxstream", "deliver"], env=env, stdout=log,
                               stderr=subprocess.STDOUT)
    try:
        loop = asyncio.get_running_loop()
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError((workdir / "deliver.log").read_text()[-2000:])
            try:
                status = await loop.run_in_executor(None, _status, settings.deliver_web_port)
            except OSError:
                status = 0
            if status == 200 or arrivals:
                break
            if time.monotonic() > deadline:
                raise RuntimeError("deliver not ready within 60 s")
            await asyncio.sleep(0.1)
        await asyncio.wait_for(everything.wait(), 600)
        times = sorted(arrivals.values())
        throughput = (len(times) - 1) / max(1e-9, times[-1] - times[0])

        # latency: paced production, arrival minus broker acknowledgement
        acked: dict[str, float] = {}
        paced = _events(settings, args.events, int(args.rate * args.seconds))
        expected[0] = args.events + len(paced)
        everything.clear()
        start = time.monotonic()
        for n, (topic, key, value, event_id) in enumerate(paced):
            due = start + n / args.rate
            while time.monotonic() < due:
                producer.poll(0)
                await asyncio.sleep(min(0.002, max(0.0, due - time.monotonic())))

            def on_ack(error, message, event_id=event_id):
                acked[event_id] = time.monotonic()

            producer.produce(topic, value, key.encode(), headers=cloudevents.HEADERS, on_delivery=on_ack)
            producer.poll(0)
        while producer.flush(0):
            await asyncio.sleep(0.002)
        await asyncio.wait_for(everything.wait(), 120)
        latencies = [arrivals[i] - acked[i] for i in acked]
        return {"backlog_events": args.events, "throughput_events_per_s": round(throughput),
                "paced_events": len(paced), "rate": args.rate,
                "latency_p50_ms": round(_pct(latencies, 0.50) * 1000, 1),
                "latency_p99_ms": round(_pct(latencies, 0.99) * 1000, 1),
                "latency_max_ms": round(max(latencies) * 1000, 1)}
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
        await runner.cleanup()


def _status(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cxstream.deliver.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20000, help="backlog for the throughput phase")
    parser.add_argument("--rate", type=float, default=500.0, help="events/s of the latency phase")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the latency phase")
    args = parser.parse_args(argv)
    broker_url = os.environ.get("CXSTREAM_BROKER", "")
    broker = None
    if not broker_url:
        broker = EmbeddedBroker(startup_timeout=30)
        broker.start()
        broker_url = broker.url
    try:
        result = asyncio.run(_bench(args, broker_url))
    finally:
        if broker is not None:
            broker.stop()
    print(f"deliver bench: {result['backlog_events']} events backlog -> {result['throughput_events_per_s']} events/s "
          f"to a local receiver (one deliver process, one endpoint, concurrency 16, signed); "
          f"paced {result['paced_events']} events at {result['rate']:g}/s: latency p50 {result['latency_p50_ms']} ms, "
          f"p99 {result['latency_p99_ms']} ms, max {result['latency_max_ms']} ms (broker ack -> receiver)")
    print(orjson.dumps(result).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
