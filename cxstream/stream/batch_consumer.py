"""faust's Kafka consumer, with the hot topics handed over one fetch at a time.

faust delivers every record as an event: a task per record to deliver it, an
Event object, a queue per stream, an ack per record. Measured here that costs
about 150 µs of CPU per record, ten times what cxstream's scoring costs
(NOTES.md; docs/benchmark.md). For the high-volume topics (quality records and
customer records) this consumer skips that machinery: each fetch goes to the
worker as a list of raw records, processed in one synchronous call.

Everything else stays faust's: the consumer group and its partition assignor
(so tables and changelogs stay co-partitioned), rebalancing, the commit timer,
and ordinary event delivery for every other topic.

Offsets of the hot topics are committed from ``committable``, which the worker
advances only after a flush made the effects of those records durable,
instead of from per-record acks.
"""

from __future__ import annotations

import asyncio
from typing import Awaitable, Callable, Optional

from aiokafka.errors import IllegalStateError
from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.transport.drivers.aiokafka import Consumer as AIOKafkaConsumer
from faust.types import TP

HotHandler = Callable[[list], Awaitable[None]]


class _ConsumerThread(AIOKafkaConsumerThread):
    fetch_max_wait_ms = 1500

    def _create_worker_consumer(self, transport):
        consumer = super()._create_worker_consumer(transport)
        # faust hard-codes 1500 ms; a broker that holds every fetch that long
        # when little data is waiting (the embedded Tansu does) adds it to the
        # latency of every record
        consumer._fetch_max_wait_ms = self.fetch_max_wait_ms
        return consumer


class BatchConsumer(AIOKafkaConsumer):
    hot_topics: frozenset = frozenset()
    hot_handler: Optional[HotHandler] = None
    # whether the worker can take hot records now (partitions restored, alarm
    # registry caught up); when not, the fetch is put back, see _drain_messages
    hot_ready: Optional[Callable[[], bool]] = None
    fetch_max_wait_ms: int = 1500

    def _new_consumer_thread(self):
        thread = _ConsumerThread(self, loop=self.loop, beacon=self.beacon)
        thread.fetch_max_wait_ms = self.fetch_max_wait_ms
        return thread

    def __post_init__(self) -> None:
        super().__post_init__()
        self.committable: dict[TP, int] = {}

    def mark_durable(self, offsets: dict[TP, int]) -> None:
        """Records up to these offsets (inclusive) are durable: commit past them."""
        assigned = self.assignment()
        for tp, offset in offsets.items():
            if tp in assigned:
                self.committable[tp] = offset + 1
                self._acked[tp]  # noqa: B018 -- makes faust's commit timer look at this tp

    def _new_offset(self, tp: TP) -> Optional[int]:
        if tp.topic in self.hot_topics:
            return self.committable.get(tp)
        return super()._new_offset(tp)

    def forget(self, tps) -> None:
        for tp in tps:
            self.committable.pop(tp, None)

    async def _put_back(self, batch: list) -> None:
        """Seek back to the start of a fetch that cannot be taken yet: a hot
        fetch before the worker is ready, or any fetch that arrived while the
        flow was stopped.

        Waiting here instead would stall this loop, and with it the changelog
        records faust's recovery is waiting for (a rebalance that never
        finished recovering, seen in CI). The records are fetched again."""
        await self._rewind(batch)
        await asyncio.sleep(0.02)  # back-off: the same records come straight back

    async def _rewind(self, batch: list) -> None:
        """Seek each partition of ``batch`` back to its first record."""
        assigned = self.assignment()
        for tp, records in batch:
            if tp in assigned:
                try:
                    await self.seek(tp, records[0].offset)
                except (IllegalStateError, AssertionError, KeyError, ValueError) as exc:
                    # revoked meanwhile by the client's own thread (a race with
                    # the check above): its next owner reads it from the
                    # committed offset. Raising here would end this loop, and
                    # with it every delivery, recovery's included (seen once
                    # in a loaded test run: recovery waited for good).
                    self.log.info("put back %s: not assigned any more (%r)", tp, exc)

    async def _drain_messages(self, fetcher) -> None:  # pragma: no cover - exercised end to end
        callback = self.callback
        consumer_should_stop = self._stopped.is_set
        fetcher_should_stop = fetcher._stopped.is_set
        read_offset = self._read_offset
        hot = self.hot_topics
        set_flag = self.diag.set_flag
        unset_flag = self.diag.unset_flag
        acks_enabled_for = self.app.topics.acks_enabled_for
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                set_flag(CONSUMER_FETCHING)
                records, active = await self._wait_next_records(1.0)
                await asyncio.sleep(0)
                if not records or self.should_stop:
                    continue
                if not self.flow_active:
                    # Fetched while the flow was stopped (a rebalance began
                    # during the fetch): fetch them again later, as faust's
                    # own getmany seeks back. Dropped, the client's position
                    # stays past them: recovery seeks its changelogs to the
                    # start, such a fetch returns them, and recovery then
                    # waits for records that never come (seen in CI-like runs).
                    await self._put_back(list(records.items()))
                    continue
                generation = self.app.consumer_generation_id
                batch = []
                paused = []
                for tp, tp_records in records.items():
                    if active is not None and tp not in active and tp not in self._buffered_partitions:
                        if not self._is_changelog_tp(tp):  # (recovery seeks its changelogs itself)
                            paused.append((tp, tp_records))
                        continue
                    last = read_offset[tp]
                    if tp.topic in hot:
                        if last is not None and tp_records[0].offset < last:
                            tp_records = [r for r in tp_records if r.offset >= last]
                        if tp_records:
                            batch.append((tp, tp_records))
                            read_offset[tp] = tp_records[-1].offset
                        continue
                    # any other topic: faust's own path, one event per record
                    for record in tp_records:
                        offset = record.offset
                        last = read_offset[tp]
                        if last is not None and offset < last:
                            continue
                        if last is not None and offset - last > 1 and acks_enabled_for(tp.topic):
                            await self._add_gap(tp, last + 1, offset)
                        message = self._to_message(tp, record)
                        await self.wait_first(callback(message), self.suspend_flow.wait())
                        read_offset[tp] = offset
                if paused:
                    # Fetched just before faust paused the partition (a newly
                    # assigned one while recovery runs). Dropped, the client's
                    # position would stay past them, and a partition with no
                    # committed offset is not sought back when it resumes: its
                    # records were lost until the next restart (a worker taking
                    # over a killed one's partitions, tests/test_e2e_robustness.py).
                    await self._rewind(paused)
                if batch and generation == self.app.consumer_generation_id and self.hot_handler:
                    if self.hot_ready is None or self.hot_ready():
                        await self.hot_handler(batch)
                    else:
                        await self._put_back(batch)
                unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                return
            raise
        except Exception as exc:
            self.log.exception("Drain messages raised: %r", exc)
            raise
        finally:
            unset_flag(CONSUMER_FETCHING)
