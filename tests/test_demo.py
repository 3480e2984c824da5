"""``cxstream demo`` and ``cxstream simulate`` as a user runs them: real subprocesses.

The demo test gives the command nothing but the installed package: no
``CXSTREAM_BROKER``, so it must start its own broker, worker and operator,
check its own scenario, and leave no process behind.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

from cxstream.simulate.cli import RecordTally
from cxstream.simulate.operator import SyntheticOperator
from cxstream.simulate.reader import read_topic
from cxstream.simulate.watch import parse_metrics

ROOT = Path(__file__).resolve().parents[1]


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment without any CXSTREAM_* variable; temp files under ``tmp_path``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CXSTREAM_")}
    env["TMPDIR"] = str(tmp_path)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def pids_in(output: str) -> dict[str, int]:
    found = {}
    for role in ("broker", "worker"):
        match = re.search(rf"^{role} .*?\bpid (\d+)", output, re.MULTILINE)
        assert match, f"the demo did not print its {role} pid:\n{output}"
        found[role] = int(match.group(1))
    return found


def assert_gone(pids: dict[str, int]) -> None:
    for role, pid in pids.items():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        status = Path(f"/proc/{pid}/status")
        state = status.read_text() if status.exists() else ""
        assert "State:\tZ" in state, f"the demo's {role} (pid {pid}) is still running"


def table_row(output: str, *cells: str) -> list[str]:
    pattern = r"^\s*" + r"\s+".join(re.escape(c) for c in cells) + r"\s+(.*)$"
    match = re.search(pattern, output, re.MULTILINE)
    assert match, f"no row {cells} in:\n{output}"
    return match.group(1).split()


def number(text: str) -> int:
    return int(text.replace(",", ""))


# --------------------------------------------------------------------------- demo
def test_demo_runs_the_whole_scenario_on_a_fresh_machine(tmp_path):
    began = time.monotonic()
    run = subprocess.run(
        [sys.executable, "-m", "cxstream", "demo", "--duration", "20", "--customers", "600",
         "--rate", "1500", "--quiet"],
        cwd=tmp_path, env=clean_env(tmp_path), capture_output=True, text=True, timeout=180,
    )
    output = run.stdout + run.stderr
    took = time.monotonic() - began
    print(output)
    assert run.returncode == 0, output
    assert_gone(pids_in(output))
    # where to open the pages while it runs
    assert re.search(r"^pages +http://\S+/ui/faults .*http://\S+/ui/customers/\S+", output, re.MULTILINE), output

    scenario = SyntheticOperator(seed=7, customers=600).describe()
    impacted = scenario["outage"]["customers"]
    assert impacted > 0

    # counted by the worker and found on the topic, both equal to the scenario's
    assert table_row(output, "care", "outage_notice") == [str(impacted), str(impacted)]
    assert table_row(output, "care", "service_restored") == [str(impacted), str(impacted)]
    assert re.search(rf"\[ok  \] outage_notice: {impacted} of {impacted} customers of "
                     rf"{scenario['outage']['site_id']}", output)
    assert re.search(rf"\[ok  \] service_restored: {impacted} of {impacted} notified", output)
    assert "[FAIL]" not in output

    # dead letters: counted, on the topic, and as many as malformed records produced
    match = re.search(r"dead letters ([\d,]+) counted, ([\d,]+) on \S+ .*; ([\d,]+) malformed records produced",
                      output)
    assert match, output
    counted, on_topic, malformed = (number(g) for g in match.groups())
    assert counted > 0 and counted == on_topic == malformed

    # every record produced was processed
    match = re.search(r"processed\s+([\d,]+) of ([\d,]+) produced", output)
    assert match and number(match.group(1)) == number(match.group(2)) == 30_000, output
    # --quiet: no live status lines
    assert "events/s" not in output and "[  " not in output
    assert took < 120, f"the demo took {took:.0f} s"


def test_demo_short_run_on_apache_kafka(apache_kafka, tmp_path):
    """The same short run on a cluster the operator runs (CXSTREAM_BROKER): its own topics
    and group, created on a broker that auto-creates nothing, and every check ok."""
    run = subprocess.run(
        [sys.executable, "-m", "cxstream", "demo", "--duration", "15", "--customers", "400",
         "--rate", "1500", "--quiet"],
        cwd=tmp_path, env=clean_env(tmp_path, CXSTREAM_BROKER=apache_kafka.url),
        capture_output=True, text=True, timeout=180,
    )
    output = run.stdout + run.stderr
    print(output)
    assert run.returncode == 0, output
    assert f"broker     {apache_kafka.bootstrap} (CXSTREAM_BROKER)" in output
    impacted = SyntheticOperator(seed=7, customers=400).describe()["outage"]["customers"]
    assert impacted > 0
    assert table_row(output, "care", "outage_notice") == [str(impacted), str(impacted)]
    assert table_row(output, "care", "service_restored") == [str(impacted), str(impacted)]
    assert "[FAIL]" not in output and "Traceback" not in output
    match = re.search(r"processed\s+([\d,]+) of ([\d,]+) produced", output)
    assert match and number(match.group(1)) == number(match.group(2)) > 0, output


def test_demo_ctrl_c_still_summarises_and_cleans_up(tmp_path):
    process = subprocess.Popen(
        [sys.executable, "-m", "cxstream", "demo", "--duration", "60", "--customers", "300",
         "--rate", "1000"],
        cwd=tmp_path, env=clean_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    lines: list[str] = []
    producing = threading.Event()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if line.startswith("producing"):
                producing.set()

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        assert producing.wait(90), "".join(lines)
        time.sleep(4)  # let the producer and the live status run for a moment
        process.send_signal(signal.SIGINT)
        code = process.wait(90)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    reader.join(10)
    output = "".join(lines)
    print(output)
    assert code == 130, output
    assert "summary (interrupted)" in output
    assert re.search(r"processed\s+([\d,]+) of \1 produced", output), output
    assert "not reached in this run" in output
    assert "in " in output and "/s, processed" in output, "a plain status line when not on a terminal"
    assert_gone(pids_in(output))


# ------------------------------------------------------------------------ simulate
def simulate_env(settings, tmp_path: Path) -> dict[str, str]:
    env = clean_env(tmp_path)
    env.update(settings.to_env())
    return env


def by_role(records) -> dict[str, Counter]:
    out: dict[str, Counter] = {"faults": Counter(), "quality": Counter(), "customers": Counter()}
    for record in records:
        out[record.role][(record.key, record.value)] += 1
    return out


def read_back(settings) -> dict[str, Counter]:
    out = {}
    for role in ("faults", "quality", "customers"):
        messages = read_topic(settings, getattr(settings.topics, role), idle_s=1.0, timeout_s=60)
        out[role] = Counter((m["key"], m["value"]) for m in messages)
    return out


def test_simulate_produces_the_operators_records(settings, tmp_path):
    run = subprocess.run(
        [sys.executable, "-m", "cxstream", "simulate", "--events", "2000", "--customers", "300",
         "--seed", "11", "--malformed-ratio", "0.01"],
        env=simulate_env(settings, tmp_path), capture_output=True, text=True, timeout=120,
    )
    print(run.stderr)
    assert run.returncode == 0, run.stderr
    assert "Produced 2,300 records" in run.stderr
    assert "Scenario (seed 11, 300 customers" in run.stderr

    expected = by_role(SyntheticOperator(seed=11, customers=300, malformed_ratio=0.01).stream(2000))
    got = read_back(settings)
    for role in ("faults", "quality", "customers"):
        assert got[role] == expected[role], role
    assert sum(expected["customers"].values()) == 300
    summary = re.search(r"customers ([\d,]+), quality ([\d,]+) .*?faults ([\d,]+)", run.stderr)
    assert summary, run.stderr
    assert [number(g) for g in summary.groups()] == [
        sum(got["customers"].values()), sum(got["quality"].values()), sum(got["faults"].values())]


def test_simulate_ctrl_c_reports_exactly_what_was_produced(settings, tmp_path):
    process = subprocess.Popen(
        [sys.executable, "-m", "cxstream", "simulate", "--events", "200000", "--customers", "200",
         "--rate", "2000"],
        env=simulate_env(settings, tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert process.stderr is not None
        seen = []
        for line in process.stderr:  # wait for two progress lines
            seen.append(line)
            if sum("records/s" in s for s in seen) >= 2:
                break
        process.send_signal(signal.SIGINT)
        rest = process.communicate(timeout=60)[1]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    stderr = "".join(seen) + rest
    print(stderr)
    assert process.returncode == 0, stderr
    match = re.search(r"Interrupted: produced ([\d,]+) records", stderr)
    assert match, stderr
    produced = number(match.group(1))
    got = read_back(settings)
    assert sum(sum(c.values()) for c in got.values()) == produced
    assert "(not produced)" in stderr, "the scenario steps not reached are marked"


def test_simulate_needs_enough_events(settings, tmp_path):
    run = subprocess.run([sys.executable, "-m", "cxstream", "simulate", "--events", "50"],
                         env=simulate_env(settings, tmp_path), capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    assert "--events must be at least 100" in run.stderr


# --------------------------------------------------------------------------- units
METRICS = """\
# HELP cxstream_events_total Input records by source and outcome.
# TYPE cxstream_events_total counter
cxstream_events_total{outcome="ok",source="quality"} 120.0
cxstream_events_total{outcome="invalid",source="quality"} 3.0
cxstream_events_total{outcome="ok",source="faults"} 2.0
cxstream_events_created{outcome="ok",source="faults"} 1.7e9
cxstream_triggers_total{channel="care",trigger="outage_notice"} 5.0
cxstream_triggers_suppressed_total{channel="marketing",reason="no_consent",trigger="retention_offer"} 4.0
cxstream_deadletters_total{source="quality"} 3.0
cxstream_score_bucket{le="10.0"} 1.0
cxstream_score_bucket{le="50.0"} 3.0
cxstream_score_bucket{le="100.0"} 10.0
cxstream_score_bucket{le="+Inf"} 10.0
cxstream_score_count 10.0
cxstream_processing_seconds_bucket{le="0.01"} 90.0
cxstream_processing_seconds_bucket{le="0.1"} 100.0
cxstream_processing_seconds_bucket{le="+Inf"} 100.0
cxstream_processing_seconds_count 100.0
cxstream_customers 42.0
cxstream_active_faults 2.0
"""


def test_parse_metrics():
    snap = parse_metrics(METRICS, at=1.0)
    assert snap.events_total == 125
    assert snap.events_by_outcome() == {"ok": 122, "invalid": 3}
    assert snap.trigger_count("outage_notice") == 5
    assert snap.suppressed_by_reason() == {"no_consent": 4}
    assert snap.deadletters_total == 3
    assert snap.score_histogram() == [(0.0, 10.0, 1), (10.0, 50.0, 2), (50.0, 100.0, 7)]
    assert snap.latency_quantile(0.5) == 0.01 and snap.latency_quantile(0.99) == 0.1
    assert (snap.customers, snap.active_faults) == (42, 2)
    later = parse_metrics(METRICS.replace('le="100.0"} 10.0', 'le="100.0"} 15.0'), at=2.0)
    assert later.score_histogram(since=snap) == [(0.0, 10.0, 0), (10.0, 50.0, 0), (50.0, 100.0, 5)]


def test_record_tally_counts_any_prefix():
    operator = SyntheticOperator(seed=3, customers=100, malformed_ratio=0.05)
    tally = RecordTally(operator.stream(1000))
    records = list(tally)
    counts = tally.counts()
    assert sum(counts.values()) == len(records) == 1100
    assert counts["customers"] == 100
    assert counts["duplicates"] == operator.stats["duplicates"]
    assert counts["malformed quality"] + counts["malformed faults"] == operator.stats["malformed"]
    assert sum(tally.counts(150).values()) == 150 and tally.counts(150)["customers"] == 100
