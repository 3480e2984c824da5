"""User mistakes end with one line saying what to fix: no traceback."""

from __future__ import annotations

import os
import subprocess
import sys


def run(*args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CXSTREAM_")}
    clean.update(env)
    return subprocess.run([sys.executable, "-m", "cxstream", *args], env=clean, capture_output=True,
                          text=True, timeout=60)


def test_bad_value_names_the_variable():
    result = run("worker", CXSTREAM_BROKER="kafka://127.0.0.1:9", CXSTREAM_WEB_PORT="abc")
    assert result.returncode == 2
    assert "CXSTREAM_WEB_PORT" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_missing_broker_says_what_to_set():
    result = run("worker")
    assert result.returncode == 2 and "CXSTREAM_BROKER" in result.stderr and "Traceback" not in result.stderr


def test_bad_rules_file_names_rule_and_field(tmp_path):
    rules = tmp_path / "rules.yaml"
    from cxstream.domain.rules import default_rules_text

    rules.write_text(default_rules_text().replace("cooldown: 7d", "cooldown: 7 days"))
    result = run("worker", CXSTREAM_BROKER="kafka://127.0.0.1:9", CXSTREAM_RULES=str(rules))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "retention_offer" in result.stderr and "cooldown" in result.stderr


def test_sasl_without_credentials_is_refused():
    result = run("worker", CXSTREAM_BROKER="kafka://127.0.0.1:9", CXSTREAM_SECURITY_PROTOCOL="SASL_SSL")
    assert result.returncode == 2 and "CXSTREAM_SASL_MECHANISM" in result.stderr


def test_topics_dry_run_prints_the_plan():
    result = run("topics", "create", "--dry-run")
    assert result.returncode == 0
    assert "cx.customers" in result.stdout and "cleanup.policy=compact" in result.stdout


def test_help_explains_every_command():
    result = run("--help")
    for command in ("worker", "demo", "simulate", "bench", "topics"):
        assert command in result.stdout
    assert "CXSTREAM_BROKER" in result.stdout
