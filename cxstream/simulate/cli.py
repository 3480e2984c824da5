"""``cxstream simulate``: drive a Kafka cluster with the synthetic operator.

Produces the operator's records (customer snapshot first, then quality records
and the scripted faults in event-time order) to the contract's input topics on
``CXSTREAM_BROKER``, prints progress about once a second on stderr and a
summary at the end. Ctrl-C stops production cleanly: what was already handed
to the producer is flushed and counted.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from typing import Any, Iterable, Iterator, TextIO

from cxstream.ops.settings import ConfigurationError, Settings
from cxstream.simulate.operator import SimRecord, SyntheticOperator

__all__ = ["run_simulate", "RecordTally", "CATEGORIES", "scenario_sentence", "fmt"]

#: What a produced record was, in the order summaries list them.
CATEGORIES: tuple[str, ...] = (
    "customers", "tombstones", "quality", "duplicates", "malformed quality", "faults", "malformed faults",
)
_CODE = {name: i for i, name in enumerate(CATEGORIES)}
#: Topic role of each category.
ROLE_OF: dict[str, str] = {
    "customers": "customers", "tombstones": "customers", "quality": "quality", "duplicates": "quality",
    "malformed quality": "quality", "faults": "faults", "malformed faults": "faults",
}


def _code(record: SimRecord) -> int:
    note = record.note
    if record.role == "quality":
        if note is None:
            return 2
        return 3 if note == "duplicate" else 4
    if record.role == "faults":
        return 5 if note is None else 6
    return 1 if record.value is None else 0


class RecordTally:
    """Wraps a record stream and remembers what each record handed out was
    (one byte per record), so counts by category are exact for any prefix:
    ``counts(n)`` for the first ``n`` records the producer actually sent."""

    def __init__(self, records: Iterable[SimRecord]):
        self._records = records
        self.codes = bytearray()

    def __iter__(self) -> Iterator[SimRecord]:
        append = self.codes.append
        code = _code
        for record in self._records:
            append(code(record))
            yield record

    @property
    def handed_out(self) -> int:
        return len(self.codes)

    def counts(self, n: int | None = None) -> dict[str, int]:
        codes = bytes(self.codes if n is None else self.codes[:n])
        return {name: codes.count(i) for i, name in enumerate(CATEGORIES)}


def by_role(counts: dict[str, int]) -> dict[str, int]:
    roles: dict[str, int] = {"customers": 0, "quality": 0, "faults": 0}
    for name, n in counts.items():
        roles[ROLE_OF[name]] += n
    return roles


def fmt(value: float) -> str:
    return f"{int(round(value)):,}"


def scenario_sentence(description: dict[str, Any], reached: int | None = None) -> str:
    """The scripted scenario in one paragraph; ``reached`` (records of the
    stream after the customer snapshot that were produced) marks what was
    not produced."""
    outage = description["outage"]
    planned = description["planned"]
    warning = description["warning"]
    timeline = {entry["what"]: entry for entry in description.get("timeline", ())}
    degrading = description["degrading"]
    valued = sum(1 for d in degrading if d["value_tier"] in ("gold", "platinum"))
    consenting = sum(1 for d in degrading if d["marketing_consent"])

    def at(what: str) -> str:
        entry = timeline.get(what)
        if entry is None:
            return ""
        text = f" at {entry['event_time'][11:16]}"
        if reached is not None and entry["index"] >= reached:
            text += " (not produced)"
        return text

    hours = description.get("outage_duration_s", 0.0) / 3600.0
    parts = [
        f"Scenario (seed {description['seed']}, {fmt(description['customers'])} customers on "
        f"{description['sites']} sites, event time from {description['start'][:16]}Z"
        + (f" over {description['span_s'] / 3600:.0f} h" if "span_s" in description else "") + "):",
        f"site {outage['site_id']} fails{at('outage_raise')} (alarm {outage['alarm_id']}, critical) and takes "
        f"{fmt(outage['customers'])} customers down",
    ]
    if outage.get("cell_alarm_id"):
        parts[-1] += f", with a correlated major alarm {outage['cell_alarm_id']} on {outage['cell_id']}"
        parts[-1] += f" cleared{at('cell_clear')}"
    if hours:
        parts[-1] += (f"; the site alarm clears{at('outage_clear')}, after {hours:.1f} h"
                      + (" (service credit due)" if description.get("service_credit_expected") else ""))
    parts.append(
        f"planned work on {planned['cell_id']}{at('planned_raise')} affects {fmt(planned['customers'])} "
        f"customers (announced: no notices)")
    parts.append(
        f"a warning on {warning['resource_id']}{at('warning_raise')} is not service-affecting "
        f"({fmt(warning['customers'])} customers, no notices)")
    parts.append(
        f"{len(degrading)} customers degrade from 10 % of the stream on ({valued} gold/platinum, "
        f"{consenting} with marketing consent)")
    return parts[0] + " " + "; ".join(parts[1:]) + "."


def produced_sentence(counts: dict[str, int]) -> str:
    roles = by_role(counts)
    quality_notes = [f"{fmt(counts[k])} {k.replace(' quality', '')}" for k in ("duplicates", "malformed quality")
                     if counts[k]]
    faults_notes = [f"{fmt(counts['malformed faults'])} malformed"] if counts["malformed faults"] else []
    customer_notes = [f"{fmt(counts['tombstones'])} tombstones"] if counts["tombstones"] else []

    def part(role: str, notes: list[str]) -> str:
        return f"{role} {fmt(roles[role])}" + (f" ({', '.join(notes)})" if notes else "")

    return ", ".join([part("customers", customer_notes), part("quality", quality_notes),
                      part("faults", faults_notes)])


def run_simulate(settings: Settings, args: argparse.Namespace, *, err: TextIO | None = None) -> int:
    """``cxstream simulate``: see the module docstring. Returns the exit status."""
    from cxstream.ops.topics import TopicError, ensure_topics
    from cxstream.simulate.producer import ProduceError, produce

    err = err or sys.stderr
    events = int(args.events)
    if events < 100:
        raise ConfigurationError("--events must be at least 100: the scripted scenario needs them")
    rate = getattr(args, "rate", None)
    if rate is not None and rate <= 0:
        raise ConfigurationError("--rate must be positive (or left out: as fast as possible)")
    malformed = float(getattr(args, "malformed_ratio", 0.0) or 0.0)
    if not 0.0 <= malformed <= 1.0:
        raise ConfigurationError("--malformed-ratio must be between 0 and 1")
    try:
        operator = SyntheticOperator(seed=args.seed, customers=args.customers, malformed_ratio=malformed)
    except ValueError as error:
        raise ConfigurationError(str(error)) from None

    try:
        created = ensure_topics(settings)
    except TopicError as error:
        print(f"cxstream simulate: {error}", file=err)
        return 1
    if created:
        print(f"created topics: {', '.join(created)}", file=err)

    snapshot = len(operator.customers_records())
    tally = RecordTally(operator.stream(events))
    stop = threading.Event()
    result: dict[str, Any] = {}

    done = threading.Event()

    def work() -> None:
        try:
            result["count"] = produce(settings, tally, rate=rate, stop=stop)
        except BaseException as error:  # reported by the main thread
            result["error"] = error
        finally:
            done.set()

    topics = settings.topics
    print(f"producing {fmt(snapshot)} customer records and {fmt(events)} events to "
          f"{topics.customers}, {topics.quality}, {topics.faults} on {settings.bootstrap}"
          + (f" at {rate:g} records/s" if rate else " as fast as possible") + " (Ctrl-C stops)", file=err)
    began = time.monotonic()
    thread = threading.Thread(target=work, name="cxstream-simulate-producer", daemon=True)
    interrupted = False
    thread.start()
    last_n, last_t = 0, began
    # Waiting on an Event, not Thread.join: a join interrupted by Ctrl-C can
    # return early afterwards (CPython 3.11), before the thread has finished.
    try:
        while not done.wait(1.0):
            now = time.monotonic()
            n = tally.handed_out
            speed = (n - last_n) / (now - last_t) if now > last_t else 0.0
            print(f"  {fmt(n)} records, {fmt(speed)} records/s", file=err)
            last_n, last_t = n, now
    except KeyboardInterrupt:
        interrupted = True
        stop.set()
        print("  interrupted: flushing what was sent …", file=err)
        while not done.wait(0.25):
            pass
    elapsed = time.monotonic() - began
    error = result.get("error")
    if isinstance(error, KeyboardInterrupt):
        interrupted, error = True, None
    if error is not None:
        if isinstance(error, ProduceError):
            print(f"cxstream simulate: {error}", file=err)
            return 1
        raise error
    count = int(result.get("count", 0))
    counts = tally.counts(count)
    speed = count / elapsed if elapsed > 0 else 0.0
    description = operator.describe(events)
    reached = max(0, count - snapshot)
    print(("Interrupted: produced " if interrupted else "Produced ")
          + f"{fmt(count)} records in {elapsed:.1f} s ({fmt(speed)} records/s) to {settings.bootstrap}: "
          + produced_sentence(counts) + ". "
          + scenario_sentence(description, reached if reached < events else None), file=err)
    return 0
