"""The benchmark's report: ratios, the issue's targets with met / not met, a table, JSON.

Figures are printed, never asserted: a target that is not met is reported as
``not met`` next to the figure; a target whose section did not run or failed is
``not measured``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["build_report", "render_table", "TARGETS"]

#: Target values of issue 3 (one worker process, this 2-core machine, broker on the same machine).
THROUGHPUT_SHARE = 0.50  # of the ceiling measured in the same run
LATENCY_P99_S = 0.050  # at 5,000 events/s
LATENCY_RATE = 5000.0
FANOUT_S = 2.0  # to 10,000 customers
BYTES_PER_CUSTOMER = 1024  # 1 KB taken as 1,024 bytes
RECOVERY_S = 30.0  # with 100,000 customers

TARGETS = {
    "throughput": "cxstream >= 50% of the ceiling",
    "latency": "p99 record-to-output < 50 ms at 5,000 events/s",
    "latency_end_to_end": "p99 produce-to-trigger < 50 ms (stricter reading)",
    "fanout": "last outage_notice < 2 s (10,000 customers)",
    "memory": "<= 1 KB (1,024 B) resident per tracked customer",
    "recovery": "ready again < 30 s (100,000 customers)",
}


def _ok(section: dict[str, Any] | None) -> bool:
    return bool(section) and section.get("status") == "ok"


def _get(section: dict[str, Any] | None, *path: str) -> Any:
    value: Any = section
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _ratio(a: Any, b: Any) -> float | None:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b:
        return a / b
    return None


def _verdict(value: Any, ok: bool) -> dict[str, Any]:
    return {"value": value, "met": (bool(ok) if value is not None else None)}


def build_report(meta: dict[str, Any], sections: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The whole run as one JSON-able dict: run facts, every section, ratios, targets."""
    ceiling = _get(sections.get("ceiling"), "events_per_s") if _ok(sections.get("ceiling")) else None
    baseline = _get(sections.get("baseline"), "events_per_s") if _ok(sections.get("baseline")) else None
    cx = _get(sections.get("cxstream"), "events_per_s") if _ok(sections.get("cxstream")) else None
    ratios = {
        "cxstream_over_ceiling": _ratio(cx, ceiling),
        "cxstream_over_baseline": _ratio(cx, baseline),
        "baseline_over_ceiling": _ratio(baseline, ceiling),
    }
    latency = sections.get("latency") if _ok(sections.get("latency")) else None
    fanout = sections.get("fanout") if _ok(sections.get("fanout")) else None
    memory = sections.get("memory") if _ok(sections.get("memory")) else None
    recovery = sections.get("recovery") if _ok(sections.get("recovery")) else None

    targets: dict[str, dict[str, Any]] = {}
    share = ratios["cxstream_over_ceiling"]
    targets["throughput"] = _verdict(share, share is not None and share >= THROUGHPUT_SHARE)
    p99 = _get(latency, "processing", "p99")
    targets["latency"] = _verdict(p99, p99 is not None and p99 < LATENCY_P99_S)
    e2e = _get(latency, "end_to_end", "p99")
    targets["latency_end_to_end"] = _verdict(e2e, e2e is not None and e2e < LATENCY_P99_S)
    if latency is not None and latency.get("rate") != LATENCY_RATE:
        for name in ("latency", "latency_end_to_end"):
            targets[name]["note"] = f"offered {latency.get('rate'):,.0f}/s; the target is at 5,000/s"
    last = _get(fanout, "last_s")
    targets["fanout"] = _verdict(last, last is not None and last < FANOUT_S)
    if fanout is not None and fanout.get("on_site") != 10_000:
        targets["fanout"]["note"] = f"{fanout.get('on_site'):,} customers; the target is for 10,000"
    per_customer = [p.get("bytes_per_customer") for p in (_get(memory, "points") or [])]
    worst = max((b for b in per_customer if b is not None), default=None)
    targets["memory"] = _verdict(worst, worst is not None and worst <= BYTES_PER_CUSTOMER)
    recovered = _get(recovery, "recovered_s")
    targets["recovery"] = _verdict(recovered, recovered is not None and recovered < RECOVERY_S)
    if recovery is not None and recovery.get("customers") != 100_000:
        targets["recovery"]["note"] = f"{recovery.get('customers'):,} customers; the target is for 100,000"
    for name, target in targets.items():
        target["target"] = TARGETS[name]
    return {"meta": meta, "sections": sections, "ratios": ratios, "targets": targets}


# ----------------------------------------------------------------------------- formatting
def _rate(value: Any) -> str:
    return f"{value:,.0f} events/s" if isinstance(value, (int, float)) else "—"


def _s(value: Any) -> str:
    if not isinstance(value, (int, float)):
        return "—"
    if value < 1.0:
        return f"{value * 1000:.1f} ms"
    return f"{value:.2f} s"


def _ms_triplet(figures: dict[str, Any] | None) -> str:
    if not figures or figures.get("p50") is None:
        return "—"
    return " / ".join(f"{figures[k] * 1000:.1f}" for k in ("p50", "p95", "p99")) + " ms"


def _mb(value: Any) -> str:
    return f"{value / 1e6:,.0f} MB" if isinstance(value, (int, float)) else "—"


def _pct(value: Any) -> str:
    return f"{value * 100:.1f} %" if isinstance(value, (int, float)) else "—"


def _verdict_text(target: dict[str, Any]) -> str:
    met = target.get("met")
    text = "met" if met else "not met" if met is False else "not measured"
    return text + (" *" if target.get("note") else "")


def render_table(report: dict[str, Any]) -> str:
    """The report as a fixed-width text table (figures, targets, met / not met)."""
    meta, sections, ratios, targets = report["meta"], report["sections"], report["ratios"], report["targets"]
    rows: list[tuple[str, str, str, str, str]] = []

    def row(section: str, figure: str, value: str, target: str = "", verdict: str = "") -> None:
        rows.append((section, figure, value, target, verdict))

    short = {"latency": "p99 < 50 ms", "fanout": "last < 2 s", "memory": "<= 1 KB", "recovery": "< 30 s"}

    def failed(name: str) -> bool:
        section = sections.get(name) or {}
        status = section.get("status")
        if status == "ok":
            return False
        label = {"fanout": "fan-out"}.get(name, name)
        target = short.get(name, "")
        verdict = "not measured" if target else ""
        if status == "skipped":
            row(label, "(not run)", "", target, verdict)
        else:
            error = str(section.get("error", "failed")).splitlines()[0]
            row(label, "FAILED: " + error[:70], "", target, verdict)
        return True

    if not failed("ceiling"):
        c = sections["ceiling"]
        row("ceiling", f"confluent-kafka loop, {c['records']:,} records", _rate(c["events_per_s"]))
    if not failed("baseline"):
        b = sections["baseline"]
        note = "" if b.get("complete") else f" (partial: {b['records']:,} records)"
        row("baseline", f"faust agent per event, await send{note}", _rate(b["events_per_s"]))
    if not failed("cxstream"):
        x = sections["cxstream"]
        bound = " (lower bound)" if x.get("rate_is_lower_bound") else ""
        row("cxstream", f"worker, cold start, {x['records']:,} records{bound}", _rate(x["events_per_s"]))
        cpu = x.get("cpu_share")
        row("", "worker CPU while draining / peak RSS",
            (f"{cpu:.2f} cores" if cpu is not None else "—") + f" / {_mb(x.get('peak_rss_bytes'))}")
        if x.get("longest_pause_s"):
            row("", "longest pause while draining", _s(x["longest_pause_s"]))
    row("ratios", "cxstream / ceiling", _pct(ratios["cxstream_over_ceiling"]), ">= 50 %",
        _verdict_text(targets["throughput"]))
    over = ratios["cxstream_over_baseline"]
    row("", "cxstream / baseline", f"{over:.1f} x" if over is not None else "—")
    row("", "baseline / ceiling", _pct(ratios["baseline_over_ceiling"]))
    if not failed("latency"):
        lat = sections["latency"]
        row("latency", f"offered {lat['rate']:,.0f}/s for {lat['seconds']:g} s (achieved "
                       f"{lat.get('achieved_rate') or 0:,.0f}/s)", "p50 / p95 / p99")
        row("", "received -> outputs produced (histogram)", _ms_triplet(lat.get("processing")),
            "p99 < 50 ms", _verdict_text(targets["latency"]))
        e2e = lat.get("end_to_end") or {}
        row("", f"produce -> trigger visible ({e2e.get('count', 0):,} CloudEvents)", _ms_triplet(e2e),
            "p99 < 50 ms (stricter)", _verdict_text(targets["latency_end_to_end"]))
        floor = lat.get("broker_round_trip") or {}
        row("", "broker round trip, no processing (ping)", _ms_triplet(floor))
    if not failed("fanout"):
        f = sections["fanout"]
        row("fan-out", f"site alarm -> {f['on_site']:,} outage_notice: first / last",
            f"{_s(f.get('first_s'))} / {_s(f.get('last_s'))}", "last < 2 s", _verdict_text(targets["fanout"]))
    if not failed("memory"):
        m = sections["memory"]
        row("memory", "worker RSS with ~0 customers", _mb(m.get("baseline_rss_bytes")))
        for point in m.get("points", []):
            per = point.get("bytes_per_customer")
            if per is None:
                row("", f"{point['customers']:,} customers", "FAILED: " + str(point.get("problem", ""))[:60])
                continue
            in_use = point.get("in_use_at_measure")
            busy = f" ({in_use:,} still in use)" if in_use else ""  # not settled: the figure is high
            row("", f"{point['customers']:,} customers: RSS, per customer{busy}",
                f"{_mb(point.get('rss_bytes'))}, {per:,.0f} B", "<= 1 KB", _verdict_text(
                    {"met": per <= BYTES_PER_CUSTOMER}))
        if m.get("marginal_bytes_per_customer") is not None:
            counts = [p["customers"] for p in m.get("points", []) if p.get("bytes_per_customer") is not None]
            row("", f"marginal, {counts[0]:,} -> {counts[-1]:,} customers",
                f"{m['marginal_bytes_per_customer']:,.0f} B per customer")
    if not failed("recovery"):
        r = sections["recovery"]
        row("recovery", f"restart -> ready with {r['customers']:,} customers", _s(r.get("recovered_s")),
            "< 30 s", _verdict_text(targets["recovery"]))
        row("", "of which /readyz 200 / customers restored",
            f"{_s(r.get('ready_s'))} / {_s(r.get('customers_restored_s'))}")

    headers = ("section", "figure", "value", "target", "verdict")
    widths = [max(len(headers[i]), *(len(r[i]) for r in rows)) for i in range(5)]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    title = (f"cxstream bench — {meta.get('broker_kind', 'broker')}, {meta.get('cpus', '?')} CPUs, "
             f"{meta.get('customers', 0):,} customers, {meta.get('events', 0):,} quality records, "
             f"{meta.get('partitions')} partitions, seed {meta.get('seed')}"
             + (" (smoke sizes)" if meta.get("smoke") else ""))
    out = [title, "", line(headers), line(tuple("-" * w for w in widths))]
    for r in rows:
        out.append(line(r))
    notes = [f"  * {name}: {t['note']}" for name, t in targets.items() if t.get("note")]
    if notes:
        out += ["", *notes]
    return "\n".join(out)
