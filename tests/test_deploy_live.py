"""A real Prometheus server scraping a real worker, with the shipped alerting rules.

The worker (``cxstream worker`` in a child process, on the session's embedded
broker) gets a few contract records; Prometheus (``/usr/bin/prometheus`` from
the Debian package, 1 s scrape and evaluation interval, its TSDB in a temporary
directory, its web API on a free loopback port) scrapes it. The test then reads
the contract's metrics back through ``/api/v1/query``, checks that every rule
of deploy/prometheus/rules.yml is loaded and evaluates without error
(``/api/v1/rules``), that every dashboard query is valid PromQL on real data,
and that the image's HEALTHCHECK command passes against the worker.

Waits are polls against a deadline, never sleeps standing in for an event.
Tools: ``prometheus`` (Debian package ``prometheus``); without it the test skips
with a reason, and ``CXSTREAM_REQUIRE_DEPLOY_TOOLS=1`` makes it fail instead.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

from cxstream.ops.broker import free_port
from e2e import Feed, running_worker

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "deploy" / "prometheus" / "rules.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "cxstream.json"
NEVER_EVALUATED = "0001-01-01T00:00:00Z"

#: The metrics of the contract's operating surface and the ones an SRE needs (ops/metrics.py).
EXPECTED_SERIES = {
    "cxstream_events_total", "cxstream_triggers_total", "cxstream_triggers_suppressed_total",
    "cxstream_processing_seconds_bucket", "cxstream_processing_seconds_count", "cxstream_processing_seconds_sum",
    "cxstream_customers", "cxstream_active_faults", "cxstream_score_bucket", "cxstream_deadletters_total",
    "cxstream_flush_seconds_bucket", "cxstream_ready", "cxstream_alarm_feed_lag_records",
}


def prometheus_binary() -> str:
    found = shutil.which("prometheus")
    if found:
        return found
    message = "prometheus is not installed (apt-get install prometheus)"
    if os.environ.get("CXSTREAM_REQUIRE_DEPLOY_TOOLS"):
        pytest.fail(message + " and CXSTREAM_REQUIRE_DEPLOY_TOOLS is set")
    pytest.skip(message)


class Prometheus:
    """A Prometheus server process with its config, TSDB and log in one directory."""

    def __init__(self, binary: str, directory: Path, targets: list[str]):
        self.binary = binary
        self.directory = directory
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = directory / "prometheus.log"
        directory.mkdir(parents=True, exist_ok=True)
        self.process: subprocess.Popen | None = None
        config = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(RULES)],
            "scrape_configs": [{"job_name": "cxstream", "static_configs": [{"targets": targets}]}],
        }
        self.config_path = directory / "prometheus.yml"
        self.config_path.write_text(yaml.safe_dump(config))

    def start(self) -> "Prometheus":
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [self.binary, f"--config.file={self.config_path}",
                 f"--storage.tsdb.path={self.directory / 'tsdb'}",
                 f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=self.directory)
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def get(self, path: str, **params: str) -> Any:
        url = self.url + path + ("?" + urllib.parse.urlencode(params) if params else "")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                body = response.read()
        except urllib.error.HTTPError as error:
            body = error.read()
        return json.loads(body)

    def wait_ready(self, deadline: float) -> None:
        def ready() -> bool:
            if self.process.poll() is not None:
                raise RuntimeError(f"prometheus exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url + "/-/ready", timeout=2) as response:
                    return response.status == 200
            except (urllib.error.URLError, ConnectionError, OSError):
                return False

        poll(ready, deadline, lambda: "prometheus not ready:\n" + self.log_tail())

    def query(self, expr: str) -> list[dict]:
        answer = self.get("/api/v1/query", query=expr)
        assert answer["status"] == "success", f"{expr}: {answer.get('error')}"
        return answer["data"]["result"]


def poll(predicate: Callable[[], Any], deadline: float, describe: Callable[[], str]) -> Any:
    """predicate() until it returns something truthy, or fail at the deadline."""
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out: {describe()}")
        time.sleep(0.2)


def value_of(prometheus: Prometheus, expr: str) -> float | None:
    result = prometheus.query(expr)
    return float(result[0]["value"][1]) if len(result) == 1 else None


@pytest.fixture
def worker(make_settings, tmp_path):
    with running_worker(make_settings(), tmp_path / "worker.log") as process:
        yield process


@pytest.fixture
def prometheus(worker, tmp_path):
    server = Prometheus(prometheus_binary(), tmp_path / "prometheus",
                        [f"127.0.0.1:{worker.settings.web_port}"])
    server.start()
    try:
        yield server
    finally:
        server.stop()


def with_job(selector: str) -> str:
    """``name{labels}`` or ``name`` -> the same selector restricted to job="cxstream"."""
    if selector.endswith("}"):
        return selector[:-1] + ', job="cxstream"}'
    return selector + '{job="cxstream"}'


def feed_records(settings) -> None:
    feed = Feed(settings)
    feed.customer("A1", ["CELL-A"], tier="gold", consent=True)
    feed.customer("N1", ["CELL-C"], tier="silver", consent=False)
    feed.customer("G1", ["CELL-G"], tier="bronze", consent=True)
    for minute in range(10, 20):  # N1 sinks; no consent: a suppressed retention offer
        feed.quality("N1", f"2026-11-22T10:{minute:02d}:00Z", call_dropped=True, mos=1.2)
    feed.quality("G1", "2026-11-22T10:20:00Z", mos=4.4)
    feed.quality("G1", "2026-11-22T10:21:00Z", mos=4.3)
    feed.send(settings.topics.quality, "G1", b"{not json")
    feed.alarm_raise("ALM-1", "CELL-A", "2026-11-22T10:30:00Z", severity="critical")
    feed.flush()


def test_prometheus_scrapes_the_worker_and_loads_the_rules(worker, prometheus):
    deadline = time.monotonic() + 45
    feed_records(worker.settings)
    prometheus.wait_ready(deadline)

    poll(lambda: value_of(prometheus, 'up{job="cxstream"}') == 1, deadline,
         lambda: f"target not up: {prometheus.get('/api/v1/targets')}")

    # the contract's metrics, read back through Prometheus once the worker has counted the input
    expected = {
        'cxstream_events_total{source="customers", outcome="ok"}': 3,
        'cxstream_events_total{source="quality", outcome="ok"}': 12,
        'cxstream_events_total{source="quality", outcome="invalid"}': 1,
        'cxstream_events_total{source="faults", outcome="ok"}': 1,
        'cxstream_deadletters_total{source="quality"}': 1,
        'cxstream_triggers_total{channel="care", trigger="outage_notice"}': 1,
        "cxstream_customers": 3,
        "cxstream_active_faults": 1,
        "cxstream_ready": 1,
        "cxstream_alarm_feed_lag_records": 0,
    }

    def all_expected() -> bool:
        return all(value_of(prometheus, with_job(expr)) == value for expr, value in expected.items())

    def actual() -> str:
        return "; ".join(f"{expr} = {prometheus.query(expr)}" for expr in expected)

    poll(all_expected, deadline, lambda: "metrics never reached the expected values: " + actual())
    suppressed = value_of(prometheus, 'sum(cxstream_triggers_suppressed_total{channel="marketing", '
                                      'trigger="retention_offer", reason="no_consent"})')
    assert suppressed is not None and suppressed >= 1
    assert value_of(prometheus, "sum(cxstream_processing_seconds_count)") >= 1
    assert value_of(prometheus, "sum(cxstream_score_count)") >= 1
    names = {r["metric"]["__name__"] for r in prometheus.query(
        'count by (__name__) ({job="cxstream", __name__=~"cxstream_.+"})')}
    assert EXPECTED_SERIES <= names, f"missing from Prometheus: {sorted(EXPECTED_SERIES - names)}"

    # every shipped alerting rule is loaded, evaluated, and healthy on real data
    expected_alerts = {rule["alert"] for group in yaml.safe_load(RULES.read_text())["groups"]
                       for rule in group["rules"] if "alert" in rule}

    def rules_evaluated() -> list[dict] | None:
        rules = [rule for group in prometheus.get("/api/v1/rules")["data"]["groups"] for rule in group["rules"]]
        if {r["name"] for r in rules} == expected_alerts and all(
                r["lastEvaluation"] != NEVER_EVALUATED for r in rules):
            return rules
        return None

    rules = poll(rules_evaluated, deadline, lambda: f"rules not all evaluated: {prometheus.get('/api/v1/rules')}")
    for rule in rules:
        assert rule["type"] == "alerting"
        assert rule["health"] == "ok", f"{rule['name']}: {rule.get('lastError')}"
    firing = {a["labels"]["alertname"] for a in prometheus.get("/api/v1/alerts")["data"]["alerts"]
              if a["state"] == "firing"}
    assert not firing & {"CxstreamTargetDown", "CxstreamAllWorkersDown", "CxstreamWorkerNotReady"}

    # every dashboard query is valid PromQL against the live series
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    for expr in exprs:
        concrete = (expr.replace("$__rate_interval", "1m").replace("$__range", "5m")
                    .replace("$instance", ".*"))
        prometheus.query(concrete)
    poll(lambda: prometheus.query('sum by (source, outcome) (rate(cxstream_events_total{instance=~".*"}[1m]))'),
         deadline, lambda: "no event rate")

    # the image's HEALTHCHECK command, against the live worker
    dockerfile = (ROOT / "Dockerfile").read_text()
    command = json.loads(dockerfile.split("HEALTHCHECK", 1)[1].split("CMD", 1)[1].split("\n")[0])
    env = {**os.environ, "CXSTREAM_WEB_PORT": str(worker.settings.web_port)}
    assert subprocess.run([sys.executable, *command[1:]], env=env, timeout=30).returncode == 0
