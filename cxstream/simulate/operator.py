"""A synthetic telecom operator: customers, service quality and network faults.

Pure Python, no Kafka. Seeded and deterministic: the same seed and parameters
give byte-identical records, so a test or a demo can replay a scenario and
know what should come out of it (:meth:`SyntheticOperator.describe`).

Records follow the wire contract (``/CONTRACT.md``): quality records keyed by
customer id, TMF642 notifications (envelope form) keyed by alarm id, customer
records (and tombstones) keyed by customer id.

Event time
----------
Record ``i`` of a stream of ``N`` records has event time ``start + i * step``.
By default ``step = span_s / N`` with ``span_s = 12 h``: whatever ``N``, the
scripted scenario covers 12 hours of event time, so event time runs much
faster than wall time when the records are produced (100k records at 5k/s take
20 s of wall time for 12 h of event time). The scripted timeline is a function
of ``N`` (fractions of the stream, see :data:`TIMELINE`):

====== =================================================================
 5 %   warning alarm on an OLT, ``serviceAffecting: false`` (v4 integer id)
10 %   degrading customers start to get worse (until 90 %, then stay bad)
20 %   critical site alarm (AlarmCreateEvent): the site's customers lose service
20 %+  correlated major alarm on one cell of that site (joins the episode)
25 %   the site alarm is acknowledged (AlarmAttributeValueChangeEvent)
30 %   late customers' records arrive (customers of the failed site, optional)
35 %   planned work (``plannedOutageIndicator: OutOfService``) on another cell
50 %   planned work cleared
58 %   cell alarm cleared (AlarmStateChangeEvent)
60 %   site alarm cleared (AlarmStateChangeEvent): 40 % of the span, 4.8 h
       with the defaults, so ``service_credit`` (> 4 h) applies
70 %   warning alarm cleared (v4 ClearAlarmsCreateEvent naming it by id)
80 %   tombstones for churned customers (optional)
====== =================================================================

With ``events=None`` the stream is endless: the scenario repeats every
``cycle_events`` records with new alarm ids (``describe(cycle=k)``).
"""

from __future__ import annotations

import calendar
import math
import random
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterator, NamedTuple

import orjson

__all__ = [
    "SimRecord",
    "SyntheticOperator",
    "DEFAULT_START",
    "TIMELINE",
    "SERVICES",
    "MALFORMED_KINDS",
    "iso_time",
]

#: 2026-11-22T08:00:00Z, the default start of event time.
DEFAULT_START: float = float(calendar.timegm((2026, 11, 22, 8, 0, 0)))

#: Position of each scripted step as a fraction of the stream (or of a cycle).
TIMELINE: dict[str, float] = {
    "warning_raise": 0.05,
    "degrade_start": 0.10,
    "outage_raise": 0.20,
    "cell_raise": 0.20,  # scheduled right after the site alarm
    "outage_ack": 0.25,
    "late_customers": 0.30,
    "planned_raise": 0.35,
    "planned_clear": 0.50,
    "cell_clear": 0.58,
    "outage_clear": 0.60,
    "warning_clear": 0.70,
    "tombstones": 0.80,
    "degrade_full": 0.90,
}

SERVICES: tuple[str, ...] = ("voice", "data", "video", "messaging")
_SERVICE_CUMULATIVE = (0.35, 0.75, 0.90, 1.0)  # voice 35 %, data 40 %, video 15 %, messaging 10 %

MALFORMED_KINDS: tuple[str, ...] = (
    "bad_json",
    "not_utf8",
    "mos_out_of_range",
    "unknown_service",
    "missing_customer_id",
    "negative_latency",
    "wrong_type",
    "no_metrics",
    "fault_unknown_event_type",
    "fault_missing_alarmed_object",
)

_MIN_SCENARIO_EVENTS = 100


class SimRecord(NamedTuple):
    """One record to produce: ``role`` names the topic (``settings.topics.<role>``)."""

    role: str  # "faults" | "quality" | "customers"
    key: bytes | None
    value: bytes | None  # None: a tombstone
    event_time: float  # epoch seconds; records come in non-decreasing event time
    note: str | None = None  # None, "duplicate" or "malformed:<kind>"


_second_cache: tuple[int, str] = (-1, "")


def iso_time(epoch: float) -> str:
    """RFC 3339 UTC with milliseconds, e.g. ``2026-11-22T08:00:00.000Z``.

    Fast for non-decreasing input: the formatted second is cached (as one
    tuple, replaced atomically, so concurrent callers stay correct).
    """
    global _second_cache
    second = math.floor(epoch)
    millis = int(round((epoch - second) * 1000.0))
    if millis >= 1000:
        second += 1
        millis -= 1000
    cached = _second_cache
    if cached[0] != second:
        cached = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
        _second_cache = cached
    return f"{cached[1]}.{millis:03d}Z"


def _iso_seconds(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(math.floor(epoch)))


@dataclass(frozen=True)
class _Customer:
    index: int
    customer_id: str
    key: bytes
    site: int
    cell: int
    cell_id: str
    site_id: str
    olt_id: str | None
    segment: str
    value_tier: str
    marketing_consent: bool
    updated_at: str

    def record(self) -> dict[str, Any]:
        resources = [self.cell_id, self.site_id]
        if self.olt_id:
            resources.append(self.olt_id)
        return {
            "customer_id": self.customer_id,
            "segment": self.segment,
            "value_tier": self.value_tier,
            "marketing_consent": self.marketing_consent,
            "resources": resources,
            "updated_at": self.updated_at,
        }


@dataclass(frozen=True)
class _Step:
    """One scripted record at a position of a cycle."""

    index: int  # actual position within the cycle (after resolving collisions)
    nominal: int
    what: str
    alarm_id: str | int | None = None
    customer: int | None = None  # for late customers and tombstones


class SyntheticOperator:
    """A seeded synthetic operator; see the module docstring for the scenario.

    Parameters
    ----------
    seed: everything random derives from it.
    customers, sites, cells_per_site: network size. Each customer is served by
        one cell, its site and, for about a third of them, an OLT (fixed line).
    degrading: customers whose quality gets steadily worse (score falls below
        40/50). A quarter of them are gold or platinum, half have marketing consent.
    start: epoch seconds of the first record (default 2026-11-22T08:00:00Z).
    span_s: event time one scenario covers (default 12 h) when ``step_s`` is None.
    step_s: event time between consecutive records (overrides ``span_s``).
    outage_share: share of customers on the site that fails (default 10 %:
        300 of 3000 customers).
    malformed_ratio: share of records replaced by malformed input (default 0).
    duplicate_ratio: share of quality records resent with the same event_id.
    blip_ratio: share of healthy quality records that show a passing problem.
    degrading_share: during the degradation window, share of quality records
        that come from the degrading customers (round robin).
    late_customers: customers of the failed site whose record arrives only
        after their site alarm was raised (30 % of the stream).
    tombstones: healthy customers erased (tombstone) at 80 % of the stream.
    correlated_cell_alarm: also raise a correlated alarm on one cell of the site.
    cycle_events: records per scenario cycle of an endless stream.
    """

    def __init__(
        self,
        seed: int = 7,
        customers: int = 3000,
        sites: int = 30,
        cells_per_site: int = 3,
        degrading: int = 20,
        start: float | datetime = DEFAULT_START,
        *,
        span_s: float = 12 * 3600.0,
        step_s: float | None = None,
        outage_share: float = 0.10,
        malformed_ratio: float = 0.0,
        duplicate_ratio: float = 0.005,
        blip_ratio: float = 0.02,
        degrading_share: float = 0.08,
        late_customers: int = 0,
        tombstones: int = 0,
        correlated_cell_alarm: bool = True,
        cycle_events: int = 100_000,
    ) -> None:
        if customers < 1 or sites < 1 or cells_per_site < 1:
            raise ValueError("customers, sites and cells_per_site must be at least 1")
        if not 0 <= malformed_ratio <= 1 or not 0 <= duplicate_ratio <= 1:
            raise ValueError("malformed_ratio and duplicate_ratio must be within 0..1")
        if step_s is not None and step_s <= 0:
            raise ValueError("step_s must be positive")
        if cycle_events < _MIN_SCENARIO_EVENTS:
            raise ValueError(f"cycle_events must be at least {_MIN_SCENARIO_EVENTS}")
        self.seed = seed
        self.n_customers = customers
        self.n_sites = sites
        self.cells_per_site = cells_per_site
        self.n_degrading = degrading
        self.start = start.timestamp() if isinstance(start, datetime) else float(start)
        self.span_s = float(span_s)
        self.step_s = step_s
        self.outage_share = outage_share
        self.malformed_ratio = malformed_ratio
        self.duplicate_ratio = duplicate_ratio
        self.blip_ratio = blip_ratio
        self.degrading_share = degrading_share
        self.n_late = late_customers
        self.n_tombstones = tombstones
        self.correlated_cell_alarm = correlated_cell_alarm
        self.cycle_events = cycle_events
        self.stats: Counter[str] = Counter()
        self._last_events: int | None = None
        self._build_network()

    # ---------------------------------------------------------------- setup
    def _build_network(self) -> None:
        rng = random.Random(f"cxstream-sim:{self.seed}:network")
        n, sites, cps = self.n_customers, self.n_sites, self.cells_per_site
        self.site_ids = [f"SITE-{s + 1:04d}" for s in range(sites)]
        self.cell_ids = [f"CELL-{c + 1:04d}" for c in range(sites * cps)]
        self.olt_ids = [f"OLT-{o + 1}" for o in range((sites + 2) // 3)]

        self.outage_site = rng.randrange(sites)
        others = [s for s in range(sites) if s != self.outage_site]
        n_out = n if not others else min(n, max(1, round(n * self.outage_share)))
        site_of = [self.outage_site] * n_out
        if n > n_out:
            weights = [rng.uniform(0.5, 1.5) for _ in others]
            site_of += rng.choices(others, weights, k=n - n_out)
        rng.shuffle(site_of)

        self.planned_site = rng.choice(others) if others else self.outage_site
        planned_sector = rng.randrange(cps)
        if self.planned_site == self.outage_site and cps > 1:
            planned_sector = cps - 1  # one site only: plan work on another cell than the alarm's
        self.planned_cell = self.planned_site * cps + planned_sector
        self.alarm_cell = self.outage_site * cps  # sector 0 of the failed site
        self.warning_olt = rng.randrange(len(self.olt_ids))

        customers: list[_Customer] = []
        for i, site in enumerate(site_of):
            cell = site * cps + rng.randrange(cps)
            r = rng.random()
            tier = "platinum" if r < 0.02 else "gold" if r < 0.15 else "silver" if r < 0.45 else "bronze"
            segment = "business" if rng.random() < 0.2 else "consumer"
            consent = rng.random() < 0.6
            olt = self.olt_ids[site // 3] if rng.random() < 0.35 else None
            updated = self.start - rng.randrange(3600, 90 * 86400)
            customers.append(
                _Customer(
                    index=i,
                    customer_id=f"C{100000 + i}",
                    key=f"C{100000 + i}".encode(),
                    site=site,
                    cell=cell,
                    cell_id=self.cell_ids[cell],
                    site_id=self.site_ids[site],
                    olt_id=olt,
                    segment=segment,
                    value_tier=tier,
                    marketing_consent=consent,
                    updated_at=_iso_seconds(updated),
                )
            )

        on_outage = [c.index for c in customers if c.site == self.outage_site]
        late = sorted(rng.sample(on_outage, min(self.n_late, len(on_outage))))
        healthy_pool = [
            c.index
            for c in customers
            if c.site != self.outage_site and c.cell != self.planned_cell
        ]
        degrading = rng.sample(healthy_pool, min(self.n_degrading, len(healthy_pool)))
        # Make the degrading group exercise the rules: a quarter gold/platinum,
        # half with marketing consent, some explicitly without.
        for j, index in enumerate(degrading):
            c = customers[index]
            tier, consent = c.value_tier, c.marketing_consent
            if j % 4 == 0:
                tier = "platinum" if j % 8 == 0 else "gold"
            if j % 2 == 0:
                consent = True
            elif j % 4 == 3:
                consent = False
            customers[index] = _replace(c, value_tier=tier, marketing_consent=consent)
        taken = set(degrading)
        rest = [i for i in healthy_pool if i not in taken]
        tombstoned = sorted(rng.sample(rest, min(self.n_tombstones, len(rest))))

        self.customers = customers
        self.outage_customers = on_outage
        self.planned_customers = [c.index for c in customers if c.cell == self.planned_cell]
        self.warning_customers = [
            c.index for c in customers if c.olt_id == self.olt_ids[self.warning_olt]
        ]
        self.degrading = degrading
        self.late = late
        self.tombstoned = tombstoned
        self._degrading_slot = {index: j for j, index in enumerate(degrading)}

    # ------------------------------------------------------------ customers
    def customers_records(self, include_late: bool = False) -> list[SimRecord]:
        """The customer snapshot (late customers excluded unless ``include_late``)."""
        late = set() if include_late else set(self.late)
        t = self.start
        return [
            SimRecord("customers", c.key, orjson.dumps(c.record()), t)
            for c in self.customers
            if c.index not in late
        ]

    # ------------------------------------------------------------- schedule
    def _ids(self, cycle: int) -> dict[str, Any]:
        base = self.seed * 100_000 + cycle * 10
        return {
            "outage": f"ALM-{base + 1:07d}",
            "cell": f"ALM-{base + 2:07d}",
            "planned": f"ALM-{base + 3:07d}",
            # TMF642 v4 declares alarm ids as integers: the warning alarm uses one.
            "warning": 900_000_000 + (self.seed % 100_000) * 1000 + cycle,
        }

    def _schedule(self, n: int, cycle: int) -> list[_Step]:
        ids = self._ids(cycle)
        wanted: list[tuple[int, int, str, Any, int | None]] = []  # (nominal, order, what, id, customer)

        def at(fraction: float) -> int:
            return min(n - 1, int(fraction * n))

        order = 0

        def add(fraction: float, what: str, alarm_id: Any = None, customer: int | None = None) -> None:
            nonlocal order
            wanted.append((at(fraction), order, what, alarm_id, customer))
            order += 1

        add(TIMELINE["warning_raise"], "warning_raise", ids["warning"])
        add(TIMELINE["outage_raise"], "outage_raise", ids["outage"])
        if self.correlated_cell_alarm:
            wanted.append((at(TIMELINE["cell_raise"]) + 3, order, "cell_raise", ids["cell"], None))
            order += 1
        add(TIMELINE["outage_ack"], "outage_ack", ids["outage"])
        if cycle == 0:
            for index in self.late:
                add(TIMELINE["late_customers"], "late_customer", customer=index)
        add(TIMELINE["planned_raise"], "planned_raise", ids["planned"])
        add(TIMELINE["planned_clear"], "planned_clear", ids["planned"])
        if self.correlated_cell_alarm:
            add(TIMELINE["cell_clear"], "cell_clear", ids["cell"])
        add(TIMELINE["outage_clear"], "outage_clear", ids["outage"])
        add(TIMELINE["warning_clear"], "warning_clear", ids["warning"])
        if cycle == 0:
            for index in self.tombstoned:
                add(TIMELINE["tombstones"], "tombstone", customer=index)
        wanted.sort(key=lambda w: (w[0], w[1]))
        steps: list[_Step] = []
        position = -1
        for nominal, _, what, alarm_id, customer in wanted:
            position = max(nominal, position + 1)
            steps.append(_Step(position, nominal, what, alarm_id, customer))
        if steps and steps[-1].index >= n:
            raise ValueError(f"{n} events are too few for the scripted scenario")
        return steps

    def _step_s(self, n: int) -> float:
        return self.step_s if self.step_s is not None else self.span_s / n

    # --------------------------------------------------------------- stream
    def stream(
        self,
        events: int | None,
        *,
        include_customers: bool = True,
        scenario: bool = True,
    ) -> Iterator[SimRecord]:
        """Records in event-time order.

        ``events`` counts the records after the customer snapshot (which comes
        first, at ``start``, when ``include_customers``); ``None`` is endless
        (scenario cycles of ``cycle_events`` records). ``scenario=False`` gives
        background quality only. Counts go to :attr:`stats` as records are made.
        """
        if events is not None and events < 0:
            raise ValueError("events must be >= 0")
        if scenario and events is not None and events < _MIN_SCENARIO_EVENTS:
            raise ValueError(
                f"the scripted scenario needs at least {_MIN_SCENARIO_EVENTS} events "
                "(or pass scenario=False)"
            )
        self._last_events = events
        self.stats = Counter()
        if include_customers:
            for record in self.customers_records():
                self.stats["customers"] += 1
                yield record
        if events is None:
            cycle = 0
            while True:
                yield from self._cycle(self.cycle_events, cycle, scenario)
                cycle += 1
        elif events:
            yield from self._cycle(events, 0, scenario)

    def _cycle(self, n: int, cycle: int, scenario: bool) -> Iterator[SimRecord]:
        seed = self.seed
        step = self._step_s(n)
        offset = cycle * n
        t0 = self.start
        stats = self.stats
        rng = random.Random(f"cxstream-sim:{seed}:quality:{cycle}")
        rnd = rng.random
        dup_rng = random.Random(f"cxstream-sim:{seed}:duplicates:{cycle}")
        bad_rng = random.Random(f"cxstream-sim:{seed}:malformed:{cycle}")
        dumps = orjson.dumps
        customers = self.customers
        n_customers = len(customers)
        ids = self._ids(cycle)

        steps = self._schedule(n, cycle) if scenario else []
        by_index: dict[int, _Step] = {s.index: s for s in steps}
        positions = {s.what: s.index for s in steps}
        outage_from = positions.get("outage_raise", n + 1)
        outage_to = positions.get("outage_clear", n + 1)
        planned_from = positions.get("planned_raise", n + 1)
        planned_to = positions.get("planned_clear", n + 1)
        late_at = {s.customer: s.index for s in steps if s.what == "late_customer"}
        gone_at = {s.customer: s.index for s in steps if s.what == "tombstone"}
        outage_site = self.outage_site if scenario else -1
        planned_cell = self.planned_cell if scenario else -1
        deg_from = int(TIMELINE["degrade_start"] * n)
        deg_full = int(TIMELINE["degrade_full"] * n)
        deg_span = max(1, deg_full - deg_from)
        degrading = self.degrading if scenario else []
        degrading_slot = self._degrading_slot if scenario else {}
        n_degrading = len(degrading)
        deg_share = self.degrading_share
        dup_ratio = self.duplicate_ratio
        bad_ratio = self.malformed_ratio
        blip = self.blip_ratio
        unavailable = set(late_at) | set(gone_at)
        round_robin = 0
        pending_dup: SimRecord | None = None
        q_seq = offset

        for i in range(n):
            t = t0 + (offset + i) * step
            scripted = by_index.get(i)
            if scripted is not None:
                pending_dup = None
                record = self._scripted(scripted, t, ids, cycle)
                stats[record.role] += 1
                yield record
                continue
            if pending_dup is not None:
                record, pending_dup = pending_dup, None
                stats[record.role] += 1
                stats["malformed" if record.note != "duplicate" else "duplicates"] += 1
                yield record
                continue

            # ---- pick the customer
            if n_degrading and deg_from <= i and rnd() < deg_share:
                c = customers[degrading[round_robin % n_degrading]]
                round_robin += 1
            else:
                for _ in range(1000):
                    c = customers[int(rnd() * n_customers)]
                    if c.index not in unavailable:
                        break
                    if c.index in late_at and i > late_at[c.index]:
                        break
                    if c.index in gone_at and i < gone_at[c.index]:
                        break
            # ---- its condition now
            r = rnd()
            service = (
                "voice" if r < _SERVICE_CUMULATIVE[0]
                else "data" if r < _SERVICE_CUMULATIVE[1]
                else "video" if r < _SERVICE_CUMULATIVE[2]
                else "messaging"
            )
            if c.site == outage_site and outage_from < i < outage_to:
                metrics = _outage_metrics(service, rnd)
            else:
                if c.index in degrading_slot:
                    badness = 0.0 if i < deg_from else min(1.0, (i - deg_from) / deg_span)
                elif c.cell == planned_cell and planned_from < i < planned_to:
                    badness = 0.3
                else:
                    badness = 0.0
                if badness < 0.3 and rnd() < blip:
                    badness = 0.3 + 0.5 * rnd()
                metrics = _metrics(service, badness, rnd)
            q_seq += 1
            value: dict[str, Any] = {
                "event_id": f"q-{seed}-{q_seq:08d}",
                "customer_id": c.customer_id,
                "event_time": iso_time(t),
                "service": service,
                "resource_id": c.cell_id,
                "metrics": metrics,
            }
            if rnd() < 0.1:
                del value["resource_id"]  # optional in the contract
            # Separate generators decide duplicates and malformed input, so the
            # ratios never change the rest of the stream: a malformed record
            # takes the place of the good one (and of its duplicate, if any).
            resend = bool(dup_ratio) and dup_rng.random() < dup_ratio
            if bad_ratio and bad_rng.random() < bad_ratio:
                record = self._malformed(bad_rng, value, c.key, t, q_seq)
                stats["malformed"] += 1
            else:
                record = SimRecord("quality", c.key, dumps(value), t)
            stats[record.role] += 1
            if resend:
                pending_dup = record._replace(note=record.note or "duplicate")
            yield record

    # ------------------------------------------------------------- scripted
    def _envelope(self, event_type: str, payload: dict[str, Any], t: float, cycle: int, n: int) -> bytes:
        when = iso_time(t)
        return orjson.dumps(
            {
                "eventId": f"EVT-{self.seed}-{cycle}-{n:03d}",
                "eventTime": when,
                "eventType": event_type,
                "timeOccurred": when,
                "domain": "ran" if event_type != "ClearAlarmsCreateEvent" else "access",
                "event": payload,
            }
        )

    def _scripted(self, step: _Step, t: float, ids: dict[str, Any], cycle: int) -> SimRecord:
        what = step.what
        when = iso_time(t)
        seq = {"warning_raise": 1, "outage_raise": 2, "cell_raise": 3, "outage_ack": 4,
               "planned_raise": 5, "planned_clear": 6, "cell_clear": 7, "outage_clear": 8,
               "warning_clear": 9}.get(what, 0)
        if what == "late_customer":
            c = self.customers[step.customer]  # type: ignore[index]
            return SimRecord("customers", c.key, orjson.dumps(c.record()), t)
        if what == "tombstone":
            c = self.customers[step.customer]  # type: ignore[index]
            return SimRecord("customers", c.key, None, t)
        alarm_id = step.alarm_id
        key = str(alarm_id).encode()
        site_id = self.site_ids[self.outage_site]
        if what == "outage_raise":
            alarm = _alarm(
                alarm_id, when, "critical", site_id, "Site",
                alarm_type="equipmentAlarm", probable_cause="powerProblem",
                specific_problem="Mains power failure, battery backup exhausted",
                is_root_cause=True, external=f"{site_id}-PWR-{cycle}",
            )
            value = self._envelope("AlarmCreateEvent", {"alarm": alarm}, t, cycle, seq)
        elif what == "cell_raise":
            cell_id = self.cell_ids[self.alarm_cell]
            alarm = _alarm(
                alarm_id, when, "major", cell_id, "Cell",
                alarm_type="communicationsAlarm", probable_cause="lossOfSignal",
                specific_problem="Cell out of service",
                is_root_cause=False, external=f"{cell_id}-OOS-{cycle}",
            )
            alarm["parentAlarm"] = [{"id": ids["outage"]}]
            alarm["correlatedAlarm"] = [{"id": ids["outage"]}]
            value = self._envelope("AlarmCreateEvent", {"alarm": alarm}, t, cycle, seq)
        elif what == "outage_ack":
            change = {
                "id": alarm_id,
                "ackState": "acknowledged",
                "ackUserId": "noc-operator-3",
                "ackSystemId": "noc",
                "alarmChangedTime": when,
                "comment": [{"comment": "Field team dispatched", "systemId": "noc",
                             "userId": "noc-operator-3", "time": when}],
            }
            value = self._envelope("AlarmAttributeValueChangeEvent", {"alarm": change}, t, cycle, seq)
        elif what == "planned_raise":
            cell_id = self.cell_ids[self.planned_cell]
            alarm = _alarm(
                alarm_id, when, "major", cell_id, "Cell",
                alarm_type="equipmentAlarm", probable_cause="plannedMaintenance",
                specific_problem="Scheduled software upgrade",
                is_root_cause=True, external=f"{cell_id}-MW-{cycle}",
            )
            alarm["plannedOutageIndicator"] = "OutOfService"
            value = self._envelope("AlarmCreateEvent", {"alarm": alarm}, t, cycle, seq)
        elif what in ("planned_clear", "cell_clear", "outage_clear"):
            change = {
                "id": alarm_id,
                "state": "cleared",
                "perceivedSeverity": "cleared",
                "alarmClearedTime": when,
                "alarmChangedTime": when,
            }
            value = self._envelope("AlarmStateChangeEvent", {"alarm": change}, t, cycle, seq)
        elif what == "warning_raise":
            olt_id = self.olt_ids[self.warning_olt]
            alarm = _alarm(
                alarm_id, when, "warning", olt_id, "OLT",
                alarm_type="environmentalAlarm", probable_cause="highTemperature",
                specific_problem="Cabinet temperature above threshold",
                is_root_cause=True, external=f"{olt_id}-TEMP-{cycle}",
            )
            alarm["serviceAffecting"] = False
            alarm["href"] = f"/tmf-api/alarmManagement/v4/alarm/{alarm_id}"
            value = self._envelope("AlarmCreateEvent", {"alarm": alarm}, t, cycle, seq)
        elif what == "warning_clear":
            olt_id = self.olt_ids[self.warning_olt]
            clear = {
                "id": f"CLR-{self.seed}-{cycle}",
                "alarmClearedTime": when,
                "clearSystemId": "nfm-access-1",
                "clearUserId": "noc-operator-1",
                "state": "done",
                "alarmPattern": [{"alarmedObject": {"id": olt_id}}],
                "clearedAlarm": [{"id": alarm_id}],
            }
            value = self._envelope("ClearAlarmsCreateEvent", {"clearAlarms": clear}, t, cycle, seq)
        else:  # pragma: no cover - every step is handled above
            raise AssertionError(what)
        return SimRecord("faults", key, value, t)

    def _malformed(
        self, rng: random.Random, value: dict[str, Any], key: bytes, t: float, seq: int
    ) -> SimRecord:
        kind = MALFORMED_KINDS[int(rng.random() * len(MALFORMED_KINDS))]
        note = f"malformed:{kind}"
        value = dict(value, metrics=dict(value["metrics"]))
        if kind == "bad_json":
            return SimRecord("quality", key, orjson.dumps(value)[:-9], t, note)
        if kind == "not_utf8":
            return SimRecord("quality", key, b"\xff\xfe" + orjson.dumps(value)[2:], t, note)
        if kind == "mos_out_of_range":
            value["service"] = "voice"
            value["metrics"] = {"mos": 7.5 if rng.random() < 0.5 else 0.4, "call_dropped": False}
        elif kind == "unknown_service":
            value["service"] = "fax"
        elif kind == "missing_customer_id":
            del value["customer_id"]
        elif kind == "negative_latency":
            value["service"] = "data"
            value["metrics"] = {"latency_ms": -12.5, "packet_loss_pct": 0.1}
        elif kind == "wrong_type":
            value["service"] = "voice"
            value["metrics"] = {"call_dropped": "yes", "mos": 4.1}
        elif kind == "no_metrics":
            value["metrics"] = {}
        elif kind == "fault_unknown_event_type":
            alarm_id = f"ALM-BAD-{self.seed}-{seq}"
            envelope = {
                "eventId": f"EVT-BAD-{self.seed}-{seq}",
                "eventTime": iso_time(t),
                "eventType": "AlarmFrobnicateEvent",
                "event": {"alarm": {"id": alarm_id}},
            }
            return SimRecord("faults", alarm_id.encode(), orjson.dumps(envelope), t, note)
        elif kind == "fault_missing_alarmed_object":
            alarm_id = f"ALM-BAD-{self.seed}-{seq}"
            alarm = _alarm(alarm_id, iso_time(t), "major", "CELL-0001", "Cell",
                           alarm_type="communicationsAlarm", probable_cause="lossOfSignal",
                           specific_problem="Cell out of service", is_root_cause=True,
                           external="X")
            del alarm["alarmedObject"], alarm["alarmedObjectType"]
            envelope = {
                "eventId": f"EVT-BAD-{self.seed}-{seq}",
                "eventTime": iso_time(t),
                "eventType": "AlarmCreateEvent",
                "event": {"alarm": alarm},
            }
            return SimRecord("faults", alarm_id.encode(), orjson.dumps(envelope), t, note)
        return SimRecord("quality", key, orjson.dumps(value), t, note)

    # ------------------------------------------------------------- describe
    def describe(self, events: int | None = None, cycle: int = 0) -> dict[str, Any]:
        """What the scenario contains, for tests and demos to check outcomes.

        ``events`` (default: that of the last :meth:`stream` call) adds the
        timeline: where each scripted record falls and its event time.
        """
        ids = self._ids(cycle)
        cust = self.customers

        def ids_of(indices: list[int]) -> list[str]:
            return [cust[i].customer_id for i in indices]

        summary: dict[str, Any] = {
            "seed": self.seed,
            "customers": self.n_customers,
            "sites": self.n_sites,
            "cells": len(self.cell_ids),
            "start": iso_time(self.start),
            "outage": {
                "site_id": self.site_ids[self.outage_site],
                "alarm_id": ids["outage"],
                "severity": "critical",
                "cell_alarm_id": ids["cell"] if self.correlated_cell_alarm else None,
                "cell_id": self.cell_ids[self.alarm_cell],
                "customers": len(self.outage_customers),
                "customer_ids": ids_of(self.outage_customers),
            },
            "planned": {
                "alarm_id": ids["planned"],
                "cell_id": self.cell_ids[self.planned_cell],
                "customers": len(self.planned_customers),
                "customer_ids": ids_of(self.planned_customers),
            },
            "warning": {
                "alarm_id": ids["warning"],
                "resource_id": self.olt_ids[self.warning_olt],
                "service_affecting": False,
                "customers": len(self.warning_customers),
            },
            "degrading_ids": ids_of(self.degrading),
            "degrading": [
                {
                    "customer_id": cust[i].customer_id,
                    "value_tier": cust[i].value_tier,
                    "marketing_consent": cust[i].marketing_consent,
                }
                for i in self.degrading
            ],
            "late_customer_ids": ids_of(self.late),
            "tombstone_ids": ids_of(self.tombstoned),
            "alarm_ids": [ids["outage"]]
            + ([ids["cell"]] if self.correlated_cell_alarm else [])
            + [ids["planned"], ids["warning"]],
            "tiers": dict(Counter(c.value_tier for c in cust)),
            "marketing_consent": sum(c.marketing_consent for c in cust),
        }
        events = self._last_events if events is None else events
        n = self.cycle_events if events is None else events
        if n >= _MIN_SCENARIO_EVENTS:
            step = self._step_s(n)
            base = self.start + cycle * n * step
            timeline = [
                {
                    "index": s.index + cycle * n,
                    "what": s.what,
                    "event_time": iso_time(base + s.index * step),
                    "epoch": base + s.index * step,
                    **({"alarm_id": s.alarm_id} if s.alarm_id is not None else {}),
                    **({"customer_id": cust[s.customer].customer_id} if s.customer is not None else {}),
                }
                for s in self._schedule(n, cycle)
            ]
            at = {entry["what"]: entry["epoch"] for entry in timeline}
            outage_s = at["outage_clear"] - at["outage_raise"]
            summary["timeline"] = timeline
            summary["events"] = n
            summary["step_s"] = step
            summary["span_s"] = n * step
            summary["outage_duration_s"] = outage_s
            summary["planned_duration_s"] = at["planned_clear"] - at["planned_raise"]
            summary["service_credit_expected"] = outage_s > 4 * 3600
        if self.stats:
            summary["stats"] = dict(self.stats)
        return summary


# ---------------------------------------------------------------- helpers
def _replace(c: _Customer, **changes: Any) -> _Customer:
    from dataclasses import replace

    return replace(c, **changes)


def _alarm(
    alarm_id: Any, when: str, severity: str, object_id: str, object_type: str, *,
    alarm_type: str, probable_cause: str, specific_problem: str, is_root_cause: bool,
    external: str,
) -> dict[str, Any]:
    """A full TMF642 Alarm as a fault manager raises it."""
    return {
        "id": alarm_id,
        "href": f"/tmf-api/alarmManagement/v5/alarm/{alarm_id}",
        "@type": "Alarm",
        "externalAlarmId": external,
        "state": "raised",
        "ackState": "unacknowledged",
        "perceivedSeverity": severity,
        "alarmType": alarm_type,
        "probableCause": probable_cause,
        "specificProblem": specific_problem,
        "alarmRaisedTime": when,
        "alarmReportingTime": when,
        "sourceSystemId": "nfm-ran-1" if object_type != "OLT" else "nfm-access-1",
        "serviceAffecting": True,
        "isRootCause": is_root_cause,
        "plannedOutageIndicator": "InService",
        "alarmedObjectType": object_type,
        "alarmedObject": {
            "id": object_id,
            "@referredType": object_type,
            "href": f"/tmf-api/resourceInventory/v4/resource/{object_id}",
        },
    }


def _clamp(x: float, low: float, high: float) -> float:
    return low if x < low else high if x > high else x


def _metrics(service: str, b: float, rnd: Any) -> dict[str, Any]:
    """Metrics of one record; ``b`` is badness, 0 healthy … 1 very poor."""
    noise = rnd() - 0.5  # one uniform draw shared by the continuous metrics
    if service == "voice":
        return {
            "call_dropped": rnd() < 0.01 + 0.7 * b,
            "call_setup_failed": rnd() < 0.005 + 0.3 * b,
            "mos": round(_clamp(4.3 - 3.0 * b + 0.3 * noise, 1.0, 5.0), 2),
        }
    if service == "data":
        return {
            "latency_ms": round(max(0.0, 25 + 400 * b + 10 * noise), 1),
            "jitter_ms": round(max(0.0, 2 + 60 * b + 2 * noise), 1),
            "packet_loss_pct": round(_clamp(0.05 + 15 * b + 0.1 * noise, 0.0, 100.0), 2),
            "throughput_mbps": round(max(0.0, 80 * (1 - b) ** 2 + 10 * noise), 1),
        }
    if service == "video":
        return {
            "video_stall_ratio": round(_clamp(0.005 + 0.5 * b + 0.01 * noise, 0.0, 1.0), 3),
            "throughput_mbps": round(max(0.0, 15 * (1 - b) ** 2 + 2 * noise), 1),
        }
    return {"message_failed": rnd() < 0.003 + 0.6 * b}


def _outage_metrics(service: str, rnd: Any) -> dict[str, Any]:
    """No service: calls fail to set up, no data gets through."""
    if service == "voice":
        return {"call_setup_failed": True, "call_dropped": rnd() < 0.1}
    if service == "data":
        return {"packet_loss_pct": 100.0, "throughput_mbps": 0.0}
    if service == "video":
        return {"video_stall_ratio": 1.0, "throughput_mbps": 0.0}
    return {"message_failed": True}
