"""Where replayed records come from, and the order they are replayed in.

Three sources, each giving :class:`InputRecord` streams (the engine's own record
type) with Kafka-style timestamps:

- :class:`KafkaRange`: the real input topics on ``CXSTREAM_BROKER``, read with
  a plain confluent-kafka consumer (partitions assigned directly: no group is
  joined, nothing is committed, nothing is written);
- :func:`read_jsonl`: JSON-lines files, one record a line (see :func:`parse_line`);
- :func:`simulated`: the synthetic operator of ``cxstream simulate``, in memory.

The live worker sees each partition in offset order, and the alarm feed and the
customer/quality consumer side by side. A replay cannot know which of two
records on different partitions a worker saw first, so it merges the streams by
record timestamp (:func:`merge`): each stream keeps its own order, and the
record with the earliest timestamp goes next; on equal timestamps faults come
before customers, customers before quality.
"""

from __future__ import annotations

import base64
import binascii
import heapq
import time
import uuid
from collections import deque
from pathlib import Path
from typing import IO, Iterable, Iterator

import orjson

from ..domain.engine import InputRecord
from ..models.common import format_time, parse_time
from ..ops.settings import ConfigurationError, Settings

#: Input topics by role, in the order ties are broken.
ROLES: tuple[str, ...] = ("faults", "customers", "quality")


class ReplayError(ConfigurationError):
    """A user mistake or an unusable input: shown as one line, no traceback."""


# ---------------------------------------------------------------------- time
def parse_when(text: str, option: str, now: float | None = None) -> float:
    """An option's RFC 3339 time (or ``now``) -> epoch seconds."""
    if text.strip().lower() == "now":
        return time.time() if now is None else now
    try:
        return parse_time(text.strip())
    except ValueError:
        raise ReplayError(f"{option} {text!r} is not an RFC 3339 time; write e.g. 2026-11-22T08:00:00Z "
                          "(with Z or an offset)") from None


def merge(streams: Iterable[Iterator[InputRecord]]) -> Iterator[InputRecord]:
    """Merge record streams by timestamp; each stream keeps its own order, and
    on equal timestamps the earlier stream in ``streams`` goes first."""
    return heapq.merge(*streams, key=_timestamp)


def _timestamp(record: InputRecord) -> float:
    return record.timestamp


# --------------------------------------------------------------- JSON lines
def parse_line(line: bytes, where: str, previous_ts: float) -> tuple[str, bytes | None, bytes | None, float,
                                                                       int | None, int | None]:
    """One JSON-lines record: ``(role, key, value, timestamp, partition, offset)``.

    ``{"topic": "quality", "key": "C100042", "value": {...}, "timestamp": "2026-11-22T10:00:00Z"}``

    - ``topic``: ``faults``, ``quality`` or ``customers`` (required).
    - ``key``: text or null (default null). ``key_b64`` instead for bytes that are not UTF-8.
    - ``value``: the contract document as JSON; null is a tombstone (customers).
      ``value_text`` (any text, e.g. a malformed record) or ``value_b64`` (raw
      bytes) instead, for values that are not JSON.
    - ``timestamp``: RFC 3339, or epoch milliseconds as a number (the Kafka
      record timestamp); default: the previous line's.
    - ``partition``, ``offset``: optional integers (where the record was read).
    """
    try:
        doc = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise ReplayError(f"{where}: not a JSON line ({exc})") from None
    if not isinstance(doc, dict):
        raise ReplayError(f"{where}: a line must be a JSON object with topic, key, value, timestamp")
    role = doc.get("topic")
    if role not in ROLES:
        raise ReplayError(f"{where}: topic must be one of faults, quality, customers (got {role!r})")
    key = _bytes_field(doc, "key", where)
    if "value" in doc:
        raw = doc["value"]
        value = None if raw is None else orjson.dumps(raw)
    elif "value_text" in doc or "value_b64" in doc:
        value = _bytes_field(doc, "value", where)
    else:
        raise ReplayError(f"{where}: value is missing (the contract document; null for a tombstone)")
    stamp = doc.get("timestamp")
    if stamp is None:
        ts = previous_ts
    elif isinstance(stamp, str):
        try:
            ts = parse_time(stamp)
        except ValueError as exc:
            raise ReplayError(f"{where}: timestamp: {exc}") from None
    elif isinstance(stamp, (int, float)) and not isinstance(stamp, bool):
        ts = stamp / 1000.0
    else:
        raise ReplayError(f"{where}: timestamp must be RFC 3339 text or epoch milliseconds (got {stamp!r})")
    position = []
    for name in ("partition", "offset"):
        number = doc.get(name)
        if number is not None and (not isinstance(number, int) or isinstance(number, bool) or number < 0):
            raise ReplayError(f"{where}: {name} must be a non-negative integer (got {number!r})")
        position.append(number)
    return role, key, value, ts, position[0], position[1]


def _bytes_field(doc: dict, name: str, where: str) -> bytes | None:
    text = doc.get(name if name == "key" else f"{name}_text")
    if text is not None:
        if not isinstance(text, str):
            raise ReplayError(f"{where}: {name if name == 'key' else name + '_text'} must be text or null "
                              f"(got {type(text).__name__})")
        return text.encode()
    packed = doc.get(f"{name}_b64")
    if packed is not None:
        try:
            return base64.b64decode(packed, validate=True)
        except (binascii.Error, TypeError, ValueError):
            raise ReplayError(f"{where}: {name}_b64 is not base64") from None
    return None


def _put_bytes(doc: dict, name: str, raw: bytes) -> None:
    """The writing side of :func:`_bytes_field`: text where the bytes are UTF-8, base64 otherwise."""
    try:
        doc[name if name == "key" else f"{name}_text"] = raw.decode()
    except UnicodeDecodeError:
        doc[f"{name}_b64"] = base64.b64encode(raw).decode()


def read_jsonl(path: Path, settings: Settings | None = None) -> Iterator[InputRecord]:
    """The records of one JSON-lines file, in file order (``settings`` names their topics)."""
    try:
        handle = open(path, "rb")
    except OSError as exc:
        raise ReplayError(f"cannot read input file {path}: {exc.strerror}") from None
    return _lines(path, handle, settings)


def _lines(path: Path, handle: IO[bytes], settings: Settings | None) -> Iterator[InputRecord]:
    previous = 0.0
    with handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            role, key, value, ts, partition, offset = parse_line(line, f"{path} line {number}", previous)
            previous = ts
            topic = getattr(settings.topics, role) if settings is not None else role
            yield InputRecord(role, topic, partition or 0, number - 1 if offset is None else offset,
                              key, value, ts)


def check_readable(paths: list[Path]) -> None:
    """Fail early, with one line, on an input file that cannot be opened."""
    for path in paths:
        try:
            with open(path, "rb"):
                pass
        except OSError as exc:
            raise ReplayError(f"cannot read input file {path}: {exc.strerror}") from None


def to_line(record: InputRecord) -> bytes:
    """A record as one JSON line that :func:`parse_line` reads back to the same bytes."""
    doc: dict = {"topic": record.source}
    if record.key is None:
        doc["key"] = None
    else:
        _put_bytes(doc, "key", record.key)
    value = record.value
    if value is None:
        doc["value"] = None
    else:
        try:
            parsed = orjson.loads(value)
            same = orjson.dumps(parsed) == value
        except orjson.JSONDecodeError:
            same = False
        if same:
            doc["value"] = parsed
        else:
            _put_bytes(doc, "value", value)
    doc["timestamp"] = format_time(record.timestamp)
    doc["partition"] = record.partition
    doc["offset"] = record.offset
    return orjson.dumps(doc) + b"\n"


# ---------------------------------------------------------------- simulated
def simulated(seed: int, customers: int, events: int, settings: Settings | None = None) -> Iterator[InputRecord]:
    """The synthetic operator's records (customer snapshot, then the scripted
    scenario), timestamped with their event time to the millisecond as
    ``cxstream simulate`` would with event timestamps."""
    from ..simulate.operator import SyntheticOperator

    try:
        operator = SyntheticOperator(seed=seed, customers=customers)
        stream = operator.stream(events)
        first = next(stream, None)
    except ValueError as exc:
        raise ReplayError(f"--simulate: {exc}") from None
    return _simulated(first, stream, settings)


def _simulated(first, stream, settings: Settings | None) -> Iterator[InputRecord]:
    if first is None:
        return
    offsets = dict.fromkeys(ROLES, 0)
    for record in _chain(first, stream):
        role = record.role
        topic = getattr(settings.topics, role) if settings is not None else role
        yield InputRecord(role, topic, 0, offsets[role], record.key, record.value,
                          round(record.event_time * 1000) / 1000.0)
        offsets[role] += 1


def _chain(first, rest):
    yield first
    yield from rest


# -------------------------------------------------------------------- Kafka
class KafkaRange:
    """The input topics on ``CXSTREAM_BROKER`` between two record timestamps.

    - faults and customers are read from the beginning of their topics (the
      alarm registry and the customer base before the range, as a worker that
      had been running would have them);
    - quality records from ``quality_from`` (``--from`` minus ``--warmup``),
      found with ``offsets_for_times`` and then filtered by timestamp (brokers
      without a timestamp index, such as the embedded Tansu, answer offset 0);
    - every partition ends at its first record at or after ``to``, or at its
      end: when the consumer reported the end of the partition and nothing more
      arrived for :attr:`IDLE_S` (some brokers report the end before the last
      batch is delivered).

    Nothing is committed and no consumer group is joined.
    """

    IDLE_S = 0.6
    CONNECT_S = 15.0
    STALL_S = 30.0
    HIGH, LOW = 20_000, 5_000  # records buffered per partition before it is paused / resumed

    def __init__(self, settings: Settings, quality_from: float | None, to: float | None):
        from confluent_kafka import Consumer, KafkaError, KafkaException

        self.settings = settings
        self.quality_from = quality_from
        self.to = to
        self.read = 0
        config = {
            **settings.confluent_config(),
            "group.id": f"{settings.app_id}-replay-{uuid.uuid4().hex[:12]}",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "enable.partition.eof": True,
            "auto.offset.reset": "earliest",
            "fetch.wait.max.ms": 100,
            "log_level": 0,  # the client's own log lines: problems come through error_cb and as one line
        }
        down: list[str] = []

        def on_error(error) -> None:
            if error.code() == KafkaError._ALL_BROKERS_DOWN:
                down.append(error.str())

        config["error_cb"] = on_error
        self._consumer = Consumer(config)
        metadata = None
        deadline = time.monotonic() + self.CONNECT_S
        while metadata is None:
            try:
                metadata = self._consumer.list_topics(timeout=1.0)
            except KafkaException as exc:
                self._consumer.poll(0.1)  # serves error_cb: a refused connection fails fast
                if down or time.monotonic() >= deadline:
                    self.close()
                    why = down[0] if down else str(exc)
                    raise ReplayError(f"cannot reach Kafka at {settings.bootstrap} (CXSTREAM_BROKER): {why}") from None
        self._role: dict[str, str] = {}
        self._keys: list[tuple[str, int]] = []
        for role in ROLES:
            topic = getattr(settings.topics, role)
            entry = metadata.topics.get(topic)
            if entry is None or entry.error is not None or not entry.partitions:
                self.close()
                raise ReplayError(f"topic {topic!r} ({role}, CXSTREAM_TOPIC_{role.upper()}) does not exist "
                                  f"on {settings.bootstrap}")
            self._role[topic] = role
            self._keys += [(topic, p) for p in sorted(entry.partitions)]
        self._buffers: dict[tuple[str, int], deque] = {k: deque() for k in self._keys}
        self._done: dict[tuple[str, int], bool] = dict.fromkeys(self._keys, False)
        self._eof_at: dict[tuple[str, int], float | None] = dict.fromkeys(self._keys, None)
        self._last_ts: dict[tuple[str, int], int] = dict.fromkeys(self._keys, 0)
        self._paused: set[tuple[str, int]] = set()
        self._assign()

    def _tp(self, key: tuple[str, int], offset: int | None = None):
        from confluent_kafka import TopicPartition

        return TopicPartition(key[0], key[1]) if offset is None else TopicPartition(key[0], key[1], offset)

    def _assign(self) -> None:
        from confluent_kafka import OFFSET_BEGINNING, KafkaException

        start: dict[tuple[str, int], int] = {k: OFFSET_BEGINNING for k in self._keys}
        quality = [k for k in self._keys if self._role[k[0]] == "quality"]
        if self.quality_from is not None and quality:
            ms = int(self.quality_from * 1000)
            try:
                found = self._consumer.offsets_for_times([self._tp(k, ms) for k in quality], timeout=15)
            except KafkaException:
                found = []  # no timestamp index: read from the beginning and filter
            for tp in found:
                if tp.error is not None:
                    continue
                if tp.offset < 0:  # no record at or after the start
                    self._done[(tp.topic, tp.partition)] = True
                else:
                    start[(tp.topic, tp.partition)] = tp.offset
        self._consumer.assign([self._tp(k, start[k]) for k in self._keys if not self._done[k]])

    def streams(self) -> list[Iterator[InputRecord]]:
        """One stream per partition: faults, then customers, then quality."""
        return [self._stream(k) for k in self._keys]

    def _stream(self, key: tuple[str, int]) -> Iterator[InputRecord]:
        buffer = self._buffers[key]
        while True:
            if not buffer:
                if self._done[key]:
                    return
                self._fill(key)
                continue
            record = buffer.popleft()
            if key in self._paused and len(buffer) < self.LOW:
                self._consumer.resume([self._tp(key)])
                self._paused.discard(key)
            yield record

    def _fill(self, key: tuple[str, int]) -> None:
        """Consume until ``key`` has a record buffered or is finished."""
        from confluent_kafka import KafkaError

        buffer = self._buffers[key]
        progress = time.monotonic()  # when anything (a record, an end) last arrived
        while not buffer and not self._done[key]:
            now = time.monotonic()
            eof_at = self._eof_at[key]
            if eof_at is not None and now - eof_at >= self.IDLE_S:
                self._finish(key)
                return
            if now - progress > self.STALL_S:
                raise ReplayError(f"no records and no end of partition from {key[0]} partition {key[1]} on "
                                  f"{self.settings.bootstrap} for {self.STALL_S:.0f} s")
            for message in self._consumer.consume(1000, timeout=0.1):
                progress = time.monotonic()
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        k = (message.topic(), message.partition())
                        if k in self._eof_at and self._eof_at[k] is None:
                            self._eof_at[k] = progress
                        continue
                    if error.retriable() or error.code() in (KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN):
                        continue
                    raise ReplayError(f"reading {message.topic()}: {error.str()}")
                self._take(message)

    def _take(self, message) -> None:
        from confluent_kafka import TIMESTAMP_NOT_AVAILABLE

        k = (message.topic(), message.partition())
        if self._done.get(k, True):
            return
        self._eof_at[k] = None
        kind, ms = message.timestamp()
        if kind == TIMESTAMP_NOT_AVAILABLE or ms < 0:
            ms = self._last_ts[k]
        self._last_ts[k] = ms
        ts = ms / 1000.0
        if self.to is not None and ts >= self.to:
            self._finish(k)
            return
        role = self._role[k[0]]
        if role == "quality" and self.quality_from is not None and ts < self.quality_from:
            return
        buffer = self._buffers[k]
        buffer.append(InputRecord(role, k[0], k[1], message.offset(), message.key(), message.value(), ts))
        self.read += 1
        if len(buffer) >= self.HIGH and k not in self._paused:
            self._consumer.pause([self._tp(k)])
            self._paused.add(k)

    def _finish(self, key: tuple[str, int]) -> None:
        if not self._done[key]:
            self._done[key] = True
            self._consumer.pause([self._tp(key)])
            self._paused.discard(key)

    def close(self) -> None:
        consumer, self._consumer = getattr(self, "_consumer", None), None
        if consumer is not None:
            consumer.close()
