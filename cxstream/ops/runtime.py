"""Process-level tuning of the worker: the event loop and the garbage collector.

Measured with ``cxstream bench --only ceiling,cxstream`` on this 2-core machine
(issue 3; docs/benchmark.md): the worker went from 44,600 to 53,900 events/s
with the collector tuned, and to 57,200 with uvloop as well.

- The cyclic garbage collector: a worker holds hundreds of thousands of
  long-lived containers (customers in use, the alarm registry, faust's own
  objects). With CPython's default threshold a young collection runs every
  700 allocations and older ones rescan those objects over and over; cxstream
  creates few reference cycles, so collections are made rare, and everything
  alive once start-up is done is frozen out of them.
- uvloop, faust's recommended event loop, when installed: the loop's own
  overhead per callback and per socket read is lower.
"""

from __future__ import annotations

import asyncio
import gc
import logging

log = logging.getLogger(__name__)

# a young collection every 50,000 net allocations (CPython: 700)
GC_THRESHOLDS = (50_000, 20, 100)


def use_fast_event_loop() -> str:
    """Install uvloop's event loop policy when uvloop is there; the loop's name."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency; stay usable without it
        return "asyncio"
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return "uvloop"


def tune_garbage_collector() -> None:
    gc.set_threshold(*GC_THRESHOLDS)


def freeze_startup_objects() -> None:
    """Everything alive now lives for the whole process: never scan it again."""
    gc.collect()
    gc.freeze()


def _malloc_trim():
    """glibc's malloc_trim, or None on another C library."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):  # pragma: no cover - not glibc
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


_TRIM = _malloc_trim()


def release_free_memory() -> bool:
    """Give the C heap's free pages back to the system (glibc ``malloc_trim``).

    The output producer's queue (librdkafka, on its own threads) and large
    Python objects live in the C heap; after a burst such as a flush of many
    customers, glibc keeps the freed pages resident unless asked."""
    if _TRIM is None:
        return False
    _TRIM(0)
    return True
