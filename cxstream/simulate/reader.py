"""Read a whole topic from the beginning: for tests and demos checking outcomes.

No consumer group is joined (all partitions are assigned directly, nothing is
committed), so reading never disturbs the service's own consumers and costs no
group rebalance.

Counting a topic by its high watermarks is unreliable on the bundled broker
(they can lag what a consumer actually receives); :func:`read_topic` reads
until the data itself says it is done.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Callable

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from cxstream.ops.settings import Settings

__all__ = ["read_topic", "decode"]

Message = dict[str, Any]


def read_topic(
    settings_or_bootstrap: Settings | str,
    topic: str,
    until: Callable[[list[Message]], bool] | None = None,
    idle_s: float = 1.0,
    timeout_s: float = 30.0,
) -> list[Message]:
    """Read ``topic`` from its beginning; returns its messages in arrival order.

    Each message is a dict: ``key`` and ``value`` (bytes or None),
    ``headers`` (dict of str to bytes, {} when none), ``partition``,
    ``offset``, ``timestamp`` (ms) and ``topic``.

    * With ``until``: returns as soon as ``until(messages)`` is true (checked
      after every batch, and once before reading when the topic is empty).
      Raises :class:`TimeoutError` if it is still false after ``timeout_s``;
      the error says how many messages were read. Use this to wait for a
      service's output: an idle topic does not end the wait.
    * Without ``until``: returns once every partition has been read to its end
      and nothing new arrived for ``idle_s`` seconds. Raises
      :class:`TimeoutError` if that does not happen within ``timeout_s``.

    A topic that does not exist yet is waited for (within ``timeout_s``).
    ``settings_or_bootstrap`` is a :class:`Settings` (its security settings
    are used) or a bootstrap string such as ``127.0.0.1:9092`` / ``kafka://…``.
    """
    if isinstance(settings_or_bootstrap, Settings):
        config: dict[str, Any] = dict(settings_or_bootstrap.confluent_config())
    else:
        config = {"bootstrap.servers": Settings(broker=settings_or_bootstrap).bootstrap}
    config.update(
        {
            "group.id": f"cxstream-reader-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "enable.partition.eof": True,
            "auto.offset.reset": "earliest",
            "log_level": 3,
        }
    )
    deadline = time.monotonic() + timeout_s
    consumer = Consumer(config)
    messages: list[Message] = []
    try:
        partitions = _wait_for_partitions(consumer, topic, deadline, timeout_s)
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        at_end: set[int] = set()
        last_activity = time.monotonic()
        if until is not None and until(messages):
            return messages
        while True:
            now = time.monotonic()
            if now >= deadline:
                break
            batch = consumer.consume(num_messages=1000, timeout=min(0.2, deadline - now))
            got = False
            for message in batch:
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        at_end.add(message.partition())
                        continue
                    if error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
                        continue  # metadata still settling for a new topic
                    raise RuntimeError(f"reading {topic}: {error.str()}")
                got = True
                at_end.discard(message.partition())
                messages.append(
                    {
                        "topic": message.topic(),
                        "key": message.key(),
                        "value": message.value(),
                        "headers": dict(message.headers() or ()),
                        "partition": message.partition(),
                        "offset": message.offset(),
                        "timestamp": message.timestamp()[1],
                    }
                )
            if got:
                last_activity = time.monotonic()
                if until is not None and until(messages):
                    return messages
            elif (
                until is None
                and len(at_end) == len(partitions)
                and time.monotonic() - last_activity >= idle_s
            ):
                return messages
    finally:
        consumer.close()
    condition = "the condition was not met" if until is not None else "the topic never went idle"
    raise TimeoutError(
        f"read {len(messages)} messages from {topic} in {timeout_s:g} s but {condition}"
    )


def _wait_for_partitions(consumer: Consumer, topic: str, deadline: float, timeout_s: float) -> list[int]:
    problem = "absent"
    while True:
        try:
            metadata = consumer.list_topics(topic, timeout=max(0.1, min(2.0, deadline - time.monotonic())))
            entry = metadata.topics.get(topic)
            if entry is not None and entry.error is None and entry.partitions:
                return sorted(entry.partitions)
            if entry is not None and entry.error is not None:
                problem = entry.error.str()
        except Exception as error:  # KafkaException: broker not answering yet
            problem = str(error)
        if time.monotonic() >= deadline:
            raise TimeoutError(f"topic {topic} not available within {timeout_s:g} s ({problem})")
        time.sleep(0.05)  # back-off between metadata polls


def decode(messages: list[Message]) -> list[Any]:
    """The JSON values of ``messages`` (None for tombstones)."""
    import orjson

    return [None if m["value"] is None else orjson.loads(m["value"]) for m in messages]
