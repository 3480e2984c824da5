"""`cxstream replay` offline: JSON-lines input, determinism, rules comparison, errors."""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from cxstream.domain.rules import default_rules_text
from cxstream.ops.cli import build_parser
from cxstream.ops.settings import Settings
from cxstream.replay.cli import run_replay
from cxstream.replay.inputs import ReplayError, parse_line, read_jsonl, simulated, to_line


def cli(*args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CXSTREAM_")}
    clean.update(env)
    return subprocess.run([sys.executable, "-m", "cxstream", "replay", *args], env=clean, capture_output=True,
                          text=True, timeout=120)


def replay(*argv: str, settings: Settings | None = None) -> tuple[dict, str]:
    """Run the command in-process; returns the JSON figures and the printed report."""
    parser = build_parser()
    args = parser.parse_args(["replay", *argv, "--quiet"])
    json_path = Path(args.json) if args.json else None
    assert json_path is not None, "pass --json"
    out = io.StringIO()
    assert run_replay(settings or Settings(), args, out=out, err=io.StringIO()) == 0
    return orjson.loads(json_path.read_bytes()), out.getvalue()


def line(topic: str, key: str | None, value, at: str) -> bytes:
    return orjson.dumps({"topic": topic, "key": key, "value": value, "timestamp": at}) + b"\n"


def customer(cid: str, cell: str, tier: str = "gold", consent: bool = True) -> bytes:
    return line("customers", cid, {"customer_id": cid, "segment": "consumer", "value_tier": tier,
                                   "marketing_consent": consent, "resources": [cell],
                                   "updated_at": "2026-11-22T08:00:00Z"}, "2026-11-22T08:00:00Z")


def alarm(event: str, alarm_id: str, at: str, **fields) -> bytes:
    return line("faults", alarm_id, {"eventId": f"{alarm_id}-{event}", "eventTime": at, "eventType": event,
                                     "event": {"alarm": {"id": alarm_id, **fields}}}, at)


def quality(cid: str | None, customer_id: str, n: int, at: str, **metrics) -> bytes:
    return line("quality", cid, {"event_id": f"q-{customer_id}-{n}", "customer_id": customer_id, "event_time": at,
                                 "service": "voice", "metrics": metrics}, at)


@pytest.fixture
def story(tmp_path: Path) -> Path:
    """Two gold customers on CELL-A under an outage, one on CELL-B whose calls keep failing."""
    lines = [customer("A1", "CELL-A"), customer("A2", "CELL-A"), customer("B1", "CELL-B", tier="bronze")]
    lines.append(alarm("AlarmCreateEvent", "ALM-1", "2026-11-22T10:00:00Z", alarmedObject={"id": "CELL-A"},
                       perceivedSeverity="critical", alarmRaisedTime="2026-11-22T10:00:00Z", state="raised"))
    for minute in range(10, 20):
        lines.append(quality("B1", "B1", minute, f"2026-11-22T10:{minute:02d}:00Z", call_dropped=True, mos=1.2))
    # not keyed by its customer: forwarded to the customer's partition, then applied
    lines.append(quality(None, "A1", 1, "2026-11-22T10:21:00Z", mos=4.2))
    lines.append(orjson.dumps({"topic": "quality", "key": "B1", "value_text": "{not json",
                               "timestamp": "2026-11-22T10:22:00Z"}) + b"\n")
    lines.append(alarm("AlarmStateChangeEvent", "ALM-1", "2026-11-22T11:00:00Z", state="cleared",
                       alarmClearedTime="2026-11-22T11:00:00Z"))
    lines.append(line("customers", "B1", None, "2026-11-22T11:30:00Z"))
    path = tmp_path / "story.jsonl"
    path.write_bytes(b"".join(lines))
    return path


def test_a_recorded_story_gives_the_expected_triggers(story: Path, tmp_path: Path):
    events = tmp_path / "events.jsonl"
    figures, text = replay("--input", str(story), "--json", str(tmp_path / "r.json"), "--events", str(events))
    by_rule = {r["rule"]: r["events"] for r in figures["current"]["triggers"]["by_rule"]}
    assert by_rule == {"outage_notice": 2, "service_restored": 2, "priority_care": 0, "retention_offer": 1,
                       "service_credit": 0}
    sent = [orjson.loads(x) for x in events.read_bytes().splitlines()]
    assert sorted((e["data"]["rule_id"], e["subject"]) for e in sent) == [
        ("outage_notice", "A1"), ("outage_notice", "A2"), ("retention_offer", "B1"),
        ("service_restored", "A1"), ("service_restored", "A2")]
    assert all(e["source"] == "urn:cxstream:default" for e in sent)
    outcomes = figures["current"]["input_outcomes"]
    assert outcomes["quality"]["ok"] == 11  # the unkeyed record was forwarded and applied
    assert outcomes["quality"]["invalid"] == 1 and outcomes["faults"]["ok"] == 2
    assert figures["current"]["rejections"]["total"] == 1
    assert "JSON" in figures["current"]["rejections"]["by_reason"][0]["reason"]
    assert figures["current"]["scores"]["customers"] == 2  # B1 was erased by its tombstone
    assert figures["input"]["by_topic"] == {"faults": 2, "customers": 4, "quality": 12}
    assert "Triggers that would have been sent: 5" in text


def test_records_before_from_build_state_but_are_not_counted(story: Path, tmp_path: Path):
    figures, text = replay("--input", str(story), "--from", "2026-11-22T10:30:00Z",
                           "--json", str(tmp_path / "r.json"))
    by_rule = {r["rule"]: r["events"] for r in figures["current"]["triggers"]["by_rule"]}
    # the notices and the offer came before --from; the outage episode they opened is
    # remembered, so its end still sends service_restored
    assert by_rule["outage_notice"] == 0 and by_rule["retention_offer"] == 0
    assert by_rule["service_restored"] == 2
    assert figures["current"]["fired_before_from"] == 3
    assert figures["input"]["records_before_from"] == 16
    assert "records before --from built the state first" in text


def test_the_same_input_gives_the_same_output(tmp_path: Path):
    """Two processes with different hash seeds, the same JSON-lines file: identical
    report, JSON and CloudEvents (ids included)."""
    recorded = tmp_path / "traffic.jsonl"
    first = cli("--simulate", "3000", "--customers", "300", "--save-input", str(recorded), "--quiet",
                "--json", str(tmp_path / "sim.json"))
    assert first.returncode == 0, first.stderr
    runs = []
    for n in (1, 2):
        result = cli("--input", str(recorded), "--json", str(tmp_path / f"r{n}.json"),
                     "--events", str(tmp_path / f"e{n}.jsonl"), PYTHONHASHSEED=str(n))
        assert result.returncode == 0, result.stderr
        runs.append((result.stdout, (tmp_path / f"r{n}.json").read_bytes(), (tmp_path / f"e{n}.jsonl").read_bytes()))
    assert runs[0] == runs[1]
    figures = orjson.loads(runs[0][1])
    assert figures["current"]["triggers"]["total"] > 0
    assert len(runs[0][2].splitlines()) == figures["current"]["triggers"]["total"]
    # the recorded file replays exactly like the simulation it was recorded from
    simulated_figures = orjson.loads((tmp_path / "sim.json").read_bytes())
    assert simulated_figures["current"] == figures["current"]


def test_lower_threshold_shows_more_triggers_and_who_gets_them(tmp_path: Path):
    new_rules = tmp_path / "lower.yaml"
    text = default_rules_text()
    assert "score_below: 40" in text
    new_rules.write_text(text.replace("score_below: 40", "score_below: 75"))
    figures, report = replay("--simulate", "4000", "--customers", "300", "--rules", str(new_rules),
                             "--json", str(tmp_path / "r.json"), "--events", str(tmp_path / "cur.jsonl"),
                             "--new-events", str(tmp_path / "new.jsonl"))
    rows = {r["rule"]: r for r in figures["comparison"]}
    care = rows["priority_care"]
    assert care["new"] > care["current"] and care["delta"] == care["new"] - care["current"]
    assert 0 < len(care["gaining_sample"]) <= 5 and care["gaining_sample"] == sorted(care["gaining_sample"])
    assert rows["outage_notice"]["delta"] == 0 and rows["outage_notice"]["gaining_sample"] == []

    def who(path: Path) -> set[str]:
        return {e["subject"] for e in map(orjson.loads, path.read_bytes().splitlines())
                if e["data"]["rule_id"] == "priority_care"}

    before, after = who(tmp_path / "cur.jsonl"), who(tmp_path / "new.jsonl")
    assert set(care["gaining_sample"]) <= after - before
    assert care["customers_gaining"] == len(after - before)
    assert f"{care['delta']:+,}" in report and care["gaining_sample"][0] in report
    assert figures["new"]["triggers"]["total"] - figures["current"]["triggers"]["total"] == sum(
        r["delta"] for r in figures["comparison"])


def test_jsonl_lines_round_trip_bytes():
    for record in list(simulated(3, 50, 400))[:120]:
        role, key, value, ts, partition, offset = parse_line(to_line(record), "x", 0.0)
        assert (role, key, value, ts, partition, offset) == (record.source, record.key, record.value,
                                                             record.timestamp, record.partition, record.offset)
    _, key, value, *_ = parse_line(b'{"topic": "quality", "key_b64": "/w==", "value_b64": "//4="}', "x", 0.0)
    assert key == b"\xff" and value == b"\xff\xfe"


@pytest.mark.parametrize("content, expected", [
    (b"{not json\n", "line 1: not a JSON line"),
    (b'{"topic": "alarms", "value": {}}\n', "line 1: topic must be one of"),
    (b'\n{"topic": "quality", "key": "C1"}\n', "line 2: value is missing"),
    (b'{"topic": "quality", "value": {}, "timestamp": "yesterday"}\n', "line 1: timestamp"),
])
def test_bad_input_lines_are_named(tmp_path: Path, content: bytes, expected: str):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(content)
    with pytest.raises(ReplayError, match=expected):
        list(read_jsonl(path))


def test_user_mistakes_end_with_one_line(tmp_path: Path):
    bad_rules = tmp_path / "bad.yaml"
    bad_rules.write_text(default_rules_text().replace("cooldown: 7d", "cooldown: 7 days"))
    bad_line = tmp_path / "bad.jsonl"
    bad_line.write_bytes(b'{"topic": "quality", "value": {}}\n{"topic": "nope"}\n')
    cases = [
        (["--input", str(tmp_path / "missing.jsonl")], "missing.jsonl"),
        (["--simulate", "500", "--rules", str(bad_rules)], "retention_offer"),
        (["--simulate", "500", "--rules", str(tmp_path / "nope.yaml")], "nope.yaml"),
        (["--simulate", "500", "--from", "2026-11-22T12:00:00Z", "--to", "2026-11-22T10:00:00Z"], "not before --to"),
        (["--from", "22/11/2026"], "RFC 3339"),
        (["--from", "2026-11-22T10:00:00Z"], "CXSTREAM_BROKER"),
        ([], "say what to replay"),
        (["--input", str(bad_line)], "bad.jsonl line 2"),
        (["--simulate", "500", "--input", str(bad_line)], "give one input"),
        (["--simulate", "500", "--warmup", "soon"], "--warmup"),
        (["--simulate", "0"], "at least 100 events"),
        (["--simulate", "500", "--json", str(tmp_path / "no" / "such" / "dir.json")], "does not exist"),
    ]
    for argv, needle in cases:
        result = cli(*argv)
        assert result.returncode == 2, (argv, result.stderr)
        assert "Traceback" not in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert needle in result.stderr and result.stderr.startswith("cxstream: "), (argv, result.stderr)
        assert result.stdout == ""
    # rules errors name the rule and the field
    assert "cooldown" in cli("--simulate", "500", "--rules", str(bad_rules)).stderr


def test_unreachable_broker_is_one_line():
    result = cli("--from", "2026-11-22T10:00:00Z", CXSTREAM_BROKER="kafka://127.0.0.1:9")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "127.0.0.1:9" in result.stderr


def test_help_explains_inputs_and_outputs():
    result = cli("--help")
    assert result.returncode == 0
    for needle in ("--from", "--to", "--input", "--simulate", "--rules", "--json", "--events", "--warmup",
                   "JSON-lines", "offline (nothing is", "CXSTREAM_RULES", "CXSTREAM_SOURCE"):
        assert needle in result.stdout, needle
    top = subprocess.run([sys.executable, "-m", "cxstream", "--help"], capture_output=True, text=True, timeout=60)
    assert "replay" in top.stdout and "dry-run" in top.stdout


def test_arguments_namespace_is_complete():
    """cmd_replay is wired to the parser: every option has a default the runner reads."""
    args = build_parser().parse_args(["replay", "--simulate", "100"])
    assert isinstance(args, argparse.Namespace) and args.func.__name__ == "cmd_replay"
    assert args.warmup == "2h" and args.rules is None and args.input is None
