"""The customer engine: records in, score changes and rule firings out.

Pure Python, no Kafka: the stream layer hands it batches of raw records and
collects what it produced; an offline replay can drive it the same way. The
engine owns the customers of the partitions assigned to this worker, an index
from network resource to those customers, and a copy of the alarm registry
(every worker sees every alarm).

Event time drives everything (decay, cooldowns, trigger times), so the same
input in the same order gives the same output. The worker's wall clock
(``clock``) only bounds it: a time more than ``Limits.max_future_s`` ahead of it
is invalid input, so one record cannot move a customer's or the registry's
clock forward (contract v2, Bounds).

No single record stops the engine: whatever fails while applying one record
(an unusable value, a bound, or an exception of any kind) becomes that record's
rejection, and the next record is applied.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from sys import intern
from typing import Callable

from ..models.customer import CustomerTombstone, parse_customer
from ..models.alarm import parse_fault
from ..models.quality import parse_quality
from ..models.rejection import InvalidRecord
from .alarms import Alarm, AlarmRegistry, future_reason
from .customer import NO_ENTRIES, CustomerState, erased_marker, event_id_hash
from .impact import ImpactLedger
from .limits import DEFAULT_LIMITS, Limits
from .rules import Rule, RuleBook, RuleEvent
from .scoring import ScoreModel
from .trend import record as record_trend

# A reason whose points fell below this starts counting its incidents afresh.
INCIDENT_RESET_POINTS = 0.5

HOUR = 3600.0

# How much of an unexpected exception's message a rejection reason quotes.
ERROR_TEXT_CHARS = 200

log = logging.getLogger(__name__)


@dataclass(slots=True)
class InputRecord:
    """One Kafka record as the engine sees it."""

    source: str  # faults | quality | customers
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: float  # the Kafka timestamp, seconds; a fallback for event time
    placed: bool = False  # already on its customer's partition (repartitioned input)
    # where its sender produced it, (topic, partition, offset), when it was
    # forwarded to its customer's partition first (a dead letter names that)
    origin: tuple[str, int, int] | None = None


@dataclass(slots=True)
class Rejection:
    record: InputRecord
    reason: str


@dataclass(slots=True)
class Firing:
    """A rule fired for a customer: becomes one CloudEvent."""

    rule: Rule
    customer_id: str
    time: float  # event time of the record that caused it
    episode: str  # what makes this firing unique for (rule, customer)
    score: float
    previous_score: float | None
    reasons: list[dict]
    faults: list[str]
    value_tier: str
    segment: str | None


@dataclass
class Tally:
    """Counts since the last drain, for the metrics."""

    # (source, outcome); outcome ok | invalid | duplicate | late | erased
    events: Counter = field(default_factory=Counter)
    triggers: Counter = field(default_factory=Counter)  # (channel, trigger)
    suppressed: Counter = field(default_factory=Counter)  # (channel, trigger, reason)
    # what a bound (Limits) dropped, expired or forgot, by name:
    #   alarms_expired   alarms active longer than alarm_max_age_s, expired
    #   episode_alarms   alarms not listed in an outage episode beyond max_episode_alarms
    #   erased_forgotten erased ids forgotten before their retention, beyond max_erased
    limits: Counter = field(default_factory=Counter)
    # unexpected exceptions isolated to one record or customer, by where:
    # quality | customers | faults (the record was rejected) | reconcile
    errors: Counter = field(default_factory=Counter)


class Engine:
    def __init__(self, rules: RuleBook, half_life_s: float = 1800.0, allowed_lateness_s: float = 900.0,
                 idle_flushes: int = 1, hot_max: int | None = None, *, limits: Limits = DEFAULT_LIMITS,
                 clock: Callable[[], float] = time.time):
        self.rules = rules
        self.limits = limits
        self.clock = clock  # the worker's wall clock: bounds event time, never drives it
        self._horizon = clock() + limits.max_future_s  # the latest usable time, per batch
        self.model = ScoreModel(rules.scoring, half_life_s)
        self.allowed_lateness_s = allowed_lateness_s
        # A customer is a CustomerState while in use, and its stored form
        # (CustomerState.dump bytes, ~200 B) once idle for ``idle_flushes``
        # flushes, or when more than ``hot_max`` are in use (least recent first).
        # Loading a stored customer again costs about 10 µs with the cache
        # cold, as much as the rest of a record's processing (issue 3).
        # ``hot_max`` holds between batches too, not only at a flush: a burst
        # of new customers must not make them all objects at once, because
        # the memory they free afterwards stays with the process (issue 3).
        self.customers: dict[str, CustomerState | bytes] = {}
        # customer in use -> the flush that last saw it used; in the order
        # they came into use, which _put_away_least_recent relies on
        self._hydrated: dict[str, int] = {}
        self._flushes = 0
        self.idle_flushes = max(1, idle_flushes)
        self.hot_max = hot_max
        self._hot_slack = 0 if hot_max is None else hot_max // 50  # 2,000 at the default
        # ``stored_form(customer_id, partition)``: the bytes last written for a customer,
        # so that an idle customer and the table share one object (optional)
        self.stored_form = None
        self._in_flight: set[str] = set()  # taken by a flush whose state is not written yet
        self.put_away_count = 0  # customers put away so far (the worker trims the heap after many)
        # network resource -> its customers here, each once; lists, not sets:
        # ~9 B per customer and resource instead of ~45 (a million customers on
        # two cells each: 80 MB less), and only a resource change or an
        # erasure removes one customer from them (issue 3)
        self.by_resource: dict[str, list[str]] = {}
        self.alarms = AlarmRegistry(limits=limits, clock=clock)
        self.impact = ImpactLedger()  # which of these customers each fault impacts
        self.alarm_changes: set[str] = set()  # alarms changed since the stream layer last looked
        # Until the registry has read every alarm already on the faults topic,
        # customers are not reconciled with it (a replayed raise must not notify).
        self.live = False
        self.dirty: set[str] = set()
        self.erased: dict[str, int] = {}  # customer id -> partition, for tombstones
        # Erased ids remembered (contract v2: erasure holds), per partition, oldest
        # erasure first: customer id -> erased_at (epoch s). Quality records for
        # them are dropped; a customer record registers the id afresh.
        self._erased_ids: dict[int, OrderedDict[str, float]] = {}
        self._erased_count = 0
        self._erased_unsorted: set[int] = set()  # partitions restored out of order
        self.event_clock = 0.0  # the latest event time applied (erasure retention is judged on it)
        self._traced: set[tuple] = set()  # exceptions logged with their traceback once
        self.forwards: list[tuple[str, InputRecord]] = []
        self.firings: list[Firing] = []
        self.rejections: list[Rejection] = []
        self.tally = Tally()
        self._rules = {event: rules.for_event(event) for event in RuleEvent}
        self._rate: dict[str, list[float]] = {}  # rule id -> [minute, count]

    # ======================================================================
    # input
    # ======================================================================
    def process(self, records: list[InputRecord]) -> None:
        """Apply a batch of quality and customer records, in order."""
        self._horizon = self.clock() + self.limits.max_future_s
        for record in records:
            try:
                if record.source == "quality":
                    self._quality(record, record.partition, record.placed, record.topic)
                else:
                    self._customer(record)
            except Exception as exc:  # one record, however odd, never stops the others
                self._failed(record, exc)
        self._bound_in_use()
        self._sweep_erased()

    def process_fetch(self, source: str, topic: str, partition: int, records, placed: bool = False) -> None:
        """Apply one partition's fetched Kafka records (objects with ``key``,
        ``value``, ``offset`` and ``timestamp`` in ms), in order. The hot path:
        no InputRecord is built for a quality record unless it is rejected."""
        self._horizon = self.clock() + self.limits.max_future_s
        if source == "quality":
            quality = self._quality
            for record in records:
                try:
                    quality(record, partition, placed, topic)
                except Exception as exc:  # one record, however odd, never stops the others
                    self._failed(self._input(record, topic, partition, placed), exc)
        else:
            for r in records:
                record = InputRecord(source, topic, partition, r.offset, r.key, r.value, r.timestamp / 1000.0, placed)
                try:
                    self._customer(record)
                except Exception as exc:
                    self._failed(record, exc)
        self._bound_in_use()
        self._sweep_erased()

    @staticmethod
    def _input(record, topic: str, partition: int, placed: bool) -> InputRecord:
        if isinstance(record, InputRecord):
            return record
        return InputRecord("quality", topic, partition, record.offset, record.key, record.value,
                           record.timestamp / 1000.0, placed)

    def _reject(self, record: InputRecord, reason: str) -> None:
        self.rejections.append(Rejection(record, reason))
        self.tally.events[(record.source, "invalid")] += 1

    def _failure_reason(self, record: InputRecord, exc: Exception, where: str) -> str:
        """The rejection reason for an unexpected exception while applying one
        record; logged at warning (with its traceback the first time this
        exception is raised at this place)."""
        if isinstance(exc, InvalidRecord):  # a bound or check deeper down: its own sentence
            return exc.reason
        self.tally.errors[where] += 1
        text = " ".join(str(exc).split())
        if len(text) > ERROR_TEXT_CHARS:
            text = text[:ERROR_TEXT_CHARS - 1] + "…"
        reason = f"could not be processed: {type(exc).__name__}" + (f": {text}" if text else "")
        tb = exc.__traceback__
        while tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
        site = (type(exc).__name__, tb.tb_frame.f_code.co_filename if tb else None, tb.tb_lineno if tb else None)
        first = site not in self._traced and len(self._traced) < 1000  # (bounded: a few places raise)
        if first:
            self._traced.add(site)
        log.warning("%s record %s[%d]@%d %s%s", record.source, record.topic, record.partition, record.offset, reason,
                    "" if first else " (traceback logged before)", exc_info=exc if first else None)
        return reason

    def _failed(self, record: InputRecord, exc: Exception) -> None:
        self._reject(record, self._failure_reason(record, exc, record.source))

    def _too_large(self, value: bytes | None) -> str | None:
        if value is not None and len(value) > self.limits.max_record_bytes:
            return (f"value is {len(value)} bytes, more than the limit of {self.limits.max_record_bytes} "
                    "(CXSTREAM_MAX_RECORD_BYTES)")
        return None

    def _quality(self, record, partition: int, placed: bool, topic: str) -> None:
        value = record.value
        if value is not None and len(value) > self.limits.max_record_bytes:
            self._reject(self._input(record, topic, partition, placed), self._too_large(value))
            return
        try:
            quality = parse_quality(value)
        except InvalidRecord as exc:
            self._reject(self._input(record, topic, partition, placed), exc.reason)
            return
        when = quality.event_time.timestamp()
        if when > self._horizon:
            self._reject(self._input(record, topic, partition, placed),
                         future_reason("event_time", quality.event_time, self._horizon, self.limits))
            return
        if not placed and record.key != quality.customer_id.encode():
            # not keyed by its customer: the owning partition may be another one
            self.forwards.append((quality.customer_id, self._input(record, topic, partition, placed)))
            return
        state = self.state(quality.customer_id)
        if state is None:
            if self._erased_count and self._still_erased(quality.customer_id, when):
                self.tally.events[("quality", "erased")] += 1
                return
            state = self._new_customer(quality.customer_id, partition)
        event_hash = event_id_hash(quality.event_id)
        if event_hash in state.recent:
            self.tally.events[("quality", "duplicate")] += 1
            return
        # Late is judged against the customer's quality records only: an alarm
        # read ahead of the quality stream must not make good records late.
        if state.quality_clock and when < state.quality_clock - self.allowed_lateness_s:
            self.tally.events[("quality", "late")] += 1
            return
        if when > state.quality_clock:
            state.quality_clock = when
        if when > self.event_clock:
            self.event_clock = when
        state.remember(event_hash)
        previous = state.score
        points = self.model.observation_points(quality.service.value, quality.metrics)
        if when >= state.clock:
            self._advance(state, when)
            fade = 1.0
        else:  # out of order within the allowed lateness: fade it to the customer's clock
            fade = self.model.decay_factor(state.clock - when)
        if points:
            self._count_incidents(state, points, when, quality.resource_id)
            if state.penalties is NO_ENTRIES:
                state.penalties = {}
        for code, value in points:
            self.model.add(state.penalties, code, value * fade)
        self._rescore(state, when)
        self._score_rules(state, when, previous)
        self.tally.events[("quality", "ok")] += 1

    def _customer(self, record: InputRecord) -> None:
        reason = self._too_large(record.value)
        if reason is not None:
            self._reject(record, reason)
            return
        try:
            doc = parse_customer(record.key, record.value)
        except InvalidRecord as exc:
            self._reject(record, exc.reason)
            return
        if isinstance(doc, CustomerTombstone):
            when = record.timestamp if 0 < record.timestamp <= self._horizon else self.clock()
        elif doc.updated_at is not None:
            when = doc.updated_at.timestamp()
            if when > self._horizon:
                self._reject(record, future_reason("updated_at", doc.updated_at, self._horizon, self.limits))
                return
        else:  # the broker's timestamp, no later than the worker's clock allows
            when = min(record.timestamp, self._horizon)
        if record.key is None and not record.placed:
            self.forwards.append((doc.customer_id, record))
            return
        if when > self.event_clock:
            self.event_clock = when
        if isinstance(doc, CustomerTombstone):
            self.erase(doc.customer_id, record.partition, when)
            self.tally.events[("customers", "ok")] += 1
            return
        state = self.state(doc.customer_id)
        if state is None:
            state = self._new_customer(doc.customer_id, record.partition)
        state.segment = None if doc.segment is None else intern(doc.segment)  # (see CustomerState.load)
        state.value_tier = doc.value_tier.value
        state.consent = doc.marketing_consent
        state.profile = True
        resources = tuple([intern(resource) for resource in dict.fromkeys(doc.resources)])
        if resources != state.resources:
            self._unindex(state)
            state.resources = resources
            self._index(state)
        self._advance(state, when)
        self.dirty.add(state.customer_id)
        if self.live:
            self._reconcile(state, when, cause=None)
        if state.impacts:  # tier or segment may have changed
            self.impact.sync(state, self.alarms.alarms)
        self.tally.events[("customers", "ok")] += 1

    def apply_fault(self, record: InputRecord) -> str | None:
        """Apply one faults-topic record to the registry and, once live, to the
        customers it impacts. Returns the rejection reason, or None.

        Never raises: an unexpected exception while applying the record is its
        rejection reason; one while bringing one customer in line with it is
        logged and counted (``Tally.errors["reconcile"]``), the other customers
        are still brought in line, and the first such reason is returned."""
        self._horizon = self.clock() + self.limits.max_future_s
        expired_before = self.alarms.expired_total
        try:
            reason = self._too_large(record.value)
            if reason is not None:
                return reason
            notification = parse_fault(record.value)
            changes = self.alarms.apply(notification, record.timestamp)
        except InvalidRecord as exc:
            return exc.reason
        except Exception as exc:  # one record, however odd, never stops the alarm feed
            return self._failure_reason(record, exc, "faults")
        finally:
            self._count_expired(expired_before)
        self.alarm_changes.update(alarm.alarm_id for alarm, _, _ in changes)
        if self.live:
            return self._reconcile_changes(changes, record)
        return None

    def _count_expired(self, before: int) -> None:
        expired = self.alarms.expired_total - before
        if expired:
            self.tally.limits["alarms_expired"] += expired

    def _reconcile_changes(self, changes, record: InputRecord | None) -> str | None:
        """Bring the customers on the resources of these alarm changes in line
        with the registry, each on its own: one customer that fails is logged
        and counted, the others go on. Returns the first failure's reason."""
        failure = None
        for alarm, resources, when in changes:
            for resource in sorted(resources):
                for customer_id in sorted(self.by_resource.get(resource, ())):
                    try:
                        self._reconcile(self.state(customer_id), when, cause=alarm)
                    except Exception as exc:
                        reason = self._reconcile_failed(customer_id, exc, record)
                        if failure is None:
                            failure = reason
                    self._bound_in_use()
        return failure

    def _reconcile_failed(self, customer_id: str, exc: Exception, record: InputRecord | None) -> str:
        if record is None:
            record = InputRecord("faults", "(engine)", -1, -1, customer_id.encode(), None, 0.0)
        reason = self._failure_reason(record, exc, "reconcile")
        if isinstance(exc, InvalidRecord):
            self.tally.errors["reconcile"] += 1
        return f"customer {customer_id!r} {reason}"

    def prune_alarms(self) -> None:
        """Expire alarms active for longer than ``Limits.alarm_max_age_s`` (they
        stop impacting their customers as if cleared, and are counted in
        ``Tally.limits["alarms_expired"]``), then forget faults cleared long ago,
        in the registry and the impact ledger."""
        before = self.alarms.expired_total
        expired = self.alarms.expire()
        self._count_expired(before)
        if expired:
            self.alarm_changes.update(alarm.alarm_id for alarm in expired)
            if self.live:
                self._reconcile_changes([(alarm, {alarm.resource_id}, alarm.cleared_at) for alarm in expired], None)
        if self.alarms.prune():
            self.impact.prune(self.alarms.alarms)

    def go_live(self) -> None:
        """The registry has caught up: bring every customer in line with it."""
        self.live = True
        for customer_id in sorted(self.customers):
            try:
                state = self.state(customer_id)
                if state.resources or state.impacts:
                    self._reconcile(state, None, cause=None)
                if state.impacts:
                    self.impact.sync(state, self.alarms.alarms)
            except Exception as exc:  # one customer must not keep the others out of line
                self._reconcile_failed(customer_id, exc, None)
            self._bound_in_use()

    # ======================================================================
    # ownership (partitions come and go with rebalances)
    # ======================================================================
    def state(self, customer_id: str) -> CustomerState | None:
        """The customer's state, loaded from its stored form if it was idle."""
        value = self.customers.get(customer_id)
        if value is None or value.__class__ is CustomerState:
            return value
        state = CustomerState.load(value)
        self.customers[customer_id] = state
        self._hydrated[customer_id] = self._flushes
        return state

    def dehydrate_idle(self, keep: set[str] | list, stored=None) -> int:
        """Called once per flush with ``keep``, the customers it just wrote:
        customers unused for ``idle_flushes`` flushes go back to their stored
        form, and the least recently used beyond ``hot_max``. Returns how many
        were put away.

        ``stored(customer_id, partition)`` may return the bytes last written for an idle
        customer (unchanged since), so both places share one object."""
        self._in_flight = set()  # the flush calling this has written its state
        if stored is None:
            stored = self.stored_form
        self._flushes += 1
        now = self._flushes
        hydrated = self._hydrated
        for customer_id in keep:
            if customer_id in hydrated:
                hydrated[customer_id] = now
        # whatever changed since the flush took its dirty set (the stream goes
        # on while the flush awaits the broker) stays: its stored form is stale
        dirty = self.dirty
        horizon = now - self.idle_flushes
        idle = [c for c, last in hydrated.items() if last <= horizon and c not in dirty]
        excess = len(hydrated) - len(idle) - (self.hot_max if self.hot_max is not None else len(hydrated))
        if excess > 0:
            recent = sorted((last, c) for c, last in hydrated.items() if last > horizon and c not in dirty)
            idle.extend(c for _, c in recent[:excess])
        self._put_away(idle, stored)
        return len(idle)

    def _bound_in_use(self) -> None:
        """Between records: beyond ``hot_max`` customers in use (and a little
        slack, so that this is rare), put the least recently used away."""
        if self.hot_max is not None and len(self._hydrated) > self.hot_max + self._hot_slack:
            self._put_away_least_recent(len(self._hydrated) - self.hot_max)

    def _put_away_least_recent(self, count: int) -> None:
        """Put ``count`` customers away, those not used since the last flush
        first, in the order they came into use; those used since (loaded or
        changed) get a second chance (moved to the back) unless too few others are left.
        A customer with a change not yet flushed is put away too: it stays in
        ``dirty``, and the flush reads its stored form."""
        hydrated = self._hydrated
        recent_from = self._flushes
        changed = self.dirty  # used since the last flush too
        victims: list[str] = []
        spared: list[str] = []
        # a bounded look at the front: in a burst nearly all are recent, and
        # a walk over every customer in use each time would cost more than
        # the burst itself
        for scanned, (customer_id, last) in enumerate(hydrated.items()):
            if last < recent_from and customer_id not in changed:
                victims.append(customer_id)
                if len(victims) == count:
                    break
            else:
                spared.append(customer_id)
            if scanned >= 4 * count:
                break
        if len(victims) < count:  # a burst within one flush interval: the earliest first
            extra = count - len(victims)
            victims += spared[:extra]
            spared = spared[extra:]
        for customer_id in spared:
            hydrated[customer_id] = hydrated.pop(customer_id)  # to the back
        self._put_away(victims, self.stored_form)

    def _put_away(self, customer_ids: list[str], stored) -> None:
        """These customers in use go back to their stored form: the bytes last
        written (``stored``), shared with the table, when nothing changed since;
        their own dump otherwise."""
        customers, hydrated, dirty, in_flight = self.customers, self._hydrated, self.dirty, self._in_flight
        for customer_id in customer_ids:
            del hydrated[customer_id]
            state = customers.get(customer_id)
            if state is None or state.__class__ is not CustomerState:
                continue
            blob = None
            if stored is not None and customer_id not in dirty and customer_id not in in_flight:
                blob = stored(customer_id, state.partition)
            customers[customer_id] = blob if blob else state.dump()
        self.put_away_count += len(customer_ids)

    @property
    def in_use(self) -> int:
        """How many customers are held as objects (the rest as stored bytes)."""
        return len(self._hydrated)

    def adopt(self, state: CustomerState, stored: bytes | None = None) -> None:
        """Take over a customer restored from the changelog (``stored``: its
        stored form, kept as is unless the customer needs reconciling)."""
        old = self.state(state.customer_id)
        if old is not None:
            self._unindex(old)
        self._index(state)
        self._unerase(state.customer_id)
        if self.live and (state.impacts or any(self.alarms.impacting_on(r) for r in state.resources)):
            self.customers[state.customer_id] = state
            self._hydrated[state.customer_id] = self._flushes
            try:
                self._reconcile(state, None, cause=None)
                self.impact.sync(state, self.alarms.alarms)
            except Exception as exc:  # one customer must not stop the restore of the others
                self._reconcile_failed(state.customer_id, exc, None)
        elif stored is not None:
            self.customers[state.customer_id] = stored
            self._hydrated.pop(state.customer_id, None)
        else:
            self.customers[state.customer_id] = state
            self._hydrated[state.customer_id] = self._flushes
        self._bound_in_use()

    def release(self, partitions: set[int]) -> list[str]:
        """Forget the customers of partitions this worker no longer owns."""
        gone = []
        for customer_id, value in list(self.customers.items()):
            # read, not brought into use: a partition may hold a million
            state = value if value.__class__ is CustomerState else CustomerState.load(value)
            if state.partition in partitions:
                gone.append(customer_id)
                del self.customers[customer_id]
                self._hydrated.pop(customer_id, None)
                self.dirty.discard(customer_id)
        for partition in partitions:  # their erased ids too: the next owner restores them
            self._erased_count -= len(self._erased_ids.pop(partition, ()))
            self._erased_unsorted.discard(partition)
        if gone:  # one pass over the index, not one removal per customer
            leaving = set(gone)
            for resource, ids in list(self.by_resource.items()):
                kept = [c for c in ids if c not in leaving]
                if not kept:
                    del self.by_resource[resource]
                elif len(kept) < len(ids):
                    self.by_resource[resource] = kept
        self.impact.release(partitions)
        return gone

    def erase(self, customer_id: str, partition: int, at: float | None = None) -> None:
        """A tombstone: forget everything about the customer, and remember the
        id as erased (since ``at``, epoch seconds; default the worker's clock)
        for ``Limits.erased_retention_s``."""
        state = self.state(customer_id)
        if state is not None:
            del self.customers[customer_id]
            self._hydrated.pop(customer_id, None)
            self._unindex(state)
            partition = state.partition
        self.impact.forget(customer_id, partition)
        self.dirty.discard(customer_id)
        self.erased[customer_id] = partition
        self._unerase(customer_id)  # erased again: its memory starts afresh, at the back
        self._remember_erased(customer_id, partition, self.clock() if at is None else at)

    def _new_customer(self, customer_id: str, partition: int) -> CustomerState:
        state = CustomerState(customer_id, partition)
        self.customers[customer_id] = state
        self._hydrated[customer_id] = self._flushes
        self.erased.pop(customer_id, None)
        self._unerase(customer_id)  # (a customer record after a tombstone: registered afresh)
        return state

    # ======================================================================
    # erasure that holds (contract v2)
    # ======================================================================
    # An erased id is remembered for ``erased_retention_s`` (judged on the
    # latest event time applied, never ahead of the wall clock), at most
    # ``max_erased`` of them (the oldest erasure forgotten first, counted in
    # Tally.limits["erased_forgotten"]). Its changelog value is an erased
    # marker (``erased_marker``), not a null, so that a restarted worker or the
    # partition's next owner remembers it too (``adopt_erased``). Once
    # forgotten, the id is listed in ``erased`` once more with no marker, so
    # that the flush writes a real null and compaction drops the marker.
    def erased_marker(self, customer_id: str) -> bytes | None:
        """What the changelog must hold for a customer listed in the ``erased``
        of ``take_dirty_ids``: its erased marker while the id is remembered as
        erased, None (a real null tombstone) once forgotten or registered again."""
        if customer_id in self.customers:
            return None
        found = self._erased_entry(customer_id)
        return None if found is None else erased_marker(found[0], found[1])

    def adopt_erased(self, customer_id: str, partition: int, erased_at: float) -> None:
        """Take over an erased id restored from the changelog (its erased marker,
        see ``customer.read_erased_marker``)."""
        if customer_id in self.customers:
            return  # registered again since: the customer wins
        self._unerase(customer_id)
        self._remember_erased(customer_id, partition, erased_at)
        self._erased_unsorted.add(partition)

    def is_erased(self, customer_id: str) -> bool:
        """Whether the id is remembered as erased (no customer of that id here)."""
        return customer_id not in self.customers and self._erased_entry(customer_id) is not None

    @property
    def erased_count(self) -> int:
        """How many erased ids are remembered."""
        return self._erased_count

    def _erased_entry(self, customer_id: str) -> tuple[int, float] | None:
        for partition, ids in self._erased_ids.items():
            at = ids.get(customer_id)
            if at is not None:
                return partition, at
        return None

    def _remember_erased(self, customer_id: str, partition: int, at: float) -> None:
        ids = self._erased_ids.get(partition)
        if ids is None:
            ids = self._erased_ids[partition] = OrderedDict()
        ids[customer_id] = at
        self._erased_count += 1
        while self._erased_count > self.limits.max_erased:
            self._sort_erased()
            oldest, ids = min(((p, ids) for p, ids in self._erased_ids.items() if ids),
                              key=lambda item: next(iter(item[1].values())))
            gone, _ = ids.popitem(last=False)
            self._erased_count -= 1
            self.tally.limits["erased_forgotten"] += 1
            self._forgotten(gone, oldest)

    def _unerase(self, customer_id: str) -> None:
        """The id is no longer erased (registered again, or erased anew)."""
        if self._erased_count:
            for ids in self._erased_ids.values():
                if ids.pop(customer_id, None) is not None:
                    self._erased_count -= 1
                    return

    def _forgotten(self, customer_id: str, partition: int) -> None:
        """An erased id's memory ended: the flush writes a real null for it."""
        if customer_id not in self.customers:
            self.erased[customer_id] = partition

    def _erased_horizon(self, when: float = 0.0) -> float:
        return min(max(self.event_clock, when), self.clock()) - self.limits.erased_retention_s

    def _still_erased(self, customer_id: str, when: float) -> bool:
        """Whether a record of event time ``when`` for this id finds it erased."""
        found = self._erased_entry(customer_id)
        if found is None:
            return False
        partition, at = found
        if at >= self._erased_horizon(when):
            return True
        del self._erased_ids[partition][customer_id]
        self._erased_count -= 1
        self._forgotten(customer_id, partition)
        return False

    def _sort_erased(self) -> None:
        for partition in self._erased_unsorted:
            ids = self._erased_ids.get(partition)
            if ids:
                self._erased_ids[partition] = OrderedDict(sorted(ids.items(), key=lambda item: item[1]))
        self._erased_unsorted.clear()

    def _sweep_erased(self) -> None:
        """Forget the erased ids whose retention is over (oldest first)."""
        if not self._erased_count:
            return
        self._sort_erased()
        horizon = self._erased_horizon()
        for partition, ids in self._erased_ids.items():
            while ids:
                customer_id, at = next(iter(ids.items()))
                if at >= horizon:
                    break
                ids.popitem(last=False)
                self._erased_count -= 1
                self._forgotten(customer_id, partition)

    def _index(self, state: CustomerState) -> None:
        for resource in state.resources:
            self.by_resource.setdefault(resource, []).append(state.customer_id)

    def _unindex(self, state: CustomerState) -> None:
        for resource in state.resources:
            ids = self.by_resource.get(resource)
            if ids is not None:
                try:
                    ids.remove(state.customer_id)
                except ValueError:
                    pass
                if not ids:
                    del self.by_resource[resource]

    # ======================================================================
    # scoring
    # ======================================================================
    def _advance(self, state: CustomerState, when: float) -> None:
        if when > state.clock:
            if state.clock:
                self.model.decay(state.penalties, when - state.clock)
            state.clock = when

    def _count_incidents(self, state: CustomerState, points, when: float, resource: str | None) -> None:
        """Count what went wrong per reason since its points last faded away,
        for reasons in plain words ("3 dropped calls on CELL-0042 since 10:05")."""
        incidents = state.incidents
        if incidents is None:
            incidents = state.incidents = {}
        for code, _ in points:
            entry = incidents.get(code)
            if entry is None or state.penalties.get(code, 0.0) < INCIDENT_RESET_POINTS:
                entry = incidents[code] = [0, int(when // 60), resource]
            entry[0] += 1
            if resource is not None:
                entry[2] = resource

    def _rescore(self, state: CustomerState, when: float) -> None:
        previous = state.score
        score = self.model.score(state.penalties, state.fault_levels)
        state.score = score
        state.trend = record_trend(state.trend, int(when // 60), previous, score)
        if state.incidents:
            penalties = state.penalties
            for code in [c for c in state.incidents if c not in penalties]:
                del state.incidents[code]
        state.updated_at = max(state.updated_at, when)
        # highest score per hour over the drop window, for "down N points within 24 h"
        bucket = float(int(when // HOUR))
        peaks = state.peaks
        if peaks and peaks[-1][0] == bucket:
            if score > peaks[-1][1]:
                peaks[-1][1] = score
        elif not peaks or bucket > peaks[-1][0]:
            peaks.append([bucket, score])
            if len(peaks) > 26:
                del peaks[0]
        if state.impacts:
            self.impact.rescored(state)
        self.dirty.add(state.customer_id)

    def score_view(self, state: CustomerState) -> tuple[float, dict, list[dict]]:
        score, dimensions, contributions = self.model.evaluate(state.penalties, state.fault_levels)
        return score, dimensions, self.model.reasons(contributions)

    # ======================================================================
    # fault impact and outage episodes
    # ======================================================================
    def _impacting_now(self, state: CustomerState) -> dict[str, Alarm]:
        found: dict[str, Alarm] = {}
        for resource in state.resources:
            for alarm_id in self.alarms.impacting_on(resource):
                found[alarm_id] = self.alarms.alarms[alarm_id]
        return found

    def _reconcile(self, state: CustomerState, when: float | None, cause: Alarm | None) -> None:
        """Bring the customer's known impacts in line with the registry; fire
        the outage rules for what started and ended. Idempotent.

        ``when`` is the event time of the record that caused the check (an
        alarm change or a customer record); None when catching up after a
        restart, where each start and end takes its alarm's own time.
        """
        current = self._impacting_now(state)
        known = state.impacts
        joined = sorted((a for a in current.values() if a.alarm_id not in known),
                        key=lambda a: (a.raised_at, a.alarm_id))
        left = sorted(a for a in known if a not in current)
        levels: dict[str, float] = {}
        points = self.model.fault_points
        for alarm in current.values():
            level = points.get(alarm.severity, 0.0)
            if level > levels.get(alarm.resource_id, 0.0):
                levels[alarm.resource_id] = level
        # known alarms that now qualify for an outage notice the episode has not
        # sent (escalated from minor to major, no longer planned work)
        escalated = sorted((a for a in current.values() if a.alarm_id in known and self._unnotified(state, a)),
                           key=lambda a: (a.raised_at, a.alarm_id))
        if not joined and not left and not escalated and levels == state.fault_levels:
            return
        previous = state.score
        # when each change happened
        ends = {a: self._end_time(state, a, when) for a in left}
        starts = {}
        for alarm in joined:
            if when is None or cause is not None:
                starts[alarm.alarm_id] = (alarm.raised_at, when if when is not None else alarm.raised_at)
            else:  # the customer moved onto a resource already in fault
                moved = max(alarm.raised_at, when)
                starts[alarm.alarm_id] = (moved, moved)
        latest = max([*ends.values(), *(at for _, at in starts.values()), when or 0.0])
        self._advance(state, latest)
        # an alarm that stops holding its level leaves a fading residue
        for resource, level in state.fault_levels.items():
            if levels.get(resource, 0.0) < level:
                code = "fault." + resource
                if level > state.penalties.get(code, 0.0):
                    if state.penalties is NO_ENTRIES:
                        state.penalties = {}
                    state.penalties[code] = level
        state.fault_levels = levels if levels else NO_ENTRIES
        self._rescore(state, latest)
        for alarm_id in left:
            self._end_impact(state, alarm_id, ends[alarm_id])
        for alarm in joined:
            start, at = starts[alarm.alarm_id]
            if state.impacts is NO_ENTRIES:
                state.impacts = {}
            state.impacts[alarm.alarm_id] = start
            self._join_episode(state, alarm, at, previous)
        for alarm in escalated:
            self._join_episode(state, alarm, latest if when is None else when, previous)
        self.impact.sync(state, self.alarms.alarms, left)
        if state.episode is not None and not state.impacts:
            self._end_episode(state, max(ends.values(), default=latest), previous)
        if state.score < previous:  # a fault sank the score: the score rules apply too
            self._score_rules(state, latest, previous)

    def _end_time(self, state: CustomerState, alarm_id: str, when: float | None) -> float:
        alarm = self.alarms.get(alarm_id)
        if alarm is not None and alarm.cleared_at is not None:
            return alarm.cleared_at
        return when if when is not None else state.clock

    def _end_impact(self, state: CustomerState, alarm_id: str, at: float) -> None:
        """An alarm stopped impacting the customer. If it cleared, the time it
        impacted them counts towards the episode's credit: the episode keeps the
        span from the earliest start to the latest clear of its cleared alarms
        (``credit``; planned work apart in ``planned_credit``). One that stopped
        without a clear (the customer moved off, it stopped being
        service-affecting, it expired) counts for no credit."""
        start = state.impacts.pop(alarm_id)
        alarm = self.alarms.get(alarm_id)
        episode = state.episode
        if episode is None or alarm is None or alarm.cleared_at is None or alarm.expired:
            return
        key = "planned_credit" if alarm.planned else "credit"
        end = max(alarm.cleared_at, start)
        span = episode.get(key)
        if span is None:
            episode[key] = [start, end]
        else:
            span[0], span[1] = min(span[0], start), max(span[1], end)

    def _credit(self, state: CustomerState, episode: dict, at: float) -> None:
        """The episode ended: the fault_cleared rules (service_credit) fire once
        for it when its cleared alarms impacted the customer for more than
        ``min_impact``, from the first one's start to the last one's clear;
        ``faults`` names every alarm of the episode. Planned work gives no
        credit of its own (counted as held back when it alone lasted that long)."""
        span, planned = episode.get("credit"), episode.get("planned_credit")
        for rule in self._rules[RuleEvent.fault_cleared]:
            if not self._selects(rule, state):
                continue
            if span is not None and span[1] - span[0] > rule.min_impact:
                self._fire(rule, state, at, f"{episode['id']}@{episode['start']}", state.score,
                           list(episode["alarms"]))
            elif planned is not None and planned[1] - planned[0] > rule.min_impact:
                self._suppress(rule, "planned_work")

    def _join_episode(self, state: CustomerState, alarm: Alarm, at: float, previous: float) -> None:
        episode = state.episode
        if episode is None:
            episode = state.episode = {"id": alarm.alarm_id, "start": at, "alarms": [], "notified": False,
                                       "planned": False}
        if alarm.alarm_id not in episode["alarms"]:
            if len(episode["alarms"]) < self.limits.max_episode_alarms:
                episode["alarms"].append(alarm.alarm_id)
            else:  # still impacts the score; not listed (bounded: Limits.max_episode_alarms)
                self.tally.limits["episode_alarms"] += 1
        for rule in self._rules[RuleEvent.outage_started]:
            if alarm.severity not in rule.severities or not self._selects(rule, state):
                continue
            if alarm.planned:
                episode["planned"] = True
                self._suppress(rule, "planned_work")
            elif rule.id in episode.get("rules", ()):
                self._suppress(rule, "same_episode")
            elif self._fire(rule, state, at, f"{episode['id']}@{episode['start']}", previous,
                            list(episode["alarms"])):
                episode["notified"] = True
                episode.setdefault("rules", []).append(rule.id)

    def _unnotified(self, state: CustomerState, alarm: Alarm) -> bool:
        """Whether an alarm of the customer's episode qualifies for an outage rule the episode has not fired."""
        episode = state.episode
        if episode is None or alarm.planned:
            return False
        done = episode.get("rules", ())
        return any(alarm.severity in rule.severities and rule.id not in done and self._selects(rule, state)
                   for rule in self._rules[RuleEvent.outage_started])

    def _end_episode(self, state: CustomerState, at: float, previous: float) -> None:
        episode = state.episode
        state.episode = None
        self._credit(state, episode, at)
        for rule in self._rules[RuleEvent.outage_ended]:
            if not self._selects(rule, state):
                continue
            if episode["notified"]:
                self._fire(rule, state, at, f"{episode['id']}@{episode['start']}", previous,
                           list(episode["alarms"]))
            elif episode["planned"]:
                self._suppress(rule, "planned_work")

    # ======================================================================
    # score rules
    # ======================================================================
    def _score_rules(self, state: CustomerState, when: float, previous: float) -> None:
        score = state.score
        for rule in self._rules[RuleEvent.score]:
            below = rule.score_below is not None and score < rule.score_below
            dropped = False
            if not below and rule.drop_points is not None and score + rule.drop_points <= 100.0:
                # (a score within drop_points of 100 cannot have dropped that far)
                horizon = (when - rule.drop_window) // HOUR
                # the score just before this change counts too: the peaks hold only
                # scores computed after a change, so a new or quiet customer's sudden
                # drop had no peak in the window to drop from
                peak = max((p[1] for p in state.peaks if p[0] >= horizon), default=previous)
                peak = max(peak, previous)
                dropped = peak - score >= rule.drop_points
            if not (below or dropped) or not self._selects(rule, state):
                continue
            if rule.hold_while_faulted and state.impacts:
                self._suppress(rule, "active_fault")
                continue
            self._fire(rule, state, when, _window(when, rule.cooldown), previous, sorted(state.impacts))

    # ======================================================================
    # firing
    # ======================================================================
    def _selects(self, rule: Rule, state: CustomerState) -> bool:
        if rule.value_tiers is not None and state.value_tier not in rule.value_tiers:
            return False
        if rule.segments is not None and state.segment not in rule.segments:
            return False
        return True

    def _suppress(self, rule: Rule, reason: str) -> None:
        self.tally.suppressed[(rule.channel, rule.trigger, reason)] += 1

    def _fire(self, rule: Rule, state: CustomerState, when: float, episode: str,
              previous: float | None, faults: list[str]) -> bool:
        if rule.requires_consent and not state.consent:
            self._suppress(rule, "no_consent")
            return False
        if rule.cooldown:
            last = state.fired.get(rule.id)
            if last is not None and when - last < rule.cooldown:
                self._suppress(rule, "cooldown")
                return False
        if rule.max_per_minute is not None:
            minute = when // 60
            slot = self._rate.setdefault(rule.id, [minute, 0])
            if slot[0] != minute:
                slot[0], slot[1] = minute, 0
            if slot[1] >= rule.max_per_minute:
                self._suppress(rule, "rate_limit")
                return False
            slot[1] += 1
        if state.fired is NO_ENTRIES:
            state.fired = {}
        state.fired[rule.id] = when
        _, _, reasons = self.score_view(state)
        self.firings.append(Firing(
            rule=rule, customer_id=state.customer_id, time=when, episode=episode,
            score=round(state.score, 1), previous_score=None if previous is None else round(previous, 1),
            reasons=reasons, faults=faults, value_tier=state.value_tier, segment=state.segment,
        ))
        self.tally.triggers[(rule.channel, rule.trigger)] += 1
        self.dirty.add(state.customer_id)
        return True

    # ======================================================================
    # output
    # ======================================================================
    def drain(self) -> tuple[list[Firing], list[Rejection], Tally]:
        firings, rejections, tally = self.firings, self.rejections, self.tally
        self.firings, self.rejections, self.tally = [], [], Tally()
        return firings, rejections, tally

    def take_dirty(self) -> tuple[list[CustomerState], dict[str, int]]:
        """The changed customers (loaded) and the erased ones, since the last call."""
        ids, erased = self.take_dirty_ids()
        return [self.state(c) for c in ids], erased

    def take_dirty_ids(self) -> tuple[list[str], dict[str, int]]:
        """The ids of the changed customers and the erased ones (id ->
        partition), since the last call; until the next ``dehydrate_idle`` they
        count as in flight (their stored form is not yet the written one).

        For each erased id the flush writes a tombstone (null) to ``cx.scores``
        and ``erased_marker(id)`` to the changelog: the erased marker while the
        id is remembered as erased, None (a real null) for an id whose erasure
        memory just ended (retention over, or beyond ``max_erased``)."""
        ids = [c for c in sorted(self.dirty) if c in self.customers]
        erased = self.erased
        self.dirty, self.erased = set(), {}
        self._in_flight.update(ids)
        return ids, erased

    def flush_view(self, customer_id: str) -> tuple[CustomerState | None, bool]:
        """A customer for the flush to write: (its state, whether it is in use).
        A customer put away is loaded for the moment only, not brought back into
        use; the flush hands its new stored form back with ``put_back``."""
        value = self.customers.get(customer_id)
        if value is None or value.__class__ is CustomerState:
            return value, True
        return CustomerState.load(value), False

    def put_back(self, customer_id: str, stored: bytes) -> None:
        """The new stored form of a customer the flush loaded with ``flush_view``
        (if it is still put away: in use again, its object is the truth)."""
        if self.customers.get(customer_id).__class__ is bytes:
            self.customers[customer_id] = stored

    def take_forwards(self) -> list[tuple[str, InputRecord]]:
        forwards, self.forwards = self.forwards, []
        return forwards


def _window(when: float, cooldown: float) -> str:
    """What makes a score-rule firing one firing: its cooldown window of event
    time. After a crash, records may be replayed against alarms in another
    order and the rule may fire a few minutes earlier or later; within the
    same window it still carries the same CloudEvent id."""
    if cooldown <= 0:
        return _fmt(when)
    return f"w{int(when // cooldown)}"


def _fmt(when: float) -> str:
    return repr(round(when, 3))
