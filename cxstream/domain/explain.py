"""Reasons in plain words, for a care agent: "3 dropped calls on CELL-0042
since 10:05 UTC" rather than ``voice.call_dropped -18.2``.

Built from the score's reasons, the incidents counted per reason (engine.py)
and the alarms impacting the customer. Times are UTC, with the day when it is
not the day of the customer's latest event.
"""

from __future__ import annotations

import time

from .alarms import AlarmRegistry
from .customer import CustomerState

# metric -> (one, many): what a person calls one occurrence
NOUNS = {
    "call_dropped": ("dropped call", "dropped calls"),
    "call_setup_failed": ("call that failed to connect", "calls that failed to connect"),
    "mos": ("call with poor audio", "calls with poor audio"),
    "message_failed": ("failed message", "failed messages"),
    "video_stall_ratio": ("video that kept stalling", "videos that kept stalling"),
    "latency_ms": ("{service} session with high latency", "{service} sessions with high latency"),
    "jitter_ms": ("{service} session with high jitter", "{service} sessions with high jitter"),
    "packet_loss_pct": ("{service} session with packet loss", "{service} sessions with packet loss"),
    "throughput_mbps": ("slow {service} session", "slow {service} sessions"),
}


def clock_text(epoch_s: float, today_s: float) -> str:
    """``10:05 UTC``, or ``21 Nov 10:05 UTC`` when on another day than ``today_s``."""
    at, today = time.gmtime(epoch_s), time.gmtime(today_s)
    if (at.tm_year, at.tm_yday) == (today.tm_year, today.tm_yday):
        return time.strftime("%H:%M UTC", at)
    return time.strftime("%d %b %H:%M UTC", at).lstrip("0")


def explain(code: str, state: CustomerState, alarms: AlarmRegistry) -> str:
    """One reason code of this customer in plain words."""
    service, _, metric = code.partition(".")
    now = state.clock
    if service == "fault":
        resource = metric
        active = sorted((alarms.get(a) for a in state.impacts), key=lambda a: (a is None, a and a.raised_at))
        active = [a for a in active if a is not None and a.resource_id == resource]
        if active:
            alarm = active[0]
            since = state.impacts.get(alarm.alarm_id, alarm.raised_at)
            kind = "planned work" if alarm.planned else f"{alarm.severity} fault"
            return f"{kind.capitalize()} on {resource} (alarm {alarm.alarm_id}) since {clock_text(since, now)}"
        return f"Recovering from a fault on {resource}"
    nouns = NOUNS.get(metric)
    incident = (state.incidents or {}).get(code)
    if nouns is None or incident is None:
        return f"{service} {metric.replace('_', ' ')}".capitalize()
    count, since_minute, resource = incident
    noun = (nouns[0] if count == 1 else nouns[1]).format(service=service)
    where = f" on {resource}" if resource else ""
    return f"{count} {noun}{where} since {clock_text(since_minute * 60, now)}"
