"""The figures of a replay: one dict (written as ``--json``) and its text form.

Everything here is a function of the replayed input and the rules: no wall
clock, no host name, sorted orders, so the same input gives the same report.
"""

from __future__ import annotations

from collections import Counter

from ..models.common import format_time
from .runner import Figures, InputCounts, Run

SAMPLES = 5  # customer ids shown per rule that gain / lose a trigger
TOP_REJECTIONS = 20  # distinct rejection reasons listed (the total counts them all)
BUCKETS = [(lower, lower + 10) for lower in range(0, 100, 10)]
OUTCOMES = ("ok", "invalid", "duplicate", "late")


def run_figures(run: Run) -> dict:
    """One rules file's figures."""
    figures: Figures = run.figures
    rules = [rule.id for rule in run.rules.rules]
    rules += sorted(r for r in figures.triggers if r not in rules)
    by_rule = []
    for rule_id in rules:
        channel, trigger = figures.channel_of[rule_id]
        customers = figures.by_customer.get(rule_id, Counter())
        by_rule.append({"rule": rule_id, "channel": channel, "trigger": trigger,
                        "events": figures.triggers.get(rule_id, 0), "customers": len(customers)})
    # the engine counts hold-backs by channel and trigger; name the rule(s) behind them
    rule_names: dict[tuple[str, str], list[str]] = {}
    for rule_id, key in figures.channel_of.items():
        rule_names.setdefault(key, []).append(rule_id)
    suppressed = [
        {"rule": "|".join(rule_names.get((channel, trigger), [trigger])), "channel": channel, "trigger": trigger,
         "reason": reason, "count": count}
        for (channel, trigger, reason), count in sorted(figures.suppressed.items())
    ]
    rejections = sorted(figures.rejections.items(), key=lambda item: (-item[1], item[0]))
    scores = run.scores()
    histogram = []
    for lower, upper in BUCKETS:
        last = upper == 100
        n = sum(1 for s in scores if lower <= s < upper or (last and s == 100))
        histogram.append({"from": lower, "to": upper, "customers": n})
    return {
        "triggers": {"total": sum(figures.triggers.values()), "by_rule": by_rule},
        "suppressed": {"total": sum(figures.suppressed.values()), "by_reason": suppressed},
        "scores": {
            "customers": len(scores),
            "mean": round(sum(scores) / len(scores), 1) if scores else None,
            "below_50": sum(1 for s in scores if s < 50),
            "buckets": histogram,
        },
        "rejections": {
            "total": sum(figures.rejections.values()),
            "by_reason": [{"source": source, "reason": reason, "count": count}
                          for (source, reason), count in rejections[:TOP_REJECTIONS]],
        },
        "input_outcomes": {source: {o: figures.events.get((source, o), 0) for o in OUTCOMES}
                           for source in ("faults", "customers", "quality")},
        "fired_before_from": figures.context_triggers,
    }


def comparison(current: Run, new: Run) -> list[dict]:
    """Per rule: events under each rules file, the difference, and which customers gain or lose one."""
    rules = [rule.id for rule in current.rules.rules]
    rules += [rule.id for rule in new.rules.rules if rule.id not in rules]
    rules += sorted(r for r in set(current.figures.triggers) | set(new.figures.triggers) if r not in rules)
    rows = []
    for rule_id in rules:
        before = current.figures.by_customer.get(rule_id, Counter())
        after = new.figures.by_customer.get(rule_id, Counter())
        gaining = sorted(c for c in set(before) | set(after) if after.get(c, 0) > before.get(c, 0))
        losing = sorted(c for c in set(before) | set(after) if after.get(c, 0) < before.get(c, 0))
        channel, trigger = (new.figures.channel_of.get(rule_id) or current.figures.channel_of[rule_id])
        n_before = current.figures.triggers.get(rule_id, 0)
        n_after = new.figures.triggers.get(rule_id, 0)
        rows.append({
            "rule": rule_id, "channel": channel, "trigger": trigger,
            "in_current": any(r.id == rule_id for r in current.rules.rules),
            "in_new": any(r.id == rule_id for r in new.rules.rules),
            "current": n_before, "new": n_after, "delta": n_after - n_before,
            "customers_gaining": len(gaining), "customers_losing": len(losing),
            "gaining_sample": gaining[:SAMPLES], "losing_sample": losing[:SAMPLES],
        })
    return rows


def build(input_info: dict, counts: InputCounts, current: Run, new: Run | None, source: str) -> dict:
    info = dict(input_info)
    info["records"] = sum(counts.reported.values())
    info["by_topic"] = {role: counts.reported.get(role, 0) for role in ("faults", "customers", "quality")}
    info["records_before_from"] = sum(counts.context.values())
    info["first_timestamp"] = None if counts.first is None else format_time(counts.first)
    info["last_timestamp"] = None if counts.last is None else format_time(counts.last)
    return {
        "input": info,
        "source": source,
        "rules": {"current": current.label, "new": None if new is None else new.label},
        "current": run_figures(current),
        "new": None if new is None else run_figures(new),
        "comparison": None if new is None else comparison(current, new),
    }


# ---------------------------------------------------------------------- text
def _n(value: int) -> str:
    return f"{value:,}"


def _signed(value: int) -> str:
    return f"{value:+,}" if value else "0"


def _table(headers: list[str], rows: list[list[str]], right: set[int]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        return "  " + "  ".join(c.rjust(w) if i in right else c.ljust(w)
                                for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    return [line(headers)] + [line(r) for r in rows]


def render(report: dict) -> str:
    info = report["input"]
    current = report["current"]
    new = report["new"]
    out: list[str] = []
    by_topic = info["by_topic"]
    span = ""
    if info["first_timestamp"]:
        span = f"; timestamps {info['first_timestamp']} to {info['last_timestamp']}"
    out.append(f"Replayed {_n(info['records'])} records from {info['description']}: "
               f"faults {_n(by_topic['faults'])}, customers {_n(by_topic['customers'])}, "
               f"quality {_n(by_topic['quality'])}{span}.")
    if info["records_before_from"]:
        fired = f"{_n(current['fired_before_from'])} triggers"
        if new is not None:
            fired += f"; {_n(new['fired_before_from'])} with the new rules"
        out.append(f"{_n(info['records_before_from'])} records before --from built the state first; "
                   f"what they fired ({fired}) is not counted.")
    out.append(f"Rules: {report['rules']['current']}. CloudEvents source {report['source']}. "
               "Nothing was written to Kafka.")

    out += ["", "Input outcomes"]
    rows = [[source] + [_n(values[o]) for o in OUTCOMES] for source, values in current["input_outcomes"].items()]
    out += _table(["topic", *OUTCOMES], rows, {1, 2, 3, 4})

    out += ["", f"Triggers that would have been sent: {_n(current['triggers']['total'])}"]
    rows = [[r["rule"], r["channel"], r["trigger"], _n(r["events"]), _n(r["customers"])]
            for r in current["triggers"]["by_rule"]]
    out += _table(["rule", "channel", "trigger", "events", "customers"], rows, {3, 4})

    out += ["", f"Held back (counted, never sent): {_n(current['suppressed']['total'])}"]
    if current["suppressed"]["by_reason"]:
        rows = [[r["rule"], r["channel"], r["reason"], _n(r["count"])] for r in current["suppressed"]["by_reason"]]
        out += _table(["rule", "channel", "reason", "count"], rows, {3})

    scores = current["scores"]
    out += ["", f"Score distribution: latest score of {_n(scores['customers'])} customers"
            + (f", mean {scores['mean']}" if scores["mean"] is not None else "")
            + (f" (new rules: mean {new['scores']['mean']})" if new is not None and new["scores"]["mean"] is not None
               and new["scores"]["mean"] != scores["mean"] else "")]
    peak = max([b["customers"] for b in scores["buckets"]] + [1])
    rows = []
    for i, bucket in enumerate(scores["buckets"]):
        label = f"{bucket['from']}-{bucket['to']}"
        bar = "#" * (0 if not bucket["customers"] else max(1, round(30 * bucket["customers"] / peak)))
        row = [label, _n(bucket["customers"])]
        if new is not None:
            row.append(_n(new["scores"]["buckets"][i]["customers"]))
        rows.append(row + [bar])
    headers = ["score", "customers"] + (["new rules"] if new is not None else []) + [""]
    out += _table(headers, rows, {1, 2} if new is not None else {1})

    rejections = current["rejections"]
    out += ["", f"Rejected input (would go to the dead-letter topic): {_n(rejections['total'])}"]
    if rejections["by_reason"]:
        rows = [[_n(r["count"]), r["source"], r["reason"]] for r in rejections["by_reason"]]
        out += _table(["count", "topic", "reason"], rows, {0})
        shown = sum(r["count"] for r in rejections["by_reason"])
        if shown < rejections["total"]:
            out.append(f"  … and {_n(rejections['total'] - shown)} more with other reasons")

    if report["comparison"] is not None:
        change = new["triggers"]["total"] - current["triggers"]["total"]
        out += ["", f"With the new rules ({report['rules']['new']}): {_n(new['triggers']['total'])} triggers, "
                f"{_signed(change)} against the current rules"]
        rows = []
        for r in report["comparison"]:
            note = "" if r["in_current"] and r["in_new"] else (" (new)" if r["in_new"] else " (removed)")
            rows.append([r["rule"] + note, r["channel"], _n(r["current"]), _n(r["new"]), _signed(r["delta"]),
                         _sample(r["customers_gaining"], r["gaining_sample"]),
                         _sample(r["customers_losing"], r["losing_sample"])])
        out += _table(["rule", "channel", "current", "new", "delta", "customers gaining", "customers losing"],
                      rows, {2, 3, 4})
    return "\n".join(out) + "\n"


def _sample(total: int, sample: list[str]) -> str:
    if not total:
        return "-"
    text = " ".join(sample)
    return f"{text} (+{total - len(sample)} more)" if total > len(sample) else text
