"""Produce simulated records to the contract's input topics with confluent-kafka."""

from __future__ import annotations

import threading
import time
from typing import Callable, Iterable

from confluent_kafka import KafkaError, Producer

from cxstream.ops.settings import Settings
from cxstream.simulate.operator import SimRecord

__all__ = ["ProduceError", "produce", "producer_config", "PROGRESS_EVERY"]

#: ``progress`` is called after every this many records (and once at the end).
PROGRESS_EVERY = 1000
_INPUT_ROLES = ("faults", "quality", "customers")


class ProduceError(RuntimeError):
    """Records were not acknowledged by the broker."""


def producer_config(settings: Settings, **overrides: object) -> dict[str, object]:
    """confluent-kafka producer settings for keyed records that faust also reads.

    ``murmur2_random`` puts a key on the same partition as Java clients,
    aiokafka and faust do (confluent's default, CRC32, does not).
    """
    config: dict[str, object] = dict(settings.confluent_config())
    config.update(
        {
            "partitioner": "murmur2_random",
            "linger.ms": 5,
            "batch.size": 1_000_000,
            "batch.num.messages": 10_000,
            "queue.buffering.max.messages": 500_000,
            "queue.buffering.max.kbytes": 262_144,
            "acks": "all",
            "log_level": 3,
        }
    )
    config.update(overrides)
    return config


def produce(
    settings: Settings,
    records: Iterable[SimRecord],
    rate: float | None = None,
    progress: Callable[[int], None] | None = None,
    stop: threading.Event | None = None,
    *,
    flush_timeout: float = 60.0,
    event_timestamps: bool = False,
) -> int:
    """Produce ``records`` to ``settings.topics.<role>``; returns how many were produced.

    ``rate`` (records/s) paces production: record ``n`` is not sent before
    ``start + n / rate``. ``progress(count)`` is called every
    :data:`PROGRESS_EVERY` records and at the end. Setting ``stop`` ends
    production early (what was sent is still flushed and counted).
    ``event_timestamps`` sets each record's Kafka timestamp to its event time
    (off by default: the broker sees wall-clock create times).

    Raises :class:`ProduceError` if any record was not acknowledged, naming
    how many and the first error, or if the flush does not finish within
    ``flush_timeout`` seconds.
    """
    if rate is not None and rate <= 0:
        raise ValueError("rate must be positive (or None for as fast as possible)")
    topics = {role: getattr(settings.topics, role) for role in _INPUT_ROLES}
    producer = Producer(producer_config(settings))
    failures: list[str] = []
    failed = 0

    def on_delivery(error: KafkaError | None, message: object) -> None:
        nonlocal failed
        if error is not None:
            failed += 1
            if len(failures) < 5:
                topic = message.topic() if message is not None else "?"  # type: ignore[attr-defined]
                failures.append(f"{topic}: {error.str()}")

    count = 0
    began = time.monotonic()
    interval = 1.0 / rate if rate else 0.0
    produce_ = producer.produce
    poll = producer.poll
    try:
        for record in records:
            if stop is not None and stop.is_set():
                break
            if interval:
                due = began + count * interval
                wait = due - time.monotonic()
                if wait > 0.0005:
                    poll(0)
                    # Rate limiting, not synchronisation: sleep until the schedule.
                    if stop is not None:
                        if stop.wait(wait):
                            break
                    else:
                        time.sleep(wait)
            try:
                topic = topics[record.role]
            except KeyError:
                raise ValueError(
                    f"record role {record.role!r} is not one of {', '.join(_INPUT_ROLES)}"
                ) from None
            kwargs = {}
            if event_timestamps:
                kwargs["timestamp"] = int(record.event_time * 1000)
            while True:
                try:
                    produce_(topic, record.value, record.key, on_delivery=on_delivery, **kwargs)
                    break
                except BufferError:
                    poll(0.05)  # local queue full: serve delivery reports, then retry
            count += 1
            if count % PROGRESS_EVERY == 0:
                poll(0)
                if failed:
                    break
                if progress is not None:
                    progress(count)
            elif count % 100 == 0:
                poll(0)
    finally:
        remaining = producer.flush(flush_timeout)
    if remaining:
        raise ProduceError(
            f"{remaining} of {count} records were still unacknowledged after "
            f"{flush_timeout:g} s (broker {settings.bootstrap} unreachable or too slow?)"
        )
    if failed:
        raise ProduceError(
            f"{failed} of {count} records were not delivered; first errors: "
            + "; ".join(failures)
        )
    if progress is not None:
        progress(count)
    return count
