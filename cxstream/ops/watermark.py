"""Does the broker report a partition's high watermark past its last record?

Kafka's high watermark is the offset after the last record. The embedded Tansu
reports the first offset of the last record *batch* plus one, so a reader that
stops at the mark (faust's changelog recovery) misses the rest of that batch.
The worker then needs the changelog seal and the top-up (stream/worker.py).

Which broker does this is found from what it does, never from its name: write
a batch of two records and compare the mark with the offsets the broker gave
them. The records carry ``SEAL_KEY`` with an empty value, which a changelog
reader skips (it is never a customer id) and compaction folds into one.
"""

from __future__ import annotations

import logging
import time

from .settings import Settings

log = logging.getLogger(__name__)

SEAL_KEY = b"\x00seal"  # never a customer id (ids are non-empty text)
PROBES = 3  # another writer appending meanwhile makes one probe inconclusive


class ProbeFailed(RuntimeError):
    """The broker did not take or did not describe the probe records."""


def high_watermark_undercounts(settings: Settings, topic: str, partition: int = 0,
                               timeout_s: float = 15.0) -> bool:
    """True when the broker's high watermark stops short of a batch's last record."""
    from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

    config = settings.confluent_config()
    producer = Producer({**config, "linger.ms": 50, "acks": "all"})
    consumer = Consumer({**config, "group.id": f"{settings.app_id}-watermark-probe",
                         "enable.auto.commit": False})
    try:
        for _ in range(PROBES):
            offsets: list[int] = []
            failures: list[str] = []

            def delivered(error, message) -> None:
                if error is not None:
                    failures.append(error.str())
                else:
                    offsets.append(message.offset())

            try:
                for _record in range(2):  # one batch: produced within the linger
                    producer.produce(topic, b"", SEAL_KEY, partition=partition, on_delivery=delivered)
            except KafkaException as exc:
                raise ProbeFailed(f"writing to {topic}[{partition}]: {exc.args[0].str()}") from None
            deadline = time.monotonic() + timeout_s
            while len(offsets) + len(failures) < 2 and time.monotonic() < deadline:
                producer.flush(0.5)
            if failures or len(offsets) < 2:
                raise ProbeFailed(f"writing to {topic}[{partition}]: {failures[0] if failures else 'no answer'}")
            try:
                _, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=timeout_s)
            except KafkaException as exc:
                raise ProbeFailed(f"reading the high watermark of {topic}[{partition}]: {exc}") from None
            last = max(offsets)
            if high <= last:
                log.info("%s[%d]: high watermark %d after records at %s: the broker reports a batch's "
                         "first offset; sealing the changelog", topic, partition, high, sorted(offsets))
                return True
            if high == last + 1:
                return False
            # a later write of someone else moved the mark: try again
        return False
    finally:
        consumer.close()
        producer.flush(5)
