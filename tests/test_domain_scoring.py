"""The score model: points per metric, fading over event time, dimensions, weighted score, reasons."""

from __future__ import annotations

import copy

import orjson
import pytest
import yaml

from cxstream.domain.engine import Engine, InputRecord
from cxstream.domain.rules import DIMENSIONS, RuleBook, Scoring, default_rules_text, load_rules
from cxstream.domain.scoring import FORGET_BELOW, REASON_CAP, ScoreModel
from cxstream.models.common import format_time, parse_time
from cxstream.models.quality import QualityMetrics

from scoring_table import TEST_METRICS

HALF_LIFE = 1800.0
# Weights valid under any reading of the rules file (each 0-1, adding up to 1), so the
# expected numbers below do not depend on the shipped weights.
WEIGHTS = {"voice": 0.30, "data": 0.25, "video": 0.10, "messaging": 0.10, "availability": 0.25}


def scoring(**changes) -> Scoring:
    doc = copy.deepcopy(yaml.safe_load(default_rules_text())["scoring"])
    doc["weights"] = dict(WEIGHTS)
    doc["metrics"] = copy.deepcopy(TEST_METRICS)
    doc.update(changes)
    return Scoring.model_validate(doc)


@pytest.fixture
def model() -> ScoreModel:
    return ScoreModel(scoring(), HALF_LIFE)


def points(model: ScoreModel, service: str = "voice", **metrics) -> list[tuple[str, float]]:
    return model.observation_points(service, QualityMetrics(**metrics))


# --------------------------------------------------------------------------- points per metric


@pytest.mark.parametrize(
    ("service", "metrics", "expected"),
    [
        # flags: the documented points, to a fixed dimension
        ("voice", {"call_dropped": True}, [("voice.call_dropped", 25.0)]),
        ("data", {"call_dropped": True}, [("voice.call_dropped", 25.0)]),
        ("voice", {"call_setup_failed": True}, [("voice.call_setup_failed", 20.0)]),
        ("messaging", {"message_failed": True}, [("messaging.message_failed", 20.0)]),
        # levels: per unit beyond the threshold, capped by max
        ("voice", {"mos": 2.1}, [("voice.mos", 45.0)]),  # (3.6 - 2.1) * 30
        ("voice", {"mos": 1.0}, [("voice.mos", 60.0)]),  # 78, capped at 60
        ("video", {"video_stall_ratio": 0.1}, [("video.video_stall_ratio", 16.0)]),  # (0.1 - 0.02) * 200
        ("video", {"video_stall_ratio": 1.0}, [("video.video_stall_ratio", 50.0)]),  # capped
        # network metrics count against the record's own service
        ("data", {"latency_ms": 350}, [("data.latency_ms", 20.0)]),  # (350 - 150) * 0.1
        ("voice", {"latency_ms": 350}, [("voice.latency_ms", 20.0)]),
        ("video", {"latency_ms": 5000}, [("video.latency_ms", 30.0)]),  # capped
        ("messaging", {"jitter_ms": 50}, [("messaging.jitter_ms", 10.0)]),  # (50 - 30) * 0.5
        ("data", {"packet_loss_pct": 3}, [("data.packet_loss_pct", 10.0)]),  # (3 - 1) * 5
        ("data", {"packet_loss_pct": 100}, [("data.packet_loss_pct", 40.0)]),  # capped
        ("data", {"throughput_mbps": 2}, [("data.throughput_mbps", 18.0)]),  # (5 - 2) * 6
        ("video", {"throughput_mbps": 0}, [("video.throughput_mbps", 30.0)]),  # capped
    ],
)
def test_each_metric_adds_its_points_to_its_reason(model, service, metrics, expected) -> None:
    got = points(model, service, **metrics)
    assert [code for code, _ in got] == [code for code, _ in expected]
    for (_, value), (_, want) in zip(got, expected):
        assert value == pytest.approx(want)


@pytest.mark.parametrize(
    "metrics",
    [{"call_dropped": False}, {"call_setup_failed": False}, {"message_failed": False}, {"mos": 4.2},
     {"mos": 3.6}, {"latency_ms": 150}, {"jitter_ms": 10}, {"packet_loss_pct": 0.5},
     {"throughput_mbps": 50}, {"video_stall_ratio": 0.0}],
)
def test_good_values_add_nothing(model, metrics) -> None:
    assert points(model, "data", **metrics) == []


def test_one_record_several_metrics(model) -> None:
    got = dict(points(model, "voice", call_dropped=True, mos=3.0, latency_ms=250, jitter_ms=40))
    assert got == pytest.approx({"voice.call_dropped": 25.0, "voice.mos": 18.0,
                                 "voice.latency_ms": 10.0, "voice.jitter_ms": 5.0})


def test_each_reason_lowers_its_dimension_and_the_weighted_score(model) -> None:
    for service, metrics in [("voice", {"call_dropped": True}), ("data", {"latency_ms": 350}),
                             ("video", {"video_stall_ratio": 0.1}), ("messaging", {"message_failed": True})]:
        penalties: dict[str, float] = {}
        for code, value in points(model, service, **metrics):
            model.add(penalties, code, value)
        [(code, value)] = penalties.items()
        dim = code.split(".")[0]
        score, dimensions, contributions = model.evaluate(penalties, {})
        assert dimensions == {**{d: 100.0 for d in DIMENSIONS}, dim: pytest.approx(100.0 - value)}
        assert contributions == [(code, pytest.approx(-WEIGHTS[dim] * value))]
        assert score == pytest.approx(100.0 - WEIGHTS[dim] * value)


def test_repeated_observations_add_up_and_one_reason_is_capped(model) -> None:
    penalties: dict[str, float] = {}
    for _ in range(3):
        model.add(penalties, "voice.call_dropped", 25.0)
    assert penalties == {"voice.call_dropped": 75.0}
    for _ in range(3):
        model.add(penalties, "voice.call_dropped", 25.0)
    assert penalties == {"voice.call_dropped": REASON_CAP}


# --------------------------------------------------------------------------- fading


def test_decay_halves_a_penalty_each_half_life(model) -> None:
    penalties = {"voice.call_dropped": 40.0, "data.latency_ms": 8.0}
    model.decay(penalties, HALF_LIFE)
    assert penalties == pytest.approx({"voice.call_dropped": 20.0, "data.latency_ms": 4.0})
    model.decay(penalties, 2 * HALF_LIFE)
    assert penalties == pytest.approx({"voice.call_dropped": 5.0, "data.latency_ms": 1.0})
    assert model.decay_factor(HALF_LIFE / 2) == pytest.approx(2 ** -0.5)


def test_decay_with_no_elapsed_time_changes_nothing(model) -> None:
    penalties = {"voice.mos": 12.5}
    model.decay(penalties, 0)
    model.decay(penalties, -100)
    assert penalties == {"voice.mos": 12.5}
    assert model.decay_factor(-5) == 1.0


def test_faded_reasons_are_forgotten(model) -> None:
    penalties = {"voice.call_dropped": 25.0, "voice.mos": 1.0}
    model.decay(penalties, 7 * HALF_LIFE)  # 25/128 = 0.195, 1/128 = 0.0078 < FORGET_BELOW
    assert list(penalties) == ["voice.call_dropped"]
    assert 1.0 / 128 < FORGET_BELOW


# --------------------------------------------------------------------------- dimensions and the score


def test_a_dimension_floors_at_zero_and_its_reasons_share_the_loss(model) -> None:
    penalties = {"voice.call_dropped": 100.0, "voice.mos": 60.0, "voice.call_setup_failed": 40.0}
    score, dimensions, contributions = model.evaluate(penalties, {})
    assert dimensions["voice"] == 0.0
    # the 200 points are scaled to the dimension's 100, in proportion
    impacts = dict(contributions)
    assert impacts["voice.call_dropped"] == pytest.approx(-WEIGHTS["voice"] * 50.0)
    assert impacts["voice.mos"] == pytest.approx(-WEIGHTS["voice"] * 30.0)
    assert impacts["voice.call_setup_failed"] == pytest.approx(-WEIGHTS["voice"] * 20.0)
    assert score == pytest.approx(100.0 - WEIGHTS["voice"] * 100.0)
    assert sum(impacts.values()) == pytest.approx(score - 100.0)


@pytest.mark.parametrize("rules", ["test weights", "shipped rules"])
def test_the_score_stays_between_0_and_100(rules) -> None:
    model = ScoreModel(scoring() if rules == "test weights" else load_rules().scoring, HALF_LIFE)
    assert model.evaluate({}, {}) == (100.0, {d: 100.0 for d in DIMENSIONS}, [])
    worst = {f"{d}.x": REASON_CAP for d in ("voice", "data", "video", "messaging")}
    worst.update({f"{d}.y": REASON_CAP for d in ("voice", "data", "video", "messaging")})
    score, dimensions, contributions = model.evaluate(worst, {"CELL-1": 100.0, "SITE-1": 100.0})
    assert 0.0 <= score <= 100.0
    assert dimensions == {d: 0.0 for d in DIMENSIONS}
    assert all(impact <= 0 for _, impact in contributions)
    assert sum(i for _, i in contributions) == pytest.approx(score - 100.0)


def test_reasons_most_negative_first_limited_and_summing_to_the_loss(model) -> None:
    penalties = {"voice.call_dropped": 25.0, "data.latency_ms": 20.0, "video.video_stall_ratio": 16.0,
                 "messaging.message_failed": 20.0, "voice.mos": 45.0, "data.jitter_ms": 10.0,
                 "data.packet_loss_pct": 0.1}
    score, dimensions, contributions = model.evaluate(penalties, {"CELL-1": 70.0})
    impacts = [impact for _, impact in contributions]
    assert impacts == sorted(impacts)  # most negative first
    assert [code for code, _ in contributions[:3]] == ["fault.CELL-1", "voice.mos", "voice.call_dropped"]
    assert contributions[0][1] == pytest.approx(-0.25 * 70.0)
    # nothing is capped: the impacts add up to the points lost
    assert sum(impacts) == pytest.approx(score - 100.0)
    assert score == pytest.approx(100 - (0.3 * 70 + 0.25 * 30.1 + 0.1 * 16 + 0.1 * 20 + 0.25 * 70))
    reasons = model.reasons(contributions)
    assert len(reasons) == model.top == 5
    assert reasons == [{"code": code, "impact": round(impact, 1)} for code, impact in contributions[:5]]


def test_reasons_leave_out_what_rounds_to_zero(model) -> None:
    score, _, contributions = model.evaluate({"voice.call_dropped": 10.0, "data.jitter_ms": 0.1}, {})
    assert model.reasons(contributions) == [{"code": "voice.call_dropped", "impact": -3.0}]


def test_reasons_count_is_configurable() -> None:
    model = ScoreModel(scoring(reasons=2), HALF_LIFE)
    _, _, contributions = model.evaluate({"voice.a": 10.0, "data.b": 20.0, "video.c": 20.0}, {})
    assert [r["code"] for r in model.reasons(contributions)] == ["data.b", "voice.a"]


def test_equal_impacts_are_ordered_by_code(model) -> None:
    _, _, contributions = model.evaluate({"voice.b": 10.0, "voice.a": 10.0}, {})
    assert [code for code, _ in contributions] == ["voice.a", "voice.b"]


# --------------------------------------------------------------------------- faults on availability


def test_a_fault_level_counts_on_availability(model) -> None:
    score, dimensions, contributions = model.evaluate({}, {"CELL-1": 70.0})
    assert dimensions["availability"] == pytest.approx(30.0)
    assert contributions == [("fault.CELL-1", pytest.approx(-0.25 * 70.0))]
    assert score == pytest.approx(100 - 0.25 * 70)


def test_a_fault_level_and_its_residue_count_once_the_larger_wins(model) -> None:
    # a fading residue below the active level: the level holds
    _, dimensions, contributions = model.evaluate({"fault.CELL-1": 40.0}, {"CELL-1": 70.0})
    assert dimensions["availability"] == pytest.approx(30.0) and len(contributions) == 1
    # a residue of an earlier, worse alarm above the level: the residue counts
    _, dimensions, _ = model.evaluate({"fault.CELL-1": 90.0}, {"CELL-1": 70.0})
    assert dimensions["availability"] == pytest.approx(10.0)


# --------------------------------------------------------------------------- through the engine

T0 = parse_time("2026-11-22T10:00:00Z")


def _record(source: str, key: str, doc: dict, offset: int, t: float) -> InputRecord:
    return InputRecord(source, f"cx.{source}", 0, offset, key.encode(), orjson.dumps(doc), t)


def _engine() -> Engine:
    book = load_rules()
    book = RuleBook(scoring=scoring(), rules=book.rules)
    engine = Engine(book, half_life_s=HALF_LIFE, allowed_lateness_s=900.0)
    engine.go_live()
    return engine


def _alarm(alarm_id: str, resource: str, t: float, severity: str = "major", offset: int = 0) -> InputRecord:
    return _record("faults", alarm_id, {
        "eventType": "AlarmCreateEvent", "eventId": f"{alarm_id}-raise", "eventTime": format_time(t),
        "event": {"alarm": {"id": alarm_id, "alarmedObject": {"id": resource}, "perceivedSeverity": severity,
                            "alarmRaisedTime": format_time(t), "state": "raised"}}}, offset, t)


def _clear(alarm_id: str, t: float, offset: int = 0) -> InputRecord:
    return _record("faults", alarm_id, {
        "eventType": "AlarmStateChangeEvent", "eventId": f"{alarm_id}-clear", "eventTime": format_time(t),
        "event": {"alarm": {"id": alarm_id, "state": "cleared", "alarmClearedTime": format_time(t)}}}, offset, t)


def _quality(cid: str, event_id: str, t: float, service: str = "voice", **metrics) -> InputRecord:
    return _record("quality", cid, {"event_id": event_id, "customer_id": cid, "event_time": format_time(t),
                                    "service": service, "metrics": metrics}, 0, t)


def _customer(cid: str, resources: list[str], t: float) -> InputRecord:
    return _record("customers", cid, {"customer_id": cid, "resources": resources,
                                      "updated_at": format_time(t)}, 0, t)


def test_quality_penalties_fade_over_event_time_in_the_engine() -> None:
    engine = _engine()
    engine.process([_quality("C1", "q1", T0, call_dropped=True)])
    state = engine.customers["C1"]
    assert state.score == pytest.approx(100 - 0.3 * 25)
    # an hour later (two half-lives), a harmless record: the drop has faded to a quarter
    engine.process([_quality("C1", "q2", T0 + 2 * HALF_LIFE, mos=4.4)])
    assert state.penalties == pytest.approx({"voice.call_dropped": 25 / 4})
    assert state.score == pytest.approx(100 - 0.3 * 25 / 4)


def test_fault_level_holds_while_active_and_fades_after_the_clear() -> None:
    engine = _engine()
    engine.process([_customer("C1", ["CELL-1"], T0)])
    engine.apply_fault(_alarm("A1", "CELL-1", T0, "major"))
    state = engine.customers["C1"]
    held = 100 - 0.25 * 70
    assert state.score == pytest.approx(held)
    # ten half-lives later, still active: the level has not faded
    engine.process([_quality("C1", "q1", T0 + 10 * HALF_LIFE, mos=4.4)])
    assert state.score == pytest.approx(held)
    assert engine.score_view(state)[1]["availability"] == pytest.approx(30.0)
    # cleared: the residue starts at the level and halves each half-life
    engine.apply_fault(_clear("A1", T0 + 10 * HALF_LIFE))
    assert state.score == pytest.approx(held)
    engine.process([_quality("C1", "q2", T0 + 11 * HALF_LIFE, mos=4.4)])
    assert state.penalties == pytest.approx({"fault.CELL-1": 35.0})
    assert state.score == pytest.approx(100 - 0.25 * 35)


def test_the_worked_example_in_docs_scoring_md() -> None:
    """docs/scoring.md's example, with the shipped rules: when this fails, update the document."""
    from cxstream.outputs.scores import score_document

    t = parse_time("2026-11-22T10:00:05Z")
    engine = Engine(load_rules(), half_life_s=1800.0, allowed_lateness_s=900.0)
    engine.go_live()
    engine.process([_record("customers", "C100042", {
        "customer_id": "C100042", "segment": "consumer", "value_tier": "gold", "marketing_consent": True,
        "resources": ["CELL-0042", "SITE-0007"], "updated_at": "2026-11-22T09:00:00Z"}, 0, t)])

    def step() -> tuple[dict, list[str], dict]:
        firings, _, tally = engine.drain()
        doc = score_document(engine, engine.customers["C100042"])
        return doc, [f.rule.id for f in firings], {reason: n for (_, _, reason), n in tally.suppressed.items()}

    engine.process([_quality("C100042", "q-1", t, call_dropped=True, mos=2.1)])
    doc, fired, held = step()
    assert doc["score"] == 73.8 and doc["dimensions"]["voice"] == 62.5
    assert doc["reasons"] == [{"code": "voice.mos", "impact": -15.7}, {"code": "voice.call_dropped", "impact": -10.5}]
    assert fired == []

    engine.process([_quality("C100042", "q-1b", t + 300, call_dropped=True, mos=1.8)])
    doc, fired, held = step()
    assert doc["score"] == 48.6 and doc["dimensions"]["voice"] == 26.6
    assert [r["impact"] for r in doc["reasons"]] == [-31.5, -19.9]
    assert fired == ["retention_offer"]

    engine.apply_fault(_alarm("ALM-77", "CELL-0042", t + 1800, "major"))
    doc, fired, held = step()
    assert doc["score"] == 29.2 and doc["dimensions"]["voice"] == 58.8 and doc["dimensions"]["availability"] == 30.0
    assert [r["impact"] for r in doc["reasons"]] == [-42.0, -17.7, -11.1] and doc["active_faults"] == ["ALM-77"]
    assert fired == ["outage_notice", "priority_care"] and held == {"active_fault": 1}

    engine.apply_fault(_clear("ALM-77", t + 5400))
    doc, fired, held = step()
    assert doc["score"] == 50.8 and doc["dimensions"]["voice"] == 89.7 and doc["reasons"][0]["impact"] == -42.0
    assert fired == ["service_restored"]

    engine.process([_quality("C100042", "q-2", t + 9000, "data", latency_ms=40)])
    doc, fired, held = step()
    assert doc["score"] == 87.7 and doc["dimensions"]["availability"] == 82.5 and doc["dimensions"]["voice"] == 97.4
    assert fired == []


def test_score_alone_is_the_evaluated_score_to_the_bit(model) -> None:
    """The hot path computes only the score; it must equal evaluate()'s exactly
    (same sums, same order), or documents and triggers could disagree."""
    import random

    rng = random.Random(42)
    codes = ["voice.call_dropped", "voice.mos", "data.latency_ms", "data.packet_loss_pct", "video.video_stall_ratio",
             "messaging.message_failed", "fault.CELL-1", "fault.SITE-1"]
    for _ in range(2000):
        penalties = {c: rng.uniform(0, 120) for c in rng.sample(codes, rng.randint(0, len(codes)))}
        levels = {r: rng.choice([10.0, 30.0, 70.0, 100.0]) for r in rng.sample(["CELL-1", "SITE-1", "OLT-2"],
                                                                               rng.randint(0, 3))}
        assert model.score(penalties, levels) == model.evaluate(penalties, levels)[0], (penalties, levels)
    assert model.score({}, {}) == 100.0
