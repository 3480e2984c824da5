"""``cxstream bench``: a smoke run checks that it runs and reports; no figure is asserted.

The figures of a smoke run (tiny sizes, a shared broker, a busy test machine)
mean little; what is checked is that every section ran, the table was printed
and the JSON file holds every section's keys. The helpers (option resolution,
histogram quantiles, the report of failed and skipped sections) are tested
without a broker.
"""

from __future__ import annotations

import argparse
import io
import json
import math

import pytest

from cxstream.bench import SECTIONS
from cxstream.bench.common import histogram_quantile, sample_quantile
from cxstream.bench.report import build_report, render_table
from cxstream.bench.runner import add_arguments, resolve, run_bench


def parse(*argv: str) -> argparse.Namespace:
    return add_arguments(argparse.ArgumentParser()).parse_args(list(argv))


# --------------------------------------------------------------------------- no broker
def test_options_resolve_explicit_over_smoke_over_defaults():
    full = resolve(parse())
    assert (full.customers, full.events, full.fanout, full.memory_customers) == (50_000, 300_000, 10_000,
                                                                                [100_000, 1_000_000])
    assert full.only == list(SECTIONS)
    smoke = resolve(parse("--smoke", "--events", "5000", "--only", "memory,ceiling"))
    assert smoke.events == 5000 and smoke.customers == 2000 and smoke.memory_customers == [2000]
    assert smoke.only == ["ceiling", "memory"]  # run in the benchmark's order
    with pytest.raises(SystemExit):
        resolve(parse("--only", "ceiling,speed"))
    with pytest.raises(SystemExit):
        resolve(parse("--memory-customers", "lots"))


def test_histogram_quantile_interpolates_within_the_bucket_of_the_difference():
    before = [(0.01, 10.0), (0.1, 10.0), (math.inf, 10.0)]
    after = [(0.01, 10.0), (0.1, 110.0), (math.inf, 110.0)]  # 100 new observations, all in (0.01, 0.1]
    assert histogram_quantile(0.5, before, after) == pytest.approx(0.055)
    assert histogram_quantile(0.99, before, after) == pytest.approx(0.0991)
    overflow = [(0.01, 10.0), (0.1, 10.0), (math.inf, 20.0)]
    assert histogram_quantile(0.99, before, overflow) == 0.1  # beyond the last bound: the last bound
    assert histogram_quantile(0.5, before, before) is None
    assert sample_quantile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.0 and sample_quantile([], 0.5) is None


def test_report_shows_failed_and_skipped_sections_and_unmeasured_targets():
    sections = {name: {"status": "skipped"} for name in SECTIONS}
    sections["ceiling"] = {"status": "ok", "records": 1000, "events_per_s": 100_000.0}
    sections["cxstream"] = {"status": "error", "error": "worker exited with status 1:\nTraceback …"}
    report = build_report({"customers": 10, "events": 1000, "partitions": 4, "seed": 7}, sections)
    assert report["targets"]["throughput"]["met"] is None
    assert report["ratios"]["cxstream_over_ceiling"] is None
    table = render_table(report)
    assert "100,000 events/s" in table
    assert "FAILED: worker exited with status 1:" in table and "Traceback" not in table
    assert "(not run)" in table and "not measured" in table
    json.dumps(report)


# --------------------------------------------------------------------------- smoke run
def test_smoke_run_prints_the_table_and_writes_every_sections_figures(make_settings, tmp_path):
    out = io.StringIO()
    path = tmp_path / "bench.json"
    status = run_bench(make_settings(), parse("--smoke", "--json", str(path)), out=out)
    text = out.getvalue()
    assert status == 0, text
    for heading in ("section", "ceiling", "baseline", "cxstream", "ratios", "latency", "fan-out", "memory",
                    "recovery", "p99 < 50 ms", "< 30 s"):
        assert heading in text, heading
    report = json.loads(path.read_text())
    assert set(report) == {"meta", "sections", "ratios", "targets"}
    sections = report["sections"]
    assert {name for name, s in sections.items() if s["status"] == "ok"} == set(SECTIONS), {
        name: s.get("error") for name, s in sections.items()}
    expected_keys = {
        "ceiling": {"records", "seconds", "events_per_s", "cpu_s"},
        "baseline": {"records", "seconds", "events_per_s", "join_s", "send"},
        "cxstream": {"records", "events_per_s", "peak_rss_bytes", "cpu_s", "outcomes", "log_findings"},
        "latency": {"rate", "achieved_rate", "processing", "end_to_end", "broker_round_trip"},
        "fanout": {"on_site", "notices", "first_s", "last_s"},
        "memory": {"baseline_rss_bytes", "points"},
        "recovery": {"customers", "ready_s", "customers_restored_s", "recovered_s"},
    }
    for name, keys in expected_keys.items():
        assert keys <= set(sections[name]), (name, keys - set(sections[name]))
    for key in ("p50", "p95", "p99", "count"):
        assert key in sections["latency"]["processing"] and key in sections["latency"]["end_to_end"]
    assert sections["ceiling"]["records"] == 20_000 and sections["baseline"]["records"] == 20_000
    assert sections["cxstream"]["records"] == 22_000
    assert sections["fanout"]["notices"] == sections["fanout"]["on_site"] == 300
    assert sections["memory"]["points"][0]["customers"] == 2000
    assert "bytes_per_customer" in sections["memory"]["points"][0]
    assert set(report["ratios"]) == {"cxstream_over_ceiling", "cxstream_over_baseline", "baseline_over_ceiling"}
    assert set(report["targets"]) == {"throughput", "latency", "latency_end_to_end", "fanout", "memory",
                                      "recovery"}
    assert all("met" in target and "target" in target for target in report["targets"].values())
