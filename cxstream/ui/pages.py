"""Server-rendered pages: pure functions from the JSON documents to HTML.

Every function here takes the document a JSON endpoint answers (``GET
/faults``, ``GET /faults/{alarm_id}``, ``GET /customers/{id}?view=care``) and
returns one complete HTML page as a string. No I/O, no JavaScript: the trend
chart is inline SVG drawn here, the faults table refreshes itself with a
``<meta http-equiv="refresh">``. Every value from a document goes through
:func:`html.escape` (text) or :func:`urllib.parse.quote` (a path segment)
before it reaches the page.

Stable hooks for tests and for anyone scraping the pages: ``id="faults"``
(the table; ``tr.fault`` rows with ``data-alarm-id``), ``id="no-faults"``,
``id="fault-customers"`` (``a.customer`` links), ``id="score"``,
``id="trend-chart"`` (an ``<svg>`` with ``data-points``; ``circle.point``
per point), ``id="dimensions"`` (``.dimension`` rows with ``data-dimension``),
``id="reasons"`` (``li.reason``), ``id="active-faults"`` (``li.active-fault``),
``id="triggers"`` (``tr.trigger`` rows, ``td.channel``).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from html import escape
from typing import Any, Iterable, Mapping, Sequence
from urllib.parse import quote, urlencode

FAULTS_REFRESH_S = 5
FAULT_REFRESH_S = 10
NOT_READY_REFRESH_S = 2
DIMENSIONS = ("voice", "data", "video", "messaging", "availability")
TIERS = ("platinum", "gold", "silver", "bronze")
TREND_WINDOW = timedelta(hours=24)
TREND_MIN_SPAN = timedelta(hours=1)
#: score levels drawn as dashed lines on the chart (the default rules' thresholds)
TREND_GUIDES = ((40.0, "priority care < 40"), (50.0, "retention < 50"))

Doc = Mapping[str, Any]

CSS = """
:root { --ink:#1d2430; --muted:#5f6b7a; --line:#dde2e8; --bg:#f5f7fa; --card:#fff;
  --good:#1f8a4c; --fair:#c77c02; --poor:#c62828; --accent:#1b5fae; }
* { box-sizing: border-box; }
body { margin:0; font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;
  color:var(--ink); background:var(--bg); }
header.top { background:#18212e; color:#fff; padding:10px 24px; display:flex; align-items:center; gap:24px; }
header.top .brand { font-weight:700; letter-spacing:.02em; color:#fff; text-decoration:none; }
header.top nav a { color:#cfd8e3; text-decoration:none; margin-right:16px; }
header.top nav a:hover { color:#fff; }
header.top form { margin-left:auto; display:flex; gap:6px; }
header.top input { padding:4px 8px; border-radius:4px; border:1px solid #46546a; background:#222d3d; color:#fff; }
header.top button { padding:4px 10px; border-radius:4px; border:0; background:#3b7bd4; color:#fff; cursor:pointer; }
main { max-width:1260px; margin:0 auto; padding:20px 24px 40px; }
h1 { font-size:22px; margin:4px 0 4px; }
h2 { font-size:16px; margin:0 0 10px; color:var(--muted); text-transform:uppercase; letter-spacing:.04em; }
.sub { color:var(--muted); margin:0 0 16px; }
.card { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:16px 18px; margin-bottom:16px; }
.grid { display:grid; grid-template-columns: minmax(0,2fr) minmax(0,1fr); gap:16px; }
.grid > .card { margin-bottom:0; }
.row { display:grid; grid-template-columns: minmax(0,1fr) minmax(0,1fr); gap:16px; margin-top:16px; }
.row > .card { margin-bottom:0; }
table { border-collapse:collapse; width:100%; }
th, td { text-align:left; padding:7px 8px; border-bottom:1px solid var(--line); vertical-align:top; }
th { font-size:12px; color:var(--muted); text-transform:uppercase; letter-spacing:.03em; font-weight:600; }
.nowrap { white-space:nowrap; }
.scroll { overflow-x:auto; }
td.num, th.num { text-align:right; font-variant-numeric:tabular-nums; }
tbody tr:hover { background:#f0f4fa; }
tr.cleared { color:var(--muted); }
a { color:var(--accent); }
.badge { display:inline-block; padding:1px 8px; border-radius:10px; font-size:12px; font-weight:600;
  background:#e8ecf1; color:#364152; white-space:nowrap; }
.sev-critical { background:#fde2e1; color:#b3261e; } .sev-major { background:#ffe8cc; color:#a65300; }
.sev-minor { background:#fff5c2; color:#7a5d00; } .sev-warning { background:#dcecff; color:#1b5fae; }
.tier-platinum { background:#e7e3f8; color:#4b3a9c; } .tier-gold { background:#fff0c2; color:#7a5600; }
.ch-care { background:#dff3e6; color:#1f6b3d; } .ch-marketing { background:#f3e5f5; color:#7b1f85; }
.planned { background:#e3f2fd; color:#0d47a1; }
.empty { color:var(--muted); padding:18px 4px; font-size:16px; }
.notice { background:#fff8e1; border:1px solid #f3d37a; border-radius:6px; padding:8px 12px; margin-bottom:14px; }
.score-box { display:flex; align-items:baseline; gap:14px; }
.score { font-size:64px; font-weight:700; line-height:1; font-variant-numeric:tabular-nums; }
.good { color:var(--good); } .fair { color:var(--fair); } .poor { color:var(--poor); }
.delta { font-size:16px; color:var(--muted); }
dl.facts { display:grid; grid-template-columns:auto 1fr; gap:4px 14px; margin:14px 0 0; }
dl.facts dt { color:var(--muted); } dl.facts dd { margin:0; }
.dimension { display:grid; grid-template-columns:110px 1fr 48px; align-items:center; gap:10px; margin:7px 0; }
.bar { height:12px; background:#edf0f4; border-radius:6px; overflow:hidden; }
.bar > span { display:block; height:100%; border-radius:6px; }
.bar .good { background:var(--good); } .bar .fair { background:#e09b1a; } .bar .poor { background:var(--poor); }
.dimension .value { text-align:right; font-variant-numeric:tabular-nums; }
ul.plain { list-style:none; padding:0; margin:0; }
ul.plain li { padding:7px 0; border-bottom:1px solid var(--line); }
ul.plain li:last-child { border-bottom:0; }
.impact { float:right; color:var(--poor); font-variant-numeric:tabular-nums; }
.muted { color:var(--muted); }
svg.chart { width:100%; height:auto; display:block; }
svg.chart .grid-line { stroke:#e6e9ee; stroke-width:1; }
svg.chart .guide { stroke:#d9a3a3; stroke-width:1; stroke-dasharray:4 4; }
svg.chart .trend-line { fill:none; stroke:var(--accent); stroke-width:2; }
svg.chart .trend-area { fill:rgba(27,95,174,.08); stroke:none; }
svg.chart .point { fill:var(--accent); }
svg.chart text { font-size:11px; fill:#6b7685; }
.customers { columns:4 150px; padding-left:18px; }
.pager a { margin-right:12px; }
footer { color:var(--muted); font-size:12px; text-align:center; padding:10px; }
"""


# ------------------------------------------------------------------ helpers
def _e(value: Any) -> str:
    """Escaped text of a value ("—" for None)."""
    return "—" if value is None else escape(str(value), quote=True)


def _seg(value: Any) -> str:
    """A value as one URL path segment."""
    return quote(str(value), safe="")


def customer_href(customer_id: Any) -> str:
    return "/ui/customers/" + _seg(customer_id)


def fault_href(alarm_id: Any) -> str:
    return "/ui/faults/" + _seg(alarm_id)


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 string as an aware datetime in UTC (None when absent or unreadable)."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def fmt_time(value: Any, *, short: bool = False) -> str:
    """``22 Nov 2026 10:05 UTC`` (``22 Nov 10:05`` when short, for columns headed UTC),
    escaped; the raw text when it is not a time."""
    parsed = parse_time(value)
    if parsed is None:
        return _e(value)
    shown = parsed.strftime("%d %b %H:%M" if short else "%d %b %Y %H:%M UTC")
    return f'<time datetime="{_e(value)}">{shown}</time>'


def fmt_duration(seconds: Any) -> str:
    """``2 h 05 min``, ``12 min``, ``40 s``; "—" when unknown."""
    if not isinstance(seconds, (int, float)) or seconds < 0:
        return "—"
    seconds = int(round(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min"
    return f"{secs} s"


def fmt_number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return _e(value)
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.1f}"


def quality_class(score: Any) -> str:
    """``good`` (≥ 80), ``fair`` (≥ 50) or ``poor``; "" when not a number."""
    if isinstance(score, bool) or not isinstance(score, (int, float)):
        return ""
    return "good" if score >= 80 else "fair" if score >= 50 else "poor"


def severity_badge(severity: Any) -> str:
    sev = str(severity or "indeterminate").lower()
    return f'<span class="badge severity sev-{_e(sev)}">{_e(sev)}</span>'


def tier_badge(tier: Any) -> str:
    if not tier:
        return '<span class="muted">—</span>'
    return f'<span class="badge tier tier-{_e(str(tier).lower())}">{_e(tier)}</span>'


def channel_badge(channel: Any) -> str:
    return f'<span class="badge ch-{_e(str(channel or "").lower())}">{_e(channel)}</span>'


def humanize(code: Any) -> str:
    """``outage_notice`` -> ``Outage notice``."""
    text = str(code or "").replace("_", " ").strip()
    return text[:1].upper() + text[1:]


def plain_reason(code: Any) -> str:
    """A reason code in words when the care view gave no explanation for it:
    ``voice.call_dropped`` -> ``Voice: call dropped``; ``fault.CELL-0042`` ->
    ``Network fault on CELL-0042``."""
    text = str(code or "")
    head, _, tail = text.partition(".")
    if head == "fault" and tail:
        return f"Network fault on {tail}"
    if tail:
        return f"{humanize(head)}: {tail.replace('_', ' ')}"
    return humanize(text)


def layout(title: str, body: str, *, refresh_s: int | None = None, subtitle: str = "") -> str:
    """A complete page: head (title, CSS, optional self-refresh), the top bar, ``body``."""
    refresh = f'<meta http-equiv="refresh" content="{int(refresh_s)}">\n' if refresh_s else ""
    sub = f'<p class="sub">{subtitle}</p>' if subtitle else ""
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"{refresh}<title>{_e(title)} · cxstream</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        "<header class=\"top\"><a class=\"brand\" href=\"/ui/faults\">cxstream</a>"
        "<nav><a href=\"/ui/faults\">Faults</a></nav>"
        "<form method=\"get\" action=\"/ui/customers\" role=\"search\">"
        "<input name=\"id\" placeholder=\"customer id\" aria-label=\"customer id\" required>"
        "<button type=\"submit\">Open customer</button></form></header>\n"
        f"<main>\n<h1>{_e(title)}</h1>{sub}\n{body}\n</main>\n"
        "<footer>cxstream · server-rendered, no JavaScript</footer>\n</body>\n</html>\n"
    )


# ------------------------------------------------------------------ faults
def _tier_cells(impacted: Doc) -> str:
    by_tier = impacted.get("by_tier") or {}
    return "".join(f'<td class="num tier-count" data-tier="{t}">{fmt_number(by_tier.get(t, 0))}</td>' for t in TIERS)


def _segments(impacted: Doc) -> str:
    by_segment = impacted.get("by_segment") or {}
    if not by_segment:
        return '<span class="muted">—</span>'
    parts = sorted(by_segment.items(), key=lambda kv: (-(kv[1] or 0), str(kv[0])))
    return ", ".join(f'<span class="nowrap">{_e(name)} {fmt_number(count)}</span>' for name, count in parts)


def _fault_state(fault: Doc) -> str:
    if fault.get("active", fault.get("cleared_at") is None):
        return f"since {fmt_time(fault.get('raised_at'), short=True)}"
    return (f"cleared {fmt_time(fault.get('cleared_at'), short=True)} "
            f"<span class=\"muted\">after {fmt_duration(fault.get('duration_s'))}</span>")


def _planned(fault: Doc) -> str:
    return '<span class="badge planned">planned</span>' if fault.get("planned") else "no"


def _resource(fault: Doc) -> str:
    kind = fault.get("resource_type")
    extra = f' <span class="muted">{_e(kind)}</span>' if kind else ""
    return f"{_e(fault.get('resource_id'))}{extra}"


def _mean_score(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return '<span class="muted">—</span>'
    return f'<span class="{quality_class(value)}">{value:.1f}</span>'


def fault_row(fault: Doc) -> str:
    impacted = fault.get("impacted") or {}
    alarm = fault.get("alarm_id")
    active = fault.get("active", fault.get("cleared_at") is None)
    return (
        f'<tr class="fault{"" if active else " cleared"}" data-alarm-id="{_e(alarm)}">'
        f'<td class="nowrap"><a class="alarm" href="{fault_href(alarm)}">{_e(alarm)}</a></td>'
        f'<td class="resource nowrap">{_resource(fault)}</td>'
        f"<td>{severity_badge(fault.get('severity'))}</td>"
        f'<td class="nowrap">{_fault_state(fault)}</td>'
        f"<td>{_planned(fault)}</td>"
        f'<td class="num impacted"><a href="{fault_href(alarm)}">{fmt_number(impacted.get("total", 0))}</a></td>'
        f"{_tier_cells(impacted)}"
        f'<td class="segments">{_segments(impacted)}</td>'
        f'<td class="num mean-score">{_mean_score(fault.get("mean_score"))}</td>'
        "</tr>"
    )


def faults_page(doc: Doc, *, cleared: bool = False) -> str:
    """``/ui/faults``: the fault-impact table of ``GET /faults``, refreshing every 5 s.

    ``cleared``: the document includes recently cleared faults (``GET /faults?cleared=1``).
    """
    faults: Sequence[Doc] = list(doc.get("faults") or [])
    notice = ""
    if doc.get("complete") is False:
        notice = ('<p class="notice partial" id="partial">Rebalancing: some customers have no worker '
                  "right now, so their counts below are a moment old. The page refreshes by itself.</p>")
    if faults:
        head = ("<thead><tr><th>Alarm</th><th>Resource</th><th>Severity</th><th>Raised (UTC)</th><th>Planned</th>"
                '<th class="num">Impacted</th>'
                + "".join(f'<th class="num">{t}</th>' for t in TIERS)
                + '<th>By segment</th><th class="num">Mean score</th></tr></thead>')
        rows = "\n".join(fault_row(f) for f in faults)
        table = f'<div class="scroll"><table id="faults">{head}<tbody>\n{rows}\n</tbody></table></div>'
    elif cleared:
        table = '<p class="empty" id="no-faults">No active faults, and none cleared recently.</p>'
    else:
        table = '<p class="empty" id="no-faults">No active faults. Every customer is being served.</p>'
    active = sum(1 for f in faults if f.get("active", f.get("cleared_at") is None))
    as_of = f" · as of {fmt_time(doc['as_of'])}" if doc.get("as_of") else ""
    toggle = ('<a id="toggle-cleared" href="/ui/faults">active only</a>' if cleared else
              '<a id="toggle-cleared" href="/ui/faults?cleared=1">show recently cleared too</a>')
    subtitle = (f"{active} active, most valuable customers first{as_of} · refreshes every "
                f"{FAULTS_REFRESH_S} s · {toggle}")
    body = f'{notice}<section class="card">{table}</section>'
    return layout("Faults and the customers they hurt", body, refresh_s=FAULTS_REFRESH_S, subtitle=subtitle)


def _pager(alarm_id: Any, page: Doc) -> str:
    offset = int(page.get("offset") or 0)
    limit = max(1, int(page.get("limit") or 100))
    total = int(page.get("total") or 0)
    links = []
    if offset > 0:
        query = urlencode({"offset": max(0, offset - limit), "limit": limit})
        links.append(f'<a rel="prev" href="{fault_href(alarm_id)}?{query}">← previous {limit}</a>')
    if offset + limit < total:
        query = urlencode({"offset": offset + limit, "limit": limit})
        links.append(f'<a rel="next" href="{fault_href(alarm_id)}?{query}">next {limit} →</a>')
    return f'<p class="pager">{"".join(links)}</p>' if links else ""


def fault_page(doc: Doc) -> str:
    """``/ui/faults/{alarm_id}``: one fault of ``GET /faults/{alarm_id}`` and its impacted customers."""
    alarm = doc.get("alarm_id")
    impacted = doc.get("impacted") or {}
    active = doc.get("active", doc.get("cleared_at") is None)
    page = doc.get("customers") or {}
    items: Sequence[Any] = list(page.get("items") or [])
    total = page.get("total", len(items))
    offset = int(page.get("offset") or 0)
    by_tier = impacted.get("by_tier") or {}
    facts = [
        ("Resource", _resource(doc)),
        ("Severity", severity_badge(doc.get("severity"))),
        ("Raised", fmt_time(doc.get("raised_at"))),
        ("State", "active" if active else
         f"cleared {fmt_time(doc.get('cleared_at'))} after {fmt_duration(doc.get('duration_s'))}"),
        ("Planned work", _planned(doc)),
        ("Impacted", f'<span id="impacted-total">{fmt_number(impacted.get("total", 0))}</span> customers'),
        ("By tier", ", ".join(f"{t} {fmt_number(by_tier.get(t, 0))}" for t in TIERS)),
        ("By segment", _segments(impacted)),
        ("Mean score", _mean_score(doc.get("mean_score"))),
        ("Updated", fmt_time(doc.get("updated_at"))),
    ]
    dl = "".join(f"<dt>{name}</dt><dd>{value}</dd>" for name, value in facts)
    if items:
        links = "\n".join(f'<li><a class="customer" href="{customer_href(c)}">{_e(c)}</a></li>' for c in items)
        shown = (f"{offset + 1}–{offset + len(items)} of {fmt_number(total)}"
                 if total != len(items) or offset else f"all {fmt_number(total)}")
        customers = (f'<p class="muted">Showing {shown}.</p>'
                     f'<ol class="customers" id="fault-customers" start="{offset + 1}">\n{links}\n</ol>'
                     + _pager(alarm, page))
    else:
        customers = '<p class="empty" id="no-customers">No customer is impacted by this fault.</p>'
    body = (f'<section class="card"><dl class="facts">{dl}</dl></section>'
            f'<section class="card"><h2>Impacted customers</h2>{customers}</section>')
    state = "active" if active else "cleared"
    return layout(f"Fault {alarm}", body, refresh_s=FAULT_REFRESH_S if active else None,
                  subtitle=f'{state} · <a href="/ui/faults">all faults</a>')


# ------------------------------------------------------------------ customer
def trend_svg(history: Iterable[Doc], *, width: int = 1000, height: int = 240) -> str:
    """The score over (at most) the last 24 h of ``history`` as an inline SVG line chart.

    ``history`` is ``[{"time", "score"}, …]`` oldest first; points without a
    readable time or score are left out. The x axis spans the points (at
    least an hour, at most the 24 h before the last one), the y axis 0–100
    with the default rules' thresholds as dashed guides. The ``<svg>`` has
    ``id="trend-chart"`` and ``data-points`` (points drawn), and one
    ``circle.point`` per point.
    """
    points: list[tuple[datetime, float]] = []
    for entry in history or ():
        when = parse_time(entry.get("time"))
        score = entry.get("score")
        if when is None or isinstance(score, bool) or not isinstance(score, (int, float)):
            continue
        points.append((when, max(0.0, min(100.0, float(score)))))
    points.sort(key=lambda p: p[0])
    left, right, top, bottom = 40, 12, 12, 28
    plot_w, plot_h = width - left - right, height - top - bottom
    parts: list[str] = []

    def svg(count: int) -> str:
        return (f'<svg id="trend-chart" class="chart" data-points="{count}" viewBox="0 0 {width} {height}" '
                'role="img" aria-label="score over the last 24 hours" xmlns="http://www.w3.org/2000/svg">'
                + "".join(parts) + "</svg>")

    def y_of(score: float) -> float:
        return top + plot_h * (1 - score / 100.0)

    for level in (0, 25, 50, 75, 100):
        y = y_of(level)
        parts.append(f'<line class="grid-line" x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}"/>'
                     f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{level}</text>')
    for level, label in TREND_GUIDES:
        y = y_of(level)
        parts.append(f'<line class="guide" x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}"/>'
                     f'<text x="{left + 4}" y="{y - 4:.1f}">{_e(label)}</text>')
    if not points:
        parts.append(f'<text class="no-data" x="{left + plot_w / 2:.0f}" y="{top + plot_h / 2:.0f}" '
                     'text-anchor="middle">no score history yet</text>')
        return svg(0)
    end = points[-1][0]
    points = [p for p in points if p[0] >= end - TREND_WINDOW]
    start = points[0][0]
    if end - start < TREND_MIN_SPAN:
        start = end - TREND_MIN_SPAN
    span = (end - start).total_seconds()

    def x_of(when: datetime) -> float:
        return left + plot_w * ((when - start).total_seconds() / span)

    coords = [(x_of(t), y_of(s)) for t, s in points]
    line = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
    base = y_of(0)
    area = f"{coords[0][0]:.1f},{base:.1f} {line} {coords[-1][0]:.1f},{base:.1f}"
    parts.append(f'<polygon class="trend-area" points="{area}"/>')
    parts.append(f'<polyline class="trend-line" points="{line}"/>')
    radius = 3 if len(points) <= 60 else 1.5
    for (x, y), (when, score) in zip(coords, points):
        parts.append(f'<circle class="point" cx="{x:.1f}" cy="{y:.1f}" r="{radius}">'
                     f'<title>{when.strftime("%d %b %H:%M")} UTC: {score:.1f}</title></circle>')
    for fraction, anchor in ((0.0, "start"), (0.5, "middle"), (1.0, "end")):
        when = start + (end - start) * fraction
        parts.append(f'<text class="x-label" x="{left + plot_w * fraction:.1f}" y="{height - 8}" '
                     f'text-anchor="{anchor}">{when.strftime("%d %b %H:%M")}</text>')
    return svg(len(points))


def _score_header(doc: Doc, care: Doc) -> str:
    score = doc.get("score")
    previous = doc.get("previous_score")
    shown = f"{score:.1f}" if isinstance(score, (int, float)) and not isinstance(score, bool) else "—"
    delta = ""
    if isinstance(score, (int, float)) and isinstance(previous, (int, float)) and previous != score:
        arrow = "▲" if score > previous else "▼"
        delta = f'<span class="delta">{arrow} {abs(score - previous):.1f} from {previous:.1f}</span>'
    consent = care.get("marketing_consent")
    facts = [
        ("Value tier", tier_badge(care.get("value_tier"))),
        ("Segment", _e(care.get("segment"))),
        ("Marketing consent", "—" if consent is None else ("yes" if consent else "no")),
        ("Last update", fmt_time(doc.get("updated_at"))),
    ]
    dl = "".join(f"<dt>{name}</dt><dd>{value}</dd>" for name, value in facts)
    return (f'<h2>Experience score</h2><div class="score-box"><span id="score" class="score '
            f'{quality_class(score)}">{shown}</span><span class="muted">/ 100</span>{delta}</div>'
            f'<dl class="facts">{dl}</dl>')


def _dimensions(dimensions: Doc) -> str:
    rows = []
    names = list(DIMENSIONS) + sorted(k for k in dimensions if k not in DIMENSIONS)
    for name in names:
        value = dimensions.get(name)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            width, shown = 0.0, "—"
        else:
            width, shown = max(0.0, min(100.0, float(value))), f"{value:.0f}"
        rows.append(f'<div class="dimension" data-dimension="{_e(name)}"><span class="name">'
                    f'{_e(humanize(name))}</span><div class="bar"><span class="{quality_class(value)}" '
                    f'style="width:{width:.1f}%"></span></div><span class="value">{shown}</span></div>')
    return '<h2>Dimensions</h2><div id="dimensions">' + "".join(rows) + "</div>"


def _impact(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return ""
    return f'<span class="impact">{value:+.1f}</span>'


def _reasons(doc: Doc, care: Doc) -> str:
    explained = list(care.get("explanations") or [])
    if not explained:  # no words from the care view: fall back to the codes, in words
        explained = [{"code": r.get("code"), "impact": r.get("impact"), "text": plain_reason(r.get("code"))}
                     for r in doc.get("reasons") or []]
    if not explained:
        return ('<h2>Why this score</h2><p class="empty" id="no-reasons">'
                "Nothing is lowering this customer's score.</p>")
    items = "\n".join(
        f'<li class="reason" data-code="{_e(r.get("code"))}">{_impact(r.get("impact"))}'
        f'{_e(r.get("text") or plain_reason(r.get("code")))}</li>' for r in explained)
    return f'<h2>Why this score</h2><ul class="plain" id="reasons">\n{items}\n</ul>'


def _active_faults(doc: Doc, care: Doc) -> str:
    faults = list(care.get("faults") or [])
    known = {f.get("alarm_id") for f in faults}
    faults += [{"alarm_id": a} for a in doc.get("active_faults") or [] if a not in known]
    if not faults:
        return '<h2>Active faults</h2><p class="empty" id="no-active-faults">No fault affects this customer now.</p>'
    items = []
    for f in faults:
        alarm = f.get("alarm_id")
        planned = ' <span class="badge planned">planned work</span>' if f.get("planned") else ""
        resource = f" on {_e(f.get('resource_id'))}" if f.get("resource_id") else ""
        since = f" since {fmt_time(f.get('since'))}" if f.get("since") else ""
        severity = f"{severity_badge(f.get('severity'))} " if f.get("severity") else ""
        items.append(f'<li class="active-fault" data-alarm-id="{_e(alarm)}">{severity}'
                     f'<a href="{fault_href(alarm)}">{_e(alarm)}</a>{resource}{since}{planned}</li>')
    return '<h2>Active faults</h2><ul class="plain" id="active-faults">\n' + "\n".join(items) + "\n</ul>"


def _triggers(care: Doc) -> str:
    triggers = list(care.get("recent_triggers") or [])
    if not triggers:
        return '<h2>Recent triggers</h2><p class="empty" id="no-triggers">Nothing sent to this customer recently.</p>'
    triggers.sort(key=lambda t: str(t.get("time") or ""), reverse=True)
    rows = "\n".join(
        f'<tr class="trigger" data-trigger="{_e(t.get("trigger"))}"><td>{fmt_time(t.get("time"))}</td>'
        f'<td class="what">{_e(humanize(t.get("trigger")))}</td>'
        f'<td class="channel">{channel_badge(t.get("channel"))}</td>'
        f'<td class="muted">{_e(t.get("rule_id"))}</td></tr>' for t in triggers)
    return ('<h2>Recent triggers</h2><table id="triggers"><thead><tr><th>When</th><th>Trigger</th>'
            f"<th>Channel</th><th>Rule</th></tr></thead><tbody>\n{rows}\n</tbody></table>")


def customer_page(doc: Doc) -> str:
    """``/ui/customers/{id}``: the care view of ``GET /customers/{id}?view=care``."""
    care: Doc = doc.get("care") or {}
    history = list(care.get("history") or [])
    chart = trend_svg(history)
    body = (
        '<div class="grid">'
        f'<section class="card">{_score_header(doc, care)}</section>'
        f'<section class="card">{_dimensions(doc.get("dimensions") or {})}</section>'
        "</div>"
        f'<section class="card" style="margin-top:16px"><h2>Score, last 24 hours</h2>{chart}</section>'
        f'<section class="card">{_reasons(doc, care)}</section>'
        '<div class="row">'
        f'<section class="card">{_active_faults(doc, care)}</section>'
        f'<section class="card">{_triggers(care)}</section>'
        "</div>"
    )
    return layout(f"Customer {doc.get('customer_id')}", body,
                  subtitle="what to know when this customer calls")


# ------------------------------------------------------------------ answers that are not documents
def not_found_page(kind: str, ident: Any, detail: Any = None) -> str:
    """A 404 page: an unknown customer or fault."""
    extra = f'<p class="muted">{_e(detail)}</p>' if detail else ""
    body = (f'<section class="card" id="not-found"><p>No {_e(kind)} <strong>{_e(ident)}</strong> is known '
            f"here. Check the id, or look it up from the <a href=\"/ui/faults\">faults</a>.</p>{extra}</section>")
    return layout(f"Unknown {kind}", body)


def not_ready_page(reason: Any, *, refresh_s: int = NOT_READY_REFRESH_S) -> str:
    """A 503 page that reloads itself: the worker cannot answer yet."""
    body = (f'<section class="card" id="not-ready"><p>Not ready yet, retrying every {int(refresh_s)} s.</p>'
            f'<p class="muted">{_e(reason)}</p></section>')
    return layout("Not ready yet", body, refresh_s=refresh_s)


def error_page(status: Any, detail: Any) -> str:
    """Any other failure to get the data behind a page."""
    body = (f'<section class="card" id="error"><p>The data behind this page could not be read '
            f"(status {_e(status)}).</p><p class=\"muted\">{_e(detail)}</p></section>")
    return layout("Something went wrong", body, refresh_s=NOT_READY_REFRESH_S * 5)
