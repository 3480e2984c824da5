"""The alarm registry: which network resources are in fault right now.

Every worker keeps the whole registry (alarms are few next to quality records),
fed from all partitions of the faults topic in order. Notifications are merged
by alarm id: a create carries the full alarm, later partial notifications carry
what changed. Cleared alarms are kept for a while so that late partial
notifications still find them and a clear's duration is known.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..models.alarm import AlarmChange, AlarmNotification
from ..models.rejection import InvalidRecord

# Cleared alarms are forgotten this long (event time) after their clear.
CLEARED_RETENTION_S = 24 * 3600.0


@dataclass(slots=True)
class Alarm:
    alarm_id: str
    resource_id: str
    severity: str
    raised_at: float
    changed_at: float
    cleared_at: float | None = None
    service_affecting: bool = True
    planned: bool = False
    resource_type: str | None = None
    alarm_type: str | None = None
    probable_cause: str | None = None
    specific_problem: str | None = None
    related: tuple[str, ...] = ()

    @property
    def active(self) -> bool:
        return self.cleared_at is None

    @property
    def impacting(self) -> bool:
        """Active and service-affecting: it impacts the customers on its resource."""
        return self.cleared_at is None and self.service_affecting


def _ts(value) -> float | None:
    return value.timestamp() if value is not None else None


def _change_time(change: AlarmChange, fallback: float) -> float:
    """The event time of a change: its own times first, then the envelope's."""
    # (a clear without a time of its own happened now, not when the alarm was raised)
    for candidate in (change.cleared_time if change.clears else None, change.changed_time,
                      change.event_time, None if change.clears else change.raised_time):
        if candidate is not None:
            return candidate.timestamp()
    return fallback


@dataclass(slots=True)
class AlarmRegistry:
    alarms: dict[str, Alarm] = field(default_factory=dict)
    # resource id -> ids of its impacting alarms
    impacting_by_resource: dict[str, set[str]] = field(default_factory=dict)
    latest_time: float = 0.0

    def impacting_on(self, resource_id: str) -> set[str]:
        return self.impacting_by_resource.get(resource_id, _EMPTY)

    def get(self, alarm_id: str) -> Alarm | None:
        return self.alarms.get(alarm_id)

    @property
    def active_count(self) -> int:
        return sum(1 for a in self.alarms.values() if a.active)

    def check(self, notification: AlarmNotification) -> str | None:
        """Why this notification cannot be applied, or None."""
        for change in notification.changes:
            if change.alarm_id not in self.alarms and not change.full and change.resource_id is None:
                if change.clears:
                    continue  # clearing an alarm never seen: nothing to do, not an error
                return (f"alarm {change.alarm_id!r} was never seen raised and this {change.event_type} "
                        "does not carry alarmedObject.id, so the resource in fault is unknown")
        return None

    def apply(self, notification: AlarmNotification, fallback_time: float) -> list[tuple[Alarm, set[str], float]]:
        """Merge one notification. Returns, per alarm it changed, the alarm, the
        resources whose impact may have changed, and the change's event time.

        Raises InvalidRecord for a partial notification that cannot be placed.
        Nothing is changed when it raises.
        """
        reason = self.check(notification)
        if reason is not None:
            raise InvalidRecord(reason)
        results = []
        for change in notification.changes:
            result = self._apply_change(change, fallback_time)
            if result is not None:
                results.append(result)
        return results

    def _apply_change(self, change: AlarmChange, fallback: float) -> tuple[Alarm, set[str], float] | None:
        when = _change_time(change, fallback)
        if when > self.latest_time:
            self.latest_time = when
        alarm = self.alarms.get(change.alarm_id)
        touched: set[str] = set()
        if alarm is None:
            if change.resource_id is None:
                return None  # a clear for an unknown alarm
            raised = _ts(change.raised_time) or when
            alarm = Alarm(
                alarm_id=change.alarm_id,
                resource_id=change.resource_id,
                severity=(change.severity.value if change.severity else "indeterminate"),
                raised_at=raised,
                changed_at=when,
            )
            self.alarms[alarm.alarm_id] = alarm
        else:
            self._unindex(alarm)
            touched.add(alarm.resource_id)
            if change.full and alarm.cleared_at is not None and not change.clears:
                # raised again after a clear: a new fault on the same id
                alarm.cleared_at = None
                alarm.raised_at = _ts(change.raised_time) or when
            if change.resource_id is not None:
                alarm.resource_id = change.resource_id
            alarm.changed_at = max(alarm.changed_at, when)
        if change.severity is not None and change.severity.value != "cleared":
            alarm.severity = change.severity.value
        if change.service_affecting is not None:
            alarm.service_affecting = change.service_affecting
        if change.planned is not None:
            alarm.planned = change.planned
        if change.state == "raised" and alarm.cleared_at is not None and not change.clears:
            # raised again after a clear: a new fault on the same id, raised now
            # (not at the first raise, which a partial may still carry)
            raised = _ts(change.raised_time)
            alarm.raised_at = raised if raised is not None and raised >= alarm.cleared_at else when
            alarm.cleared_at = None
        for name in ("resource_type", "alarm_type", "probable_cause", "specific_problem"):
            value = getattr(change, name)
            if value is not None:
                setattr(alarm, name, value)
        if change.related_alarm_ids:
            alarm.related = tuple(dict.fromkeys(alarm.related + tuple(change.related_alarm_ids)))
        if change.clears and alarm.cleared_at is None:
            alarm.cleared_at = _ts(change.cleared_time) or when
        self._index(alarm)
        touched.add(alarm.resource_id)
        return alarm, touched, when

    def _index(self, alarm: Alarm) -> None:
        if alarm.impacting:
            self.impacting_by_resource.setdefault(alarm.resource_id, set()).add(alarm.alarm_id)

    def _unindex(self, alarm: Alarm) -> None:
        ids = self.impacting_by_resource.get(alarm.resource_id)
        if ids is not None:
            ids.discard(alarm.alarm_id)
            if not ids:
                del self.impacting_by_resource[alarm.resource_id]

    def prune(self, now: float | None = None) -> int:
        """Forget alarms cleared more than the retention ago (event time)."""
        horizon = (self.latest_time if now is None else now) - CLEARED_RETENTION_S
        stale = [a for a, alarm in self.alarms.items()
                 if alarm.cleared_at is not None and alarm.cleared_at < horizon]
        for alarm_id in stale:
            del self.alarms[alarm_id]
        return len(stale)


_EMPTY: frozenset = frozenset()
