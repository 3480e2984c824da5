"""The faust application: thin wiring between Kafka and the engine.

- quality and customer records (co-partitioned by customer id): each fetch of
  faust's consumer goes to the engine as one batch (``_process_fetch``; see
  batch_consumer.py for why not one faust event per record).
- alarm feed: every alarm into the engine's registry (see alarm_feed.py);
  ``fault_outcomes`` agent: dead letters and counts for the faults topic, once.
- flush timer, every ``CXSTREAM_FLUSH_INTERVAL_S``: coalesced score documents,
  then (after the broker acknowledged every output) the changed customers'
  state to the changelogged table, then the input offsets are released.
- fault impact: each flush also writes the changed partials of this worker's
  partitions to an internal topic every worker reads (impact_feed.py), and the
  combined document of each fault whose home partition is here to
  ``cx.fault_impact`` when it changed (domain/impact.py).

Offsets are never committed past state that is not in the changelog, and state
never says a trigger was sent before the broker has it. After a crash the
uncommitted tail is read again: duplicates are dropped by event id, outage
episodes and cooldowns in the restored state keep triggers from repeating, and
a trigger that is sent again carries the same CloudEvent id.
"""

from __future__ import annotations

import asyncio
import logging
import math
import ssl
import time

import faust
import orjson
from faust.types import TP

from ..domain.customer import CustomerState, is_erased_marker, read_erased_marker
from ..domain.engine import Engine, InputRecord
from ..domain.limits import Limits
from ..domain.impact import combine
from ..domain.rules import RuleBook
from ..ops.metrics import Metrics
from ..ops.runtime import release_free_memory
from ..ops.watermark import SEAL_KEY, ProbeFailed, high_watermark_undercounts
from ..ops.settings import Settings
from ..outputs import cloudevents, deadletters, scores
from .alarm_feed import AlarmFeed, FaultOutcomes
from . import customer_store
from .batch_consumer import BatchConsumer
from .impact_feed import ImpactView, partial_key
from .sink import DeliveryFailed, OutputSink

log = logging.getLogger(__name__)

STATE_TABLE = "customer_state"
TRIM_AFTER_PUT_AWAY = 10_000  # customers put away in one flush that make a heap trim worth it
TRIM_INTERVAL_S = 5.0
FLUSH_SLICE = 500  # customers written between two yields to the event loop (~4 ms each)
TOP_UP_TIMEOUT_S = 30.0  # longest the changelog top-up waits for a partition's end
WATCH_INTERVAL_S = 1.0  # how often the watchdog asks the broker and looks at the background tasks
# headers of a record forwarded to the partition that owns its customer: what
# it is, and where its sender produced it (for its dead letter, if any)
FORWARD_SOURCE = "cx-source"
FORWARD_ORIGIN = "cx-origin"


def faust_credentials(settings: Settings):
    protocol = settings.security_protocol
    if protocol == "PLAINTEXT":
        return None
    context = None
    if protocol in ("SSL", "SASL_SSL"):
        context = ssl.create_default_context(cafile=str(settings.ssl_cafile) if settings.ssl_cafile else None)
        if settings.ssl_certfile:
            context.load_cert_chain(str(settings.ssl_certfile),
                                    str(settings.ssl_keyfile) if settings.ssl_keyfile else None)
    if protocol.startswith("SASL"):
        return faust.SASLCredentials(
            username=settings.sasl_username, password=settings.sasl_password,
            mechanism=settings.sasl_mechanism, ssl_context=context,
        )
    return faust.SSLCredentials(context)


def aiokafka_config(settings: Settings) -> dict:
    """Settings for the alarm feed's own aiokafka consumer."""
    config: dict = {"bootstrap_servers": settings.bootstrap.split(","),
                    "security_protocol": settings.security_protocol,
                    "fetch_max_wait_ms": settings.fetch_max_wait_ms}
    if settings.security_protocol in ("SSL", "SASL_SSL"):
        context = ssl.create_default_context(cafile=str(settings.ssl_cafile) if settings.ssl_cafile else None)
        if settings.ssl_certfile:
            context.load_cert_chain(str(settings.ssl_certfile),
                                    str(settings.ssl_keyfile) if settings.ssl_keyfile else None)
        config["ssl_context"] = context
    if settings.security_protocol.startswith("SASL"):
        config.update(sasl_mechanism=settings.sasl_mechanism, sasl_plain_username=settings.sasl_username,
                      sasl_plain_password=settings.sasl_password)
    return config


class CxApp(faust.App):
    """faust's App with two hooks: its consumer hands the hot topics over in
    whole fetches (batch_consumer.py), and our final flush runs before faust
    stops that consumer."""

    before_stop = None
    hot_topics: frozenset = frozenset()
    hot_handler = None
    hot_ready = None
    fetch_max_wait_ms = 1500

    def _new_consumer(self):
        self.transport.Consumer = BatchConsumer
        BatchConsumer.fetch_max_wait_ms = self.fetch_max_wait_ms
        consumer = super()._new_consumer()
        consumer.hot_topics = self.hot_topics
        consumer.hot_handler = self.hot_handler
        consumer.hot_ready = self.hot_ready
        return consumer

    async def on_stop(self) -> None:
        if self.before_stop is not None:
            await self.before_stop()
        await super().on_stop()


class CxWorker:
    def __init__(self, settings: Settings, rules: RuleBook, seal_changelog: bool | None = False):
        self.settings = settings
        self.seal_changelog = seal_changelog
        self.rules = rules
        self.engine = Engine(rules, settings.half_life_s, settings.allowed_lateness_s,
                             idle_flushes=math.ceil(settings.hot_idle_s / settings.flush_interval_s),
                             hot_max=settings.hot_max, limits=limits_of(settings))
        self.metrics = Metrics()
        self.outcomes = FaultOutcomes()
        topics = settings.topics
        from ..ops.topics import repartition_topic

        self.repartition_topic = repartition_topic(settings.app_id)
        self.impact_topic = f"{settings.app_id}-fault-impact-partials"
        self.impact_view: ImpactView | None = None
        self._impact_dirty: set[str] = set()  # faults whose combined document may have changed
        self._impact_written: dict[str, bytes] = {}  # fault -> last document written to cx.fault_impact
        self._trimmed_at = 0.0
        self._put_away_at_trim = 0  # engine.put_away_count at the last heap trim
        self.app = app = CxApp(
            settings.app_id,
            broker=f"kafka://{settings.bootstrap}",
            broker_credentials=faust_credentials(settings),
            store="rocksdb://" if settings.store == "rocksdb" else "memory://",
            table_standby_replicas=settings.standby_replicas,
            datadir=str(settings.data_dir),
            web_port=settings.web_port,
            web_host=settings.web_host,
            web_bind=settings.web_host,
            canonical_url=settings.advertised_url,  # how other workers reach this one
            broker_session_timeout=settings.session_timeout_s,
            broker_heartbeat_interval=settings.heartbeat_interval_s,
            topic_partitions=settings.partitions,
            topic_replication_factor=settings.replication_factor,
            consumer_auto_offset_reset="earliest",
            autodiscover=False,
            key_serializer="raw",
            value_serializer="raw",
            # Records still buffered when partitions go (stop, rebalance) are
            # simply not acknowledged: their offsets are not committed and the
            # next owner reads them again. Waiting for them instead can hang
            # shutdown for good (faust-streaming #324).
            stream_wait_empty=False,
        )
        self.source_of = {topics.quality: "quality", topics.customers: "customers",
                          self.repartition_topic: "quality"}
        self.customer_topics = app.topic(topics.quality, topics.customers, self.repartition_topic,
                                         key_serializer="raw", value_serializer="raw")
        self.faults_topic = app.topic(topics.faults, key_serializer="raw", value_serializer="raw")
        customer_store.register()
        self.state_table = app.Table(STATE_TABLE, partitions=settings.partitions,
                                     key_type=bytes, value_type=bytes,
                                     store=None if self._on_rocksdb else customer_store.URL)
        # our own compact encoding (CustomerState.dump), not faust's json codec
        self.state_table.key_serializer = self.state_table.value_serializer = "raw"
        self.engine.stored_form = self._stored_in_memory  # idle customers share the table's bytes
        self.sink: OutputSink | None = None
        self.feed: AlarmFeed | None = None
        self._processed: dict = {}  # TP -> last offset applied to the engine
        self._flush_lock = asyncio.Lock()
        self._assigned: set[int] = set()  # partitions whose records are processed now
        self._held: set[int] = set()  # partitions whose customers are in the engine
        self._settled = False  # partitions assigned and state restored
        self.failure: str | None = None
        self._broker_seen = time.monotonic()  # last answer from the broker (watchdog, fetches)
        self._probing = False
        self._lost_logged = False

        # quality and customer records: subscribed, but delivered in whole
        # fetches to _process_fetch rather than as faust events
        app.topics.add(self.customer_topics)
        app.hot_topics = frozenset(self.source_of)
        app.hot_handler = self._process_fetch
        app.hot_ready = lambda: self.ready
        app.fetch_max_wait_ms = settings.fetch_max_wait_ms
        app.agent(self.faults_topic, name="fault_outcomes")(self._fault_outcomes_agent)
        app.timer(settings.flush_interval_s, name="flush")(self._flush_timer)
        app.timer(WATCH_INTERVAL_S, name="watchdog")(self._watchdog)
        app.task(self._start_feed)
        app.on_partitions_revoked.connect(self._on_revoked)
        app.on_partitions_assigned.connect(self._on_assigned)
        app.on_rebalance_complete.connect(self._on_rebalance_complete)
        app.before_stop = self._on_shutdown
        from ..ops.web import register_routes

        register_routes(self)

    # ------------------------------------------------------------------ state
    @property
    def ready(self) -> bool:
        return (self.failure is None and self._settled and self.feed is not None
                and self.feed.caught_up.is_set() and not self.broker_lost)

    @property
    def broker_lost(self) -> bool:
        """No answer from the broker for CXSTREAM_BROKER_LOST_S (contract v2 readiness)."""
        return time.monotonic() - self._broker_seen > self.settings.broker_lost_s

    def _write_state(self, customer_id: str, value: bytes | None, partition: int) -> None:
        """Write one customer's state to the table and its changelog partition:
        the partition its input arrives on, whatever partitioner produced it.

        The changelog record goes through our own producer, whose flush waits
        for the broker's acknowledgement; faust's producer buffer flush gives
        up after 0.1 s without a send, so offsets could be committed before
        the state that reflects them was written.
        """
        self._put_in_store(customer_id, value, partition)
        self._sink().produce(self._changelog_topic, customer_id.encode(), value, partition=partition)

    def _put_in_store(self, customer_id: str, value: bytes | None, partition: int) -> None:
        store = self.state_table.data
        if self._on_rocksdb:
            # RocksDB: one database per partition, chosen by us (faust's own
            # setter takes the partition from the current stream event)
            key = customer_id.encode()
            db = store._db_for_partition(partition)
            if value is None:
                db.delete(key)
                store._key_index.pop(key, None)
            else:
                db.put(key, value)
                store._key_index[key] = partition
        else:
            store.put(partition, customer_id, value)

    def _top_up_changelog(self, partitions: set[int]) -> int:
        """Read the changelog past the high watermark faust's recovery stopped at.

        On the embedded Tansu the mark is the first offset of the last batch
        plus one; the seal (see _seal) keeps it right, except when a worker was
        killed between a flush's state and its seal (or when the broker reports
        no mark at all). Reads until every partition has reported its end once
        and a fetch then finds nothing more; only where the seal is on.

        Counting empty fetches alone is not enough: a fresh client's first
        fetch can take longer than two of them on a loaded broker, and the
        top-up then read nothing (seen once: a restart after SIGKILL restored
        no customer).
        """
        from confluent_kafka import Consumer, KafkaError, TopicPartition

        topic = self._changelog_topic
        consumer = Consumer({**self.settings.confluent_config(), "group.id": f"{self.settings.app_id}-top-up",
                             "enable.auto.commit": False, "enable.partition.eof": True})
        applied = 0
        try:
            tps = []
            for partition in sorted(partitions):
                _, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
                tps.append(TopicPartition(topic, partition, max(high, 0)))
            consumer.assign(tps)
            at_end: set[int] = set()
            empty = 0
            deadline = time.monotonic() + TOP_UP_TIMEOUT_S
            while (len(at_end) < len(tps) or empty < 2) and time.monotonic() < deadline:
                messages = consumer.consume(1000, timeout=0.25)
                empty = 0 if messages else empty + 1
                for message in messages:
                    error = message.error()
                    if error is not None:
                        if error.code() == KafkaError._PARTITION_EOF:
                            at_end.add(message.partition())
                    elif message.key():
                        self._put_in_store(message.key().decode("utf-8", "replace"), message.value(),
                                           message.partition())
                        applied += 1
            if len(at_end) < len(tps):
                log.warning("changelog top-up: partitions %s did not report their end within %.0f s",
                            sorted({tp.partition for tp in tps} - at_end), TOP_UP_TIMEOUT_S)
        finally:
            consumer.close()
        return applied

    def _stored_in_memory(self, customer_id: str, partition: int) -> bytes | None:
        """The bytes the in-memory table holds for this customer (shared with
        the engine's idle customers); None with RocksDB (not in memory)."""
        if self._on_rocksdb:
            return None
        return self.state_table.data.stored(partition, customer_id)

    @property
    def _on_rocksdb(self) -> bool:
        return self.settings.store == "rocksdb"

    @property
    def _changelog_topic(self) -> str:
        return self.state_table.changelog_topic.get_topic_name()

    def _restore(self, partitions: set[int]) -> int:
        """Adopt customers of newly assigned partitions from the restored table."""
        count = 0
        store = self.state_table.data
        if self._on_rocksdb:
            stored = [(key.decode("utf-8", "replace"), raw) for key, raw in list(store.items())]
        else:
            stored = store.customers_of(partitions)
        for customer_id, raw in stored:
            if not raw:
                continue
            if is_erased_marker(raw):  # an erasure, remembered (contract v2)
                partition, erased_at = read_erased_marker(raw)
                if partition in partitions and customer_id not in self.engine.customers:
                    self.engine.adopt_erased(customer_id, partition, erased_at)
                continue
            state = CustomerState.load(raw)
            if state.partition in partitions and customer_id not in self.engine.customers:
                state.customer_id = customer_id  # one text object for the store's and the engine's key
                self.engine.adopt(state, raw)
                count += 1
        return count

    # ------------------------------------------------------------- rebalance
    async def _on_assigned(self, sender, assigned: set[TP], **kwargs) -> None:
        self._settled = False  # until _on_rebalance_complete has restored them

    async def _on_revoked(self, sender, revoked: set[TP], **kwargs) -> None:
        # Make everything processed so far durable, then process nothing until
        # the new assignment is known. Customers stay in memory meanwhile: the
        # partitions this worker keeps (the usual case) need no reload.
        self._settled = False
        self._assigned = set()
        await self.flush()
        # commit what the flush made durable while this member still owns the
        # partitions (faust's revoke path commits nothing with stream_wait_empty
        # off): otherwise the next owner, this worker included, reads it again
        await self.app.consumer.commit()
        self.app.consumer.forget(revoked)

    async def _on_rebalance_complete(self, sender, **kwargs) -> None:
        quality = self.settings.topics.quality
        now = {tp.partition for tp in self.app.consumer.assignment() if tp.topic == quality}
        gained = now - self._held
        lost = self._held - now
        if lost:
            released = self.engine.release(lost)
            log.info("partitions %s moved away: released %d customers", sorted(lost), len(released))
        if self.seal_changelog is None and not await self._probe_watermark():
            return
        if gained:
            if self.seal_changelog:
                late = self._top_up_changelog(gained)
                if late:
                    log.info("read %d changelog records past the reported high watermark", late)
            restored = self._restore(gained)
            log.info("partitions %s: restored %d customers from the changelog", sorted(gained), restored)
        self._held = now
        self._assigned = now
        self._settled = True
        self._impact_dirty.update(self.engine.alarms.alarms)  # home partitions may have moved
        self._emit()

    async def _probe_watermark(self) -> bool:
        """CXSTREAM_CHANGELOG_SEAL=auto: find out, once faust has made the
        changelog topic, whether this broker needs the seal and the top-up."""
        loop = asyncio.get_running_loop()
        try:
            self.seal_changelog = await loop.run_in_executor(
                None, high_watermark_undercounts, self.settings, self._changelog_topic)
        except ProbeFailed as exc:
            self.fail(f"cannot check the broker's high watermark on the changelog ({exc}); give the "
                      f"worker WRITE on it, or set CXSTREAM_CHANGELOG_SEAL to on or off")
            return False
        log.info("changelog seal %s: the broker's high watermark %s", "on" if self.seal_changelog else "off",
                 "stops at a batch's first record" if self.seal_changelog else "follows the last record")
        return True

    # ---------------------------------------------------------------- agents
    async def _start_feed(self) -> None:
        loop = asyncio.get_running_loop()
        log.info("event loop: %s.%s", type(loop).__module__, type(loop).__name__)
        self._sink()
        await self._start_impact_view()
        self.feed = AlarmFeed(self.engine, self.settings.topics.faults, aiokafka_config(self.settings),
                              self._emit, self.outcomes)
        await self.feed.start()

    async def _start_impact_view(self) -> None:
        from ..ops.topics import TopicSpec, ensure_topics, topic_config

        spec = TopicSpec(self.impact_topic, 1, self.settings.replication_factor, topic_config("fault_impact"))
        await asyncio.get_running_loop().run_in_executor(None, lambda: ensure_topics(self.settings, [spec]))
        view = ImpactView(self.impact_topic, aiokafka_config(self.settings), self._impact_dirty.update)
        await view.start()
        self.impact_view = view

    def home_partition(self, alarm_id: str) -> int:
        """The partition whose owner writes the fault's document to cx.fault_impact."""
        from ..ops.web import customer_partition

        return customer_partition(alarm_id, self.settings.partitions)

    def fault_document(self, alarm_id: str) -> dict | None:
        """The fault-impact document of one fault, combined over all partitions."""
        alarm = self.engine.alarms.get(alarm_id)
        if alarm is None or self.impact_view is None:
            return None
        return combine(alarm, self.impact_view.of(alarm_id))

    @property
    def impact_ready(self) -> bool:
        view, feed = self.impact_view, self.feed
        return (self._settled and view is not None and view.caught_up.is_set()
                and feed is not None and feed.caught_up.is_set())

    def _write_impact(self) -> None:
        """This worker's changed partials, then the changed documents of the
        faults whose home partition it owns."""
        view = self.impact_view
        if view is None:
            return  # the partials wait in the ledger until the topic is there
        sink = self._sink()
        for alarm_id, partition, partial in self.engine.impact.take_changed():
            sink.produce(self.impact_topic, partial_key(alarm_id, partition),
                         None if partial is None else orjson.dumps(partial))
        self._impact_dirty |= self.engine.alarm_changes
        self.engine.alarm_changes = set()
        if not self.impact_ready:
            return
        dirty, self._impact_dirty = self._impact_dirty, set()
        topic = self.settings.topics.fault_impact
        for alarm_id in sorted(dirty):
            document = self.fault_document(alarm_id)
            if document is None or self.home_partition(alarm_id) not in self._held:
                self._impact_written.pop(alarm_id, None)
                continue
            encoded = orjson.dumps(document)
            if self._impact_written.get(alarm_id) != encoded:
                sink.produce(topic, alarm_id.encode(), encoded)
                self._impact_written[alarm_id] = encoded

    async def _process_fetch(self, batch: list) -> None:
        """One fetch of quality/customer records: into the engine at once.

        Called only while ``ready`` (partitions restored, every known alarm in
        the registry): the consumer puts a fetch back until then."""
        received = time.monotonic()
        source_of = self.source_of
        repartitioned = self.repartition_topic
        engine = self.engine
        chunk = self.settings.batch_max
        self._broker_seen = received  # a fetch came back: the broker answers
        for tp, tp_records in batch:
            topic = tp.topic
            source = source_of[topic]
            for start in range(0, len(tp_records), chunk):
                if tp.partition not in self._assigned:
                    break  # revoked meanwhile: its next owner reads it again
                part = tp_records[start:start + chunk]
                try:
                    if topic == repartitioned:
                        engine.process([forwarded(r, tp.partition) for r in part])
                    else:
                        engine.process_fetch(source, topic, tp.partition, part)
                except Exception as exc:  # not one record's fault (the engine isolates those)
                    self.fail(f"processing {topic}[{tp.partition}] failed: {type(exc).__name__}: {exc}")
                    log.exception("processing a fetch failed")
                    return
                self._processed[tp] = part[-1].offset  # (a flush swaps the dict)
                self._emit()
                self.metrics.observe_latency(time.monotonic() - received, len(part))
        # No yield to the event loop inside one fetch: with one, a rebalance
        # could start while a fetch was half processed and the worker stalled
        # in it (tests/test_e2e_scaleout.py). Fetches stay small instead
        # (CXSTREAM_FETCH_MAX_WAIT_MS), and outputs go out after every slice.

    async def _fault_outcomes_agent(self, stream) -> None:
        async for event in stream.events():
            message = event.message
            reason = await self.outcomes.outcome(message.partition, message.offset)
            if reason is None:
                self.metrics.events.labels("faults", "ok").inc()
            else:
                record = InputRecord("faults", message.topic, message.partition, message.offset,
                                     message.key, message.value, message.timestamp)
                self._sink().produce(self.settings.topics.deadletter, deadletters.message_key(record),
                                     deadletters.encode(record, reason, self.settings.max_record_bytes))
                self.metrics.events.labels("faults", "invalid").inc()
                self.metrics.deadletters.labels("faults").inc()

    def _sink(self) -> OutputSink:
        if self.sink is None:
            self.sink = OutputSink(self.settings.confluent_config())
        return self.sink

    def _emit(self) -> None:
        """Send what the engine produced since the last call."""
        firings, rejections, tally = self.engine.drain()
        sink = self._sink()
        topics = self.settings.topics
        source = self.settings.source
        channel_topic = {"care": topics.care, "marketing": topics.marketing}
        for firing in firings:
            sink.produce(channel_topic[firing.rule.channel], firing.customer_id.encode(),
                         cloudevents.encode(firing, source), cloudevents.HEADERS)
        for rejection in rejections:
            record = rejection.record
            sink.produce(topics.deadletter, deadletters.message_key(record),
                         deadletters.encode(record, rejection.reason, self.settings.max_record_bytes))
            self.metrics.deadletters.labels(record.source).inc()
        for customer_id, record in self.engine.take_forwards():
            # input without its customer id as key: to the partition that owns the customer
            sink.produce(self.repartition_topic, customer_id.encode(), record.value, [
                (FORWARD_SOURCE, record.source.encode()),
                (FORWARD_ORIGIN, f"{record.partition}:{record.offset}:{record.topic}".encode())])
        self.metrics.record(tally)
        for topic, count in sink.take_dropped().items():
            self.metrics.outputs_dropped.labels(topic).inc(count)
        sink.poll()

    # ----------------------------------------------------------------- flush
    async def _watchdog(self) -> None:
        """Readiness that tells the truth: ask the broker for metadata (in a
        thread: the client call blocks), and stop the worker when a background
        task it cannot do without has died."""
        for name, task in (("alarm feed", getattr(self.feed, "_task", None)),
                           ("fault-impact view", getattr(self.impact_view, "_task", None))):
            if task is not None and task.done() and not task.cancelled() and task.exception() is not None:
                error = task.exception()
                self.fail(f"the {name} stopped: {type(error).__name__}: {error}")
                return
        for name, service in (("fetcher", getattr(self.app, "_fetcher", None)),
                              ("consumer", getattr(self.app, "_consumer", None))):
            if service is not None and getattr(service, "crashed", False):
                self.fail(f"the {name} crashed: {service.crash_reason!r}")
                return
        if self._probing or self.sink is None:
            return
        self._probing = True
        try:
            timeout = max(1.0, self.settings.broker_lost_s / 2)
            await asyncio.get_running_loop().run_in_executor(None, self.sink.ping, timeout)
            self._broker_seen = time.monotonic()
            if self._lost_logged:
                self._lost_logged = False
                log.warning("the broker answers again: ready once caught up")
        except Exception as exc:
            if self.broker_lost and not self._lost_logged:
                self._lost_logged = True
                log.warning("no answer from the broker for %.0f s (%s): not ready",
                            time.monotonic() - self._broker_seen, exc)
        finally:
            self._probing = False
        self.metrics.ready.set(1 if self.ready else 0)
        self.metrics.broker_lost.set(1 if self.broker_lost else 0)

    async def _flush_timer(self) -> None:
        try:
            await self.flush()
        except DeliveryFailed as exc:
            self.fail(str(exc))

    def fail(self, reason: str) -> None:
        """An output could not be written: stop without committing past it."""
        if self.failure is None:
            self.failure = reason
            log.error("stopping: %s", reason)
            self.app.loop.call_soon(lambda: asyncio.ensure_future(self.app.stop()))

    async def flush(self) -> None:
        if self.failure is not None:
            return
        async with self._flush_lock:
            started = time.monotonic()
            durable, self._processed = self._processed, {}
            self._emit()
            engine = self.engine
            dirty, erased = engine.take_dirty_ids()
            sink = self._sink()
            topic = self.settings.topics.scores
            published = []
            captured = []  # (customer id, stored form, partition)
            for first in range(0, len(dirty), FLUSH_SLICE):
                for customer_id in dirty[first:first + FLUSH_SLICE]:
                    # read now, not when the dirty set was taken: the stream
                    # may have changed the customer between two slices
                    state, in_use = engine.flush_view(customer_id)
                    if state is None:
                        continue  # erased or moved away meanwhile
                    document = scores.score_document(engine, state)
                    sink.produce(topic, state.customer_id.encode(), scores.encode(document))
                    state.published = document["score"]
                    published.append(document["score"])
                    stored = state.dump()
                    if not in_use:  # put away (beyond hot_max): stays so, with the new form
                        engine.put_back(customer_id, stored)
                    # (the engine's own id object: the store shares it as its key)
                    captured.append((customer_id, stored, state.partition))
                sink.poll()
                if first + FLUSH_SLICE < len(dirty):
                    await asyncio.sleep(0)  # the stream goes on between slices
            self.metrics.observe_scores(published)
            self._write_impact()
            for customer_id in erased:
                sink.produce(topic, customer_id.encode(), None)
            # Every trigger fired before a state above was captured is now
            # acknowledged before that state is written: the changelog never
            # records a trigger as sent that the broker does not have.
            await sink.flush()
            for customer_id, stored, partition in captured:
                self._write_state(customer_id, stored, partition)
            for customer_id, partition in erased.items():
                # the erased marker (the id is remembered as erased), or a real
                # null once the memory of it has ended
                self._write_state(customer_id, engine.erased_marker(customer_id), partition)
            # customers untouched for a while wait in their stored form
            engine.dehydrate_idle([customer_id for customer_id, _, _ in captured])
            if (engine.put_away_count - self._put_away_at_trim >= TRIM_AFTER_PUT_AWAY
                    and time.monotonic() - self._trimmed_at > TRIM_INTERVAL_S):
                # many customers became compact: return the freed C heap to the system
                self._trimmed_at = time.monotonic()
                self._put_away_at_trim = engine.put_away_count
                release_free_memory()
            if dirty or erased:
                await sink.flush()
                if self.seal_changelog:
                    await self._seal({partition for _, _, partition in captured} | set(erased.values()))
            if durable:
                self.app.consumer.mark_durable(durable)
            self.metrics.customers.set(len(self.engine.customers))
            self.metrics.active_faults.set(self.engine.alarms.active_count)
            self.metrics.broker_lost.set(1 if self.broker_lost else 0)
            self.metrics.ready.set(1 if self.ready else 0)
            if self.feed is not None:
                self.metrics.alarm_lag.set(self.feed.lag)
            if dirty or erased or durable:
                self.metrics.flush_seconds.observe(time.monotonic() - started)

    async def _seal(self, partitions: set[int]) -> None:
        """End each written changelog partition with a batch of one record.

        Some brokers (the embedded Tansu) report a partition's high watermark
        as the first offset of its last batch plus one; faust's recovery reads
        up to that mark, and would miss the rest of a multi-record batch.
        """
        sink = self._sink()
        for partition in sorted(partitions):
            sink.produce(self._changelog_topic, SEAL_KEY, b"", partition=partition)
            await sink.flush()  # one record per batch

    async def _on_shutdown(self) -> None:
        bound = self.settings.shutdown_timeout_s
        _exit_after(bound)  # faust's own stop must not hang either (faust-streaming #324)
        try:
            await asyncio.wait_for(self.flush(), bound * 0.7)
        except DeliveryFailed as exc:
            log.error("final flush failed: %s; offsets of unflushed records are not committed, "
                      "so they are read again", exc)
        except asyncio.TimeoutError:
            log.error("final flush did not finish within %.0f s (of CXSTREAM_SHUTDOWN_TIMEOUT_S): the broker "
                      "is not answering; offsets of unflushed records are not committed, so the next "
                      "owner reads them again and nothing is lost", bound * 0.7)
        if self.feed is not None:
            await self.feed.stop()
        if self.impact_view is not None:
            await self.impact_view.stop()
        if self.sink is not None:
            self.sink.close()
        log.info("cxstream worker stopped: %d customers, %d active alarms",
                 len(self.engine.customers), self.engine.alarms.active_count)

    # ------------------------------------------------------------------- run
    def run(self) -> int:
        from ..ops.runtime import freeze_startup_objects

        worker = faust.Worker(self.app, loglevel=self.settings.log_level, quiet=True)
        freeze_startup_objects()
        worker.execute_from_commandline()
        return 0 if self.failure is None else 1


def limits_of(settings: Settings) -> Limits:
    """The engine's bounds from the configuration (contract v2 Bounds)."""
    return Limits(max_future_s=settings.max_future_s, max_record_bytes=settings.max_record_bytes,
                  alarm_max_age_s=settings.alarm_max_age_s, erased_retention_s=settings.erased_retention_s)


def forwarded(record, partition: int) -> InputRecord:
    """A record read back from the repartition topic: what it is and where its
    sender produced it come from the headers the forwarding worker wrote."""
    headers = dict(record.headers or ())
    source = (headers.get(FORWARD_SOURCE) or b"quality").decode()
    origin = None
    raw = headers.get(FORWARD_ORIGIN)
    if raw:
        try:
            part, off, topic = raw.decode("utf-8", "replace").split(":", 2)
            origin = (topic, int(part), int(off))
        except ValueError:
            origin = None  # not ours: the dead letter names the internal topic
    return InputRecord(source if source in ("quality", "customers") else "quality", record.topic,
                       partition, record.offset, record.key, record.value, record.timestamp / 1000.0,
                       placed=True, origin=origin)


def _exit_after(seconds: float) -> None:
    """A last resort for a stop that hangs: exit non-zero after ``seconds``."""
    import os
    import threading

    def expire() -> None:
        log.error("stop did not finish within %.0f s (CXSTREAM_SHUTDOWN_TIMEOUT_S), the broker is not "
                  "answering: exiting; offsets not committed, so the uncommitted records are read "
                  "again and nothing is lost", seconds)
        logging.shutdown()
        os._exit(1)

    timer = threading.Timer(seconds, expire)
    timer.daemon = True
    timer.start()
