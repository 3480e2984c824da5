"""Where the worker's outputs go: one confluent-kafka producer for all topics.

Produce calls never wait; delivery is checked as a whole at each flush, before
state is written and offsets are released, so a trigger is never recorded as
sent unless the broker has it.
"""

from __future__ import annotations

import asyncio
import logging
import time

from confluent_kafka import KafkaException, Producer

log = logging.getLogger(__name__)


class DeliveryFailed(RuntimeError):
    """The broker did not take an output record: the worker must not go on."""


class OutputSink:
    def __init__(self, client_config: dict[str, str], linger_ms: int = 5):
        config = dict(client_config)
        config.update({
            # faust (aiokafka) and Java clients place keys with murmur2; ours must agree
            "partitioner": "murmur2_random",
            "linger.ms": linger_ms,
            "acks": "all",
            "queue.buffering.max.messages": 1_000_000,
        })
        self._producer = Producer(config)
        self._failure: str | None = None
        self.produced = 0
        self.dropped: dict[str, int] = {}

    def _on_delivery(self, error, message) -> None:
        if error is not None and self._failure is None:
            self._failure = f"could not write to {message.topic()}: {error.str()}"

    def produce(self, topic: str, key: bytes | str | None, value: bytes | None,
                headers: list | None = None, partition: int | None = None) -> bool:
        """Queue one message; False (logged and counted, see take_dropped) when
        the client refuses it outright, e.g. over the broker's size limit: one
        message never stops the worker."""
        while True:
            try:
                if partition is None:
                    self._producer.produce(topic, value, key, headers=headers, on_delivery=self._on_delivery)
                else:
                    self._producer.produce(topic, value, key, partition=partition, headers=headers,
                                           on_delivery=self._on_delivery)
                break
            except BufferError:
                # local queue full: serve delivery reports until there is room
                self._producer.poll(0.05)
            except KafkaException as exc:
                self.dropped[topic] = self.dropped.get(topic, 0) + 1
                log.error("could not queue a %d-byte message for %s: %s", len(value or b""), topic,
                          exc.args[0].str() if exc.args else exc)
                return False
        self.produced += 1
        return True

    def take_dropped(self) -> dict[str, int]:
        """Messages refused outright since the last call, by topic."""
        dropped, self.dropped = self.dropped, {}
        return dropped

    def ping(self, timeout_s: float) -> None:
        """Ask the broker for its metadata (blocking); raises when it does not answer."""
        self._producer.list_topics(timeout=timeout_s)

    def poll(self) -> None:
        self._producer.poll(0)

    def check(self) -> None:
        if self._failure is not None:
            raise DeliveryFailed(self._failure)

    async def flush(self, timeout_s: float = 60.0) -> None:
        """Wait until the broker acknowledged everything produced so far."""
        deadline = time.monotonic() + timeout_s
        while True:
            remaining = self._producer.flush(0)
            self.check()
            if remaining == 0:
                return
            if time.monotonic() > deadline:
                raise DeliveryFailed(f"{remaining} output records not acknowledged within {timeout_s:.0f} s")
            await asyncio.sleep(0.002)

    async def produce_acknowledged(self, topic: str, key: bytes | None, value: bytes,
                                   timeout_s: float = 30.0) -> None:
        """Produce one record and return only once the broker has it."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future = loop.create_future()

        def delivered(error, message) -> None:
            result = None if error is None else KafkaException(error)
            loop.call_soon_threadsafe(_settle, done, result)

        self._producer.produce(topic, value, key, on_delivery=delivered)
        deadline = time.monotonic() + timeout_s
        while not done.done():
            self._producer.poll(0)
            if time.monotonic() > deadline:
                raise DeliveryFailed(f"the broker did not acknowledge the write to {topic} within {timeout_s:.0f} s")
            try:
                await asyncio.wait_for(asyncio.shield(done), 0.005)
            except asyncio.TimeoutError:
                pass
        error = done.result()
        if error is not None:
            raise DeliveryFailed(f"could not write to {topic}: {error}")

    def close(self, timeout_s: float = 10.0) -> None:
        self._producer.flush(timeout_s)


def _settle(future: asyncio.Future, result) -> None:
    if not future.done():
        future.set_result(result)
