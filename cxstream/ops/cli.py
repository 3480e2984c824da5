"""The ``cxstream`` command.

Configuration comes from ``CXSTREAM_*`` environment variables (see
``cxstream worker --help`` and the README); user mistakes end with one line
saying what to fix, never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from .settings import ConfigurationError, Settings, load_settings

log = logging.getLogger(__name__)

EXIT_USAGE = 2


def _env_help() -> str:
    lines = ["environment (CXSTREAM_*):"]
    for name, field in Settings.model_fields.items():
        if name == "topics":
            lines.append("  CXSTREAM_TOPIC_{FAULTS,QUALITY,CUSTOMERS,SCORES,CARE,MARKETING,DEADLETTER,FAULT_IMPACT}"
                         "  topic names (defaults: the contract's)")
            continue
        default = field.default if field.default is not None else ""
        if name == "sasl_password":
            default = ""
        description = field.description or ""
        lines.append(f"  CXSTREAM_{name.upper():<22} {description} [default: {default}]".rstrip())
    return "\n".join(lines)


def _fail(message: str) -> int:
    print(f"cxstream: {message}", file=sys.stderr)
    return EXIT_USAGE


def _settings() -> Settings:
    return load_settings()


def cmd_worker(args: argparse.Namespace) -> int:
    from .runtime import tune_garbage_collector, use_fast_event_loop

    use_fast_event_loop()
    tune_garbage_collector()
    settings = _settings()
    if not settings.broker:
        raise ConfigurationError("CXSTREAM_BROKER is not set; give the Kafka bootstrap servers, "
                                 "e.g. CXSTREAM_BROKER=kafka://kafka-1:9092 (or run `cxstream demo`)")
    from ..domain.rules import load_rules
    from .topics import check_topics, ensure_topics

    if settings.store == "rocksdb":
        try:
            import rocksdict  # noqa: F401
        except ImportError:
            raise ConfigurationError("CXSTREAM_STORE=rocksdb needs the rocksdb extra, which is not installed: "
                                     "pip install 'cxstream[rocksdb]' (or CXSTREAM_STORE=memory)") from None
    rules = load_rules(settings.rules)
    _reachable(settings)
    settings = _follow_input_layout(settings)
    if settings.create_topics:
        ensure_topics(settings)
    problems = check_topics(settings)
    if problems:
        raise ConfigurationError("topics are not usable: " + "; ".join(problems))
    settings = _follow_input_layout(settings)
    from ..stream.worker import CxWorker

    return CxWorker(settings, rules, seal_changelog=_needs_seal(settings)).run()


def _needs_seal(settings: Settings) -> bool | None:
    """CXSTREAM_CHANGELOG_SEAL: on, off, or None (auto: the worker probes the broker)."""
    return None if settings.changelog_seal == "auto" else settings.changelog_seal == "on"


def _follow_input_layout(settings: Settings) -> Settings:
    """Contract v2 Topic layout: the internal topics (and any missing input
    topic) take the input topics' partition count, whatever
    CXSTREAM_PARTITIONS says; layouts that cannot work stop start-up."""
    from .topics import input_layout

    count, problems = input_layout(settings)
    if problems:
        raise ConfigurationError("; ".join(problems))
    if count is not None and count != settings.partitions:
        log.info("input topics have %d partitions: the internal topics follow them "
                 "(CXSTREAM_PARTITIONS=%d sizes only topics created from nothing)", count, settings.partitions)
        settings = settings.model_copy(update={"partitions": count})
    return settings


def _reachable(settings: Settings, timeout_s: float = 15.0) -> str | None:
    """Check the cluster answers; returns its cluster id."""
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({**settings.confluent_config(), "socket.timeout.ms": int(timeout_s * 1000)})
    try:
        return admin.list_topics(timeout=timeout_s).cluster_id
    except Exception as exc:
        raise ConfigurationError(
            f"cannot reach Kafka at {settings.bootstrap} (CXSTREAM_BROKER) within {timeout_s:.0f} s: {exc}"
        ) from None


def cmd_topics(args: argparse.Namespace) -> int:
    settings = _settings()
    from .topics import ensure_topics, topic_plan

    plan = topic_plan(settings)
    for spec in plan:
        config = ", ".join(f"{k}={v}" for k, v in sorted(spec.config.items()))
        print(f"{spec.name:<28} partitions={spec.partitions} replication={spec.replication}  {config}")
    if args.dry_run:
        print("(dry run: nothing created)")
        return 0
    if not settings.broker:
        raise ConfigurationError("CXSTREAM_BROKER is not set; say which Kafka cluster to create the topics on")
    _reachable(settings)
    created = ensure_topics(settings)
    print(f"created {len(created)} topic(s){': ' + ', '.join(created) if created else ''}")
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    settings = _settings()
    if not settings.broker:
        raise ConfigurationError("CXSTREAM_BROKER is not set; say which Kafka cluster to drive "
                                 "(`cxstream demo` runs everything locally)")
    from ..simulate.cli import run_simulate

    return run_simulate(settings, args)


def cmd_demo(args: argparse.Namespace) -> int:
    from ..simulate.demo import run_demo

    return run_demo(_settings(), args)


def cmd_bench(args: argparse.Namespace) -> int:
    from ..bench.runner import run_bench

    return run_bench(_settings(), args)


def cmd_deliver(args: argparse.Namespace) -> int:
    from ..deliver.service import run_deliver

    return run_deliver(_settings(), args)


def cmd_replay(args: argparse.Namespace) -> int:
    from ..replay.cli import run_replay

    return run_replay(_settings(), args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cxstream",
        description="Streaming customer-experience processor: network alarms and service-quality "
        "records in, per-customer scores and real-time care/marketing triggers out.",
        epilog=_env_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    worker = sub.add_parser(
        "worker", help="run the stream worker (the service)",
        description="Run the worker: consume faults, quality and customer records, publish scores "
        "and triggers. Configured by CXSTREAM_* variables; stops cleanly on SIGTERM/SIGINT.",
        epilog=_env_help(), formatter_class=argparse.RawDescriptionHelpFormatter)
    worker.set_defaults(func=cmd_worker)

    demo = sub.add_parser(
        "demo", help="run everything locally: broker, worker and a synthetic operator",
        description="Start the embedded broker (unless CXSTREAM_BROKER is set), a worker and a "
        "synthetic operator (customers on cells and sites, background quality traffic, a site "
        "outage that later clears, a few degrading customers); show a live summary and a final table.")
    demo.add_argument("--duration", type=float, default=60.0, help="seconds to run (default 60)")
    demo.add_argument("--customers", type=int, default=3000, help="synthetic customers (default 3000)")
    demo.add_argument("--rate", type=float, default=2000.0, help="input records per second (default 2000)")
    demo.add_argument("--seed", type=int, default=7, help="random seed of the synthetic operator")
    demo.add_argument("--quiet", action="store_true", help="no live line, only the final summary")
    demo.set_defaults(func=cmd_demo)

    simulate = sub.add_parser(
        "simulate", help="drive a Kafka cluster with the synthetic operator",
        description="Produce the synthetic operator's records (customers, quality, faults) to the "
        "contract's topics on CXSTREAM_BROKER.")
    simulate.add_argument("--events", type=int, default=100_000, help="records to produce (default 100000)")
    simulate.add_argument("--customers", type=int, default=3000)
    simulate.add_argument("--rate", type=float, default=None, help="records per second (default: as fast as possible)")
    simulate.add_argument("--seed", type=int, default=7)
    simulate.add_argument("--malformed-ratio", type=float, default=0.0,
                          help="share of deliberately malformed records (exercises dead letters)")
    simulate.set_defaults(func=cmd_simulate)

    deliver = sub.add_parser(
        "deliver", help="push triggers to HTTP webhooks (CXSTREAM_ROUTES)",
        description="Read the trigger topics as consumer group <app_id>-deliver and POST each CloudEvent "
        "to the endpoints the routes file (CXSTREAM_ROUTES) matches, with retries, signatures and dead "
        "letters; see docs/webhooks.md. Stops cleanly on SIGTERM/SIGINT.")
    deliver.set_defaults(func=cmd_deliver)

    bench = sub.add_parser(
        "bench", help="measure throughput, latency, fan-out, memory and recovery",
        description="Benchmark the worker against a plain confluent-kafka loop (the ceiling) and a "
        "straightforward faust agent (the baseline), on the same seeded workload, in one run; prints "
        "a table and optionally writes JSON. Uses the embedded broker unless CXSTREAM_BROKER is set.")
    from ..bench.runner import add_arguments as bench_arguments

    bench_arguments(bench)
    bench.set_defaults(func=cmd_bench)

    replay = sub.add_parser(
        "replay", help="rule dry-run: what recorded input would have fired (offline, no Kafka writes)")
    from ..replay.cli import add_arguments as replay_arguments

    replay_arguments(replay)
    replay.set_defaults(func=cmd_replay)

    topics = sub.add_parser("topics", help="create the contract's topics",
                            description="Create the contract's topics with their partitions, "
                            "replication and cleanup policies.")
    topics_sub = topics.add_subparsers(dest="action", metavar="ACTION")
    create = topics_sub.add_parser("create", help="create missing topics")
    create.add_argument("--dry-run", action="store_true", help="print the plan, create nothing")
    create.set_defaults(func=cmd_topics)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    from ..domain.rules import RulesError

    try:
        return args.func(args) or 0
    except (ConfigurationError, RulesError) as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
