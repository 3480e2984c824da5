"""The benchmark's input: seeded, contract-format records, generated once and produced per section.

* :class:`Workload` is the main workload, from the synthetic operator
  (:class:`~cxstream.simulate.operator.SyntheticOperator`, ``scenario=False``):
  a customer record for each of ``customers`` customers, then ``events``
  background quality records keyed by customer id (a mix of voice, data, video
  and messaging; a few passing problems; 0.5 % resent duplicates, as real
  feeds have). Generated on first use and kept, so every section that needs it
  gets the very same bytes.
* :func:`tracked_customers` is the memory and recovery workload: one customer
  record and one healthy quality record for each of ``n`` customers (fast
  enough for a million).
* :func:`produce_pairs` writes ``(key, value)`` pairs to a topic with
  confluent-kafka, keyed records partitioned by murmur2 as faust does
  (``partitioner=murmur2_random``), and returns once the broker acknowledged
  every one of them.

Generation and production are never part of a timed figure.
"""

from __future__ import annotations

import random
import time
from typing import Callable, Iterable, Iterator

import orjson
from confluent_kafka import KafkaError, Producer

from cxstream.ops.settings import Settings
from cxstream.simulate.operator import SyntheticOperator
from cxstream.simulate.producer import producer_config

__all__ = ["Workload", "Pair", "tracked_customers", "produce_pairs", "ProduceFailed", "customer_value"]

Pair = tuple[bytes | None, bytes | None]

#: Event time of the tracked-customers workload's records: 2026-11-22T08:00:00Z.
TRACKED_UPDATED_AT = "2026-11-22T07:00:00Z"


class ProduceFailed(RuntimeError):
    """Records were not acknowledged by the broker."""


class Workload:
    """The seeded main workload (see the module docstring)."""

    def __init__(self, seed: int, customers: int, events: int, *, sites: int | None = None,
                 duplicate_ratio: float = 0.005) -> None:
        self.seed = seed
        self.n_customers = customers
        self.n_events = events
        # about 170 customers per cell with the default 50,000 customers on 300 cells
        self.sites = sites if sites is not None else max(30, min(1000, customers // 500))
        self.duplicate_ratio = duplicate_ratio
        self._operator: SyntheticOperator | None = None
        self._customers: list[Pair] | None = None
        self._quality: list[Pair] | None = None
        self.generated_in_s = 0.0

    @property
    def operator(self) -> SyntheticOperator:
        if self._operator is None:
            self._operator = SyntheticOperator(seed=self.seed, customers=self.n_customers, sites=self.sites,
                                               duplicate_ratio=self.duplicate_ratio, degrading=0)
        return self._operator

    def customers(self) -> list[Pair]:
        """One customer record per customer, keyed by customer id."""
        if self._customers is None:
            began = time.monotonic()
            self._customers = [(r.key, r.value) for r in self.operator.customers_records(include_late=True)]
            self.generated_in_s += time.monotonic() - began
        return self._customers

    def quality(self) -> list[Pair]:
        """``events`` background quality records, keyed by customer id, in event-time order."""
        if self._quality is None:
            began = time.monotonic()
            self._quality = [(r.key, r.value) for r in
                             self.operator.stream(self.n_events, include_customers=False, scenario=False)]
            self.generated_in_s += time.monotonic() - began
        return self._quality

    def quality_stats(self) -> dict[str, int]:
        """Counts of the generated quality stream (records, duplicates)."""
        self.quality()
        stats = self.operator.stats
        return {"records": int(stats.get("quality", 0)), "duplicates": int(stats.get("duplicates", 0))}


def customer_value(customer_id: str, resources: list[str], *, tier: str = "bronze", consent: bool = False,
                   segment: str = "consumer", updated_at: str = TRACKED_UPDATED_AT) -> bytes:
    """A contract customer record."""
    return orjson.dumps({"customer_id": customer_id, "segment": segment, "value_tier": tier,
                         "marketing_consent": consent, "resources": resources, "updated_at": updated_at})


def tracked_customers(n: int, seed: int, *, prefix: str = "M") -> tuple[Iterator[Pair], Iterator[Pair]]:
    """``(customer records, quality records)`` for ``n`` customers, one quality record each.

    Customers ``{prefix}0000000``… spread over 1,000 cells of 334 sites; each
    quality record is a healthy data or voice observation at
    2026-11-22T08:00:00Z plus a millisecond per customer.
    """
    tiers = ("platinum", "gold", "silver", "bronze")

    def customers() -> Iterator[Pair]:
        rng = random.Random(f"cxstream-bench:{seed}:tracked")
        dumps = orjson.dumps
        for i in range(n):
            cid = f"{prefix}{i:07d}"
            cell = int(rng.random() * 1000)
            r = rng.random()
            tier = tiers[0 if r < 0.02 else 1 if r < 0.15 else 2 if r < 0.45 else 3]
            yield cid.encode(), dumps({
                "customer_id": cid, "segment": "business" if r > 0.8 else "consumer", "value_tier": tier,
                "marketing_consent": rng.random() < 0.6,
                "resources": [f"CELL-{cell:04d}", f"SITE-{cell // 3:04d}"],
                "updated_at": TRACKED_UPDATED_AT})

    def quality() -> Iterator[Pair]:
        rng = random.Random(f"cxstream-bench:{seed}:tracked-quality")
        dumps = orjson.dumps
        for i in range(n):
            cid = f"{prefix}{i:07d}"
            seconds, millis = divmod(i, 1000)
            minute, second = divmod(seconds, 60)
            hour, minute = divmod(minute, 60)
            stamp = f"2026-11-22T{8 + hour % 16:02d}:{minute:02d}:{second:02d}.{millis:03d}Z"
            if rng.random() < 0.5:
                record = {"service": "data", "metrics": {"latency_ms": round(20 + 30 * rng.random(), 1),
                                                         "throughput_mbps": round(20 + 80 * rng.random(), 1)}}
            else:
                record = {"service": "voice", "metrics": {"call_dropped": False,
                                                          "mos": round(3.8 + rng.random(), 2)}}
            yield cid.encode(), dumps({"event_id": f"m-{seed}-{i}", "customer_id": cid, "event_time": stamp,
                                       **record})

    return customers(), quality()


def produce_pairs(settings: Settings, topic: str, pairs: Iterable[Pair], *,
                  progress: Callable[[int], None] | None = None, flush_timeout_s: float = 120.0,
                  **overrides: object) -> int:
    """Produce ``pairs`` to ``topic`` (murmur2 partitioning); returns the count once all are acknowledged.

    Raises :class:`ProduceFailed` when any record was not delivered.
    """
    producer = Producer(producer_config(settings, **overrides))
    failed = 0
    first_error: list[str] = []

    def on_delivery(error: KafkaError | None, _message: object) -> None:
        nonlocal failed
        if error is not None:
            failed += 1
            if not first_error:
                first_error.append(error.str())

    produce = producer.produce
    poll = producer.poll
    count = 0
    for key, value in pairs:
        while True:
            try:
                produce(topic, value, key, on_delivery=on_delivery)
                break
            except BufferError:
                poll(0.05)  # local queue full: serve delivery reports, then retry
        count += 1
        if count % 10_000 == 0:
            poll(0)
            if progress is not None:
                progress(count)
    remaining = producer.flush(flush_timeout_s)
    if remaining:
        raise ProduceFailed(f"{remaining} of {count} records to {topic} unacknowledged after "
                            f"{flush_timeout_s:g} s")
    if failed:
        raise ProduceFailed(f"{failed} of {count} records to {topic} not delivered: {first_error[0]}")
    if progress is not None:
        progress(count)
    return count
