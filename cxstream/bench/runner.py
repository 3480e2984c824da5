"""``cxstream bench``: options, the run of every section, the table and the JSON file.

``add_arguments(parser)`` adds the options to an argparse parser;
``run_bench(settings, args)`` runs and returns the exit status (0: every
selected section produced its figures; 1: a section failed; 130: interrupted).
``python -m cxstream.bench.runner`` runs it with settings from ``CXSTREAM_*``.

With ``CXSTREAM_BROKER`` empty the embedded broker (Tansu, in memory) is
started for the run and stopped at its end; otherwise the benchmark runs on
that cluster, on topics of its own (``bench-<run>-<section>.*``), which it
deletes again at the end of each section.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback
import uuid
from pathlib import Path
from typing import Any, Callable, TextIO

import orjson

from cxstream.ops.settings import Settings

from . import SECTIONS
from .common import BenchContext, SectionError

__all__ = ["add_arguments", "run_bench", "main", "DEFAULTS", "SMOKE"]

#: Full-size defaults (issue 3's figures).
DEFAULTS: dict[str, Any] = {
    "customers": 50_000, "events": 300_000, "partitions": 4, "seed": 7, "latency_rate": 5000.0,
    "latency_seconds": 20.0, "fanout": 10_000, "memory_customers": "100000,1000000",
    "recovery_customers": 100_000,
}
#: --smoke: tiny sizes, for a test that the benchmark runs and reports (figures mean little).
SMOKE: dict[str, Any] = {
    "customers": 2_000, "events": 20_000, "latency_seconds": 3.0, "fanout": 300,
    "memory_customers": "2000", "recovery_customers": 2_000,
}


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options of ``cxstream bench`` (sizes default to None: resolved by :func:`resolve`)."""
    add = parser.add_argument
    add("--customers", type=int, default=None, help="customers of the main workload (default 50000)")
    add("--events", type=int, default=None, help="quality records of the main workload (default 300000)")
    add("--partitions", type=int, default=None, help="partitions of every topic (default 4)")
    add("--seed", type=int, default=None, help="seed of the generated workload (default 7)")
    add("--latency-rate", type=float, default=None, help="offered load of the latency section, records/s "
        "(default 5000)")
    add("--latency-seconds", type=float, default=None, help="duration of the latency section (default 20)")
    add("--fanout", type=int, default=None, help="customers on the site whose alarm is timed (default 10000)")
    add("--memory-customers", default=None, help="comma list of tracked-customer counts for the memory "
        "section (default 100000,1000000)")
    add("--recovery-customers", type=int, default=None, help="customers in the changelog for the recovery "
        "section (default 100000)")
    add("--only", default=None, help="comma list of sections to run: " + ",".join(SECTIONS) + " (default all)")
    add("--smoke", action="store_true", help="tiny sizes: checks that the benchmark runs, in about a minute")
    add("--json", dest="json_path", type=Path, default=None, metavar="FILE",
        help="also write the figures as JSON to FILE")
    add("--keep", action="store_true", help="keep the work directory (worker logs, state) after the run")
    return parser


def resolve(args: argparse.Namespace) -> argparse.Namespace:
    """Fill in sizes: an explicit option wins, then --smoke's, then the defaults; validate."""
    resolved = argparse.Namespace(**vars(args))
    smoke = bool(getattr(args, "smoke", False))
    for name, default in DEFAULTS.items():
        value = getattr(args, name, None)
        if value is None:
            value = SMOKE.get(name, default) if smoke else default
        setattr(resolved, name, value)
    memory = resolved.memory_customers
    if isinstance(memory, str):
        try:
            memory = [int(part.replace("_", "")) for part in memory.split(",") if part.strip()]
        except ValueError:
            raise SystemExit(f"cxstream bench: --memory-customers takes a comma list of counts, not {memory!r}")
    resolved.memory_customers = memory
    only = getattr(args, "only", None)
    chosen = [part.strip() for part in only.split(",") if part.strip()] if only else list(SECTIONS)
    unknown = [name for name in chosen if name not in SECTIONS]
    if unknown:
        raise SystemExit(f"cxstream bench: unknown section(s) {', '.join(unknown)} in --only; "
                         f"choose from {','.join(SECTIONS)}")
    resolved.only = [name for name in SECTIONS if name in chosen]
    for name in ("customers", "events", "partitions", "fanout", "recovery_customers"):
        if getattr(resolved, name) < 1:
            raise SystemExit(f"cxstream bench: --{name.replace('_', '-')} must be at least 1")
    if resolved.latency_rate <= 0 or resolved.latency_seconds <= 0 or not memory or min(memory) < 1:
        raise SystemExit("cxstream bench: --latency-rate, --latency-seconds and --memory-customers must be positive")
    return resolved


def _runners() -> dict[str, Callable[[BenchContext, Any], dict[str, Any]]]:
    from .baseline import run_baseline
    from .ceiling import run_ceiling
    from .sections import run_cxstream, run_fanout, run_latency, run_memory, run_recovery

    return {"ceiling": run_ceiling, "baseline": run_baseline, "cxstream": run_cxstream, "latency": run_latency,
            "fanout": run_fanout, "memory": run_memory, "recovery": run_recovery}


def _summary(name: str, figures: dict[str, Any]) -> str:
    """One line per finished section, printed as the run goes."""
    if figures.get("status") != "ok":
        return f"  {name}: FAILED — {str(figures.get('error', '')).splitlines()[0] if figures.get('error') else ''}"
    took = f" ({figures.get('section_s', 0):.0f} s)"
    if name in ("ceiling", "baseline", "cxstream"):
        return f"  {name}: {figures.get('events_per_s') or 0:,.0f} events/s{took}"
    if name == "latency":
        p = figures.get("processing") or {}
        e = figures.get("end_to_end") or {}
        fmt = lambda v: f"{v * 1000:.1f} ms" if v is not None else "—"  # noqa: E731
        return f"  latency: processing p99 {fmt(p.get('p99'))}, end to end p99 {fmt(e.get('p99'))}{took}"
    if name == "fanout":
        return f"  fanout: last of {figures.get('on_site', 0):,} notices after {figures.get('last_s') or 0:.2f} s{took}"
    if name == "memory":
        parts = [f"{p['customers']:,}: {p['bytes_per_customer']:,.0f} B/customer"
                 for p in figures.get("points", []) if p.get("bytes_per_customer") is not None]
        return f"  memory: {'; '.join(parts) or '—'}{took}"
    if name == "recovery":
        return f"  recovery: ready with {figures.get('customers', 0):,} customers after " \
               f"{figures.get('recovered_s') or 0:.1f} s{took}"
    return f"  {name}: done{took}"


def _loadavg() -> float | None:
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


def _versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for module in ("faust", "aiokafka", "confluent_kafka", "orjson"):
        try:
            found[module] = str(getattr(__import__(module), "__version__", "?"))
        except Exception:
            pass
    return found


def run_bench(settings: Settings, args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Run the selected sections, print the table, write the JSON file; returns the exit status."""
    out = out or sys.stdout
    args = resolve(args)
    workdir = Path(tempfile.mkdtemp(prefix="cxstream-bench-"))
    broker = None
    status = 1
    restore_signal = _sigterm_as_interrupt()
    sections: dict[str, dict[str, Any]] = {name: {"status": "skipped"} for name in SECTIONS}
    began = time.monotonic()
    ctx: BenchContext | None = None

    def say(text: str) -> None:
        out.write(text + "\n")
        out.flush()

    try:
        embedded = not settings.broker
        if embedded:
            from cxstream.ops.broker import EmbeddedBroker

            broker = EmbeddedBroker(log_dir=workdir / "broker").start()
            settings = settings.model_copy(update={"broker": broker.url})
            say(f"cxstream bench: embedded broker (Tansu) on {broker.bootstrap}; work directory {workdir}")
        else:
            say(f"cxstream bench: broker {settings.bootstrap}; work directory {workdir}")
        run_id = uuid.uuid4().hex[:6]
        ctx = BenchContext(settings, args, workdir, run_id, out, embedded=embedded)
        from .workload import Workload

        workload = Workload(args.seed, args.customers, args.events)
        runners = _runners()
        interrupted = False
        for name in args.only:
            say(f"[{name}] running …")
            started = time.monotonic()
            load_before = _loadavg()
            try:
                figures = runners[name](ctx, workload)
                figures["status"] = "ok"
            except KeyboardInterrupt:
                figures = {"status": "error", "error": "interrupted"}
                interrupted = True
            except SectionError as error:
                figures = {"status": "error", "error": str(error)}
            except Exception as error:  # a bug or an unexpected failure: report it, go on
                figures = {"status": "error", "error": f"{type(error).__name__}: {error}",
                           "traceback": traceback.format_exc()}
            figures["section_s"] = time.monotonic() - started
            # the machine's 1-minute load average before and after: other work on the machine shows here
            figures["loadavg"] = [load_before, _loadavg()]
            sections[name] = figures
            say(_summary(name, figures))
            ctx.delete_topics()
            if interrupted:
                break
        meta = {
            "broker_kind": "embedded Tansu broker" if embedded else f"broker {settings.bootstrap}",
            "broker": settings.bootstrap, "cpus": os.cpu_count(), "platform": platform.platform(),
            "customers": args.customers, "events": args.events, "partitions": args.partitions, "seed": args.seed,
            "latency_rate": args.latency_rate, "latency_seconds": args.latency_seconds, "fanout": args.fanout,
            "memory_customers": args.memory_customers, "recovery_customers": args.recovery_customers,
            "sections": args.only, "smoke": bool(args.smoke), "versions": _versions(),
            "workdir": str(workdir), "run_id": run_id, "duration_s": time.monotonic() - began,
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - (time.monotonic() - began))),
        }
        from .report import build_report, render_table

        report = build_report(meta, sections)
        say("")
        say(render_table(report))
        if args.json_path is not None:
            args.json_path.parent.mkdir(parents=True, exist_ok=True)
            args.json_path.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY,
                                                    default=str))
            say(f"\nfigures written to {args.json_path}")
        failed = [name for name in args.only if sections[name].get("status") != "ok"]
        if interrupted:
            status = 130
        elif failed:
            say(f"\nsections that failed: {', '.join(failed)} (logs under {workdir})")
            status = 1
        else:
            status = 0
    except KeyboardInterrupt:
        say("\ninterrupted")
        status = 130
    finally:
        if broker is not None:
            broker.stop()
        restore_signal()
        keep = bool(getattr(args, "keep", False)) or status != 0
        if keep:
            say(f"work directory kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return status


def _sigterm_as_interrupt() -> Callable[[], None]:
    """SIGTERM ends the run like Ctrl-C (workers and the broker are stopped on the way out)."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def interrupt(signum, frame):  # pragma: no cover - signal handler
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    return lambda: signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    from cxstream.ops.settings import ConfigurationError, load_settings

    parser = add_arguments(argparse.ArgumentParser(
        prog="python -m cxstream.bench.runner",
        description="Benchmark cxstream against a raw confluent-kafka loop and a plain faust agent."))
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except ConfigurationError as error:
        print(f"cxstream bench: {error}", file=sys.stderr)
        return 2
    return run_bench(settings, args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
