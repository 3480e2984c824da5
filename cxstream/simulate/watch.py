"""Reading a worker's ``/metrics`` and showing it: the demo's live status.

:func:`parse_metrics` turns the Prometheus text into a :class:`Snapshot` of
the contract's series (see ``cxstream/ops/metrics.py`` for their meaning);
:class:`LiveView` draws a status block, redrawn in place on a terminal and as
a plain line every few seconds otherwise (logs, CI, pipes).
"""

from __future__ import annotations

import re
import sys
import time
from dataclasses import dataclass, field
from typing import TextIO

__all__ = ["Snapshot", "parse_metrics", "LiveView", "score_bands", "fmt_int", "SCORE_BANDS"]

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


@dataclass
class Snapshot:
    """The contract's metrics at one moment (counters are totals since the worker started)."""

    at: float = 0.0  # time.monotonic() when read
    events: dict[tuple[str, str], float] = field(default_factory=dict)  # (source, outcome)
    triggers: dict[tuple[str, str], float] = field(default_factory=dict)  # (channel, trigger)
    suppressed: dict[tuple[str, str, str], float] = field(default_factory=dict)  # (channel, trigger, reason)
    deadletters: dict[str, float] = field(default_factory=dict)  # source
    score_buckets: list[tuple[float, float]] = field(default_factory=list)  # (le, cumulative count)
    score_count: float = 0.0
    latency_buckets: list[tuple[float, float]] = field(default_factory=list)
    latency_count: float = 0.0
    customers: float = 0.0
    active_faults: float = 0.0
    ready: float = 0.0
    alarm_lag: float = 0.0

    @property
    def events_total(self) -> int:
        return int(sum(self.events.values()))

    def events_by_outcome(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for (_, outcome), n in self.events.items():
            out[outcome] = out.get(outcome, 0) + int(n)
        return out

    def trigger_count(self, trigger: str) -> int:
        return int(sum(n for (_, t), n in self.triggers.items() if t == trigger))

    def suppressed_by_reason(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for (_, _, reason), n in self.suppressed.items():
            out[reason] = out.get(reason, 0) + int(n)
        return out

    @property
    def deadletters_total(self) -> int:
        return int(sum(self.deadletters.values()))

    def score_histogram(self, since: "Snapshot | None" = None) -> list[tuple[float, float, int]]:
        """Non-cumulative score buckets ``(low, high, count)``, optionally only
        the documents published after ``since``."""
        return _histogram(self.score_buckets, since.score_buckets if since else None)

    def latency_quantile(self, q: float) -> float | None:
        """Upper bound of the processing-latency bucket holding quantile ``q``."""
        total = self.latency_count
        if not total or not self.latency_buckets:
            return None
        for le, cumulative in self.latency_buckets:
            if cumulative >= q * total:
                return le
        return None


def _histogram(buckets: list[tuple[float, float]], before: list[tuple[float, float]] | None
               ) -> list[tuple[float, float, int]]:
    base = dict(before or ())
    out = []
    low = 0.0
    previous = 0.0
    for le, cumulative in buckets:
        value = cumulative - base.get(le, 0.0)
        out.append((low, le, int(round(value - previous))))
        previous = value
        low = le
    return out


def parse_metrics(text: str, at: float | None = None) -> Snapshot:
    """The contract's series from Prometheus text exposition."""
    snap = Snapshot(at=time.monotonic() if at is None else at)
    for line in text.splitlines():
        if not line or line[0] == "#":
            continue
        match = _SAMPLE.match(line)
        if not match:
            continue
        name, raw_labels, raw_value = match.groups()
        try:
            value = float(raw_value)
        except ValueError:
            continue
        labels = dict(_LABEL.findall(raw_labels)) if raw_labels else {}
        if name == "cxstream_events_total":
            snap.events[(labels.get("source", ""), labels.get("outcome", ""))] = value
        elif name == "cxstream_triggers_total":
            snap.triggers[(labels.get("channel", ""), labels.get("trigger", ""))] = value
        elif name == "cxstream_triggers_suppressed_total":
            snap.suppressed[(labels.get("channel", ""), labels.get("trigger", ""),
                             labels.get("reason", ""))] = value
        elif name == "cxstream_deadletters_total":
            snap.deadletters[labels.get("source", "")] = value
        elif name == "cxstream_score_bucket":
            le = labels.get("le", "")
            if le != "+Inf":
                snap.score_buckets.append((float(le), value))
        elif name == "cxstream_score_count":
            snap.score_count = value
        elif name == "cxstream_processing_seconds_bucket":
            le = labels.get("le", "")
            snap.latency_buckets.append((float("inf") if le == "+Inf" else float(le), value))
        elif name == "cxstream_processing_seconds_count":
            snap.latency_count = value
        elif name == "cxstream_customers":
            snap.customers = value
        elif name == "cxstream_active_faults":
            snap.active_faults = value
        elif name == "cxstream_ready":
            snap.ready = value
        elif name == "cxstream_alarm_feed_lag_records":
            snap.alarm_lag = value
    snap.score_buckets.sort()
    snap.latency_buckets.sort()
    return snap


#: Coarse score bands for a one-line view.
SCORE_BANDS: tuple[tuple[float, float, str], ...] = (
    (0, 40, "<40"), (40, 60, "40-60"), (60, 80, "60-80"), (80, 95, "80-95"), (95, 100, "95-100"),
)


def score_bands(histogram: list[tuple[float, float, int]]) -> list[tuple[str, int]]:
    """Bucket counts folded into :data:`SCORE_BANDS`."""
    out = []
    for low, high, label in SCORE_BANDS:
        out.append((label, sum(n for lo, hi, n in histogram if lo >= low and hi <= high)))
    return out


def fmt_int(value: float) -> str:
    return f"{int(round(value)):,}"


def _join(items: list[tuple[str, float]], empty: str = "none") -> str:
    shown = [f"{name} {fmt_int(n)}" for name, n in items]
    return " · ".join(shown) if shown else empty


class LiveView:
    """The live status: :meth:`update` at any pace; it draws about once a second
    on a terminal (redrawing its block in place) and a single line every
    ``line_every_s`` seconds otherwise."""

    def __init__(self, out: TextIO | None = None, *, tty: bool | None = None,
                 line_every_s: float = 5.0, refresh_s: float = 1.0) -> None:
        self.out = out or sys.stdout
        self.tty = self.out.isatty() if tty is None else tty
        self.line_every_s = line_every_s
        self.refresh_s = refresh_s
        self._drawn = 0  # lines of the block on screen
        self._last_draw = 0.0

    def due(self, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        every = self.refresh_s if self.tty else self.line_every_s
        return now - self._last_draw >= every

    def show(self, block: list[str], line: str, now: float | None = None) -> None:
        """Draw ``block`` (terminal) or print ``line`` (otherwise)."""
        self._last_draw = time.monotonic() if now is None else now
        if self.tty:
            width = _terminal_width()
            text = "".join(f"\x1b[2K{row[:width]}\n" for row in block)
            up = f"\x1b[{self._drawn}F" if self._drawn else ""
            self.out.write(up + text + ("\x1b[J" if len(block) < self._drawn else ""))
            self._drawn = len(block)
        else:
            self.out.write(line + "\n")
        self.out.flush()

    def release(self) -> None:
        """Leave the block on screen; whatever is printed next goes below it."""
        self._drawn = 0

    def note(self, text: str) -> None:
        """Print a message above the live block (the block is redrawn next time)."""
        if self.tty and self._drawn:
            self.out.write(f"\x1b[{self._drawn}F\x1b[J")
            self._drawn = 0
            self._last_draw = 0.0
        self.out.write(text + "\n")
        self.out.flush()


def _terminal_width() -> int:
    import shutil

    return max(40, shutil.get_terminal_size((120, 24)).columns - 1)


def render_status(
    snap: Snapshot,
    previous: Snapshot | None,
    *,
    elapsed_s: float,
    duration_s: float,
    produced: int,
    milestone: list[str],
    phase: str = "running",
    scores_since: Snapshot | None = None,
) -> tuple[list[str], str]:
    """The live block (lines) and the one-line form of the same status.

    The input rate is measured since ``previous``; the score bands show the
    documents published since ``scores_since`` (a few seconds back, so that
    the window always holds several of the worker's flushes), else all."""
    rate = 0.0
    if previous is not None and snap.at > previous.at:
        rate = (snap.events_total - previous.events_total) / (snap.at - previous.at)
    recent = scores_since if scores_since is not None and snap.at > scores_since.at else None
    outcomes = snap.events_by_outcome()
    triggers = sorted(((t, n) for (_, t), n in snap.triggers.items() if n), key=lambda x: -x[1])
    held = sorted(snap.suppressed_by_reason().items(), key=lambda x: -x[1])
    bands = score_bands(snap.score_histogram(recent))
    published = sum(n for _, n in bands)
    if published:
        scores = " │ ".join(f"{label} {100.0 * n / published:4.1f}%" for label, n in bands)
        scores += (f"   ({fmt_int(published)} published in the last {snap.at - recent.at:.0f} s)"
                   if recent is not None else f"   ({fmt_int(published)} published)")
    else:
        all_bands = score_bands(snap.score_histogram())
        total = sum(n for _, n in all_bands)
        scores = (" │ ".join(f"{label} {100.0 * n / total:4.1f}%" for label, n in all_bands)
                  + "   (all published)") if total else "none published yet"
    p99 = snap.latency_quantile(0.99)
    latency = f"   latency p99 ≤ {p99:g} s" if p99 is not None and p99 != float("inf") else ""
    clock = f"{elapsed_s:5.1f} s / {duration_s:g} s" if phase == "running" else phase
    processed = fmt_int(snap.events_total)
    block = [
        f"── cxstream demo ── {clock} ── produced {fmt_int(produced)} records",
        f"  input       {fmt_int(rate):>7} events/s   processed {processed}"
        f" ({_join(sorted(outcomes.items(), key=lambda x: -x[1]))}){latency}",
        f"  triggers    {_join(triggers)}",
        f"  held back   {_join(held)}",
        f"  scores      {scores}",
        f"  dead letters {fmt_int(snap.deadletters_total)}   active faults {fmt_int(snap.active_faults)}"
        f"   customers tracked {fmt_int(snap.customers)}",
    ]
    for i, text in enumerate(milestone):
        block.append(f"  {'scenario' if i == 0 else '':<11} {text}")
    line = (f"[{clock}] in {fmt_int(rate)}/s, processed {processed}/{fmt_int(produced)}; "
            f"triggers {_join(triggers)}; held back {sum(n for _, n in held):,}; "
            f"dead letters {fmt_int(snap.deadletters_total)}; faults {fmt_int(snap.active_faults)}; "
            f"customers {fmt_int(snap.customers)}; {'; '.join(milestone)}")
    return block, line
