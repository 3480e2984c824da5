"""The baseline: a straightforward faust-streaming agent doing the ceiling's work per event.

Run as a child process (``python -m cxstream.bench.baseline``), a faust worker
at log level INFO with the section's own app id (consumer group), in-memory
table store and short group timings on the embedded broker. Its one agent:

.. code-block:: python

    async for value in stream:                  # one faust event per record
        record = orjson.loads(value)
        entry = table.get(cid) or [0, 5.0]      # faust Table, changelogged
        table[cid] = [count + 1, min(mos)]      # a changelog record per write
        await output.send(key=..., value=...)   # one awaited send per record

(``await topic.send``: the coroutine returns once the message is in faust's
producer buffer, not when the broker acknowledged it.) The agent records the
wall-clock time of the first record and of each processed record, and writes
its progress to a JSON file every second and once it has processed the
expected number of records; the parent reads it and stops the worker.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

ENV_SETTINGS = "CXSTREAM_BENCH_BASELINE"  # the section's Settings as JSON


def _write(path: Path, data: dict[str, Any]) -> None:
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(data))
    os.replace(temporary, path)


def build_app(settings, output: str, expect: int, progress: Path):
    import faust
    import orjson

    began = time.time()
    app = faust.App(
        settings.app_id,
        broker=f"kafka://{settings.bootstrap}",
        store="memory://",
        datadir=str(settings.data_dir),
        web_enabled=False,
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=settings.heartbeat_interval_s,
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        consumer_auto_offset_reset="earliest",
        autodiscover=False,
        key_serializer="raw",
        value_serializer="raw",
    )
    if settings.security_protocol != "PLAINTEXT":
        from cxstream.stream.worker import faust_credentials

        app.conf.broker_credentials = faust_credentials(settings)
    source = app.topic(settings.topics.quality, key_serializer="raw", value_serializer="raw")
    out = app.topic(output, key_serializer="raw", value_serializer="raw")
    table = app.Table("per_customer", default=None, partitions=settings.partitions)  # json keys and values
    figures: dict[str, Any] = {"records": 0, "first": None, "last": None, "joined": None, "began": began,
                               "expected": expect, "done": False}

    @app.agent(source)
    async def per_event(stream):
        loads, dumps = orjson.loads, orjson.dumps
        count = 0
        async for value in stream:
            if count == 0:
                figures["first"] = time.time()
            record = loads(value)
            cid = record["customer_id"]
            mos = record["metrics"].get("mos")
            entry = table.get(cid) or [0, 5.0]
            entry = [entry[0] + 1, mos if mos is not None and mos < entry[1] else entry[1]]
            table[cid] = entry
            await out.send(key=cid.encode(), value=dumps({"customer_id": cid, "records": entry[0],
                                                          "min_mos": entry[1]}))
            count += 1
            figures["records"] = count
            figures["last"] = time.time()
            if count == expect:
                figures["done"] = True
                _write(progress, figures)

    @app.timer(1.0)
    async def report() -> None:
        if not figures["done"]:
            _write(progress, figures)

    @app.on_rebalance_complete.connect
    async def joined(sender, **kwargs) -> None:
        if figures["joined"] is None:
            figures["joined"] = time.time()

    return app


def main(argv: list[str] | None = None) -> int:
    import faust

    from cxstream.ops.settings import Settings

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", required=True)
    parser.add_argument("--expect", type=int, required=True)
    parser.add_argument("--progress", type=Path, required=True)
    args = parser.parse_args(argv)
    settings = Settings.model_validate_json(os.environ[ENV_SETTINGS])
    app = build_app(settings, args.output, args.expect, args.progress)
    worker = faust.Worker(app, loglevel="INFO", quiet=True)
    worker.execute_from_commandline()
    return 0


def run_baseline(ctx, workload) -> dict[str, Any]:
    """The baseline section: fresh topics, quality pre-produced, the faust agent from a cold start."""
    import subprocess

    from cxstream.ops.topics import ensure_topics

    from .common import SectionError, create_topic, proc_cpu_seconds
    from .workload import produce_pairs

    settings = ctx.section_settings("baseline")
    ensure_topics(settings)
    output = settings.topics.quality + "-out"
    create_topic(settings, output, ctx.args.partitions)
    quality = workload.quality()
    produce_pairs(settings, settings.topics.quality, quality)
    progress = ctx.workdir / "baseline" / "progress.json"
    log_path = ctx.log_path("baseline", "faust-agent")
    env = dict(os.environ, **{ENV_SETTINGS: settings.model_dump_json()})
    env.pop("CXSTREAM_BROKER", None)
    started = time.time()
    with open(log_path, "ab") as log:
        child = subprocess.Popen(
            [sys.executable, "-m", "cxstream.bench.baseline", "--output", output, "--expect", str(len(quality)),
             "--progress", str(progress)],
            env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    figures: dict[str, Any] = {}
    problem = None
    cpu = None
    try:
        last_count, last_move = 0, time.monotonic()
        while True:
            time.sleep(0.2)  # polling the agent's progress file
            if progress.exists():
                try:
                    figures = json.loads(progress.read_text())
                except ValueError:
                    continue
            if figures.get("done"):
                break
            if child.poll() is not None:
                problem = f"the faust agent exited with {child.returncode} (log {log_path})"
                break
            count = figures.get("records", 0)
            if count != last_count:
                last_count, last_move = count, time.monotonic()
            idle = time.monotonic() - last_move
            if (count == 0 and idle > 120) or (count and idle > 60):
                problem = (f"the faust agent stalled at {count:,} of {len(quality):,} records "
                           f"(nothing new for {idle:.0f} s; log {log_path})")
                break
        cpu = proc_cpu_seconds(child.pid)
    finally:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(30)
            except subprocess.TimeoutExpired:  # faust-streaming #324: stop can hang in "Stopping"
                child.kill()
                child.wait(10)
    first, last, count = figures.get("first"), figures.get("last"), figures.get("records", 0)
    if problem and not count:
        raise SectionError(problem)
    seconds = (last - first) if first and last and last > first else None
    result = {
        "records": count,
        "expected": len(quality),
        "seconds": seconds,
        "events_per_s": count / seconds if seconds else None,
        "join_s": (figures["joined"] - started) if figures.get("joined") else None,
        "first_record_s": (first - started) if first else None,
        "cpu_s": cpu,
        "send": "await topic.send (per record)",
        "complete": bool(figures.get("done")),
    }
    if problem:
        result["problem"] = problem
    return result


if __name__ == "__main__":  # pragma: no cover - the child process
    sys.exit(main())
