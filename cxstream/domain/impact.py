"""Fault impact: which customers each fault hurts, counted so that the
partial views of several workers add up.

A worker holds only the customers of its partitions, so it can count only
those. It keeps a ledger of them per fault (``ImpactLedger``) and hands out
one *partial* per (fault, partition): counts by value tier and segment and
the sum of scores. The stream layer shares the partials through an internal
compacted topic that every worker reads; any worker can then answer for every
fault by adding up the partials of all partitions (``combine``), and the
worker that owns a fault's home partition writes the combined document to
``cx.fault_impact``.

A partition's partial is written only by the worker that owns it, so the sum
counts every impacted customer once, whatever the number of workers.

When a fault clears, its members are kept as they were at the clear: the
final totals. They go when the registry forgets the alarm (24 h later).
"""

from __future__ import annotations

from collections import Counter
from typing import Iterable

from ..models.common import format_time
from .alarms import Alarm
from .customer import CustomerState

TIERS = ("platinum", "gold", "silver", "bronze")
UNKNOWN_SEGMENT = "unknown"


class ImpactLedger:
    """This worker's impacted customers, per fault and partition.

    ``members[alarm_id][partition][customer_id] = [value_tier, segment, score]``
    """

    def __init__(self) -> None:
        self.members: dict[str, dict[int, dict[str, list]]] = {}
        self.raised: dict[str, float] = {}  # alarm id -> raise time of the fault the members belong to
        self.changed: set[tuple[str, int]] = set()  # partials to publish again

    # --- kept in step with the engine -----------------------------------
    def sync(self, state: CustomerState, alarms: dict[str, Alarm], left: Iterable[str] = ()) -> None:
        """The customer is impacted by ``state.impacts``; it stopped being
        impacted by ``left`` (a cleared fault keeps it as a final member)."""
        customer_id, partition = state.customer_id, state.partition
        entry = [state.value_tier, state.segment, state.score]
        for alarm_id in state.impacts:
            alarm = alarms.get(alarm_id)
            raised = alarm.raised_at if alarm is not None else 0.0
            if self.raised.get(alarm_id, raised) != raised:
                self._drop_alarm(alarm_id)  # the same id raised again: a new fault
            self.raised[alarm_id] = raised
            members = self.members.setdefault(alarm_id, {}).setdefault(partition, {})
            if members.get(customer_id) != entry:
                members[customer_id] = list(entry)
                self.changed.add((alarm_id, partition))
        for alarm_id in left:
            alarm = alarms.get(alarm_id)
            if alarm is not None and alarm.cleared_at is not None:
                continue  # cleared: stays as a final member
            self._remove(alarm_id, partition, customer_id)

    def rescored(self, state: CustomerState) -> None:
        """An impacted customer's score changed."""
        partition, customer_id, score = state.partition, state.customer_id, state.score
        for alarm_id in state.impacts:
            entry = self.members.get(alarm_id, {}).get(partition, {}).get(customer_id)
            if entry is not None and entry[2] != score:
                entry[2] = score
                self.changed.add((alarm_id, partition))

    def forget(self, customer_id: str, partition: int) -> None:
        """The customer was erased (tombstone)."""
        for alarm_id in list(self.members):
            self._remove(alarm_id, partition, customer_id)

    def release(self, partitions: set[int]) -> None:
        """Partitions moved to another worker: their partials are its to write."""
        for alarm_id, by_partition in list(self.members.items()):
            for partition in partitions & set(by_partition):
                del by_partition[partition]
                self.changed.discard((alarm_id, partition))
            if not by_partition:
                self._drop_alarm(alarm_id)

    def prune(self, known: dict[str, Alarm]) -> None:
        """Drop faults the registry forgot (their partials are then erased)."""
        for alarm_id in [a for a in self.members if a not in known]:
            self._drop_alarm(alarm_id)

    def _remove(self, alarm_id: str, partition: int, customer_id: str) -> None:
        members = self.members.get(alarm_id, {}).get(partition)
        if members is not None and members.pop(customer_id, None) is not None:
            self.changed.add((alarm_id, partition))

    def _drop_alarm(self, alarm_id: str) -> None:
        for partition in self.members.pop(alarm_id, {}):
            self.changed.add((alarm_id, partition))  # published as empty
        self.raised.pop(alarm_id, None)

    # --- read ------------------------------------------------------------
    def partial(self, alarm_id: str, partition: int) -> dict:
        """The counts of one partition's customers impacted by one fault."""
        members = self.members.get(alarm_id, {}).get(partition, {})
        tiers: Counter = Counter()
        segments: Counter = Counter()
        score_sum = 0.0
        for tier, segment, score in members.values():
            tiers[tier] += 1
            segments[segment or UNKNOWN_SEGMENT] += 1
            score_sum += score
        return {"alarm_id": alarm_id, "partition": partition, "raised_at": self.raised.get(alarm_id),
                "total": len(members), "by_tier": dict(tiers), "by_segment": dict(segments),
                "score_sum": round(score_sum, 3)}

    def take_changed(self) -> list[tuple[str, int, dict | None]]:
        """(alarm id, partition, partial) changed since the last call, in a
        stable order; the partial is None where no customer is impacted any more."""
        changed, self.changed = sorted(self.changed), set()
        return [(alarm_id, partition,
                 self.partial(alarm_id, partition) if self.members.get(alarm_id, {}).get(partition) else None)
                for alarm_id, partition in changed]

    def customers(self, alarm_id: str) -> list[tuple[int, str]]:
        """(partition, customer id) of this worker's customers impacted by the fault, sorted."""
        return sorted((partition, customer_id)
                      for partition, members in self.members.get(alarm_id, {}).items()
                      for customer_id in members)

    def customers_on(self, alarm_id: str, partition: int) -> list[str]:
        """The ids of one partition's customers impacted by the fault, sorted."""
        return sorted(self.members.get(alarm_id, {}).get(partition, ()))


def combine(alarm: Alarm, partials: Iterable[dict]) -> dict:
    """The fault-impact document of one fault from the partials of every partition."""
    tiers: Counter = Counter({tier: 0 for tier in TIERS})
    segments: Counter = Counter()
    total = 0
    score_sum = 0.0
    for partial in partials:
        if partial.get("raised_at") not in (None, alarm.raised_at):
            continue  # an earlier fault under the same id
        total += partial["total"]
        tiers.update(partial["by_tier"])
        segments.update(partial["by_segment"])
        score_sum += partial["score_sum"]
    cleared = alarm.cleared_at
    return {
        "alarm_id": alarm.alarm_id,
        "resource_id": alarm.resource_id,
        "resource_type": alarm.resource_type,
        "severity": alarm.severity,
        "raised_at": format_time(alarm.raised_at),
        "cleared_at": None if cleared is None else format_time(cleared),
        "active": cleared is None,
        "planned": alarm.planned,
        "service_affecting": alarm.service_affecting,
        "duration_s": None if cleared is None else round(cleared - alarm.raised_at, 3),
        "impacted": {"total": total, "by_tier": dict(tiers),
                     "by_segment": dict(sorted(segments.items()))},
        "mean_score": round(score_sum / total, 1) if total else None,
        # event time of the alarm's last change: the same input gives the same document
        "updated_at": format_time(max(alarm.changed_at, cleared or 0.0)),
    }


def impact_order(document: dict) -> tuple:
    """Sort key: most valuable customers hurt first, then most customers, then oldest."""
    tiers = document["impacted"]["by_tier"]
    return (not document["active"], -tiers.get("platinum", 0), -tiers.get("gold", 0),
            -document["impacted"]["total"], document["raised_at"], document["alarm_id"])
