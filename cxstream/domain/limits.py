"""The engine's bounds (contract v2, "Bounds"): how far ahead of the worker's
clock an input time may lie, how large a record may be, and how much of each
structure that grows with input the engine keeps.

Four are configuration (``CXSTREAM_*``, read by the settings and handed to the
``Engine``); the other three are fixed, documented bounds. Input beyond a bound
is dead-lettered (a record) or counted in ``Tally.limits`` (what was dropped,
expired or forgotten), never kept without limit.
"""

from __future__ import annotations

from dataclasses import dataclass

DAY = 86400.0


@dataclass(frozen=True, slots=True)
class Limits:
    #: CXSTREAM_MAX_FUTURE_S: an event, raise, change or clear time, or a
    #: customer's updated_at, more than this far ahead of the worker's clock is
    #: invalid input (so one record cannot move a customer's or the alarm
    #: registry's clock forward).
    max_future_s: float = 900.0
    #: CXSTREAM_MAX_RECORD_BYTES: a record value larger than this is invalid input.
    max_record_bytes: int = 262144
    #: CXSTREAM_ALARM_MAX_AGE_S: an alarm active without a clear for longer than
    #: this (since its raise, on the registry's event-time clock, never ahead of
    #: the wall clock) is expired: it stops impacting as if cleared, and is counted.
    alarm_max_age_s: float = 7 * DAY
    #: CXSTREAM_ERASED_RETENTION_S: how long an erased customer id is remembered
    #: (quality records for it are dropped meanwhile, ``outcome="erased"``).
    erased_retention_s: float = 30 * DAY
    #: Fixed: impacting (active, service-affecting) alarms on one network
    #: resource; a raise beyond it is invalid input naming the resource.
    max_alarms_per_resource: int = 100
    #: Fixed: alarms listed in one customer's outage episode (its ``faults``);
    #: further alarms still impact the score, are not listed, and are counted.
    max_episode_alarms: int = 100
    #: Fixed: erased customer ids remembered at once (per worker); beyond it the
    #: oldest erasure is forgotten first, and counted.
    max_erased: int = 1_000_000

    def __post_init__(self) -> None:
        for name in ("max_future_s", "alarm_max_age_s", "erased_retention_s"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"Limits.{name} must be a number of seconds of at least 0")
        for name in ("max_record_bytes", "max_alarms_per_resource", "max_episode_alarms", "max_erased"):
            if not getattr(self, name) >= 1:
                raise ValueError(f"Limits.{name} must be at least 1")


DEFAULT_LIMITS = Limits()
