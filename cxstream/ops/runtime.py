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
