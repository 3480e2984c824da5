"""Prometheus metrics of the wire contract (plus a few an SRE needs).

Named per Prometheus' guide: ``cxstream_`` prefix, ``_total`` counters, base
units (seconds). The engine counts in plain Counters; :meth:`Metrics.record`
moves them here once per batch, so the hot path does no metric calls per event.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter as Occurrences  # (prometheus_client has a Counter too)

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import CONTENT_TYPE_LATEST  # noqa: F401  (re-exported for the web layer)

SOURCES = ("faults", "quality", "customers")
OUTCOMES = ("ok", "invalid", "duplicate", "late")

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
SCORE_BUCKETS = (10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 100)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.events = Counter("cxstream_events", "Input records by source and outcome.",
                              ["source", "outcome"], registry=r)
        self.triggers = Counter("cxstream_triggers", "Triggers sent, by channel and trigger.",
                                ["channel", "trigger"], registry=r)
        self.suppressed = Counter("cxstream_triggers_suppressed",
                                  "Triggers a rule would fire but that were held back, by reason.",
                                  ["channel", "trigger", "reason"], registry=r)
        self.processing = Histogram("cxstream_processing_seconds",
                                    "Time from a record being received to its outputs being produced.",
                                    buckets=LATENCY_BUCKETS, registry=r)
        self.customers = Gauge("cxstream_customers", "Customers tracked by this worker.", registry=r)
        self.active_faults = Gauge("cxstream_active_faults", "Active alarms known to this worker.", registry=r)
        self.score = Histogram("cxstream_score", "Scores published to the scores topic.",
                               buckets=SCORE_BUCKETS, registry=r)
        self.deadletters = Counter("cxstream_deadletters", "Records written to the dead-letter topic.",
                                   ["source"], registry=r)
        self.flush_seconds = Histogram("cxstream_flush_seconds",
                                       "Time to write one flush interval's scores and state.",
                                       buckets=LATENCY_BUCKETS, registry=r)
        self.bounded = Counter("cxstream_bounded", "Input a bound dropped, expired or forgot (contract v2 Bounds), "
                               "by bound: alarms_expired, episode_alarms, erased_forgotten.",
                               ["bound"], registry=r)
        self.record_errors = Counter("cxstream_record_errors",
                                     "Unexpected failures isolated to one record (dead-lettered), by where.",
                                     ["where"], registry=r)
        self.outputs_dropped = Counter("cxstream_outputs_dropped",
                                       "Output messages the producer refused outright (e.g. too large), by topic.",
                                       ["topic"], registry=r)
        self.broker_lost = Gauge("cxstream_broker_lost", "1 while the worker has lost the broker.", registry=r)
        self.ready = Gauge("cxstream_ready", "1 when the worker is ready to process.", registry=r)
        self.alarm_lag = Gauge("cxstream_alarm_feed_lag_records",
                               "Fault records not yet read by this worker's alarm registry.", registry=r)
        # make every contract series exist from the start, at zero
        for source in SOURCES:
            for outcome in OUTCOMES:
                self.events.labels(source, outcome)

    def record(self, tally) -> None:
        for (source, outcome), n in tally.events.items():
            self.events.labels(source, outcome).inc(n)
        for (channel, trigger), n in tally.triggers.items():
            self.triggers.labels(channel, trigger).inc(n)
        for bound, n in tally.limits.items():
            self.bounded.labels(bound).inc(n)
        for where, n in getattr(tally, "errors", {}).items():
            self.record_errors.labels(where).inc(n)
        for (channel, trigger, reason), n in tally.suppressed.items():
            self.suppressed.labels(channel, trigger, reason).inc(n)

    def observe_latency(self, seconds: float, count: int) -> None:
        """``count`` records that each took ``seconds`` (one slice of a fetch)."""
        if count > 0:
            _observe_many(self.processing, [(seconds, count)])

    def observe_scores(self, scores: list[float]) -> None:
        """Many published scores at once."""
        if scores:  # published scores have one decimal: few distinct values, counted in C
            _observe_many(self.score, Occurrences(scores).items())

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def _observe_many(hist: Histogram, observations: list[tuple[float, int]]) -> None:
    """Add (value, how many times) observations with one update per bucket: an
    ``observe`` per record would cost more than the processing it measures."""
    bounds = hist._upper_bounds
    counts = [0] * len(bounds)
    total = 0.0
    for value, times in observations:
        counts[bisect_left(bounds, value)] += times
        total += value * times
    for bucket, n in zip(hist._buckets, counts):
        if n:
            bucket.inc(n)
    hist._sum.inc(total)
