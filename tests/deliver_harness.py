"""Helpers for the webhook delivery tests: a real HTTP receiver, the deliver process, real CloudEvents."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import orjson
import yaml
from aiohttp import web
from confluent_kafka import Producer

from cxstream.domain.engine import Firing
from cxstream.domain.rules import load_rules
from cxstream.ops.broker import free_port
from cxstream.ops.settings import Settings
from cxstream.outputs import cloudevents


@dataclass
class Seen:
    """One request as the receiver got it."""

    event_id: str
    body: bytes
    headers: dict[str, str]
    at: float  # time.monotonic() on arrival
    status: int  # what the receiver answered (or meant to answer, for a timeout)


# behaviour(event_id, attempt_number_for_this_id) -> (status, headers, delay_s)
Behaviour = Callable[[str, int], tuple[int, dict, float]]


class Receiver:
    """An aiohttp.web server in its own thread that records every request."""

    def __init__(self, behaviour: Behaviour | None = None):
        self.behaviour = behaviour or (lambda event_id, n: (200, {}, 0.0))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.seen: list[Seen] = []
        self._cond = threading.Condition()
        self._counts: dict[str, int] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        event_id = request.headers.get("Idempotency-Key", "")
        with self._cond:
            n = self._counts[event_id] = self._counts.get(event_id, 0) + 1
        status, headers, delay = self.behaviour(event_id, n)
        with self._cond:
            self.seen.append(Seen(event_id, body, dict(request.headers), time.monotonic(), status))
            self._cond.notify_all()
        if delay:
            await asyncio.sleep(delay)
        return web.Response(status=status, headers=headers)

    def start(self) -> "Receiver":
        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            app = web.Application()
            app.router.add_post("/hook", self._handle)
            self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.2)
            loop.run_until_complete(self._runner.setup())
            loop.run_until_complete(web.TCPSite(self._runner, "127.0.0.1", self.port).start())
            self._started.set()
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=serve, daemon=True)
        self._thread.start()
        assert self._started.wait(10), "receiver did not start"
        return self

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def accepted_ids(self) -> set[str]:
        with self._cond:
            return {s.event_id for s in self.seen if 200 <= s.status < 300}

    def wait_for(self, predicate: Callable[["Receiver"], bool], timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while not predicate(self):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"{what}: not within {timeout_s} s ({len(self.seen)} requests seen)")
                self._cond.wait(remaining)


def make_events(settings: Settings, count: int, rules: tuple[str, ...] | None = None) -> list[tuple[str, str, bytes]]:
    """``count`` real trigger CloudEvents: (topic, customer id, value), cycling over the default rules."""
    book = load_rules()
    chosen = [r for r in book.rules if rules is None or r.id in rules]
    events = []
    for i in range(count):
        rule = chosen[i % len(chosen)]
        customer = f"C{i:06d}"
        firing = Firing(rule=rule, customer_id=customer, time=1_795_000_000.0 + i, episode=f"ep-{i}",
                        score=35.0, previous_score=80.0, reasons=[{"code": "voice.call_dropped", "impact": -20.0}],
                        faults=["ALM-1"], value_tier="gold", segment="consumer")
        topic = settings.topics.care if rule.channel == "care" else settings.topics.marketing
        events.append((topic, customer, cloudevents.encode(firing, settings.source)))
    return events


def produce(settings: Settings, events: list[tuple[str, str, bytes]]) -> None:
    producer = Producer({**settings.confluent_config(), "partitioner": "murmur2_random", "linger.ms": 2})
    for topic, key, value in events:
        producer.produce(topic, value, key.encode(), headers=cloudevents.HEADERS)
    assert producer.flush(30) == 0


def event_id(value: bytes) -> str:
    return orjson.loads(value)["id"]


def write_routes(path: Path, endpoints: list[dict]) -> Path:
    path.write_text(yaml.safe_dump({"endpoints": endpoints}))
    return path


@dataclass
class DeliverProcess:
    """``cxstream deliver`` as a subprocess (so it can be SIGKILLed)."""

    settings: Settings
    routes: Path
    log_path: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.settings.deliver_web_port}"

    def start(self) -> "DeliverProcess":
        env = {k: v for k, v in os.environ.items() if not k.startswith("CXSTREAM_")}
        env.update(self.settings.to_env())
        env.update({"CXSTREAM_ROUTES": str(self.routes), **self.extra_env})
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen([sys.executable, "-m", "cxstream", "deliver"], env=env,
                                        stdout=log, stderr=subprocess.STDOUT)
        return self

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(self.base + path, timeout=2) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def wait_ready(self, timeout_s: float = 40.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.process is not None and self.process.poll() is None, \
                f"deliver exited: {self.log_path.read_text()[-3000:]}"
            try:
                if self.get("/readyz")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)  # polling interval of a condition with a deadline
        raise TimeoutError(f"deliver not ready within {timeout_s} s: {self.log_path.read_text()[-3000:]}")

    def metric(self, name: str, **labels: str) -> float:
        text = self.get("/metrics")[1]
        want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        for line in text.splitlines():
            if line.startswith("#"):
                continue
            series, _, value = line.rpartition(" ")
            metric, _, rest = series.partition("{")
            if metric == name and ",".join(sorted(rest.rstrip("}").split(","))) == want:
                return float(value)
        return 0.0

    def wait_metric(self, name: str, predicate: Callable[[float], bool], timeout_s: float, **labels: str) -> float:
        deadline = time.monotonic() + timeout_s
        while True:
            value = self.metric(name, **labels)
            if predicate(value):
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name}{labels} = {value} after {timeout_s} s")
            time.sleep(0.05)  # polling interval of a condition with a deadline

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(10)

    def stop(self) -> int:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.terminate()
        try:
            return self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(10)
