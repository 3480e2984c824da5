"""Score documents for the compacted ``cx.scores`` topic and the HTTP API.

A score document lists at most MAX_LISTED_REASONS (50) reasons and MAX_LISTED_FAULTS (100)
``active_faults`` (the first by id; a customer on 64 resources with 100 alarms each could
otherwise list 6,400), so its message fits the broker's 1 MB.
"""

from __future__ import annotations

import orjson

from ..domain.customer import CustomerState
from ..domain.engine import Engine
from ..domain.explain import explain
from ..domain.trend import points as trend_points
from ..models.common import format_time
from ..models.limits import MAX_LISTED_FAULTS
from .fit import MAX_MESSAGE_BYTES, capped_reasons, shrink_strings, too_large


def score_document(engine: Engine, state: CustomerState) -> dict:
    score, dimensions, reasons = engine.score_view(state)
    return {
        "customer_id": state.customer_id,
        "score": round(score, 1),
        "previous_score": None if state.published is None else round(state.published, 1),
        "dimensions": {name: round(value, 1) for name, value in dimensions.items()},
        "reasons": capped_reasons(reasons),
        "active_faults": _active_faults(state.impacts),
        "updated_at": format_time(state.updated_at or state.clock),
    }


def _active_faults(impacts: dict[str, float]) -> list[str]:
    ids = sorted(impacts)
    return ids if len(ids) <= MAX_LISTED_FAULTS else ids[:MAX_LISTED_FAULTS]


def encode(document: dict) -> bytes:
    """The score document as JSON, under MAX_MESSAGE_BYTES; ValueError only when even its
    cut form is not (a customer id of hundreds of kilobytes, which no valid input has)."""
    raw = orjson.dumps(document)
    if len(raw) < MAX_MESSAGE_BYTES:
        return raw
    document = {**document, "reasons": capped_reasons(document["reasons"]),
                "active_faults": sorted(document["active_faults"])[:MAX_LISTED_FAULTS]}
    shrink_strings(document, "active_faults", segment=False)
    raw = orjson.dumps(document)
    if len(raw) < MAX_MESSAGE_BYTES:
        return raw
    raise too_large("the score document of a customer", len(raw))


def care_view(engine: Engine, state: CustomerState) -> dict:
    """What a care agent needs on top of the score document (``?view=care``):
    the trend over the last 24 h, reasons in plain words, active faults with
    since when, and the triggers sent most recently per rule."""
    _, _, reasons = engine.score_view(state)
    latest = state.clock or state.updated_at
    since_minute = int((latest - 24 * 3600) // 60)
    history = [{"time": format_time(minute * 60), "score": score}
               for minute, score in trend_points(state.trend, since_minute)]
    if latest:
        history.append({"time": format_time(latest), "score": round(state.score, 1)})
    faults = []
    for alarm_id, since in sorted(state.impacts.items(), key=lambda item: (item[1], item[0])):
        alarm = engine.alarms.get(alarm_id)
        faults.append({"alarm_id": alarm_id, "resource_id": alarm.resource_id if alarm else None,
                       "severity": alarm.severity if alarm else None,
                       "planned": bool(alarm and alarm.planned), "since": format_time(since)})
    rules = {rule.id: rule for rule in engine.rules.rules}
    triggers = []
    for rule_id, when in sorted(state.fired.items(), key=lambda item: (-item[1], item[0])):
        rule = rules.get(rule_id)
        triggers.append({"rule_id": rule_id, "trigger": rule.trigger if rule else rule_id,
                         "channel": rule.channel if rule else None, "time": format_time(when)})
    return {
        "value_tier": state.value_tier,
        "segment": state.segment,
        "marketing_consent": state.consent,
        "history": history,
        "explanations": [{**reason, "text": explain(reason["code"], state, engine.alarms)}
                         for reason in reasons],
        "faults": faults,
        "recent_triggers": triggers,
    }
