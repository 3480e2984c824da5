"""``cxstream replay``: arguments, input selection, output files, one-line errors."""

from __future__ import annotations

import argparse
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Iterator

import orjson

from ..domain.engine import InputRecord
from ..domain.rules import load_rules, parse_duration
from ..models.common import format_time
from ..ops.settings import Settings
from . import report as reports
from .inputs import KafkaRange, ReplayError, check_readable, merge, parse_when, read_jsonl, simulated
from .runner import Run, replay

DESCRIPTION = """\
Rule dry-run: replay recorded input through the same engine the worker runs, offline (nothing is
written to Kafka), and print what would have fired: triggers by rule and channel, hold-backs by
reason, the score distribution and rejected input. With --rules NEW.yaml, also how many more or
fewer triggers each rule would have sent under the new rules, with sample customer ids.

The current rules are those the worker uses (CXSTREAM_RULES, else the shipped ones); CloudEvent ids
use CXSTREAM_SOURCE, half-life and lateness CXSTREAM_HALF_LIFE_S / CXSTREAM_ALLOWED_LATENESS_S.

Input, one of:
  --from T [--to T]     the input topics on CXSTREAM_BROKER, by Kafka record timestamp: faults and
                        customers from the beginning of their topics (the state a running worker
                        had), quality from --from minus --warmup; triggers are counted from --from.
  --input FILE ...      JSON-lines files, one record a line:
                        {"topic": "quality", "key": "C100042", "value": {...}, "timestamp": "2026-11-22T10:00:00Z"}
                        (topic faults|quality|customers; value the contract document, null for a
                        tombstone; timestamp RFC 3339 or epoch ms). Several files are merged by timestamp.
  --simulate EVENTS     the synthetic operator of `cxstream simulate` (--seed, --customers), in memory.

The same input gives the same output, CloudEvent ids included. See docs/replay.md.
"""

EPILOG = """\
examples:
  cxstream replay --simulate 20000 --rules lower-thresholds.yaml
  CXSTREAM_BROKER=kafka://kafka-1:9092 cxstream replay --from 2026-11-22T00:00:00Z --to 2026-11-23T00:00:00Z \\
      --rules new.yaml --json dry-run.json --save-input day.jsonl
  cxstream replay --input day.jsonl --rules new.yaml
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = DESCRIPTION
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    source = parser.add_argument_group("input")
    source.add_argument("--from", dest="from_", metavar="TIME",
                        help="RFC 3339 start of the range (Kafka record timestamps; with --input/--simulate: "
                             "records before it only build state)")
    source.add_argument("--to", metavar="TIME",
                        help="RFC 3339 end of the range, exclusive (default: now; with --input/--simulate: "
                             "no end)")
    source.add_argument("--warmup", default="2h", metavar="DURATION",
                        help="quality records read before --from to build scores, e.g. 30m, 2h, 1d, 0 "
                             "(Kafka only; default 2h, four half-lives)")
    source.add_argument("--input", nargs="+", type=Path, metavar="FILE", help="JSON-lines input files")
    source.add_argument("--simulate", type=int, metavar="EVENTS",
                        help="replay this many records of the synthetic operator (no broker needed)")
    source.add_argument("--seed", type=int, default=7, help="seed of --simulate (default 7)")
    source.add_argument("--customers", type=int, default=3000, help="customers of --simulate (default 3000)")
    what = parser.add_argument_group("rules and output")
    what.add_argument("--rules", type=Path, metavar="NEW.yaml",
                      help="also replay with these rules and compare them with the current ones")
    what.add_argument("--json", type=Path, metavar="FILE", help="write the figures as JSON")
    what.add_argument("--events", type=Path, metavar="FILE",
                      help="write the CloudEvents the current rules would have sent (JSON lines)")
    what.add_argument("--new-events", type=Path, metavar="FILE",
                      help="write the CloudEvents the --rules would have sent (JSON lines)")
    what.add_argument("--save-input", type=Path, metavar="FILE",
                      help="write every record read, in replay order, as JSON lines (replay it with --input)")
    what.add_argument("--quiet", action="store_true", help="no progress on stderr")


def run_replay(settings: Settings, args: argparse.Namespace, out=None, err=None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    began = time.monotonic()
    now = time.time()
    chosen = [name for name, value in (("--input", args.input), ("--simulate", args.simulate)) if value is not None]
    if len(chosen) > 1:
        raise ReplayError("give one input: --from/--to (the topics), --input FILE or --simulate EVENTS")
    kind = "kafka" if not chosen else ("files" if args.input else "simulate")
    report_from = parse_when(args.from_, "--from", now) if args.from_ else None
    to = parse_when(args.to, "--to", now) if args.to else None
    if kind == "kafka":
        if report_from is None:
            raise ReplayError("say what to replay: --from TIME [--to TIME] for the input topics on "
                              "CXSTREAM_BROKER, --input FILE.jsonl or --simulate EVENTS")
        if to is None:
            to = now
        if not settings.broker:
            raise ReplayError("CXSTREAM_BROKER is not set; say which Kafka cluster holds the input topics "
                              "(or replay --input FILE.jsonl / --simulate EVENTS)")
    if report_from is not None and to is not None and report_from >= to:
        raise ReplayError(f"--from {format_time(report_from)} is not before --to {format_time(to)}")
    try:
        warmup = parse_duration(args.warmup)
    except ValueError as exc:
        raise ReplayError(f"--warmup: {exc}") from None
    if args.simulate is not None and args.simulate < 100:
        raise ReplayError("--simulate needs at least 100 events (the scripted scenario needs them)")
    if args.simulate is not None and args.customers < 1:
        raise ReplayError("--customers must be at least 1")
    if args.new_events and not args.rules:
        raise ReplayError("--new-events needs --rules NEW.yaml")
    if args.input:
        check_readable(args.input)
    current_rules = load_rules(settings.rules)
    new_rules = load_rules(args.rules) if args.rules else None
    for option, path in (("--json", args.json), ("--events", args.events), ("--new-events", args.new_events),
                         ("--save-input", args.save_input)):
        if path is not None and not path.parent.is_dir():
            raise ReplayError(f"{option} {path}: directory {path.parent} does not exist")

    with ExitStack() as stack:
        def open_out(option: str, path: Path | None):
            if path is None:
                return None
            try:
                return stack.enter_context(open(path, "wb"))
            except OSError as exc:
                raise ReplayError(f"{option} {path}: cannot write: {exc.strerror}") from None

        events_out = open_out("--events", args.events)
        new_events_out = open_out("--new-events", args.new_events)
        save = open_out("--save-input", args.save_input)
        common = dict(source=settings.source, half_life_s=settings.half_life_s,
                      allowed_lateness_s=settings.allowed_lateness_s)
        runs = [Run(current_rules, str(settings.rules) if settings.rules else "the shipped rules",
                    events_out=events_out, **common)]
        if new_rules is not None:
            runs.append(Run(new_rules, str(args.rules), events_out=new_events_out, **common))

        info: dict = {"kind": kind, "from": None if report_from is None else format_time(report_from),
                      "to": None if to is None else format_time(to)}
        if kind == "kafka":
            topics = settings.topics
            quality_from = report_from - warmup
            reader = KafkaRange(settings, quality_from, to)
            stack.callback(reader.close)
            records: Iterator[InputRecord] = merge(reader.streams())
            info["warmup_s"] = warmup
            info["description"] = (f"{topics.faults}, {topics.customers}, {topics.quality} on {settings.bootstrap}, "
                                   f"{format_time(report_from)} to {format_time(to)} (Kafka record timestamps)")
        elif kind == "files":
            records = merge(read_jsonl(path, settings) for path in args.input)
            info["files"] = [str(p) for p in args.input]
            info["description"] = ", ".join(str(p) for p in args.input)
        else:
            records = simulated(args.seed, args.customers, args.simulate, settings)
            info.update(seed=args.seed, customers=args.customers, events=args.simulate)
            info["description"] = (f"the synthetic operator (seed {args.seed}, {args.customers:,} customers, "
                                   f"{args.simulate:,} events)")
        if to is not None and kind != "kafka":
            records = _before(records, to)

        shown = [began]

        def progress(count: int) -> None:
            if not args.quiet and time.monotonic() - shown[0] >= 2.0:
                shown[0] = time.monotonic()
                print(f"replay: {count:,} records …", file=err, flush=True)

        try:
            counts = replay(records, runs, report_from, save=save, progress=progress)
        except OSError as exc:
            raise ReplayError(f"cannot write an output file: {exc}") from None
        figures = reports.build(info, counts, runs[0], runs[1] if len(runs) > 1 else None, settings.source)
    if args.json is not None:
        try:
            args.json.write_bytes(orjson.dumps(figures, option=orjson.OPT_INDENT_2) + b"\n")
        except OSError as exc:
            raise ReplayError(f"--json {args.json}: cannot write: {exc.strerror}") from None
    out.write(reports.render(figures))
    out.flush()
    if not args.quiet:
        total = counts.reported.total() + counts.context.total()
        print(f"replay: {total:,} records in {time.monotonic() - began:.1f} s", file=err)
    return 0


def _before(records: Iterator[InputRecord], to: float) -> Iterator[InputRecord]:
    for record in records:
        if record.timestamp < to:
            yield record
