"""The alarm registry: which network resources are in fault right now.

Every worker keeps the whole registry (alarms are few next to quality records),
fed from all partitions of the faults topic in order. Notifications are merged
by alarm id: a create carries the full alarm, later partial notifications carry
what changed. Cleared alarms are kept for a while so that late partial
notifications still find them and a clear's duration is known.

Bounds (contract v2, see ``limits.py``): a notification with a time more than
``max_future_s`` ahead of the worker's clock is invalid; at most
``max_alarms_per_resource`` impacting alarms per resource (a raise beyond it is
invalid input); an alarm active without a clear for longer than
``alarm_max_age_s`` since its raise is *expired*: cleared at raise +
``alarm_max_age_s``, marked ``expired``, counted in ``expired_total``. Ages and
the prune horizon are judged on the registry's event-time clock
(``latest_time``), never ahead of the wall clock (``clock``), so one bad
record cannot make the registry expire or forget alarms early.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from ..models.alarm import AlarmChange, AlarmNotification
from ..models.rejection import InvalidRecord
from .limits import DEFAULT_LIMITS, Limits

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
    # cleared by cxstream, not by the fault manager: active longer than alarm_max_age_s
    expired: bool = False

    @property
    def active(self) -> bool:
        return self.cleared_at is None

    @property
    def impacting(self) -> bool:
        """Active and service-affecting: it impacts the customers on its resource."""
        return self.cleared_at is None and self.service_affecting


def _ts(value) -> float | None:
    return value.timestamp() if value is not None else None


def future_reason(label: str, moment, horizon: float, limits: Limits) -> str | None:
    """Why ``moment`` (an aware datetime) cannot be used: more than
    ``limits.max_future_s`` ahead of the worker's clock (``horizon`` is that
    clock plus the bound), or not a time at all. None when it is fine."""
    try:
        when = moment.timestamp()
    except (OverflowError, ValueError, OSError):
        return f"{label} {_show_time(moment)} is outside the years 1970 to 9999"
    if when > horizon:
        return (f"{label} {_show_time(moment)} is in the future (more than {limits.max_future_s:g} s "
                "ahead of this worker's clock)")
    return None


def _show_time(moment) -> str:
    text = moment.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


_TIME_FIELDS = (("raised_time", "alarmRaisedTime"), ("changed_time", "alarmChangedTime"),
                ("cleared_time", "alarmClearedTime"), ("event_time", "eventTime"))


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
    limits: Limits = DEFAULT_LIMITS
    clock: Callable[[], float] = time.time  # the worker's wall clock
    expired_total: int = 0  # alarms expired so far (cxstream_alarms_expired_total)

    def now(self) -> float:
        """The registry's event-time clock, never ahead of the wall clock."""
        return min(self.latest_time, self.clock())

    def impacting_on(self, resource_id: str) -> set[str]:
        return self.impacting_by_resource.get(resource_id, _EMPTY)

    def get(self, alarm_id: str) -> Alarm | None:
        return self.alarms.get(alarm_id)

    @property
    def active_count(self) -> int:
        return sum(1 for a in self.alarms.values() if a.active)

    def check(self, notification: AlarmNotification, horizon: float | None = None) -> str | None:
        """Why this notification cannot be applied, or None. ``horizon``: the
        latest usable time (default: the wall clock plus ``max_future_s``)."""
        if horizon is None:
            horizon = self.clock() + self.limits.max_future_s
        for change in notification.changes:
            for name, label in _TIME_FIELDS:
                moment = getattr(change, name)
                if moment is not None:
                    reason = future_reason(label, moment, horizon, self.limits)
                    if reason is not None:
                        return f"alarm {change.alarm_id!r}: {reason}"
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

        Raises InvalidRecord for a partial notification that cannot be placed,
        for a time too far in the future, and for a raise beyond
        ``max_alarms_per_resource`` on its resource. Nothing is changed when it raises.
        """
        horizon = self.clock() + self.limits.max_future_s
        reason = self.check(notification, horizon)
        if reason is not None:
            raise InvalidRecord(reason)
        fallback_time = min(fallback_time, horizon)  # a broker timestamp is no better than a record's own
        latest, expired = self.latest_time, self.expired_total
        saved: dict[str, tuple | None] = {}
        results = []
        for change in notification.changes:
            if change.alarm_id not in saved:
                old = self.alarms.get(change.alarm_id)
                saved[change.alarm_id] = None if old is None else _fields(old)
            result = self._apply_change(change, fallback_time)
            if result is None:
                continue
            alarm = result[0]
            if alarm.active and alarm.raised_at < self.now() - self.limits.alarm_max_age_s:
                self._expire(alarm)  # raised longer ago than an alarm may stay active
            elif alarm.impacting and len(self.impacting_on(alarm.resource_id)) > self.limits.max_alarms_per_resource:
                reason = (f"alarmedObject.id {alarm.resource_id!r} already has {self.limits.max_alarms_per_resource} "
                          f"active service-affecting alarms, the most cxstream keeps for one resource: alarm "
                          f"{alarm.alarm_id!r} is not applied (clear some of them first)")
                self._undo(saved)
                self.latest_time, self.expired_total = latest, expired
                raise InvalidRecord(reason)
            results.append(result)
        return results

    def _undo(self, saved: dict[str, tuple | None]) -> None:
        for alarm_id, fields in saved.items():
            alarm = self.alarms.get(alarm_id)
            if alarm is not None:
                self._unindex(alarm)
            if fields is None:
                self.alarms.pop(alarm_id, None)
            else:
                for name, value in zip(Alarm.__slots__, fields):
                    setattr(alarm, name, value)
                self._index(alarm)

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
            if change.full and alarm.cleared_at is not None and not change.clears \
                    and _raised_anew(alarm, _ts(change.raised_time) or when):
                # raised again after a clear: a new fault on the same id
                alarm.cleared_at = None
                alarm.expired = False
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
        if change.state == "raised" and alarm.cleared_at is not None and not change.clears \
                and _raised_anew(alarm, _ts(change.raised_time)):
            # raised again after a clear: a new fault on the same id, raised now
            # (not at the first raise, which a partial may still carry)
            raised = _ts(change.raised_time)
            if alarm.expired:  # (only with a later raise time of its own: _raised_anew)
                alarm.raised_at = raised
            else:
                alarm.raised_at = raised if raised is not None and raised >= alarm.cleared_at else when
            alarm.cleared_at = None
            alarm.expired = False
        for name in ("resource_type", "alarm_type", "probable_cause", "specific_problem"):
            value = getattr(change, name)
            if value is not None:
                setattr(alarm, name, value)
        if change.related_alarm_ids:
            alarm.related = tuple(dict.fromkeys(alarm.related + tuple(change.related_alarm_ids)))
        if change.clears:
            cleared = _ts(change.cleared_time) or when
            if alarm.cleared_at is None:
                alarm.cleared_at = cleared
            elif alarm.expired and cleared < alarm.cleared_at:
                # expired by a registry clock ahead of this alarm's partition (reading
                # the faults topic from the beginning): its own clear came before
                alarm.cleared_at = cleared
                alarm.expired = False
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

    def _expire(self, alarm: Alarm) -> None:
        self._unindex(alarm)
        alarm.cleared_at = alarm.raised_at + self.limits.alarm_max_age_s
        alarm.expired = True
        self.expired_total += 1

    def expire(self) -> list[Alarm]:
        """Expire the alarms active without a clear for longer than
        ``alarm_max_age_s`` (judged on :meth:`now`): each is cleared at its raise
        plus that age, marked ``expired`` and counted. Returns them."""
        horizon = self.now() - self.limits.alarm_max_age_s
        stale = [alarm for alarm in self.alarms.values() if alarm.cleared_at is None and alarm.raised_at < horizon]
        for alarm in stale:
            self._expire(alarm)
        return stale

    def prune(self, now: float | None = None) -> int:
        """Forget alarms cleared more than the retention ago (event time; by
        default the latest time seen, never beyond the wall clock plus
        ``max_future_s``)."""
        if now is None:
            now = min(self.latest_time, self.clock() + self.limits.max_future_s)
        horizon = now - CLEARED_RETENTION_S
        stale = [a for a, alarm in self.alarms.items()
                 if alarm.cleared_at is not None and alarm.cleared_at < horizon]
        for alarm_id in stale:
            del self.alarms[alarm_id]
        return len(stale)


def _raised_anew(alarm: Alarm, raised: float | None) -> bool:
    """Whether a raise of a cleared alarm is a new fault. An expired alarm
    comes back only with a later alarmRaisedTime than the raise it expired
    for: a fault manager re-sending the old alarm must not raise it again."""
    return not alarm.expired or (raised is not None and raised > alarm.raised_at)


def _fields(alarm: Alarm) -> tuple:
    return tuple(getattr(alarm, name) for name in Alarm.__slots__)


_EMPTY: frozenset = frozenset()
