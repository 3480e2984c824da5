"""The pages as pure rendering: sample documents in the JSON endpoints' shapes, HTML out.

What a person would see (alarm, resource, counts, plain-word reasons, the
chart), what a crawler would follow (links, paging), and that nothing from a
document reaches the page unescaped.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

from cxstream.ui import pages
from cxstream.ui.routes import local_base_url

SVG = "{http://www.w3.org/2000/svg}"


def fault(alarm_id="ALM-77", **overrides):
    doc = {"alarm_id": alarm_id, "resource_id": "SITE-0007", "resource_type": "site", "severity": "critical",
           "raised_at": "2026-11-22T10:05:00Z", "cleared_at": None, "active": True, "planned": False,
           "duration_s": None,
           "impacted": {"total": 1234, "by_tier": {"platinum": 3, "gold": 10, "silver": 100, "bronze": 1121},
                        "by_segment": {"consumer": 1200, "business": 34}},
           "mean_score": 61.2, "updated_at": "2026-11-22T10:06:00Z"}
    doc.update(overrides)
    return doc


def history(n: int, start_hour: int = 0):
    return [{"time": f"2026-11-22T{start_hour + i // 60:02d}:{i % 60:02d}:00Z", "score": 100.0 - i % 50}
            for i in range(n)]


def care_doc(**care_overrides):
    care = {"value_tier": "gold", "segment": "consumer", "marketing_consent": True,
            "history": history(30, start_hour=10),
            "explanations": [
                {"code": "voice.call_dropped", "impact": -18.2, "text": "3 dropped calls on CELL-0042 since 10:05"},
                {"code": "fault.SITE-0007", "impact": -12.0, "text": "Site SITE-0007 down since 10:05"}],
            "faults": [{"alarm_id": "ALM-77", "resource_id": "SITE-0007", "severity": "critical",
                        "planned": False, "since": "2026-11-22T10:05:00Z"}],
            "recent_triggers": [
                {"rule_id": "outage_notice", "trigger": "outage_notice", "channel": "care",
                 "time": "2026-11-22T10:05:00Z"},
                {"rule_id": "retention_offer", "trigger": "retention_offer", "channel": "marketing",
                 "time": "2026-11-22T09:00:00Z"}]}
    care.update(care_overrides)
    return {"customer_id": "C1", "score": 63.5, "previous_score": 81.0,
            "dimensions": {"voice": 40.0, "data": 88.0, "video": 100.0, "messaging": 100.0, "availability": 55.0},
            "reasons": [{"code": "voice.call_dropped", "impact": -18.2}, {"code": "fault.SITE-0007", "impact": -12.0}],
            "active_faults": ["ALM-77"], "updated_at": "2026-11-22T10:29:00Z", "care": care}


class Collector(HTMLParser):
    """Elements by id and class, links, and a check that every opened element is closed."""

    VOID = {"meta", "input", "br", "img", "link", "hr", "circle", "line", "polyline", "polygon"}

    def __init__(self, text: str):
        super().__init__()
        self.ids: dict[str, dict] = {}
        self.classes: dict[str, int] = {}
        self.links: list[str] = []
        self.stack: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            assert attrs["id"] not in self.ids, f"duplicate id {attrs['id']}"
            self.ids[attrs["id"]] = attrs
        for name in (attrs.get("class") or "").split():
            self.classes[name] = self.classes.get(name, 0) + 1
        if tag == "a":
            self.links.append(attrs.get("href"))
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in self.VOID:
            self.stack.pop()

    def handle_endtag(self, tag):
        if tag in self.VOID:
            return
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes {self.stack[-1:]}"
        self.stack.pop()


def parse(text: str) -> Collector:
    assert text.startswith("<!DOCTYPE html>")
    page = Collector(text)
    assert page.stack == [], f"unclosed elements {page.stack}"
    return page


def visible(text: str) -> str:
    """The page's text roughly as a person reads it (no tags, no style)."""
    text = re.sub(r"<style>.*?</style>", "", text, flags=re.S)
    text = re.sub(r"<title>.*?</title>", "", text, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", text))


# ------------------------------------------------------------------ faults table
def test_faults_table_lists_each_fault_with_its_impact_and_refreshes_itself():
    second = fault("ALM-9", resource_id="CELL-0042", resource_type=None, severity="major", planned=True,
                   impacted={"total": 5, "by_tier": {"bronze": 5}, "by_segment": {"unknown": 5}}, mean_score=None)
    text = pages.faults_page({"faults": [fault(), second], "complete": True, "as_of": "2026-11-22T10:06:00Z"})
    page = parse(text)
    assert '<meta http-equiv="refresh" content="5">' in text
    assert "faults" in page.ids and "no-faults" not in page.ids and "partial" not in page.ids
    assert page.classes["fault"] == 2
    assert "/ui/faults/ALM-77" in page.links and "/ui/faults/ALM-9" in page.links
    words = visible(text)
    assert "ALM-77 SITE-0007 site critical since 22 Nov 10:05 no 1,234 3 10 100 1,121" in words
    assert "consumer 1,200" in words and "business 34" in words
    assert "as of 22 Nov 2026 10:06 UTC" in words
    assert "61.2" in words
    assert "ALM-9 CELL-0042 major" in words and "planned" in words and "unknown 5" in words
    # the order of the document is kept (the endpoint sorts by impact)
    assert text.index('data-alarm-id="ALM-77"') < text.index('data-alarm-id="ALM-9"')


def test_faults_page_takes_the_documents_as_served():
    # {"faults", "count"}: no as_of, no complete flag -- nothing claims a time or a partial view
    text = pages.faults_page({"faults": [fault()], "count": 1})
    page = parse(text)
    assert "as of" not in visible(text) and "partial" not in page.ids
    assert "/ui/faults?cleared=1" in page.links
    text = pages.faults_page({"faults": [], "count": 0}, cleared=True)
    page = parse(text)
    assert "no-faults" in page.ids and "none cleared recently" in visible(text)
    assert page.ids["toggle-cleared"]["href"] == "/ui/faults"


def test_faults_empty_state_and_partial_view():
    text = pages.faults_page({"faults": [], "complete": False, "as_of": "2026-11-22T10:06:00Z"})
    page = parse(text)
    assert "no-faults" in page.ids and "faults" not in page.ids
    assert "No active faults" in visible(text)
    assert "partial" in page.ids and "Rebalancing" in visible(text)
    assert '<meta http-equiv="refresh" content="5">' in text


def test_cleared_fault_shows_when_and_how_long():
    text = pages.faults_page({"faults": [fault(active=False, cleared_at="2026-11-22T14:35:00Z",
                                               duration_s=4.5 * 3600)], "complete": True, "as_of": None})
    parse(text)
    assert 'class="fault cleared"' in text
    assert "cleared 22 Nov 14:35 after 4 h 30 min" in visible(text)


def test_everything_from_a_document_is_escaped():
    evil = '<script>alert("x")</script>'
    text = pages.faults_page({"faults": [fault(alarm_id=evil, resource_id=evil, severity=evil,
                                               impacted={"total": 1, "by_segment": {evil: 1}})],
                              "complete": True, "as_of": evil})
    page = parse(text)
    assert "<script>" not in text
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in text
    assert "/ui/faults/%3Cscript%3Ealert%28%22x%22%29%3C%2Fscript%3E" in page.links

    doc = care_doc(explanations=[{"code": "x", "impact": -1.0, "text": evil}], value_tier=evil, segment=evil,
                   faults=[{"alarm_id": evil, "resource_id": evil, "since": evil}],
                   recent_triggers=[{"rule_id": evil, "trigger": evil, "channel": evil, "time": evil}])
    doc["customer_id"] = evil
    text = pages.customer_page(doc)
    parse(text)
    assert "<script>" not in text and text.count("&lt;script&gt;") >= 6

    text = pages.fault_page({**fault(), "customers": {"items": [evil, "a/b"], "offset": 0, "limit": 100,
                                                      "total": 2}})
    page = parse(text)
    assert "<script>" not in text
    assert "/ui/customers/a%2Fb" in page.links
    for text in (pages.not_found_page("customer", evil, evil), pages.not_ready_page(evil),
                 pages.error_page(500, evil)):
        parse(text)
        assert "<script>" not in text


# ------------------------------------------------------------------ one fault
def test_fault_page_links_each_impacted_customer_and_pages():
    doc = {**fault(), "customers": {"items": [f"C{i}" for i in range(100)], "offset": 100, "limit": 100,
                                    "total": 1234}}
    text = pages.fault_page(doc)
    page = parse(text)
    assert page.classes["customer"] == 100
    assert "/ui/customers/C0" in page.links and "/ui/customers/C99" in page.links
    assert "/ui/faults/ALM-77?offset=0&limit=100" in page.links      # previous
    assert "/ui/faults/ALM-77?offset=200&limit=100" in page.links    # next
    assert "Showing 101–200 of 1,234" in visible(text)
    assert page.ids["fault-customers"]["start"] == "101"
    assert "refresh" in text  # active: keeps itself current

    cleared = pages.fault_page({**fault(active=False, cleared_at="2026-11-22T11:05:00Z", duration_s=3600),
                                "customers": {"items": [], "offset": 0, "limit": 100, "total": 0}})
    page = parse(cleared)
    assert "no-customers" in page.ids
    assert 'http-equiv="refresh"' not in cleared
    assert "cleared 22 Nov 2026 11:05 UTC after 1 h 00 min" in visible(cleared)


# ------------------------------------------------------------------ customer
def test_customer_page_has_what_a_care_agent_needs():
    text = pages.customer_page(care_doc())
    page = parse(text)
    words = visible(text)
    assert page.ids["score"]["class"] == "score fair"
    assert "63.5 / 100 ▼ 17.5 from 81.0" in words
    assert "gold" in words and "consumer" in words
    # the five dimensions, as bars with their values
    assert page.classes["dimension"] == 5
    for name, value in (("Voice", "40"), ("Data", "88"), ("Availability", "55")):
        assert f"{name} {value}" in words
    assert 'style="width:40.0%"' in text
    # reasons in plain words, most negative first as given
    assert page.classes["reason"] == 2
    assert "3 dropped calls on CELL-0042 since 10:05" in words
    assert words.index("3 dropped calls") < words.index("Site SITE-0007 down")
    assert "-18.2" in words
    # active fault, since when, linked
    assert "ALM-77 on SITE-0007 since 22 Nov 2026 10:05 UTC" in words
    assert "/ui/faults/ALM-77" in page.links
    # recent triggers with their channel, newest first
    assert page.classes["trigger"] == 2
    assert "Outage notice care outage_notice" in words
    assert words.index("Outage notice") < words.index("Retention offer")
    assert "marketing" in words


def test_trend_chart_is_an_svg_with_one_point_per_history_entry():
    text = pages.customer_page(care_doc())
    svg = re.search(r'<svg id="trend-chart".*?</svg>', text, re.S).group(0)
    root = ET.fromstring(svg)  # well-formed XML
    assert root.get("data-points") == "30"
    points = root.findall(f"{SVG}circle")
    assert len(points) == 30 and all(p.get("class") == "point" for p in points)
    line = root.find(f"{SVG}polyline")
    assert len(line.get("points").split()) == 30
    xs = [float(p.get("cx")) for p in points]
    assert xs == sorted(xs)
    # a score of 100 is drawn at the top, lower scores lower down
    ys = [float(p.get("cy")) for p in points]
    assert ys[0] == min(ys)


def test_trend_keeps_the_last_24_hours_and_survives_bad_or_missing_history():
    old = [{"time": "2026-11-20T10:00:00Z", "score": 10.0}]
    recent = history(5, start_hour=10)
    junk = [{"time": "not a time", "score": 50}, {"time": "2026-11-22T10:30:00Z", "score": None}]
    svg = pages.trend_svg(old + recent + junk)
    root = ET.fromstring(svg)
    assert root.get("data-points") == "5"
    assert len(root.findall(f"{SVG}circle")) == 5

    empty = pages.trend_svg([])
    root = ET.fromstring(empty)
    assert root.get("data-points") == "0" and "no score history yet" in empty

    text = pages.customer_page(care_doc(history=[]))
    assert 'data-points="0"' in text


def test_customer_empty_states_and_reason_codes_in_words_without_explanations():
    doc = care_doc(explanations=[], faults=[], recent_triggers=[])
    doc["active_faults"] = []
    text = pages.customer_page(doc)
    page = parse(text)
    words = visible(text)
    assert "Voice: call dropped" in words and "Network fault on SITE-0007" in words
    assert page.classes["reason"] == 2
    assert "no-active-faults" in page.ids and "no-triggers" in page.ids

    doc["reasons"] = []
    page = parse(pages.customer_page(doc))
    assert "no-reasons" in page.ids

    # a bare score document (no care object) still renders
    bare = care_doc()
    del bare["care"]
    text = pages.customer_page(bare)
    page = parse(text)
    assert page.ids["trend-chart"]["data-points"] == "0"
    assert "ALM-77" in visible(text)  # from active_faults


def test_pages_for_answers_that_are_not_documents():
    page = parse(pages.not_found_page("customer", "C404"))
    assert "not-found" in page.ids
    text = pages.not_ready_page("partition 3 is being restored here")
    page = parse(text)
    assert "not-ready" in page.ids and 'http-equiv="refresh"' in text
    assert "Not ready yet, retrying" in visible(text) and "partition 3" in visible(text)


def test_formatting_helpers():
    assert pages.fmt_duration(40) == "40 s"
    assert pages.fmt_duration(12 * 60 + 5) == "12 min"
    assert pages.fmt_duration(2 * 3600 + 5 * 60) == "2 h 05 min"
    assert pages.fmt_duration(2 * 86400 + 3600) == "2 d 1 h"
    assert pages.fmt_duration(None) == "—"
    assert pages.parse_time("2026-11-22T11:05:00+01:00").hour == 10
    assert pages.fmt_time("garbage") == "garbage"
    assert pages.quality_class(80) == "good" and pages.quality_class(50) == "fair"
    assert pages.quality_class(49.9) == "poor" and pages.quality_class(None) == ""
    assert local_base_url("0.0.0.0", 6066) == "http://127.0.0.1:6066"
    assert local_base_url("::1", 6066) == "http://[::1]:6066"
    assert local_base_url("10.0.0.5", 7000) == "http://10.0.0.5:7000"
