"""Reading a whole topic on every worker: no consumer group, nothing
committed, every partition from its first offset. The alarm feed and the
fault-impact view both keep such a copy."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer, TopicPartition


async def open_from_beginning(topic: str, config: dict, what: str) -> tuple[AIOKafkaConsumer, dict]:
    """A started consumer assigned every partition of ``topic`` at its
    beginning, and the end offsets found then (TopicPartition -> offset)."""
    consumer = AIOKafkaConsumer(group_id=None, enable_auto_commit=False, auto_offset_reset="earliest", **config)
    await consumer.start()
    partitions = None
    for _ in range(100):
        partitions = consumer.partitions_for_topic(topic)
        if partitions:
            break
        await consumer._client.force_metadata_update()
        await asyncio.sleep(0.1)
    if not partitions:
        await consumer.stop()
        raise RuntimeError(f"{what} topic {topic!r} does not exist")
    tps = [TopicPartition(topic, p) for p in sorted(partitions)]
    consumer.assign(tps)
    await consumer.seek_to_beginning(*tps)
    return consumer, await consumer.end_offsets(tps)


async def close(task: asyncio.Task | None, consumer: AIOKafkaConsumer | None) -> None:
    """Stop the reading task, then its consumer."""
    if task is not None:
        task.cancel()
        try:
            await task
        except (asyncio.CancelledError, Exception):
            pass
    if consumer is not None:
        await consumer.stop()
