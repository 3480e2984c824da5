"""The fault-impact partials of every partition, read by every worker.

Each worker writes the partials of the partitions it owns (see
domain/impact.py) to an internal compacted topic, key ``alarm id \\x1f
partition``; every worker reads the whole topic from the beginning (no group),
so each holds the partials of all partitions and can answer ``/faults`` for
the whole customer base. A tombstone removes a partition's partial.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Callable

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from .whole_topic import close, open_from_beginning

log = logging.getLogger(__name__)

SEPARATOR = "\x1f"


def partial_key(alarm_id: str, partition: int) -> bytes:
    return f"{alarm_id}{SEPARATOR}{partition}".encode()


def parse_key(key: bytes) -> tuple[str, int] | None:
    alarm_id, _, partition = key.decode(errors="replace").rpartition(SEPARATOR)
    return (alarm_id, int(partition)) if partition.isdigit() and alarm_id else None


class ImpactView:
    """alarm id -> partition -> partial, as last written by the partition's owner."""

    def __init__(self, topic: str, consumer_config: dict, on_change: Callable[[set[str]], None]):
        self.topic = topic
        self.config = consumer_config
        self.on_change = on_change  # alarm ids whose combined document may have changed
        self.partials: dict[str, dict[int, dict]] = {}
        self.caught_up = asyncio.Event()
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task | None = None
        self._targets: dict[TopicPartition, int] = {}

    def of(self, alarm_id: str) -> list[dict]:
        return list(self.partials.get(alarm_id, {}).values())

    def apply(self, key: bytes | None, value: bytes | None) -> str | None:
        parsed = parse_key(key) if key else None
        if parsed is None:
            return None
        alarm_id, partition = parsed
        if value is None:
            by_partition = self.partials.get(alarm_id)
            if by_partition is not None:
                by_partition.pop(partition, None)
                if not by_partition:
                    del self.partials[alarm_id]
        else:
            self.partials.setdefault(alarm_id, {})[partition] = orjson.loads(value)
        return alarm_id

    async def start(self) -> None:
        self._consumer, self._targets = await open_from_beginning(self.topic, self.config, "fault-impact")
        self._task = asyncio.create_task(self._run(), name="impact-view")

    async def _run(self) -> None:
        consumer = self._consumer
        while True:
            batches = await consumer.getmany(timeout_ms=200, max_records=5000)
            changed = set()
            for messages in batches.values():
                for message in messages:
                    try:
                        alarm_id = self.apply(message.key, message.value)
                    except (ValueError, UnicodeDecodeError):  # not ours: never stop the view
                        log.warning("fault-impact partial at offset %d is unreadable", message.offset)
                        continue
                    if alarm_id is not None:
                        changed.add(alarm_id)
            if changed:
                self.on_change(changed)
            if not self.caught_up.is_set() and not batches:
                # at the end offsets *and* a fetch found nothing more
                positions = {tp: await consumer.position(tp) for tp in self._targets}
                if all(positions[tp] >= end for tp, end in self._targets.items()):
                    self.caught_up.set()

    async def stop(self) -> None:
        await close(self._task, self._consumer)
