"""A fabmanager's day on the real pages, end to end, in Debian's chromium.

A real Mosquitto, a hub process and the laser's node process (simulated GRBL, mock GPIO,
the simulated reader fed through its tap socket) run as in ``tests/test_browser.py``.
Karim, the fabmanager, does everything through the pages - links clicked, forms filled:
he creates Léa Fontaine (category, membership end, badge number) and her log-in,
certifies her on the laser with the certify page's searchable picker, adds a dated
tariff for members on the laser and checks it with the price preview. Léa badges in at
the laser and out again: the node, which only knows the hub's signed snapshots, switches
its relay on for her, so each change made on the web reached it without a restart. Next
month the accountant closes the month from the web (with its confirmation), opens the
invoice's PDF (fetched with the browser's own session cookie: a real PDF naming Léa and
her amount), records her card payment (the invoice turns paid) and a prepaid top-up;
then Léa logs in and sees her session's amount, her invoice and her balance on Mon espace.

**Why the site's clock is moved, and how.** A month still running cannot be closed
(``close.err.not_ended``), and a test must not depend on the day it runs. So the hub and
the node run with their wall clock moved by ``tests/clockshift`` (the mechanism of the
suite's clock-shift run, ``FABGATE_CLOCK_SHIFT_DAYS``, which takes any number of days)
onto fixed days of the month after the test's own today: the 14th at 10:00 (Paris) for
the working day, then - the hub stopped and started again, as a real one is on a
morning - the 3rd of the month after at 09:00 for the closing. Both are in the future,
because Chromium (not a Python process) keeps the real clock: a session cookie the hub
dated in the past would expire on arrival. The test's today moves in the clock-shift
run, so that run tries other months; the shift the subprocesses get is computed from the
real clock (``tests/support/wallclock.py``), so it lands on those days either way. The
node and the hub share one shift and so agree on the time, like two machines with NTP.

Nothing under test is written to the database directly; the only direct writes are the
log-ins of Karim (fabmanager and admin, as in the demo) and of the accountant, Diane
(setup, as ``fabgate user add`` would); Léa's log-in is made on the web. Pages are
found by ids, names, data attributes and URLs, not by their wording (which the
translation catalogues may change); visible text is checked only for names and amounts.
Waits are on the page (WebDriverWait) and on MQTT (``Observer``), each with a deadline.
Screenshots land in ``test-artifacts/fabmanager-*.png``.
"""

from __future__ import annotations

import base64
import io
import json
import re
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlparse
from zoneinfo import ZoneInfo

import pytest
from pypdf import PdfReader
from selenium.common.exceptions import (
    StaleElementReferenceException,
    TimeoutException,
    WebDriverException,
)
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select, WebDriverWait

from gateway.contract.signing import load_public_key, verify_snapshot
from gateway.core.clock import parse_iso
from gateway.core.snapshot import Snapshot
from gateway.drivers.readers.simulated import send_tap
from gateway.hub import accounts
from gateway.hub.db import HubStore
from gateway.web.dates import short_date
from tests import test_browser as board_tests
from tests.support.harness import Observer, Site
from tests.support.wallclock import clock_at
from tests.test_browser import FR, machine, ready, screenshot, wait_board
from tests.test_browser_people import add_account, log_in

pytestmark = pytest.mark.integration

# The board test's chromium; `site` and `observer` come from conftest.py.
browser = board_tests.browser

TZ = ZoneInfo("Europe/Paris")  # the demo site's timezone
PAGE_TIMEOUT_S = 15.0
NODE = "laser-1"

KARIM = "karim@fablab.example"  # the fabmanager (and the site's admin, as in the demo)
COMPTA = "diane@fablab.example"  # the accountant: Diane Moreau keeps the books
LEA = "Léa Fontaine"
LEA_EMAIL = "lea.fontaine@fablab.example"
LEA_PASSWORD = "la phrase de passe de Léa"
LEA_BADGE = "04C0FFEE"
RATE_CENTS = 85  # the new members' laser tariff, € 0,85 a minute before VAT
TOP_UP_CENTS = 2000


# --- helpers ---------------------------------------------------------------------------


def euros(cents: int) -> str:
    """An amount as the French pages write it (spaces normalised, see ``norm``)."""
    sign = "-" if cents < 0 else ""
    cents = abs(cents)
    return f"{sign}{cents // 100},{cents % 100:02d} €"


def norm(text: str) -> str:
    """Text with no-break and narrow no-break spaces as plain spaces, runs collapsed."""
    return " ".join(text.replace("\u00a0", " ").replace("\u202f", " ").split())


def vat_20(cents: int) -> int:
    """20 % VAT rounded half up, as an invoice computes it on its total."""
    return (cents * 20 + 50) // 100


def waiter(driver: WebDriver) -> WebDriverWait[WebDriver]:
    return WebDriverWait(driver, PAGE_TIMEOUT_S, poll_frequency=0.1)


def find(driver: WebDriver, css: str) -> WebElement:
    """The element once it is on the page."""
    return waiter(driver).until(ec.presence_of_element_located((By.CSS_SELECTOR, css)))


def _replaced(exc: WebDriverException) -> bool:
    """chromedriver may report a node as gone this way, rather than as stale, when a
    navigation replaced its document while chromedriver was reading it."""
    return "does not belong to the document" in str(exc)


def go(driver: WebDriver, element: WebElement, then: str) -> WebElement:
    """Click a link or a submit button, wait for the page it leads to (the old page
    gone, ``then`` present) and return ``then``."""
    try:
        element.click()
    except WebDriverException as exc:
        # The click's own navigation replaced the document first: the click worked.
        if not _replaced(exc):
            raise

    def old_page_gone(_: WebDriver) -> bool:
        try:
            element.is_enabled()
        except StaleElementReferenceException:
            return True
        except WebDriverException as exc:
            if not _replaced(exc):
                raise
            return True
        return False

    waiter(driver).until(old_page_gone)
    return find(driver, then)


def follow(driver: WebDriver, link_css: str, then: str) -> WebElement:
    """Follow the link found by ``link_css`` (matched on its URL, not its words)."""
    return go(driver, find(driver, link_css), then)


def type_into(driver: WebDriver, css: str, text: str) -> WebElement:
    field = find(driver, css)
    field.clear()
    field.send_keys(text)
    return field


def set_date(driver: WebDriver, css: str, value: str) -> None:
    """Fill a native date or datetime-local input with an ISO value.

    Typing into Chromium's date widget goes segment by segment in the order of the
    browser's own locale (mm/dd/yyyy or dd/mm/yyyy), not the page's: what the widget
    would submit is its ``value``, which is set here, with the events a user's edit fires.
    """
    field = find(driver, css)
    driver.execute_script(
        "arguments[0].value = arguments[1];"
        "arguments[0].dispatchEvent(new Event('input', {bubbles: true}));"
        "arguments[0].dispatchEvent(new Event('change', {bubbles: true}));",
        field,
        value,
    )
    assert field.get_attribute("value") == value, (css, value, field.get_attribute("value"))


def pick_member(driver: WebDriver, css: str, typed: str) -> str:
    """Use a searchable member picker: type part of a name, then take the one entry of
    the input's ``<datalist>`` the browser offers for it (its case-insensitive match),
    as a user does by choosing the suggestion. Returns the chosen entry."""
    field = type_into(driver, css, typed)
    offered: list[str] = driver.execute_script(
        "const input = arguments[0], typed = arguments[1].toLowerCase();"
        "return Array.from(input.list.options).map((o) => o.value)"
        "  .filter((v) => v.toLowerCase().includes(typed));",
        field,
        typed,
    )
    assert len(offered) == 1, f"the picker offers {offered} for {typed!r}"
    field.clear()
    field.send_keys(offered[0])
    return offered[0]


def until_page(
    driver: WebDriver, what: str, check: Callable[[WebDriver], Any], timeout: float = 20.0
) -> Any:
    """Reload the page until ``check`` holds: for what a page shows only once the hub has
    ingested an MQTT message (pages without their own refresh). A deadline, no sleep:
    WebDriverWait paces the reloads."""

    def reloaded(d: WebDriver) -> Any:
        d.refresh()
        try:
            return check(d)
        except StaleElementReferenceException:
            return False

    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.3).until(reloaded)
    except TimeoutException:
        shown = norm(driver.find_element(By.TAG_NAME, "main").text)
        raise AssertionError(
            f"timed out after {timeout} s waiting for the page to show {what}; it shows: {shown}"
        ) from None


def fetch(driver: WebDriver, path: str) -> dict[str, Any]:
    """GET ``path`` from the page, with the browser's own session cookie; the body comes
    back base64-encoded (Selenium cannot hand over a download's bytes)."""
    got: dict[str, Any] = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch(arguments[0], {credentials: 'same-origin'})"
        "  .then(async (r) => {"
        "    const bytes = new Uint8Array(await r.arrayBuffer());"
        "    let bin = ''; for (const b of bytes) { bin += String.fromCharCode(b); }"
        "    done({status: r.status, type: r.headers.get('content-type'), body: btoa(bin)});"
        "  }).catch((e) => done({status: 0, type: '', body: '', error: String(e)}));",
        path,
    )
    return got


def snapshot_of(observer: Observer, site: Site) -> Snapshot | None:
    """The laser's retained snapshot as the hub published it, its signature checked with
    the hub's public key (at its own issue time: the test's clock is not the site's)."""
    payload = observer.snapshots.get(observer.topics.snapshot(NODE))
    if payload is None:
        return None
    issued = parse_iso(json.loads(base64.b64decode(json.loads(payload)["payload"]))["issued_at"])
    key = load_public_key(site.files.public_key)
    return verify_snapshot(payload, key, now=issued, machine_id=NODE)


def node_holds(
    observer: Observer, site: Site, what: str, predicate: Callable[[Snapshot], bool]
) -> Snapshot:
    """Wait until the hub has published a snapshot for the laser where ``predicate``
    holds, then until the node says it holds that version (or a later one)."""

    def published() -> Snapshot | None:
        snap = snapshot_of(observer, site)
        return snap if snap is not None and predicate(snap) else None

    snap: Snapshot = observer.wait_for(published, what=f"a snapshot with {what}")
    observer.wait_for(
        lambda: (observer.status.get(NODE) or {}).get("snapshot_version", 0) >= snap.version,
        what=f"{NODE} holding snapshot {snap.version} ({what})",
    )
    return snap


def taps_of(observer: Observer, uid: str) -> list[dict[str, Any]]:
    return [e.data for e in observer.events if e.type == "tap" and e.data.get("uid") == uid]


def tap(site: Site, observer: Observer, uid: str) -> dict[str, Any]:
    """Tap a badge at the laser and return the node's decision (its tap event)."""
    before = len(taps_of(observer, uid))
    send_tap(site.tap_socket(NODE), uid)
    observer.wait_for(lambda: len(taps_of(observer, uid)) > before, what=f"the tap of {uid}")
    return taps_of(observer, uid)[before]


def first_of_next_month(day: date) -> date:
    return (day.replace(day=1) + timedelta(days=32)).replace(day=1)


# --- the day ---------------------------------------------------------------------------


def test_a_fabmanagers_day_from_new_member_to_paid_invoice(
    site: Site, observer: Observer, browser: WebDriver
) -> None:
    browser.set_script_timeout(PAGE_TIMEOUT_S)
    # The test's own clock: moved too in the clock-shift run, so that run tries other days.
    month_start = first_of_next_month(datetime.now(TZ).date())
    period = f"{month_start:%Y-%m}"
    working_day = datetime(month_start.year, month_start.month, 14, 10, 0, tzinfo=TZ)
    next_month = first_of_next_month(month_start)
    closing_day = datetime(next_month.year, next_month.month, 3, 9, 0, tzinfo=TZ)
    on_the_14th = clock_at(working_day)

    site.start_hub(env=on_the_14th)
    site.start_node(NODE, env=on_the_14th)
    ready(observer, NODE)
    add_account(site, "m-karim", KARIM, "fabmanager")
    add_account(site, "m-diane", COMPTA, "accountant")
    with HubStore(site.files.data / "hub.db") as store:
        accounts.grant_role(store, "m-karim", "admin", None, actor="test")

    # -- 1. a new member, her badge and her log-in ---------------------------------------
    log_in(browser, site, KARIM, "/admin/")
    follow(browser, "ul.admin-links a[href^='/admin/members/new']", "#member-form")
    type_into(browser, "#name", LEA)
    type_into(browser, "#email", LEA_EMAIL)
    Select(find(browser, "#category")).select_by_value("adherent")
    membership_end = (working_day + timedelta(days=365)).date().isoformat()
    set_date(browser, "#membership_end", membership_end)
    type_into(browser, "#badge", LEA_BADGE.lower())  # the reader's case does not matter
    screenshot(browser, "fabmanager-new-member")
    go(browser, find(browser, "#member-save"), "#certifications")
    (lea_id,) = re.findall(r"^/members/([^/?]+)$", urlparse(browser.current_url).path)
    assert norm(find(browser, "h2.page").text) == LEA
    assert find(browser, f"#badges li[data-uid='{LEA_BADGE}']")
    # A year from the working day: shown with its year ("14 janv. 2028"), as the pages
    # show a date that is not this year's.
    shown_end = short_date(membership_end, now=working_day, tz="Europe/Paris", lang="fr")
    assert membership_end[:4] in shown_end and shown_end in find(browser, "p.facts").text

    # The node learns her badge from the next signed snapshot, no restart: she is known
    # there now, and refused only because nobody trained her on the laser yet.
    node_holds(observer, site, "Léa's badge", lambda s: s.badges.get(LEA_BADGE) == lea_id)
    refused = tap(site, observer, LEA_BADGE)
    assert (refused["action"], refused["reason"], refused["member_id"]) == (
        "deny",
        "not_certified",
        lea_id,
    )

    follow(browser, "nav.site-nav a[href='/admin/']", "ul.admin-links")
    follow(browser, "ul.admin-links a[href^='/admin/accounts']", "#account-new")
    picked = pick_member(browser, "#account-new #member_id", "fontaine")
    assert picked == f"{LEA} ({lea_id})"
    type_into(browser, "#account-new #email", LEA_EMAIL)
    type_into(browser, "#account-new #password", LEA_PASSWORD)
    go(browser, find(browser, "#account-new button[type=submit]"), f"tr[data-account='{lea_id}']")

    # -- 2. certified on the laser, from the certify page's picker ------------------------
    follow(browser, "nav.site-nav a[href='/certify']", "#certify-submit")
    assert pick_member(browser, "#member_id", "léa") == f"{LEA} ({lea_id})"
    Select(find(browser, "#group_id")).select_by_value("laser")
    assert find(browser, "#validity_months").get_attribute("value") == "24"
    find(browser, "label[for=level-2]").click()
    type_into(browser, "#note", "Formation laser du mardi")
    screenshot(browser, "fabmanager-certify")
    go(browser, find(browser, "#certify-submit"), "tr.cert-live[data-group=laser]")
    assert "2" in find(browser, "tr.cert-live[data-group=laser]").text
    node_holds(
        observer,
        site,
        "Léa at level 2 on the laser",
        lambda s: lea_id in s.members and s.members[lea_id].level == 2,
    )

    # -- 3. a dated tariff for members, and its preview -----------------------------------
    follow(browser, "nav.site-nav a[href='/admin/']", "ul.admin-links")
    follow(browser, "ul.admin-links a[href^='/admin/tariffs?']", "#tariff-form")
    tariff_name = f"Laser adhérents {period}"
    type_into(browser, "#tariff-form #name", tariff_name)
    type_into(browser, "#valid_from", month_start.isoformat())
    Select(find(browser, "#groups")).select_by_value("laser")
    find(browser, "#tariff-form input[name=categories][value=adherent]").click()
    assert find(browser, "#tariff-form input[name=mode][value=rate]").is_selected()
    type_into(browser, "#rate", "0,85")
    screenshot(browser, "fabmanager-tariff-form")
    go(browser, find(browser, "#tariff-save"), "#tariffs")
    rows = [
        r
        for r in browser.find_elements(By.CSS_SELECTOR, "#tariffs tr[data-tariff]")
        if norm(r.find_element(By.CSS_SELECTOR, "td a").text) == tariff_name
    ]
    assert len(rows) == 1, [r.text for r in browser.find_elements(By.CSS_SELECTOR, "#tariffs tr")]
    assert euros(RATE_CENTS) in norm(rows[0].text)
    assert f"01/{month_start:%m/%Y}" in rows[0].text

    # The preview is linked from the tariffs page, and keeps its form for the next try.
    follow(browser, "a[href^='/admin/tariffs/preview']", "#preview-form")

    def preview(at: datetime, minutes: int) -> tuple[str, str]:
        Select(find(browser, "#preview-form #machine")).select_by_value(NODE)
        Select(find(browser, "#preview-form #category")).select_by_value("adherent")
        set_date(browser, "#preview-form #at", f"{at:%Y-%m-%dT%H:%M}")
        type_into(browser, "#preview-form #minutes", str(minutes))
        result = go(browser, find(browser, "#preview-form button[type=submit]"), "#preview-result")
        return norm(find(browser, "#preview-total").text), norm(result.text)

    total, result = preview(working_day, 90)
    assert total == euros(90 * RATE_CENTS)
    assert tariff_name in result and euros(vat_20(90 * RATE_CENTS) + 90 * RATE_CENTS) in result
    screenshot(browser, "fabmanager-tariff-preview")
    # The day before it is in force, the site's general laser tariff (0,60 €) applies.
    total, result = preview(
        datetime.combine(month_start, datetime.min.time(), TZ) - timedelta(hours=12), 90
    )
    assert total == euros(90 * 60) and tariff_name not in result

    # -- 4. Léa at the laser: the relay goes on for her, and off when she badges out -----
    started = tap(site, observer, LEA_BADGE)
    assert (started["action"], started["reason"]) == ("start", "allowed"), started
    observer.wait_for(
        lambda: (
            observer.status[NODE].get("relay") is True
            and (observer.status[NODE].get("session") or {}).get("member_id") == lea_id
        ),
        what=f"{NODE}'s relay on in Léa's session",
    )
    browser.get(site.hub_url)
    wait_board(
        browser,
        "the laser in use by Léa",
        lambda b: machine(b, NODE)["state"] == FR["in_use"] and "Léa" in machine(b, NODE)["who"],
    )
    screenshot(browser, "fabmanager-board-lea-on-laser")
    tap(site, observer, LEA_BADGE)
    ended = observer.wait_event("session.ended", member_id=lea_id)
    observer.wait_for(
        lambda: (
            observer.status[NODE].get("relay") is False and not observer.status[NODE].get("session")
        ),
        what=f"{NODE}'s relay off after Léa's badge-out",
    )
    session_id = ended.data["session_id"]

    # Her session, closed at the hub, on her page (amounts are on her own page, below).
    browser.get(f"{site.hub_url}members/{lea_id}")

    def billed_minutes(d: WebDriver) -> int | None:
        cells = d.find_elements(By.CSS_SELECTOR, f"#sessions tr[data-session='{session_id}'] td")
        return int(cells[2].text) if len(cells) > 2 and cells[2].text.isdigit() else None

    minutes = until_page(browser, "Léa's session closed", billed_minutes)
    assert minutes >= 1
    ht = minutes * RATE_CENTS  # the new tariff's rate, not the general 0,60 €
    ttc = ht + vat_20(ht)
    screenshot(browser, "fabmanager-member-lea")

    # -- 5. next month: the accountant closes the month, after its confirmation ----------
    site.nodes[NODE].stop()
    assert site.hub is not None
    site.hub.stop()
    site.start_hub(env=clock_at(closing_day))
    log_in(browser, site, COMPTA, "/invoices")
    hint = find(browser, "#close-hint")
    assert period in hint.text
    follow(browser, f"#close-hint a[href^='/periods/{period}/close']", "#close-form")
    drafts = [norm(r.text) for r in browser.find_elements(By.CSS_SELECTOR, "table.drafts tbody tr")]
    assert any(LEA in r and r.endswith(euros(ttc)) for r in drafts), drafts
    screenshot(browser, "fabmanager-close-month")
    type_into(browser, "#close-form input[name=confirm]", period)
    go(browser, find(browser, "#close-form button[type=submit]"), "table.invoices")
    assert find(browser, ".message-ok")
    (row,) = [
        r
        for r in browser.find_elements(By.CSS_SELECTOR, "table.invoices tr[data-number]")
        if LEA in r.text
    ]
    number = row.get_attribute("data-number")
    assert number and re.fullmatch(rf"F{month_start.year}-\d{{6}}", number), number
    assert row.get_attribute("data-status") == "unpaid"
    assert euros(ttc) in norm(row.text)
    screenshot(browser, "fabmanager-invoices")

    # -- 6. the invoice's PDF, as the link on the invoices page serves it -----------------
    pdf_link = row.find_element(By.CSS_SELECTOR, "a[href$='.pdf']")
    pdf_path = urlparse(pdf_link.get_attribute("href") or "").path
    assert pdf_path == f"/api/v1/invoices/{number}.pdf"
    got = fetch(browser, pdf_path)
    assert (got["status"], got["type"]) == (200, "application/pdf"), got.get("error")
    pdf = base64.b64decode(got["body"])
    assert pdf.startswith(b"%PDF-")
    text = norm(" ".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(pdf)).pages))
    assert LEA in text and number in text and euros(ttc) in text, text[:2000]
    board_tests.ARTIFACTS.mkdir(exist_ok=True)
    (board_tests.ARTIFACTS / "fabmanager-invoice.pdf").write_bytes(pdf)

    # The accountant records Léa's card payment on the invoice's page: it is paid.
    go(
        browser,
        row.find_element(By.CSS_SELECTOR, f"a[href^='/invoices/{number}']"),
        "#payment-form",
    )
    form = find(browser, "#payment-form")
    assert (
        norm(form.find_element(By.NAME, "amount").get_attribute("value") or "") == euros(ttc)[:-2]
    )
    Select(form.find_element(By.NAME, "means")).select_by_value("card")
    form.find_element(By.NAME, "reference").send_keys("TPE 0042")
    go(browser, form.find_element(By.CSS_SELECTOR, "button[type=submit]"), "#status .status-paid")
    assert euros(ttc) in norm(find(browser, "#payments table").text)
    screenshot(browser, "fabmanager-invoice-paid")

    # ... and a prepaid top-up at the desk, on the credit page.
    follow(browser, "nav.site-nav a[href='/admin/']", "ul.admin-links")
    follow(browser, "ul.admin-links a[href^='/admin/credit']", "#credit-form")
    pick_member(browser, "#credit-form #member_id", "Léa F")
    type_into(browser, "#credit-form #amount", "20")
    type_into(browser, "#credit-form #note", "Carte prépayée")
    balance = go(
        browser,
        find(browser, "#credit-form button[type=submit]"),
        f"#balances tr[data-member='{lea_id}']",
    )
    assert norm(balance.text).endswith(euros(TOP_UP_CENTS))

    # -- 7. Léa on Mon espace: her session's amount, her paid invoice, her balance --------
    log_in(browser, site, LEA_EMAIL, "/me", password=LEA_PASSWORD)
    assert norm(find(browser, "#credit-balance").text) == euros(TOP_UP_CENTS)
    invoice = find(browser, f"#invoices tr[data-number='{number}']")
    assert euros(ttc) in norm(invoice.text)
    own_pdf = invoice.find_element(By.CSS_SELECTOR, "a[href$='.pdf']").get_attribute("href") or ""
    assert fetch(browser, urlparse(own_pdf).path)["status"] == 200
    session = find(browser, f"#sessions tr[data-session='{session_id}']")
    assert norm(session.find_element(By.CSS_SELECTOR, "td.amount").text) == euros(ht)
    screenshot(browser, "fabmanager-me-lea")
    # Not staff: the invoices page is not hers.
    assert fetch(browser, "/invoices")["status"] == 403
