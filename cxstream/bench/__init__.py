"""``cxstream bench``: throughput, latency, fan-out, memory and recovery, measured in one run.

Every section runs on its own fresh topics (and consumer group), so sections do
not disturb each other; the figures and their ratios come from the same run on
the same machine. See ``docs/benchmark.md`` for what each figure means and how
it is measured. The CLI calls :func:`cxstream.bench.runner.run_bench`.
"""

#: Sections in the order they run (``--only`` picks a subset).
SECTIONS: tuple[str, ...] = ("ceiling", "baseline", "cxstream", "latency", "fanout", "memory", "recovery")

__all__ = ["SECTIONS"]
