"""What cxstream remembers about one customer, and how it is stored.

Hot state is a plain object per customer (fast to update); it is written to the
changelogged table as compact JSON once per flush interval, only when dirty.
"""

from __future__ import annotations

import zlib
from sys import intern

import orjson

# How many recent quality event ids a customer remembers to drop duplicates.
RECENT_IDS = 32

#: The one empty mapping every customer without penalties, fault levels,
#: impacts or fired rules shares, instead of four empty dicts each (~256 B per
#: customer in use, freed memory that stays with the process after a burst:
#: issue 3). Never written to: the engine replaces it with a dict of the
#: customer's own before the first entry, and dump() checks it is still empty.
NO_ENTRIES: dict = {}


def event_id_hash(event_id: str) -> int:
    """A stable 63-bit hash of an event id (Python's hash() changes per process).

    CRC-32 and Adler-32 side by side: 0.15 µs against 0.5 µs for an 8-byte
    BLAKE2b, which was a tenth of the worker's time per record in a profile
    (issue 3). It only has to tell apart the last RECENT_IDS ids of one
    customer, not resist an adversary."""
    raw = event_id.encode()
    return (zlib.crc32(raw) << 31) ^ zlib.adler32(raw)


class CustomerState:
    __slots__ = (
        "customer_id", "partition", "segment", "value_tier", "consent", "resources", "profile",
        "clock", "penalties", "fault_levels", "score", "published", "peaks", "recent",
        "impacts", "episode", "fired", "updated_at", "quality_clock", "trend", "incidents",
    )

    def __init__(self, customer_id: str, partition: int = 0):
        self.customer_id = customer_id
        self.partition = partition
        self.segment: str | None = None
        self.value_tier = "bronze"
        self.consent = False
        self.resources: tuple[str, ...] = ()
        self.profile = False  # a customer record has been seen
        self.clock = 0.0  # latest event time applied
        self.penalties: dict[str, float] = NO_ENTRIES
        self.fault_levels: dict[str, float] = NO_ENTRIES
        self.score = 100.0
        self.published: float | None = None  # score in the last cx.scores document
        self.peaks: list[list[float]] = []  # [hour bucket, highest score in it]
        self.recent: list[int] = []  # hashes of recent event ids
        self.impacts: dict[str, float] = NO_ENTRIES  # alarm id -> when it started impacting
        # the current outage episode: {"id", "start", "alarms": [...], "notified": bool, "planned": bool}
        self.episode: dict | None = None
        self.fired: dict[str, float] = NO_ENTRIES  # rule id -> event time it last fired
        self.updated_at = 0.0
        self.quality_clock = 0.0  # latest quality event time (lateness is judged against it)
        # the score over the last 24 h for the care page: flat [minute, score, minute, score, ...],
        # integers, at most TREND_POINTS points (see trend.py for how it stays that small)
        # (None, not an empty container, while there is nothing: a million idle customers
        # would otherwise leave a million freed containers' worth of fragmented heap)
        self.trend: list[int] | None = None
        # reason code -> [observations, since minute, resource]: "3 dropped calls on CELL-0042 since 10:05"
        self.incidents: dict[str, list] | None = None

    # --- duplicates ---------------------------------------------------------
    def seen(self, event_hash: int) -> bool:
        return event_hash in self.recent

    def remember(self, event_hash: int) -> None:
        recent = self.recent
        recent.append(event_hash)
        if len(recent) > RECENT_IDS:
            del recent[0]

    # --- storage -----------------------------------------------------------
    # Stored as a JSON array in this field order (compact and fast to encode);
    # the first element is the format version.
    _FIELDS = ("customer_id", "partition", "segment", "value_tier", "consent", "resources", "profile",
               "clock", "penalties", "fault_levels", "score", "published", "peaks", "recent",
               "impacts", "episode", "fired", "updated_at", "quality_clock", "trend", "incidents")
    # 2 added trend and incidents; 3 changed event_id_hash (a format 1 or 2
    # customer loads, and forgets its recent event ids: they were other hashes)
    FORMAT = 3

    def dump(self) -> bytes:
        if NO_ENTRIES:
            raise RuntimeError(f"the shared empty mapping was written to: {NO_ENTRIES!r}")
        # Copied into an exact-size object: orjson's result keeps the capacity
        # of its working buffer (~8 KB of resident memory each, measured), and
        # these bytes live on in the table and in idle customers.
        values = [
            self.FORMAT, self.customer_id, self.partition, self.segment, self.value_tier, self.consent,
            self.resources, self.profile, self.clock, self.penalties, self.fault_levels, self.score,
            self.published, self.peaks, self.recent, self.impacts, self.episode, self.fired, self.updated_at,
            self.quality_clock,
        ]
        if self.trend or self.incidents:  # most customers have neither: not even two nulls stored
            values += (self.trend or None, self.incidents or None)
        return bytes(memoryview(orjson.dumps(values)))

    @classmethod
    def load(cls, raw: bytes) -> "CustomerState":
        if is_erased_marker(raw):
            raise ValueError("this stored value is an erased marker, not a customer state "
                             "(check is_erased_marker first and hand it to Engine.adopt_erased)")
        values = orjson.loads(raw)
        version = values[0]
        if version != cls.FORMAT and version not in (1, 2):
            raise ValueError(f"customer state format {version!r} is not {cls.FORMAT}")
        state = cls.__new__(cls)
        if len(values) == len(cls._FIELDS) + 1:
            _assign_all(state, values)
        else:  # format 1, or no trend and no incidents stored
            state.trend = state.incidents = None
            _assign_core(state, values)
        if version != cls.FORMAT:
            state.recent = []
        if not state.penalties:
            state.penalties = NO_ENTRIES
        if not state.fault_levels:
            state.fault_levels = NO_ENTRIES
        if not state.impacts:
            state.impacts = NO_ENTRIES
        if not state.fired:
            state.fired = NO_ENTRIES
        # one shared object per distinct text: many customers share a tier,
        # a segment and their cells, and each copy is 50-60 B per customer in use
        state.resources = tuple([intern(resource) for resource in state.resources])
        state.value_tier = intern(state.value_tier)
        if state.segment is not None:
            state.segment = intern(state.segment)
        return state


# --- erased markers ----------------------------------------------------------
#
# What the changelog holds for a customer erased by a tombstone, instead of a
# null: the compact JSON array ``["erased", <partition>, <erased_at>]`` (the
# string first, where a customer state's stored form starts with its integer
# format version), e.g. ``["erased",3,1795168800.0]``. ``erased_at`` is epoch
# seconds: the tombstone's Kafka timestamp (the worker's clock when it had
# none). On restore, a marker becomes an erased entry again
# (``Engine.adopt_erased``), so erasure holds across restarts and rebalances
# for ``erased_retention_s``; once the engine forgets the id it asks for a real
# null on the changelog (``Engine.erased_marker`` returns None), which
# compaction then removes.

_ERASED_PREFIX = b'["erased",'


def erased_marker(partition: int, erased_at: float) -> bytes:
    """The stored value that records an erased customer (see above)."""
    return orjson.dumps(["erased", int(partition), float(erased_at)])


def is_erased_marker(raw: bytes | None) -> bool:
    """Whether a stored value is an erased marker rather than a customer state."""
    return raw is not None and raw[:10] == _ERASED_PREFIX


def read_erased_marker(raw: bytes) -> tuple[int, float]:
    """(partition, erased_at) of an erased marker; ValueError for anything else."""
    if not is_erased_marker(raw):
        raise ValueError("not an erased marker")
    values = orjson.loads(raw)
    if (len(values) != 3 or not isinstance(values[1], int) or isinstance(values[1], bool)
            or not isinstance(values[2], (int, float)) or isinstance(values[2], bool)):
        raise ValueError(f"an erased marker is [\"erased\", partition, erased_at], not {raw[:80]!r}")
    return values[1], float(values[2])


def _assigner(names: tuple[str, ...]):
    """A function that sets these attributes from ``values[1:]`` in one
    unpacking: about five times faster than setattr in a loop, and loading
    an idle customer is on the hot path (issue 3)."""
    targets = ", ".join(f"state.{name}" for name in names)
    namespace: dict = {}
    exec(f"def assign(state, values):\n    {targets}, = values[1:{len(names) + 1}]\n", namespace)
    return namespace["assign"]


_assign_all = _assigner(CustomerState._FIELDS)
_assign_core = _assigner(CustomerState._FIELDS[:-2])
