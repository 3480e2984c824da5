"""Every worker reads every alarm.

Alarms are keyed by alarm id but impact customers on every partition, so each
worker follows *all* partitions of the faults topic with its own consumer (no
group, nothing committed) from the beginning, into its copy of the alarm
registry. faust's GlobalTable would do this, but has open bugs where updates
are not seen on other instances (faust-streaming #283).

The worker does not act on alarms until the feed has caught up with the end
offsets it found at start (a replayed raise must not notify again). Dead
letters and counts for fault records are the job of whichever worker owns the
record's partition in the consumer group (see ``FaultOutcomes``), so they are
written once however many workers run.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict

from aiokafka import AIOKafkaConsumer

from ..domain.engine import Engine, InputRecord
from .whole_topic import close, open_from_beginning

log = logging.getLogger(__name__)


class FaultOutcomes:
    """What the feed decided about each fault record: rejected ones' reasons."""

    def __init__(self, keep: int = 100_000):
        self.positions: dict[int, int] = {}  # partition -> next offset the feed will read
        self.rejections: OrderedDict[tuple[int, int], str] = OrderedDict()
        self._keep = keep
        self._moved = asyncio.Event()

    def rejected(self, partition: int, offset: int, reason: str) -> None:
        self.rejections[(partition, offset)] = reason
        while len(self.rejections) > self._keep:
            self.rejections.popitem(last=False)

    def advanced(self) -> None:
        self._moved.set()

    async def outcome(self, partition: int, offset: int) -> str | None:
        """Wait until the feed has read this record; its rejection reason or None."""
        while self.positions.get(partition, 0) <= offset:
            self._moved.clear()
            await self._moved.wait()
        return self.rejections.pop((partition, offset), None)


class AlarmFeed:
    def __init__(self, engine: Engine, topic: str, consumer_config: dict, on_batch, outcomes: FaultOutcomes):
        self.engine = engine
        self.topic = topic
        self.config = consumer_config
        self.on_batch = on_batch  # called after each applied batch (to emit firings)
        self.outcomes = outcomes
        self.caught_up = asyncio.Event()
        self.lag = 0
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        self._consumer, ends = await open_from_beginning(self.topic, self.config, "faults")
        tps = list(ends)
        self._targets = {tp.partition: ends[tp] for tp in tps}
        for tp in tps:
            self.outcomes.positions[tp.partition] = 0
        log.info("alarm feed: reading %d partitions of %s, %d records to catch up",
                 len(tps), self.topic, sum(self._targets.values()))
        self._task = asyncio.create_task(self._run(), name="alarm-feed")

    def _check_caught_up(self) -> None:
        if self.caught_up.is_set():
            return
        behind = sum(max(0, end - self.outcomes.positions.get(p, 0)) for p, end in self._targets.items())
        self.lag = behind
        if behind == 0:
            log.info("alarm feed caught up: %d alarms known", len(self.engine.alarms.alarms))
            self.engine.go_live()
            self.on_batch()
            self.caught_up.set()

    async def _run(self) -> None:
        consumer = self._consumer
        engine = self.engine
        outcomes = self.outcomes
        while True:
            batches = await consumer.getmany(timeout_ms=200, max_records=2000)
            for tp, messages in batches.items():
                for message in messages:
                    record = InputRecord("faults", tp.topic, tp.partition, message.offset,
                                         message.key, message.value, message.timestamp / 1000.0)
                    try:
                        reason = engine.apply_fault(record)
                    except Exception as exc:  # a bug must not stop alarm processing
                        log.exception("alarm feed: record %s/%d failed", tp.partition, message.offset)
                        reason = f"internal error while applying this alarm: {exc!r}"
                    if reason is not None:
                        outcomes.rejected(tp.partition, message.offset, reason)
                    outcomes.positions[tp.partition] = message.offset + 1
            if batches:
                engine.prune_alarms()
                outcomes.advanced()
                self.on_batch()
            if not self.caught_up.is_set():
                # positions past the end markers (compaction gaps) count as caught up
                for tp in consumer.assignment():
                    position = await consumer.position(tp)
                    if position > outcomes.positions.get(tp.partition, 0):
                        outcomes.positions[tp.partition] = position
                outcomes.advanced()
                if not batches:
                    # at the end offsets *and* a fetch found nothing more: some
                    # brokers' end offsets stop short of the last batch's end
                    self._check_caught_up()
            else:
                self.lag = 0
                for tp in consumer.assignment():
                    high = consumer.highwater(tp)
                    if high is not None:
                        self.lag += max(0, high - outcomes.positions.get(tp.partition, 0))

    async def stop(self) -> None:
        await close(self._task, self._consumer)
