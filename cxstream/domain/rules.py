"""The rules file: scoring parameters and trigger rules, as validated data.

The shipped ``default_rules.yaml`` holds the contract's five rules; an operator
points ``CXSTREAM_RULES`` at a copy to change thresholds. Errors name the rule
(by id and position) and the field, and stop start-up.
"""

from __future__ import annotations

import re
from enum import Enum
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

DIMENSIONS = ("voice", "data", "video", "messaging", "availability")
SEVERITIES = ("critical", "major", "minor", "warning", "indeterminate")
TIERS = ("platinum", "gold", "silver", "bronze")

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: object) -> float:
    """``90`` / ``"90s"`` / ``"30m"`` / ``"4h"`` / ``"7d"`` -> seconds."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a string like '4h'")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return float(value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return float(match.group(1)) * _UNIT[match.group(2)]
    raise ValueError(f"{value!r} is not a duration; write seconds or e.g. '90s', '30m', '4h', '7d'")


Duration = Annotated[float, BeforeValidator(parse_duration)]


class RuleEvent(str, Enum):
    """What a rule reacts to."""

    outage_started = "outage_started"  # an alarm starts impacting the customer
    outage_ended = "outage_ended"  # the customer's outage episode is over
    score = "score"  # the customer's score changed
    # the customer's outage episode ended after its alarms' impact lasted more
    # than min_impact (once per episode; the name is kept for rules files)
    fault_cleared = "fault_cleared"


class Rule(BaseModel):
    """One trigger rule. Which fields apply depends on ``when``."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    trigger: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    channel: Literal["care", "marketing"]
    when: RuleEvent
    # who: empty means everyone
    value_tiers: list[Literal["platinum", "gold", "silver", "bronze"]] | None = None
    segments: list[str] | None = None
    # outage_started: which severities notify
    severities: list[Literal["critical", "major", "minor", "warning", "indeterminate"]] = Field(
        default_factory=lambda: ["critical", "major"]
    )
    # score: fires when below the threshold, or down by drop_points within drop_window
    score_below: float | None = Field(default=None, ge=0, le=100)
    drop_points: float | None = Field(default=None, gt=0, le=100)
    drop_window: Duration = 86400.0
    # fault_cleared: how long the episode's cleared alarms must have impacted the
    # customer, from the first one's start to the last one's clear
    min_impact: Duration = 0.0
    # hold-backs
    requires_consent: bool = False
    hold_while_faulted: bool = False
    cooldown: Duration = 0.0
    max_per_minute: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _coherent(self) -> "Rule":
        if self.when is RuleEvent.score and self.score_below is None and self.drop_points is None:
            raise ValueError("a score rule needs score_below, drop_points or both")
        if self.when is not RuleEvent.score and (self.score_below is not None or self.drop_points is not None):
            raise ValueError("score_below and drop_points only apply to rules with when: score")
        if self.channel == "marketing" and not self.requires_consent:
            raise ValueError("a marketing rule must have requires_consent: true (no marketing without consent)")
        return self

    @property
    def event_type(self) -> str:
        return f"io.cxstream.trigger.{self.trigger}"


class MetricPenalty(BaseModel):
    """What one observation of a quality metric adds to a dimension's penalty."""

    model_config = ConfigDict(extra="forbid")

    dimension: Literal["voice", "data", "video", "messaging", "service"]
    points: float | None = Field(default=None, ge=0)
    below: float | None = None
    above: float | None = None
    per_unit: float = Field(default=0.0, ge=0)
    max: float = Field(default=100.0, ge=0, le=100)

    @model_validator(mode="after")
    def _one_kind(self) -> "MetricPenalty":
        kinds = sum(x is not None for x in (self.points, self.below, self.above))
        if kinds != 1:
            raise ValueError("give exactly one of points, below or above")
        return self


class Scoring(BaseModel):
    model_config = ConfigDict(extra="forbid")

    weights: dict[Literal["voice", "data", "video", "messaging", "availability"], float]
    metrics: dict[
        Literal[
            "call_dropped", "call_setup_failed", "mos", "latency_ms", "jitter_ms",
            "packet_loss_pct", "throughput_mbps", "video_stall_ratio", "message_failed",
        ],
        MetricPenalty,
    ]
    fault_severity: dict[Literal["critical", "major", "minor", "warning", "indeterminate"], float]
    reasons: int = Field(default=5, ge=1, le=50)

    @model_validator(mode="after")
    def _weights(self) -> "Scoring":
        missing = [d for d in DIMENSIONS if d not in self.weights]
        if missing:
            raise ValueError(f"weights needs every dimension; missing {', '.join(missing)}")
        bad = [d for d, w in self.weights.items() if not 0 <= w <= 1]
        if bad:
            raise ValueError(f"weights must be between 0 and 1 (check {', '.join(bad)})")
        return self


class RuleBook(BaseModel):
    """A whole rules file."""

    model_config = ConfigDict(extra="forbid")

    scoring: Scoring
    rules: list[Rule]

    @model_validator(mode="after")
    def _unique_ids(self) -> "RuleBook":
        seen: dict[str, int] = {}
        for index, rule in enumerate(self.rules):
            if rule.id in seen:
                raise ValueError(f"rule id {rule.id!r} is used twice: by rules[{seen[rule.id]}] and rules[{index}]")
            seen[rule.id] = index
        return self

    def for_event(self, event: RuleEvent) -> list[Rule]:
        return [r for r in self.rules if r.when is event]


class RulesError(Exception):
    """The rules file cannot be used; the message names the rule and field."""


def _describe(error: ValidationError, raw: dict, origin: str) -> str:
    problems = []
    raw_rules = raw.get("rules") if isinstance(raw, dict) else None
    for item in error.errors():
        loc = list(item["loc"])
        message = item["msg"].removeprefix("Value error, ")
        where = ".".join(str(p) for p in loc) or "top level"
        if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
            index = loc[1]
            rule_id = None
            if isinstance(raw_rules, list) and index < len(raw_rules) and isinstance(raw_rules[index], dict):
                rule_id = raw_rules[index].get("id")
            field = ".".join(str(p) for p in loc[2:]) or "(the rule itself)"
            name = f"rule {rule_id!r}" if rule_id else "rule"
            where = f"{name} (rules[{index}]), field {field}"
        problems.append(f"{where}: {message}")
    return f"rules file {origin}: " + "; ".join(problems)


def parse_rules(text: str, origin: str = "<text>") -> RuleBook:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RulesError(f"rules file {origin} is not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise RulesError(f"rules file {origin} must be a mapping with 'scoring' and 'rules'")
    try:
        return RuleBook.model_validate(raw)
    except ValidationError as error:
        raise RulesError(_describe(error, raw, origin)) from None


def default_rules_text() -> str:
    return resources.files("cxstream.domain").joinpath("default_rules.yaml").read_text("utf-8")


def load_rules(path: Path | None = None) -> RuleBook:
    """The rules at ``path``, or the shipped defaults."""
    if path is None:
        return parse_rules(default_rules_text(), "default_rules.yaml")
    try:
        text = Path(path).read_text("utf-8")
    except OSError as exc:
        raise RulesError(f"rules file {path} cannot be read: {exc.strerror}") from None
    return parse_rules(text, str(path))
