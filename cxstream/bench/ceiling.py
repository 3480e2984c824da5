"""The ceiling: what one Python process does with confluent-kafka and nothing else.

Run as a child process (``python -m cxstream.bench.ceiling``), so that it has a
core of its own as the worker would. It assigns every partition of the input
topic from the beginning (no consumer group), and per record: ``orjson.loads``,
update a per-customer dict (record count and lowest MOS), ``produce`` one small
JSON document keyed by customer id (murmur2) to the output topic. It stops once
it has consumed the expected number of records and prints one JSON line:
records, seconds from the first record received to the last one processed,
events/s, the time the producer then needed to have every output acknowledged,
and its CPU seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

ENV_CONFIG = "CXSTREAM_BENCH_CLIENT_CONFIG"  # confluent-kafka settings as JSON (may hold credentials)


def consume_loop(config: dict[str, Any], topic: str, output: str, partitions: int, expect: int,
                 timeout_s: float) -> dict[str, Any]:
    import orjson
    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition

    consumer = Consumer({**config, "group.id": f"cxbench-ceiling-{os.getpid()}", "enable.auto.commit": False,
                         "enable.auto.offset.store": False, "auto.offset.reset": "earliest",
                         "log_level": 3})
    producer = Producer({**config, "partitioner": "murmur2_random", "linger.ms": 5, "batch.num.messages": 10_000,
                         "queue.buffering.max.messages": 1_000_000, "queue.buffering.max.kbytes": 1_048_576,
                         "log_level": 3})
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
    loads, dumps = orjson.loads, orjson.dumps
    produce, poll = producer.produce, producer.poll
    state: dict[str, list] = {}
    count = errors = 0
    first = last = None
    deadline = time.monotonic() + timeout_s
    cpu_began = time.process_time()
    while count < expect and time.monotonic() < deadline:
        batch = consumer.consume(1000, 0.5)
        if not batch:
            continue
        if first is None:
            first = time.perf_counter()
        for message in batch:
            if message.error() is not None:
                if message.error().code() != KafkaError._PARTITION_EOF:
                    errors += 1
                continue
            record = loads(message.value())
            cid = record["customer_id"]
            mos = record["metrics"].get("mos")
            entry = state.get(cid)
            if entry is None:
                entry = state[cid] = [0, 5.0]
            entry[0] += 1
            if mos is not None and mos < entry[1]:
                entry[1] = mos
            value = dumps({"customer_id": cid, "records": entry[0], "min_mos": entry[1]})
            try:
                produce(output, value, message.key())
            except BufferError:
                poll(0.05)
                produce(output, value, message.key())
            count += 1
        poll(0)
        last = time.perf_counter()
    cpu = time.process_time() - cpu_began
    flush_began = time.perf_counter()
    unacknowledged = producer.flush(60)
    flush_s = time.perf_counter() - flush_began
    consumer.close()
    seconds = (last - first) if first is not None and last is not None else None
    return {
        "records": count,
        "expected": expect,
        "customers": len(state),
        "seconds": seconds,
        "events_per_s": count / seconds if seconds else None,
        "output_flush_s": flush_s,
        "unacknowledged_outputs": unacknowledged,
        "consume_errors": errors,
        "cpu_s": cpu,
        "complete": count >= expect,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--topic", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--partitions", type=int, required=True)
    parser.add_argument("--expect", type=int, required=True)
    parser.add_argument("--timeout", type=float, default=300.0)
    args = parser.parse_args(argv)
    config = json.loads(os.environ[ENV_CONFIG])
    result = consume_loop(config, args.topic, args.output, args.partitions, args.expect, args.timeout)
    sys.stdout.write(json.dumps(result) + "\n")
    return 0 if result["complete"] else 1


def run_ceiling(ctx, workload) -> dict[str, Any]:
    """The ceiling section: fresh topics, the quality workload pre-produced, the loop in a child."""
    from .common import SectionError, create_topic, run_json_child
    from .workload import produce_pairs
    from cxstream.ops.topics import ensure_topics

    settings = ctx.section_settings("ceiling")
    ensure_topics(settings)
    output = settings.topics.quality + "-out"
    create_topic(settings, output, ctx.args.partitions)
    quality = workload.quality()
    produce_pairs(settings, settings.topics.quality, quality)
    env = dict(os.environ, **{ENV_CONFIG: json.dumps(settings.confluent_config())})
    timeout = 60.0 + len(quality) / 2000.0
    status, stdout = run_json_child(
        [sys.executable, "-m", "cxstream.bench.ceiling", "--topic", settings.topics.quality, "--output", output,
         "--partitions", str(ctx.args.partitions), "--expect", str(len(quality)), "--timeout", str(timeout)],
        timeout + 90, ctx.log_path("ceiling", "ceiling"), env=env)
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise SectionError(f"the ceiling loop exited with {status} without a result "
                           f"(log {ctx.log_path('ceiling', 'ceiling')})")
    result = json.loads(lines[-1])
    if not result["complete"]:
        raise SectionError(f"the ceiling loop consumed {result['records']:,} of {result['expected']:,} records "
                           f"within {timeout:.0f} s")
    return result


if __name__ == "__main__":  # pragma: no cover - the child process
    sys.exit(main())
