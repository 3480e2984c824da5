"""Helpers for the end-to-end tests: contract-shaped records, a producer, a running worker."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import orjson
from confluent_kafka import Producer

from cxstream.ops.settings import Settings
from cxstream.ops.topics import ensure_topics
from cxstream.ops.worker_process import WorkerProcess


@contextmanager
def running_worker(settings: Settings, log_path: Path, log_lines: int = 40) -> Iterator[WorkerProcess]:
    """A ``cxstream worker`` on the test's topics, ready; stopped after, and it must exit cleanly."""
    ensure_topics(settings)
    process = WorkerProcess(settings, log_path).start()
    try:
        process.wait_ready()
        yield process
    finally:
        code = process.stop()
        print(process.log_tail(log_lines))
        assert code in (0, None), f"worker exited with {code}"


class Feed:
    """Produces contract documents to a test's topics (murmur2, like faust)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.producer = Producer({**settings.confluent_config(), "partitioner": "murmur2_random",
                                  "linger.ms": 2})
        self._quality_seq = 0

    def send(self, topic: str, key: str | bytes | None, value) -> None:
        if isinstance(key, str):
            key = key.encode()
        if value is not None and not isinstance(value, bytes):
            value = orjson.dumps(value)
        self.producer.produce(topic, value, key)

    def flush(self) -> None:
        assert self.producer.flush(30) == 0, "test records not delivered"

    def customer(self, customer_id: str, resources: list[str], tier: str = "gold", consent: bool = True,
                 segment: str = "consumer", at: str = "2026-11-22T08:00:00Z") -> None:
        self.send(self.settings.topics.customers, customer_id, {
            "customer_id": customer_id, "segment": segment, "value_tier": tier,
            "marketing_consent": consent, "resources": resources, "updated_at": at})

    def tombstone(self, customer_id: str) -> None:
        self.send(self.settings.topics.customers, customer_id, None)

    def quality(self, customer_id: str, at: str, service: str = "voice", event_id: str | None = None,
                **metrics) -> str:
        self._quality_seq += 1
        event_id = event_id or f"q-{customer_id}-{self._quality_seq}"
        self.send(self.settings.topics.quality, customer_id, {
            "event_id": event_id, "customer_id": customer_id, "event_time": at, "service": service,
            "metrics": metrics or {"mos": 4.3}})
        return event_id

    def alarm_raise(self, alarm_id: str, resource: str, at: str, severity: str = "critical",
                    planned: bool = False) -> None:
        alarm = {"id": alarm_id, "alarmedObject": {"id": resource, "@referredType": "Cell"},
                 "perceivedSeverity": severity, "alarmRaisedTime": at, "state": "raised",
                 "alarmType": "communicationsAlarm", "probableCause": "lossOfSignal"}
        if planned:
            alarm["plannedOutageIndicator"] = "OutOfService"
        self.send(self.settings.topics.faults, alarm_id, notification("AlarmCreateEvent", at, alarm))

    def alarm_clear(self, alarm_id: str, at: str) -> None:
        self.send(self.settings.topics.faults, alarm_id, notification(
            "AlarmStateChangeEvent", at, {"id": alarm_id, "state": "cleared", "alarmClearedTime": at}))


def notification(event_type: str, at: str, alarm: dict) -> dict:
    return {"eventId": f"ev-{alarm['id']}-{event_type}-{at}", "eventTime": at, "eventType": event_type,
            "event": {"alarm": alarm}}


def values(messages: list[dict]) -> list[dict]:
    return [orjson.loads(m["value"]) for m in messages if m["value"] is not None]


def triggers_of(messages: list[dict], trigger: str) -> list[dict]:
    return [e for e in values(messages) if e["data"]["trigger"] == trigger]
