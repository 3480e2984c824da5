"""deploy/prometheus and deploy/grafana, without running a server.

- ``promtool check config``, ``promtool check rules`` and ``promtool test rules``
  (the rules' unit tests, deploy/prometheus/rules_test.yml);
- every alert has severity, summary, description and runbook, and is shown both
  firing and not firing in rules_test.yml;
- every metric the rules and the dashboard query is one the worker exports
  (names read from the exposition of :class:`cxstream.ops.metrics.Metrics`);
- the dashboard covers what an operator needs, and its provisioning is sound.

Tools: ``promtool`` (Debian package ``prometheus``). Without it the promtool
tests skip with a reason; ``CXSTREAM_REQUIRE_DEPLOY_TOOLS=1`` makes them fail.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

from cxstream.ops.metrics import Metrics

ROOT = Path(__file__).resolve().parents[1]
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
GRAFANA_DIR = ROOT / "deploy" / "grafana"
DASHBOARD = GRAFANA_DIR / "dashboards" / "cxstream.json"

#: Series the rules may use that the worker does not export: Prometheus' own
#: scrape health, and the Kafka lag exporter the cxstream-kafka-lag group names.
NOT_FROM_THE_WORKER = {"up", "kafka_consumergroup_lag"}

PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
                "bool", "offset", "inf", "nan", "atan2"}


def require_tool(name: str, hint: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    message = f"{name} is not installed ({hint})"
    if os.environ.get("CXSTREAM_REQUIRE_DEPLOY_TOOLS"):
        pytest.fail(message + " and CXSTREAM_REQUIRE_DEPLOY_TOOLS is set")
    pytest.skip(message)


def exported_metric_names() -> set[str]:
    """Sample names in the worker's /metrics text, every labelled metric given one child."""
    metrics = Metrics()
    for value in vars(metrics).values():
        if isinstance(value, MetricWrapperBase) and value._labelnames:
            value.labels(*("x" for _ in value._labelnames))
    names = set()
    for line in metrics.exposition().decode().splitlines():
        if line and not line.startswith("#"):
            names.add(re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0))
    return names


def promql_metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression selects (functions, keywords and labels left out)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'', '""', expr)   # string literals
    text = re.sub(r"\$\{[^}]*\}|\$\w+", " ", text)                          # Grafana variables
    text = re.sub(r"\{[^}]*\}", " ", text)                                  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)                                 # ranges and subqueries
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\()?", text):
        name, call = match.groups()
        if call or name.lower() in PROMQL_WORDS:
            continue
        names.add(name)
    return names


def test_promql_metric_names_parser():
    assert promql_metric_names(
        'histogram_quantile(0.99, sum by (job, le) (rate(cxstream_processing_seconds_bucket'
        '{instance=~"$instance", le!="x"}[$__rate_interval]))) > 0.05') == {"cxstream_processing_seconds_bucket"}
    assert promql_metric_names('a_total / on (job) group_left b offset 5m and bool c or vector(0)') == \
        {"a_total", "b", "c"}
    assert promql_metric_names("absent(up{job=\"cxstream\"} == 1)") == {"up"}


# ------------------------------------------------------------------- rules
def alerting_rules() -> list[dict]:
    groups = yaml.safe_load((PROMETHEUS_DIR / "rules.yml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def test_promtool_check_config():
    promtool = require_tool("promtool", "apt-get install prometheus")
    result = subprocess.run([promtool, "check", "config", "prometheus.yml"], cwd=PROMETHEUS_DIR,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_check_rules():
    promtool = require_tool("promtool", "apt-get install prometheus")
    result = subprocess.run([promtool, "check", "rules", "rules.yml"], cwd=PROMETHEUS_DIR,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alerting_rules())} rules found" in result.stdout


def test_promtool_test_rules():
    promtool = require_tool("promtool", "apt-get install prometheus")
    result = subprocess.run([promtool, "test", "rules", "rules_test.yml"], cwd=PROMETHEUS_DIR,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_is_labelled_and_annotated():
    rules = alerting_rules()
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names))
    for rule in rules:
        assert rule["labels"]["severity"] in ("critical", "warning"), rule["alert"]
        assert {"summary", "description", "runbook"} <= rule["annotations"].keys(), rule["alert"]
        assert "README.md#runbook" in rule["annotations"]["runbook"]
    assert {"CxstreamTargetDown", "CxstreamWorkerNotReady", "CxstreamAlarmFeedLagGrowing",
            "CxstreamInputStalled", "CxstreamNoEvents", "CxstreamDeadLettersHigh",
            "CxstreamProcessingSlow"} <= set(names)


def test_rules_query_what_the_worker_exports():
    exported = exported_metric_names()
    used = set()
    for rule in alerting_rules():
        names = promql_metric_names(rule["expr"])
        assert names, f"{rule['alert']}: no metric found in {rule['expr']!r}"
        unknown = names - exported - NOT_FROM_THE_WORKER
        assert not unknown, f"{rule['alert']} uses {sorted(unknown)}, which the worker does not export"
        used |= names
    for needed in ("cxstream_alarm_feed_lag_records", "cxstream_events_total", "cxstream_deadletters_total",
                   "cxstream_processing_seconds_bucket", "cxstream_ready", "up"):
        assert needed in used


def test_every_alert_is_tested_firing_and_not_firing():
    tests = yaml.safe_load((PROMETHEUS_DIR / "rules_test.yml").read_text())
    assert tests["rule_files"] == ["rules.yml"]
    firing, quiet = set(), set()
    for case in tests["tests"]:
        for check in case.get("alert_rule_test", []):
            (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    names = {rule["alert"] for rule in alerting_rules()}
    assert names - firing == set(), f"never shown firing: {sorted(names - firing)}"
    assert names - quiet == set(), f"never shown quiet: {sorted(names - quiet)}"


def test_prometheus_config_loads_the_rules_and_scrapes_the_workers():
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    assert config["rule_files"] == ["rules.yml"]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["cxstream"].get("metrics_path", "/metrics") == "/metrics", "the rules select job=\"cxstream\""


# ----------------------------------------------------------------- dashboard
@pytest.fixture(scope="module")
def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def panels_of(dashboard: dict) -> list[dict]:
    found = []
    for panel in dashboard["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))
    return found


def queries(dashboard: dict) -> list[tuple[str, str]]:
    return [(panel["title"], target["expr"]) for panel in panels_of(dashboard)
            for target in panel.get("targets", [])]


def test_dashboard_is_well_formed(dashboard):
    assert dashboard["uid"] and dashboard["title"]
    panels = panels_of(dashboard)
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids)), "panel ids are unique"
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    for panel in panels:
        assert {"x", "y", "w", "h"} <= panel["gridPos"].keys(), panel["title"]
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel.get("targets"), f"{panel['title']} has no query"
        for target in panel["targets"]:
            assert target["expr"].strip() and target["refId"]


def test_dashboard_queries_name_only_exported_metrics(dashboard):
    exported = exported_metric_names()
    for title, expr in queries(dashboard):
        names = promql_metric_names(expr)
        assert names, f"{title}: no metric in {expr!r}"
        assert names <= exported, f"{title}: {sorted(names - exported)} are not exported by the worker"
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]["query"] if isinstance(variable["query"], dict) else variable["query"]
            metric = re.match(r"label_values\(\s*([a-zA-Z_:][\w:]*)\s*,", query).group(1)
            assert metric in exported, f"variable {variable['name']}: {metric}"


def test_dashboard_covers_the_operating_picture(dashboard):
    used = set()
    for _, expr in queries(dashboard):
        used |= promql_metric_names(expr)
    assert {"cxstream_events_total", "cxstream_deadletters_total", "cxstream_alarm_feed_lag_records",
            "cxstream_processing_seconds_bucket", "cxstream_triggers_total",
            "cxstream_triggers_suppressed_total", "cxstream_score_bucket", "cxstream_active_faults",
            "cxstream_customers", "cxstream_ready"} <= used
    by_title = {}
    for title, expr in queries(dashboard):
        by_title.setdefault(title, []).append(expr)
    latency = " ".join(by_title["Processing latency"])
    assert all(f"histogram_quantile({q}," in latency for q in ("0.5", "0.95", "0.99"))
    assert "by (source, outcome)" in by_title["Events/s by source and outcome"][0]
    assert "by (channel, trigger)" in by_title["Triggers/s by channel and trigger"][0]
    assert "reason" in by_title["Suppressions/s by reason"][0]
    score_panels = [p for p in panels_of(dashboard) if any("cxstream_score_bucket" in t["expr"]
                                                           for t in p.get("targets", []))]
    assert {p["type"] for p in score_panels} & {"heatmap", "bargauge"}


def test_grafana_provisioning():
    datasources = yaml.safe_load((GRAFANA_DIR / "provisioning/datasources/prometheus.yml").read_text())
    assert datasources["apiVersion"] == 1
    (source,) = datasources["datasources"]
    assert source["type"] == "prometheus" and source["access"] == "proxy" and source["isDefault"] is True
    providers = yaml.safe_load((GRAFANA_DIR / "provisioning/dashboards/cxstream.yml").read_text())
    assert providers["apiVersion"] == 1
    (provider,) = providers["providers"]
    assert provider["type"] == "file" and provider["options"]["path"]
