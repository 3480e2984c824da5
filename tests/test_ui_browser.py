"""The pages in a real browser: headless Chromium (Debian's ``chromium`` and
``chromium-driver``) through selenium, against the real ``cxstream worker`` on
the embedded broker.

A site outage is driven through Kafka: customers on SITE-0007 (a mix of tiers
and segments), one of them with dropped calls and poor MOS on its cell before
the site fails, a bystander on another site. The test then reads the pages as
a person would: the outage listed on ``/ui/faults`` with its resource and the
number of customers it hurts; its link to the customers; a customer's page
with the score, the trend chart, the reasons in plain words, the active fault
and the ``outage_notice`` sent on the care channel; a second fault appearing
on the open faults page without anyone reloading it (the page refreshes
itself); an unknown customer's friendly 404.

Screenshots and page sources are kept in ``test-artifacts/ui/`` at the
repository root (gitignored); the path is printed. Without Chromium,
chromedriver or selenium the test skips with the reason; with
``CXSTREAM_REQUIRE_DEPLOY_TOOLS=1`` (``make test``, CI) it fails instead.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Callable, TypeVar

import pytest

from cxstream.ops.worker_process import WorkerProcess
from e2e import Feed, notification, running_worker

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts" / "ui"

SITE = "SITE-0007"
CELL = "CELL-0071"
ALARM = "ALM-UI-0007"
SECOND_ALARM = "ALM-UI-0099"
CALLER = "C-UI-001"  # the customer who calls care
ON_SITE = {CALLER: ("gold", "consumer"), "C-UI-002": ("platinum", "business"),
           "C-UI-003": ("silver", "consumer"), "C-UI-004": ("bronze", "consumer"),
           "C-UI-005": ("bronze", None), "C-UI-006": ("gold", "business")}
ELSEWHERE = "C-UI-900"

T = TypeVar("T")

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--hide-scrollbars", "--window-size=1280,1000", "--lang=en-US")


def missing(message: str) -> None:
    if os.environ.get("CXSTREAM_REQUIRE_DEPLOY_TOOLS"):
        pytest.fail(message + " and CXSTREAM_REQUIRE_DEPLOY_TOOLS is set")
    pytest.skip(message)


def find_chromium() -> tuple[str, str]:
    """(browser binary, chromedriver) of Debian's packages, or skip/fail with the reason."""
    driver = shutil.which("chromedriver") or ("/usr/bin/chromedriver" if os.path.exists("/usr/bin/chromedriver")
                                              else None)
    browser = next((p for p in ("/usr/lib/chromium/chromium", shutil.which("chromium"),
                                shutil.which("chromium-browser")) if p and os.path.exists(p)), None)
    if browser is None or driver is None:
        missing("Chromium is not installed (apt-get install chromium chromium-driver; `make system-deps`)")
    return browser, driver


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        missing("selenium is not installed (pip install -e '.[test]')")
    binary, driver_path = find_chromium()
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    log = tmp_path_factory.mktemp("chromedriver") / "chromedriver.log"
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path, log_output=str(log)))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob("*"):
        old.unlink()
    print(f"\nbrowser test artifacts (screenshots, page sources): {ARTIFACTS}")
    return ARTIFACTS


@pytest.fixture
def worker(settings, tmp_path):
    with running_worker(settings, tmp_path / "worker.log") as process:
        yield process


def wait_for(what: str, probe: Callable[[], T | None], timeout_s: float = 60.0, every_s: float = 0.25) -> T:
    """Poll ``probe`` until it returns something truthy; fail naming ``what`` at the deadline."""
    deadline = time.monotonic() + timeout_s
    last: object = None
    while True:
        try:
            result = probe()
        except Exception as exc:  # the worker may be mid-rebalance: keep trying until the deadline
            result, last = None, exc
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what} (last error: {last!r})")
        time.sleep(every_s)  # between polls


def json_of(worker: WorkerProcess, path: str) -> dict | None:
    status, body = worker.get_json(path)
    return body if status == 200 else None


def quality(feed: Feed, customer_id: str, at: str, n: int, **metrics) -> None:
    feed.send(feed.settings.topics.quality, customer_id, {
        "event_id": f"q-{customer_id}-{at}-{n}", "customer_id": customer_id, "event_time": at,
        "service": "voice", "resource_id": CELL, "metrics": metrics})


def screenshot(driver, directory: Path, name: str) -> Path:
    """The whole page (the window fitted to its height) as PNG, and its HTML next to it."""
    height = int(driver.execute_script("return Math.ceil(document.body.getBoundingClientRect().height)"))
    wanted = min(max(height, 300), 4000)
    driver.set_window_size(1280, wanted)
    chrome = wanted - int(driver.execute_script("return window.innerHeight"))  # the window's own bars
    if chrome > 0:
        driver.set_window_size(1280, wanted + chrome)
    path = directory / f"{name}.png"
    assert driver.save_screenshot(str(path)), f"no screenshot {path}"
    (directory / f"{name}.html").write_text(driver.page_source)
    driver.set_window_size(1280, 1000)
    return path


def test_site_outage_as_operations_and_care_see_it(browser, artifacts, settings, worker):
    from selenium.webdriver.common.by import By

    status, _ = worker.get("/ui/faults")
    assert status != 404, "no /ui pages: cxstream/ops/web.py must call cxstream.ui.register_ui(worker)"
    feed = Feed(settings)
    for customer_id, (tier, segment) in ON_SITE.items():
        feed.customer(customer_id, [CELL, SITE], tier=tier, segment=segment)
    feed.customer(ELSEWHERE, ["CELL-0991", "SITE-0099"], tier="silver")
    feed.flush()
    wait_for("every customer scored", lambda: all(json_of(worker, f"/customers/{c}")
                                                  for c in [*ON_SITE, ELSEWHERE]))

    # the caller's calls drop on its cell, three times over twenty minutes of event time
    for n, minute in enumerate((5, 14, 23), 1):
        last = f"2026-11-22T10:{minute:02d}:00Z"
        quality(feed, CALLER, last, n, call_dropped=True)
        feed.flush()
        wait_for(f"the caller's score at {last}",
                 lambda: (json_of(worker, f"/customers/{CALLER}") or {}).get("updated_at") == last)

    # the site goes down
    feed.send(settings.topics.faults, ALARM, notification("AlarmCreateEvent", "2026-11-22T10:30:00Z", {
        "id": ALARM, "alarmedObject": {"id": SITE, "@referredType": "Site"}, "perceivedSeverity": "critical",
        "alarmRaisedTime": "2026-11-22T10:30:00Z", "state": "raised", "probableCause": "powerProblem"}))
    feed.flush()
    listed = wait_for("/faults to list the site outage with its six customers", lambda: next(
        (f for f in (json_of(worker, "/faults") or {}).get("faults", [])
         if f["alarm_id"] == ALARM and f["impacted"]["total"] == len(ON_SITE)), None))
    care = wait_for("the caller's care view with the outage notice and the fault", lambda: (
        lambda doc: doc if doc and any(t["trigger"] == "outage_notice" for t in doc["care"]["recent_triggers"])
        and doc["care"]["faults"] else None)(json_of(worker, f"/customers/{CALLER}?view=care")))

    # ---- operations: the faults page
    browser.get(worker.base_url + "/ui/faults")
    assert browser.title.startswith("Faults")
    refresh = browser.find_element(By.CSS_SELECTOR, 'meta[http-equiv="refresh"]').get_attribute("content")
    assert int(refresh) <= 10, "the faults page must refresh itself every few seconds"
    row = browser.find_element(By.CSS_SELECTOR, f'#faults tr.fault[data-alarm-id="{ALARM}"]')
    cells = row.find_elements(By.TAG_NAME, "td")
    assert cells[0].text == ALARM
    assert row.find_element(By.CSS_SELECTOR, "td.resource").text == f"{SITE} Site"
    assert "critical" in row.text
    assert row.find_element(By.CSS_SELECTOR, "td.impacted").text == str(len(ON_SITE))
    tiers = {td.get_attribute("data-tier"): td.text for td in row.find_elements(By.CSS_SELECTOR, "td.tier-count")}
    assert tiers == {"platinum": "1", "gold": "2", "silver": "1", "bronze": "2"}
    assert "business 2" in row.find_element(By.CSS_SELECTOR, "td.segments").text
    assert listed["mean_score"] is None or f"{listed['mean_score']:.1f}" in row.text
    screenshot(browser, artifacts, "faults")

    # the page keeps itself current: a second fault shows up without a reload
    feed.alarm_raise(SECOND_ALARM, "CELL-0991", "2026-11-22T10:35:00Z", severity="major")
    feed.flush()
    marker = browser.find_element(By.TAG_NAME, "html")
    wait_for("the open faults page to show the second fault by itself", lambda: browser.find_elements(
        By.CSS_SELECTOR, f'#faults tr.fault[data-alarm-id="{SECOND_ALARM}"]'), timeout_s=45)
    assert not _alive(marker), "the second fault appeared without the page reloading itself?"
    screenshot(browser, artifacts, "faults-refreshed")

    # ---- the fault's customers, by following its link
    browser.find_element(By.CSS_SELECTOR, f'#faults tr.fault[data-alarm-id="{ALARM}"] a.alarm').click()
    wait_for("the fault page", lambda: browser.title.startswith(f"Fault {ALARM}"), timeout_s=15)
    assert browser.find_element(By.ID, "impacted-total").text == str(len(ON_SITE))
    links = {a.text: a.get_attribute("href") for a in browser.find_elements(By.CSS_SELECTOR, "#fault-customers a.customer")}
    assert set(links) == set(ON_SITE), links
    screenshot(browser, artifacts, "fault")

    # ---- care: the caller's page, by following its link
    browser.find_element(By.LINK_TEXT, CALLER).click()
    wait_for("the customer page", lambda: browser.title.startswith(f"Customer {CALLER}"), timeout_s=15)
    score = browser.find_element(By.ID, "score").text
    assert float(score) == pytest.approx(care["score"], abs=0.1) and float(score) < 100
    chart = browser.find_element(By.ID, "trend-chart")
    drawn = int(chart.get_attribute("data-points"))
    assert drawn >= 2, "the trend chart needs more than one point"
    assert len(chart.find_elements(By.CSS_SELECTOR, "circle.point")) == drawn
    assert chart.size["width"] > 300 and chart.size["height"] > 80, "the chart is not visible"
    dimensions = browser.find_elements(By.CSS_SELECTOR, "#dimensions .dimension")
    assert [d.get_attribute("data-dimension") for d in dimensions] == \
        ["voice", "data", "video", "messaging", "availability"]
    reasons = [li.text for li in browser.find_elements(By.CSS_SELECTOR, "#reasons li.reason")]
    assert reasons, "no reasons shown"
    for explanation in care["care"]["explanations"]:
        assert any(explanation["text"] in shown for shown in reasons), (explanation, reasons)
    assert any("dropped" in r.lower() and CELL in r for r in reasons), reasons
    assert not any(r.startswith(("voice.", "fault.")) for r in reasons), "reason codes instead of words"
    fault = browser.find_element(By.CSS_SELECTOR, f'#active-faults li.active-fault[data-alarm-id="{ALARM}"]')
    assert SITE in fault.text and "since" in fault.text and "10:30" in fault.text
    notice = browser.find_element(By.CSS_SELECTOR, '#triggers tr.trigger[data-trigger="outage_notice"]')
    assert notice.find_element(By.CSS_SELECTOR, "td.channel").text == "care"
    assert "Outage notice" in notice.text
    screenshot(browser, artifacts, "customer")

    # ---- an unknown customer: a friendly page, and a 404 for anything that checks
    browser.get(worker.base_url + "/ui/customers/NO-SUCH-CUSTOMER")
    assert browser.title.startswith("Unknown customer")
    assert "NO-SUCH-CUSTOMER" in browser.find_element(By.ID, "not-found").text
    status, _ = worker.get("/ui/customers/NO-SUCH-CUSTOMER")
    assert status == 404

    for name in ("faults", "faults-refreshed", "fault", "customer"):
        assert (artifacts / f"{name}.png").stat().st_size > 10_000


def _alive(element) -> bool:
    """False once the element's document has been replaced (a reload happened)."""
    from selenium.common.exceptions import StaleElementReferenceException

    try:
        element.tag_name
        return True
    except StaleElementReferenceException:
        return False
