"""Shared pieces of the benchmark: per-section settings, process figures, quantiles, waiting."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence, TextIO

from cxstream.ops.broker import free_port
from cxstream.ops.settings import Settings, TopicNames
from cxstream.ops.topics import TopicSpec, admin_client, ensure_topics, topic_config
from cxstream.ops.worker_process import WorkerProcess
from cxstream.simulate.watch import Snapshot, parse_metrics

__all__ = [
    "BenchContext", "SectionError", "proc_memory", "proc_cpu_seconds", "histogram_quantile",
    "sample_quantile", "wait_for", "create_topic", "scrape", "start_worker", "stop_worker",
]

_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


class SectionError(RuntimeError):
    """A section could not produce its figures; the message says why."""


@dataclass
class BenchContext:
    """What every section needs: the base settings (broker set), options, a work directory."""

    settings: Settings
    args: Any
    workdir: Path
    run_id: str
    out: TextIO = sys.stdout
    embedded: bool = True
    topic_prefixes: list[str] = field(default_factory=list)

    def say(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def section_settings(self, section: str, **overrides: Any) -> Settings:
        """Settings of one section: topics, app id and data directory of its own, a free web port."""
        prefix = f"bench-{self.run_id}-{section}"
        self.topic_prefixes.append(prefix)
        topics = TopicNames(**{role: f"{prefix}.{role}" for role in TopicNames.model_fields})
        data_dir = self.workdir / section / "data"
        data_dir.mkdir(parents=True, exist_ok=True)
        update: dict[str, Any] = {
            "topics": topics,
            "app_id": prefix,
            "data_dir": data_dir,
            "web_port": free_port(),
            "web_host": "127.0.0.1",
            "partitions": self.args.partitions,
            "log_level": "INFO",  # faust at WARNING runs a spinner and logs at DEBUG underneath (NOTES)
        }
        if self.embedded:
            update.update(session_timeout_s=6.0, heartbeat_interval_s=1.0)
        update.update(overrides)
        return self.settings.model_copy(update=update)

    def log_path(self, section: str, name: str) -> Path:
        path = self.workdir / section / f"{name}.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def delete_topics(self) -> int:
        """Delete every topic this run created (best effort); returns how many."""
        if not self.topic_prefixes:
            return 0
        admin = admin_client(self.settings)
        try:
            names = [name for name in admin.list_topics(timeout=10).topics
                     if any(name.startswith(prefix) for prefix in self.topic_prefixes)]
            if names:
                for future in admin.delete_topics(names, operation_timeout=30).values():
                    try:
                        future.result(timeout=30)
                    except Exception:
                        pass
            return len(names)
        except Exception:
            return 0


def create_topic(settings: Settings, name: str, partitions: int) -> None:
    """A plain delete-policy topic (an output topic of the ceiling and the baseline)."""
    ensure_topics(settings, [TopicSpec(name, partitions, settings.replication_factor, topic_config("care"), "out")])


# ----------------------------------------------------------------------------- processes
def proc_memory(pid: int) -> dict[str, int]:
    """``{"rss": VmRSS, "hwm": VmHWM}`` of a process, in bytes ({} when it is gone)."""
    found: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    name, value = line.split(":", 1)
                    found["rss" if name == "VmRSS" else "hwm"] = int(value.split()[0]) * 1024
    except OSError:
        pass
    return found


def proc_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds a process has used so far (None when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _CLK_TCK
    except (OSError, IndexError, ValueError):
        return None


# ----------------------------------------------------------------------------- quantiles
def histogram_quantile(q: float, before: Sequence[tuple[float, float]],
                       after: Sequence[tuple[float, float]]) -> float | None:
    """Quantile ``q`` of the observations a cumulative histogram gained between two scrapes.

    Like Prometheus' ``histogram_quantile``: the bucket holding the rank is
    found and the value interpolated linearly within it (from 0 for the
    first bucket). A rank in the ``+Inf`` bucket gives the highest finite
    bound. ``before``/``after``: ``[(le, cumulative count)]`` sorted by ``le``.
    """
    base = dict(before)
    buckets = [(le, count - base.get(le, 0.0)) for le, count in after]
    if not buckets:
        return None
    total = buckets[-1][1] if math.isinf(buckets[-1][0]) else max(c for _, c in buckets)
    if total <= 0:
        return None
    rank = q * total
    lower, below = 0.0, 0.0
    finite = [le for le, _ in buckets if not math.isinf(le)]
    for le, cumulative in buckets:
        if cumulative >= rank:
            if math.isinf(le):
                return finite[-1] if finite else None
            if cumulative == below:
                return le
            return lower + (le - lower) * (rank - below) / (cumulative - below)
        lower, below = le, cumulative
    return finite[-1] if finite else None


def sample_quantile(sorted_values: Sequence[float], q: float) -> float | None:
    """Nearest-rank quantile of sorted samples (None when there are none)."""
    if not sorted_values:
        return None
    index = max(0, min(len(sorted_values) - 1, math.ceil(q * len(sorted_values)) - 1))
    return sorted_values[index]


def quantiles(values: Sequence[float]) -> dict[str, float | None]:
    ordered = sorted(values)
    return {"p50": sample_quantile(ordered, 0.50), "p95": sample_quantile(ordered, 0.95),
            "p99": sample_quantile(ordered, 0.99), "max": ordered[-1] if ordered else None}


# ----------------------------------------------------------------------------- waiting
def wait_for(predicate: Callable[[], Any], timeout_s: float, what: str, interval_s: float = 0.1) -> Any:
    """Poll ``predicate`` until it returns something true; :class:`SectionError` at the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise SectionError(f"{what} did not happen within {timeout_s:g} s")
        time.sleep(interval_s)  # polling interval


# ----------------------------------------------------------------------------- the worker
def scrape(worker: WorkerProcess, timeout_s: float = 5.0) -> Snapshot | None:
    """The worker's /metrics, parsed (None when it does not answer)."""
    try:
        status, body = worker.get("/metrics", timeout_s=timeout_s)
    except OSError:
        return None
    if status != 200:
        return None
    return parse_metrics(body.decode("utf-8", "replace"))


def start_worker(settings: Settings, log_path: Path, ready_timeout_s: float = 120.0) -> WorkerProcess:
    """A real ``cxstream worker`` process, started and ready (/readyz 200)."""
    worker = WorkerProcess(settings, log_path).start()
    try:
        worker.wait_ready(timeout_s=ready_timeout_s)
    except BaseException:
        worker.kill()
        raise
    return worker


def stop_worker(worker: WorkerProcess | None, timeout_s: float = 60.0) -> str | None:
    """Stop a worker cleanly (SIGTERM), killing it if it hangs; returns a problem, or None."""
    if worker is None or worker.process is None:
        return None
    try:
        worker.stop(timeout_s=timeout_s)
        return None
    except RuntimeError as error:
        return str(error).splitlines()[0]
    finally:
        if worker.process.poll() is None:
            worker.kill()


def worker_failure(worker: WorkerProcess) -> str | None:
    """Why the worker process is gone, when it is."""
    if worker.process is not None and worker.process.poll() is not None:
        return f"worker exited with status {worker.process.returncode}:\n{worker.log_tail(20)}"
    return None


def run_json_child(command: list[str], timeout_s: float, log_path: Path, env: dict[str, str] | None = None
                   ) -> tuple[int, str]:
    """Run a helper process whose last stdout line is JSON; returns (status, stdout)."""
    with open(log_path, "ab") as log:
        try:
            done = subprocess.run(command, stdout=subprocess.PIPE, stderr=log, timeout=timeout_s,
                                  env=env, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as expired:
            raise SectionError(f"{Path(command[2] if len(command) > 2 else command[0]).name} "
                               f"did not finish within {timeout_s:g} s (log {log_path})") from expired
    return done.returncode, done.stdout.decode("utf-8", "replace")
