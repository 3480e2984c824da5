"""Drive engines offline, the way the live worker drives its engine.

The worker (stream/worker.py, stream/alarm_feed.py):

- applies every faults record to the engine's alarm registry, in topic order,
  and goes live once the registry has caught up with the topic;
- hands quality and customer records to ``Engine.process_fetch`` per fetch;
- re-produces records not keyed by their customer id (``take_forwards``) to
  ``<app_id>-unkeyed-input`` keyed by customer, and processes them there.

The replay models a worker that has been running since before the first
record: its engine goes live before any record (there is nothing to catch up
with), faults are applied with ``apply_fault`` and customer and quality records
with ``process``, one at a time in the merged order (the engine handles a batch
record by record, so batching changes nothing). A forwarded record is processed
right after the record that forwarded it, on its customer's key.

Records before ``--from`` build state (alarms, customer profiles, warm-up
quality) but what they fire is not reported.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import IO, Iterable

from ..domain.engine import Engine, Firing, InputRecord
from ..domain.rules import RuleBook
from ..outputs import cloudevents

DRAIN_EVERY = 2000  # records between two drains of the engines' outputs
REST_EVERY = 20_000  # records between two times idle customers go back to their stored form


@dataclass
class Figures:
    """What one engine did with the reported records."""

    triggers: Counter = field(default_factory=Counter)  # rule id -> events
    by_customer: dict[str, Counter] = field(default_factory=dict)  # rule id -> customer id -> events
    channel_of: dict[str, tuple[str, str]] = field(default_factory=dict)  # rule id -> (channel, trigger)
    suppressed: Counter = field(default_factory=Counter)  # (channel, trigger, reason)
    events: Counter = field(default_factory=Counter)  # (source, outcome)
    rejections: Counter = field(default_factory=Counter)  # (source, reason)
    context_triggers: int = 0  # fired by records before --from (state only, not reported)


class Run:
    """One engine with one rules file, and what it fired."""

    def __init__(self, rules: RuleBook, label: str, source: str, half_life_s: float, allowed_lateness_s: float,
                 events_out: IO[bytes] | None = None):
        self.rules = rules
        self.label = label
        self.source = source
        self.engine = Engine(rules, half_life_s, allowed_lateness_s)
        self.engine.go_live()  # nothing to catch up with: the replay starts before its first record
        self.figures = Figures()
        self.events_out = events_out
        self.reporting = False
        for rule in rules.rules:
            self.figures.channel_of[rule.id] = (rule.channel, rule.trigger)

    # ------------------------------------------------------------------ input
    def fault(self, record: InputRecord) -> None:
        reason = self.engine.apply_fault(record)
        if self.reporting:
            if reason is None:
                self.figures.events[("faults", "ok")] += 1
            else:
                self.figures.events[("faults", "invalid")] += 1
                self.figures.rejections[("faults", reason)] += 1

    def other(self, record: InputRecord) -> None:
        engine = self.engine
        engine.process((record,))
        if engine.forwards:
            for customer_id, forwarded in engine.take_forwards():
                # as the worker re-produces it: keyed by its customer, on that customer's partition
                engine.process((InputRecord(forwarded.source, forwarded.topic, forwarded.partition,
                                            forwarded.offset, customer_id.encode(), forwarded.value,
                                            forwarded.timestamp, True),))

    def rest(self) -> None:
        """Idle customers back to their stored form (about 40 % less memory), as
        the worker does after each flush; the stored form round-trips exactly."""
        self.engine.take_dirty()
        self.engine.dehydrate_idle(())

    def prune(self) -> None:
        """Forget alarms cleared long ago, as the alarm feed does after each batch
        (through ``Engine.prune_alarms`` where the engine has it)."""
        engine = self.engine
        prune = getattr(engine, "prune_alarms", None)
        if prune is not None:
            prune()
        else:
            engine.alarms.prune()

    # ----------------------------------------------------------------- output
    def drain(self) -> None:
        firings, rejections, tally = self.engine.drain()
        figures = self.figures
        if not self.reporting:
            figures.context_triggers += len(firings)
            return
        for firing in firings:
            self._count(firing)
        for rejection in rejections:
            figures.rejections[(rejection.record.source, rejection.reason)] += 1
        figures.events.update(tally.events)
        figures.suppressed.update(tally.suppressed)

    def _count(self, firing: Firing) -> None:
        rule = firing.rule
        figures = self.figures
        figures.triggers[rule.id] += 1
        figures.by_customer.setdefault(rule.id, Counter())[firing.customer_id] += 1
        figures.channel_of.setdefault(rule.id, (rule.channel, rule.trigger))
        if self.events_out is not None:
            self.events_out.write(cloudevents.encode(firing, self.source) + b"\n")

    def scores(self) -> list[float]:
        """The latest score of every customer, as its score document shows it."""
        engine = self.engine
        return [engine.score_view(engine.state(customer_id))[0] for customer_id in sorted(engine.customers)]


@dataclass
class InputCounts:
    reported: Counter = field(default_factory=Counter)  # role -> records at or after --from
    context: Counter = field(default_factory=Counter)  # role -> records before --from
    first: float | None = None  # timestamp of the first reported record
    last: float | None = None  # timestamp of the last reported record


def replay(records: Iterable[InputRecord], runs: list[Run], report_from: float | None,
           save: IO[bytes] | None = None, progress=None) -> InputCounts:
    """Feed ``records`` (already in replay order) to every run."""
    from .inputs import to_line

    counts = InputCounts()
    reporting = report_from is None
    for run in runs:
        run.reporting = reporting
    pending = 0
    seen = 0
    in_faults = False
    for record in records:
        if not reporting and record.timestamp >= report_from:
            for run in runs:
                run.drain()  # what the context fired: state only
                run.reporting = True
            reporting = True
        if save is not None:
            save.write(to_line(record))
        role = record.source
        if reporting:
            counts.reported[role] += 1
            if counts.first is None:
                counts.first = record.timestamp
            counts.last = record.timestamp
        else:
            counts.context[role] += 1
        if role == "faults":
            in_faults = True
            for run in runs:
                run.fault(record)
        else:
            if in_faults:  # the alarm feed prunes after each batch it applied
                in_faults = False
                for run in runs:
                    run.prune()
            for run in runs:
                run.other(record)
        pending += 1
        if pending >= DRAIN_EVERY:
            seen += pending
            pending = 0
            for run in runs:
                run.drain()
                if seen % REST_EVERY == 0:
                    run.rest()
            if progress is not None:
                progress(sum(counts.reported.values()) + sum(counts.context.values()))
    for run in runs:
        if in_faults:
            run.prune()
        run.drain()
    return counts
