"""``cxstream deliver``: the webhook delivery process.

Its own consumer group (``<app_id>-deliver``) on the trigger topics, confluent-kafka
with manual commits. Each record is parsed once, matched against the routes, and
handed to every matching endpoint's :class:`~.endpoint.EndpointClient`
concurrently (asyncio). When every matching endpoint delivered or dead-lettered
it (dead letters acknowledged by the broker first), its offset is finished; the
committed position of a partition is its lowest unfinished offset, so a killed
process redelivers, never loses. ``deliver_max_pending`` bounds the unfinished
events held (reading pauses beyond it).

Web port ``CXSTREAM_DELIVER_WEB_PORT``: ``/healthz``, ``/readyz`` (partitions
assigned), ``/metrics``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import logging
import signal
import time
from datetime import datetime, timezone

import orjson
from aiohttp import web
from confluent_kafka import Consumer, KafkaError, TopicPartition
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from ..ops.settings import ConfigurationError, Settings
from ..stream.sink import DeliveryFailed, OutputSink
from .endpoint import EndpointClient, Outcome
from .routes import Endpoint, Routes, RoutesError, load_routes
from .tracker import OffsetTracker, PartitionTracker

log = logging.getLogger("cxstream.deliver")

DELIVERY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
OUTCOMES = ("delivered", "retried", "dead_lettered")
COMMIT_INTERVAL_S = 0.2
SHUTDOWN_GRACE_S = 10.0  # on SIGTERM: time given to deliveries under way; the rest is redelivered later
PROMETHEUS_TEXT = "text/plain; version=0.0.4"


class DeliverMetrics:
    def __init__(self, endpoints: list[Endpoint], registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.deliveries = Counter("cxstream_deliveries", "Webhook deliveries by endpoint and outcome "
                                  "(retried counts each retry).", ["endpoint", "outcome"], registry=r)
        self.seconds = Histogram("cxstream_delivery_seconds", "First attempt to final outcome, per endpoint.",
                                 ["endpoint"], buckets=DELIVERY_BUCKETS, registry=r)
        self.circuit_open = Gauge("cxstream_delivery_circuit_open", "1 while an endpoint's circuit is open.",
                                  ["endpoint"], registry=r)
        self.unfinished = Gauge("cxstream_delivery_unfinished", "Events read but not yet finished.", registry=r)
        self.ready = Gauge("cxstream_ready", "1 when the deliver process has partitions assigned.", registry=r)
        for endpoint in endpoints:
            for outcome in OUTCOMES:
                self.deliveries.labels(endpoint.name, outcome)
            self.seconds.labels(endpoint.name)
            self.circuit_open.labels(endpoint.name).set(0)


def classify(value: bytes | None, topic: str, topic_channels: dict[str, str]) -> tuple[dict | None, str]:
    """(event, problem): the parsed CloudEvent, or None and why it cannot be delivered."""
    if value is None:
        return None, "the record has no value (a tombstone), not a CloudEvent"
    try:
        event = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None, "the record value is not JSON, so not a CloudEvent"
    if not isinstance(event, dict):
        return None, "the record value is not a JSON object, so not a CloudEvent"
    if not isinstance(event.get("id"), str) or not event["id"]:
        return None, "the CloudEvent has no id (needed as the Idempotency-Key)"
    return event, ""


class DeliverService:
    def __init__(self, settings: Settings, routes: Routes, registry: CollectorRegistry | None = None):
        self.settings = settings
        self.routes = routes
        self.metrics = DeliverMetrics(routes.endpoints, registry)
        self.topics = [settings.topics.care, settings.topics.marketing]
        self.topic_channels = {settings.topics.care: "care", settings.topics.marketing: "marketing"}
        self.tracker = OffsetTracker()
        self.clients: dict[str, EndpointClient] = {}
        self._stop = asyncio.Event()
        self._assigned: set[tuple[str, int]] = set()
        self._paused = False
        self._tasks: set[asyncio.Task] = set()
        self._fatal: BaseException | None = None
        self.consumer: Consumer | None = None
        self.sink: OutputSink | None = None

    # --- lifecycle --------------------------------------------------------------
    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        for endpoint in self.routes.endpoints:
            name = endpoint.name
            client = EndpointClient(
                endpoint,
                on_retry=lambda name=name: self.metrics.deliveries.labels(name, "retried").inc(),
                on_circuit=lambda is_open, name=name: self._circuit(name, is_open))
            await client.start()
            self.clients[name] = client
        self.sink = OutputSink(self.settings.confluent_config(), linger_ms=5)
        runner = await self._start_web()
        s = self.settings
        self.consumer = Consumer({
            **s.confluent_config(),
            "group.id": f"{s.app_id}-deliver",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": int(s.session_timeout_s * 1000),
            "heartbeat.interval.ms": int(s.heartbeat_interval_s * 1000),
            "max.poll.interval.ms": 300_000,
            "fetch.wait.max.ms": 50,  # a trigger should not wait up to 500 ms (the default) in a quiet broker
            "log_level": 3,
        })
        self.consumer.subscribe(self.topics, on_assign=self._on_assign, on_revoke=self._on_revoke,
                                on_lost=self._on_revoke)
        log.info("deliver: reading %s as group %s-deliver, %d endpoint(s): %s", ", ".join(self.topics),
                 s.app_id, len(self.routes.endpoints),
                 ", ".join(f"{e.name} -> {e.safe_url}" for e in self.routes.endpoints))
        try:
            await self._consume_loop()
        finally:
            await self._shutdown(runner)
        if self._fatal is not None:
            raise self._fatal

    async def _shutdown(self, runner: web.AppRunner) -> None:
        deadline = time.monotonic() + SHUTDOWN_GRACE_S
        while self._tasks and time.monotonic() < deadline:
            await asyncio.wait(set(self._tasks), timeout=max(0.0, deadline - time.monotonic()))
        for task in list(self._tasks):
            task.cancel()
        self._commit(sync=True)
        assert self.consumer is not None
        self.consumer.close()
        for client in self.clients.values():
            await client.close()
        if self.sink is not None:
            self.sink.close()
        await runner.cleanup()
        log.info("deliver: stopped")

    # --- consuming ----------------------------------------------------------------
    async def _consume_loop(self) -> None:
        consumer = self.consumer
        assert consumer is not None
        last_commit = time.monotonic()
        while not self._stop.is_set() and self._fatal is None:
            self._flow_control()
            batch = consumer.consume(num_messages=500, timeout=0)
            for message in batch:
                error = message.error()
                if error is not None:
                    if error.code() in (KafkaError._PARTITION_EOF, KafkaError.UNKNOWN_TOPIC_OR_PART):
                        continue
                    if error.fatal():
                        raise ConfigurationError(f"Kafka consumer failed: {error.str()}")
                    log.warning("deliver: consumer: %s", error.str())
                    continue
                self._dispatch(message)
            if self.sink is not None:
                self.sink.poll()
            now = time.monotonic()
            if now - last_commit >= COMMIT_INTERVAL_S:
                self._commit()
                last_commit = now
            self.metrics.unfinished.set(self.tracker.unfinished())
            if batch:
                await asyncio.sleep(0)
            else:
                try:
                    await asyncio.wait_for(self._stop.wait(), 0.005)
                except asyncio.TimeoutError:
                    pass

    def _flow_control(self) -> None:
        assert self.consumer is not None
        over = self.tracker.unfinished() >= self.settings.deliver_max_pending
        if over != self._paused and self._assigned:
            parts = [TopicPartition(t, p) for t, p in self._assigned]
            (self.consumer.pause if over else self.consumer.resume)(parts)
            self._paused = over

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._assigned = {(p.topic, p.partition) for p in partitions}
        self._paused = False
        self.metrics.ready.set(1)
        log.info("deliver: assigned %d partition(s)", len(partitions))

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        keys = {(p.topic, p.partition) for p in partitions}
        self._commit(sync=True, keys=keys)
        self.tracker.drop(keys)
        self._assigned -= keys
        if not self._assigned:
            self.metrics.ready.set(0)

    def _commit(self, sync: bool = False, keys=None) -> None:
        moves = self.tracker.to_commit(keys)
        if not moves or self.consumer is None:
            return
        offsets = [TopicPartition(t, p, o) for (t, p), o in moves.items()]
        try:
            self.consumer.commit(offsets=offsets, asynchronous=not sync)
            self.tracker.committed(moves)
        except Exception as exc:  # e.g. rebalance in progress: the next commit retries
            log.warning("deliver: commit failed: %s", exc)

    # --- one record ---------------------------------------------------------------------
    def _dispatch(self, message) -> None:
        topic, partition, offset = message.topic(), message.partition(), message.offset()
        tracker = self.tracker.start(topic, partition, offset)
        value = message.value()
        event, problem = classify(value, topic, self.topic_channels)
        if event is None:
            task = asyncio.ensure_future(self._finish_unusable(message, problem, tracker))
        else:
            data = event.get("data") if isinstance(event.get("data"), dict) else {}
            channel = data.get("channel") or self.topic_channels.get(topic)
            trigger = data.get("trigger")
            type_ = event.get("type")
            endpoints = self.routes.matching(channel, trigger, type_)
            if not endpoints:
                tracker.finish(offset)
                return
            task = asyncio.ensure_future(self._deliver_all(message, value, event["id"], endpoints, tracker))
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None and self._fatal is None:
            self._fatal = task.exception()
            log.error("deliver: stopping: %s", self._fatal)

    async def _deliver_all(self, message, body: bytes, event_id: str, endpoints: list[Endpoint],
                           tracker: PartitionTracker) -> None:
        await asyncio.gather(*(self._deliver_one(message, body, event_id, e) for e in endpoints))
        tracker.finish(message.offset())

    async def _deliver_one(self, message, body: bytes, event_id: str, endpoint: Endpoint) -> Outcome:
        outcome = await self.clients[endpoint.name].deliver(body, event_id)
        self.metrics.seconds.labels(endpoint.name).observe(outcome.seconds)
        if outcome.delivered:
            self.metrics.deliveries.labels(endpoint.name, "delivered").inc()
        else:
            await self._dead_letter(message, endpoint.name, outcome.status, outcome.error, outcome.attempts)
            self.metrics.deliveries.labels(endpoint.name, "dead_lettered").inc()
            log.warning("deliver: event %s to %s dead-lettered: %s", event_id, endpoint.name, outcome.error)
        return outcome

    async def _finish_unusable(self, message, problem: str, tracker: PartitionTracker) -> None:
        await self._dead_letter(message, None, None, problem, 0)
        log.warning("deliver: %s[%d]@%d dead-lettered: %s", message.topic(), message.partition(),
                    message.offset(), problem)
        tracker.finish(message.offset())

    async def _dead_letter(self, message, endpoint: str | None, status: int | None, error: str,
                           attempts: int) -> None:
        value = message.value()
        record: dict = {
            "endpoint": endpoint, "status": status, "error": error, "attempts": attempts,
            "source_topic": message.topic(), "partition": message.partition(), "offset": message.offset(),
            "failed_at": datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        }
        try:
            record["event"] = orjson.loads(value) if value is not None else None
        except orjson.JSONDecodeError:
            try:
                record["event_text"] = value.decode("utf-8")
            except UnicodeDecodeError:
                record["event_b64"] = base64.b64encode(value).decode()
        assert self.sink is not None
        await self.sink.produce_acknowledged(self.settings.deliver_deadletter_topic, message.key(),
                                             orjson.dumps(record))

    def _circuit(self, name: str, is_open: bool) -> None:
        self.metrics.circuit_open.labels(name).set(1 if is_open else 0)
        log.warning("deliver: circuit of %s %s", name, "opened" if is_open else "closed")

    # --- web ------------------------------------------------------------------------------
    async def _start_web(self) -> web.AppRunner:
        app = web.Application()

        async def healthz(request: web.Request) -> web.Response:
            return web.json_response({"status": "ok"})

        async def readyz(request: web.Request) -> web.Response:
            if self._assigned:
                return web.json_response({"status": "ready", "partitions": len(self._assigned)})
            return web.json_response({"status": "not ready", "reason": "no partitions assigned yet"}, status=503)

        async def metrics(request: web.Request) -> web.Response:
            return web.Response(body=generate_latest(self.metrics.registry),
                                headers={"Content-Type": PROMETHEUS_TEXT})

        app.router.add_get("/healthz", healthz)
        app.router.add_get("/readyz", readyz)
        app.router.add_get("/metrics", metrics)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.settings.web_host, self.settings.deliver_web_port)
        await site.start()
        return runner


def ensure_deadletter_topic(settings: Settings) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient(settings.confluent_config())
    topic = settings.deliver_deadletter_topic
    existing = admin.list_topics(timeout=15).topics
    if topic in existing:
        return
    futures = admin.create_topics([NewTopic(topic, num_partitions=settings.partitions,
                                            replication_factor=settings.replication_factor,
                                            config={"cleanup.policy": "delete",
                                                    "retention.ms": str(7 * 24 * 3600 * 1000)})])
    for future in futures.values():
        try:
            future.result(30)
        except Exception as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc).upper().replace(" ", "_"):
                raise ConfigurationError(f"cannot create {topic} (CXSTREAM_DELIVER_DEADLETTER_TOPIC): {exc}") from None


def run_deliver(settings: Settings, args: argparse.Namespace | None = None) -> int:
    """The ``cxstream deliver`` command."""
    if settings.routes is None:
        raise ConfigurationError("CXSTREAM_ROUTES is not set; name the webhook routes file (YAML), "
                                 "see docs/webhooks.md")
    if not settings.broker:
        raise ConfigurationError("CXSTREAM_BROKER is not set; give the Kafka bootstrap servers, "
                                 "e.g. CXSTREAM_BROKER=kafka://kafka-1:9092")
    try:
        routes = load_routes(settings.routes)
    except RoutesError as exc:
        raise ConfigurationError(str(exc)) from None
    logging.basicConfig(level=settings.log_level,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    from ..ops.cli import _reachable

    _reachable(settings)
    if settings.create_topics:
        from ..ops.topics import ensure_topics

        ensure_topics(settings)
    # deliver's own topic: created when missing, whoever creates the contract's topics
    ensure_deadletter_topic(settings)

    async def main() -> None:
        service = DeliverService(settings, routes)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, service.stop)
        await service.run()

    try:
        asyncio.run(main())
    except DeliveryFailed as exc:  # the broker would not take a dead letter: stop, redeliver later
        raise ConfigurationError(f"deliver stopped: {exc}") from None
    return 0
