"""The rules file: the shipped defaults, durations, and errors that name rule, index and field."""

from __future__ import annotations

import copy

import pytest
import yaml

from cxstream.domain.rules import (
    DIMENSIONS,
    RuleEvent,
    RulesError,
    default_rules_text,
    load_rules,
    parse_duration,
    parse_rules,
)

DEFAULT = yaml.safe_load(default_rules_text())


def rules_with(change) -> str:
    """The shipped rules file with ``change(doc)`` applied, as YAML text."""
    doc = copy.deepcopy(DEFAULT)
    change(doc)
    return yaml.safe_dump(doc, sort_keys=False)


def error_of(text: str) -> str:
    with pytest.raises(RulesError) as caught:
        parse_rules(text, "my-rules.yaml")
    message = str(caught.value)
    assert message.startswith("rules file my-rules.yaml"), message
    return message


# --------------------------------------------------------------------------- the shipped file


def test_shipped_rules_are_the_five_contract_rules() -> None:
    book = load_rules()
    by_id = {rule.id: rule for rule in book.rules}
    assert list(by_id) == ["outage_notice", "service_restored", "priority_care", "retention_offer", "service_credit"]
    assert {r.id: (r.trigger, r.channel) for r in book.rules} == {
        "outage_notice": ("outage_notice", "care"),
        "service_restored": ("service_restored", "care"),
        "priority_care": ("priority_care", "care"),
        "retention_offer": ("retention_offer", "marketing"),
        "service_credit": ("service_credit", "care"),
    }
    notice = by_id["outage_notice"]
    assert notice.when is RuleEvent.outage_started and notice.severities == ["critical", "major"]
    assert by_id["service_restored"].when is RuleEvent.outage_ended
    care = by_id["priority_care"]
    assert (care.when, care.score_below, care.value_tiers, care.cooldown) == (
        RuleEvent.score, 40, ["platinum", "gold"], 86400.0)
    offer = by_id["retention_offer"]
    assert (offer.score_below, offer.drop_points, offer.drop_window) == (50, 30, 86400.0)
    assert offer.requires_consent and offer.hold_while_faulted and offer.cooldown == 7 * 86400.0
    credit = by_id["service_credit"]
    assert credit.when is RuleEvent.fault_cleared and credit.min_impact == 4 * 3600.0
    assert notice.event_type == "io.cxstream.trigger.outage_notice"


def test_shipped_scoring_parameters() -> None:
    scoring = load_rules().scoring
    assert set(scoring.weights) == set(DIMENSIONS)
    assert all(0 <= w <= 1 for w in scoring.weights.values())
    assert scoring.reasons == 5
    assert scoring.fault_severity["critical"] == 100 and scoring.fault_severity["major"] == 70
    assert scoring.metrics["latency_ms"].dimension == "service"  # the record's own service


def test_for_event_groups_rules() -> None:
    book = load_rules()
    assert [r.id for r in book.for_event(RuleEvent.score)] == ["priority_care", "retention_offer"]
    assert [r.id for r in book.for_event(RuleEvent.fault_cleared)] == ["service_credit"]


def test_load_rules_from_a_path(tmp_path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(rules_with(lambda d: d["rules"][2].update(score_below=35)), "utf-8")
    assert load_rules(path).rules[2].score_below == 35


def test_missing_rules_file_is_a_rules_error(tmp_path) -> None:
    with pytest.raises(RulesError, match="cannot be read"):
        load_rules(tmp_path / "nope.yaml")


# --------------------------------------------------------------------------- durations


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90.0), ("30m", 1800.0), ("4h", 14400.0), ("7d", 604800.0), ("1.5h", 5400.0),
     ("45", 45.0), (" 2 h ", 7200.0), (90, 90.0), (2.5, 2.5), (0, 0.0)],
)
def test_durations(text, seconds) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["1 week", "4hours", "-5s", "", "h", True, None, [1], -1])
def test_bad_durations(bad) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_durations_in_the_file() -> None:
    book = parse_rules(rules_with(lambda d: d["rules"][2].update(cooldown="30m")))
    assert book.rules[2].cooldown == 1800.0
    book = parse_rules(rules_with(lambda d: d["rules"][4].update(min_impact=90)))
    assert book.rules[4].min_impact == 90.0


# --------------------------------------------------------------------------- errors


def test_bad_duration_names_rule_index_and_field() -> None:
    message = error_of(rules_with(lambda d: d["rules"][2].update(cooldown="1 week")))
    assert "rule 'priority_care' (rules[2]), field cooldown" in message
    assert "'1 week' is not a duration" in message


def test_negative_duration() -> None:
    message = error_of(rules_with(lambda d: d["rules"][4].update(min_impact=-5)))
    assert "rule 'service_credit' (rules[4]), field min_impact" in message and "negative" in message


def test_unknown_field_names_rule_and_field() -> None:
    message = error_of(rules_with(lambda d: d["rules"][1].update(colour="red")))
    assert "rule 'service_restored' (rules[1]), field colour" in message


def test_marketing_rule_without_consent() -> None:
    message = error_of(rules_with(lambda d: d["rules"][3].update(requires_consent=False)))
    assert "rule 'retention_offer' (rules[3])" in message
    assert "requires_consent" in message


def test_score_rule_without_threshold() -> None:
    def change(doc):
        del doc["rules"][2]["score_below"]

    message = error_of(rules_with(change))
    assert "rule 'priority_care' (rules[2])" in message
    assert "score_below" in message and "drop_points" in message


def test_threshold_on_a_rule_that_is_not_a_score_rule() -> None:
    message = error_of(rules_with(lambda d: d["rules"][0].update(score_below=10)))
    assert "rule 'outage_notice' (rules[0])" in message and "when: score" in message


def test_bad_enum_value_names_the_field() -> None:
    message = error_of(rules_with(lambda d: d["rules"][2].update(value_tiers=["diamond"])))
    assert "rule 'priority_care' (rules[2]), field value_tiers.0" in message


def test_rule_without_id_is_named_by_index() -> None:
    def change(doc):
        del doc["rules"][4]["id"]

    message = error_of(rules_with(change))
    assert "rule (rules[4]), field id" in message


def test_duplicate_ids() -> None:
    message = error_of(rules_with(lambda d: d["rules"][4].update(id="outage_notice")))
    assert "'outage_notice'" in message and "twice" in message
    assert "rules[0]" in message and "rules[4]" in message


def test_bad_weight_is_refused() -> None:
    message = error_of(rules_with(lambda d: d["scoring"]["weights"].update(voice=-0.1)))
    assert "scoring" in message and "weights" in message


def test_weights_need_every_dimension() -> None:
    def change(doc):
        del doc["scoring"]["weights"]["video"]

    message = error_of(rules_with(change))
    assert "missing video" in message


def test_metric_penalty_needs_exactly_one_kind() -> None:
    message = error_of(rules_with(lambda d: d["scoring"]["metrics"]["mos"].update(points=5)))
    assert "scoring.metrics.mos" in message and "exactly one of points, below or above" in message


def test_yaml_syntax_error() -> None:
    message = error_of("scoring: {weights: [\nrules:\n  - id: x\n")
    assert "not valid YAML" in message


def test_not_a_mapping() -> None:
    assert "must be a mapping" in error_of("- just\n- a list\n")
