"""Certifying a member from the page alone, end to end, in Debian's chromium.

A fabmanager logs in, certifies Bruno on the laser with the form, Bruno taps his badge
on the simulated laser node and the node - which only knows what the hub's signed
snapshot tells it - opens a session that the live board shows. Then a plain member tries
the certify page and is refused. Waits are on the page (WebDriverWait) and on MQTT
(``Observer``); the screenshots land in ``test-artifacts/people-*.png``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select, WebDriverWait

from gateway.drivers.readers.simulated import send_tap
from gateway.hub import accounts
from gateway.hub.db import HubStore
from tests import test_browser as board_tests
from tests.support.harness import BADGE, Observer, Site
from tests.test_browser import FR, machine, ready, screenshot, wait_board

pytestmark = pytest.mark.integration

# The board test's chromium; `site` and `observer` come from conftest.py.
browser = board_tests.browser

PASSWORD = "une phrase de passe assez longue"
PAGE_TIMEOUT_S = 15.0


def add_account(at: Site, member_id: str, email: str, role: str | None = None) -> None:
    """Straight into the hub's database, as ``fabgate account create`` would."""
    with HubStore(Path(at.files.data) / "hub.db") as store:
        accounts.create_account(store, member_id, email, actor="test", password=PASSWORD)
        if role is not None:
            accounts.grant_role(store, member_id, role, None, actor="test")


def log_in(driver: WebDriver, at: Site, email: str, then: str, password: str = PASSWORD) -> None:
    driver.delete_all_cookies()
    driver.get(f"{at.hub_url}login?next={then}")
    wait = WebDriverWait(driver, PAGE_TIMEOUT_S)
    wait.until(ec.presence_of_element_located((By.NAME, "email"))).send_keys(email)
    field = driver.find_element(By.NAME, "password")
    field.send_keys(password)
    field.submit()
    wait.until(lambda d: "/login" not in d.current_url)


def enrol_badge(at: Site, observer: Observer, uid: str) -> None:
    """Tap an unknown badge until the node sends it for enrolment: the node learns of the
    request from a retained message that may reach it just after the observer's copy, and
    a tap before that is refused as an unknown badge (an event we can wait for)."""

    def taps() -> int:
        return sum(1 for e in observer.events if e.type == "tap" and e.data.get("uid") == uid)

    for _ in range(5):
        before = taps()
        send_tap(at.tap_socket("laser-1"), uid)
        observer.wait_for(
            lambda before=before: observer.event("badge.enrolled", uid=uid) or taps() > before,
            what=f"the node to enrol or refuse {uid}",
        )
        if observer.event("badge.enrolled", uid=uid):
            return
    raise AssertionError(f"{uid} was never sent for enrolment")


def http_status(driver: WebDriver, path: str) -> int:
    """The status the browser gets for ``path`` with its own cookie (Selenium cannot
    read a page's status code)."""
    status: int = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch(arguments[0], {credentials: 'same-origin'}).then((r) => done(r.status));",
        path,
    )
    return status


def test_a_fabmanager_certifies_bruno_on_the_laser_and_he_can_use_it(
    site: Site, observer: Observer, browser: WebDriver
) -> None:
    site.start_hub()
    site.start_node("laser-1")
    ready(observer, "laser-1")
    add_account(site, "m-karim", "karim@fablab.example", "fabmanager")
    add_account(site, "m-alice", "alice@fablab.example")
    browser.set_script_timeout(PAGE_TIMEOUT_S)
    wait = WebDriverWait(browser, PAGE_TIMEOUT_S)

    # Without the certification the laser refuses Bruno (he is only certified on the CNC).
    send_tap(site.tap_socket("laser-1"), BADGE["bruno"])
    denied = observer.wait_event("tap", member_id="m-bruno")
    assert denied.data["action"] == "deny" and denied.data["reason"] == "not_certified"

    log_in(browser, site, "karim@fablab.example", "/members")
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "tr.member")))
    names = [a.text for a in browser.find_elements(By.CSS_SELECTOR, "tr.member td a")]
    assert "Bruno Lefèvre" in names
    screenshot(browser, "people-members")

    browser.find_element(By.LINK_TEXT, "Bruno Lefèvre").click()
    wait.until(ec.presence_of_element_located((By.ID, "certifications")))
    screenshot(browser, "people-member-bruno-before")
    browser.find_element(By.LINK_TEXT, "Habiliter ce membre").click()

    member = wait.until(ec.presence_of_element_located((By.ID, "member_id")))
    assert member.get_attribute("value") == "Bruno Lefèvre (m-bruno)"  # came from his page
    assert "Choisissez le membre" in browser.find_element(By.CSS_SELECTOR, ".help.lead").text
    Select(browser.find_element(By.ID, "group_id")).select_by_visible_text("Découpe laser")
    validity = browser.find_element(By.ID, "validity_months")
    assert validity.get_attribute("value") == "24"  # the group's default, filled in
    browser.find_element(By.CSS_SELECTOR, "label[for=level-2]").click()
    browser.find_element(By.ID, "note").send_keys("Formation découpe du samedi")
    screenshot(browser, "people-certify-form")
    version_before = observer.status["laser-1"]["snapshot_version"]
    browser.find_element(By.ID, "certify-submit").click()

    done = wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, ".message-ok")))
    assert "Bruno Lefèvre est habilité(e) niveau 2 sur « Découpe laser »" in done.text
    row = browser.find_element(By.CSS_SELECTOR, "tr.cert-live[data-group=laser]")
    assert "2 · autonome" in row.text and "Karim Benali" in row.text
    screenshot(browser, "people-member-bruno-certified")

    # Enrol a second badge for Bruno: the page follows the request without reloading.
    browser.execute_script("window.__fabgateMarker = 'enrolment';")
    browser.find_element(By.ID, "enrol").click()
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "[data-status=pending]")))
    assert "En attente d'un badge" in browser.find_element(By.ID, "enrolment").text
    screenshot(browser, "people-enrolment-waiting")
    browser.execute_script("window.__fabgateMarker = 'enrolment';")
    enrol_badge(site, observer, BADGE["stranger"])
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "[data-status=attached]")))
    assert f"Badge {BADGE['stranger']} rattaché" in browser.find_element(By.ID, "enrolment").text
    assert browser.execute_script("return window.__fabgateMarker;") == "enrolment"
    screenshot(browser, "people-enrolment-attached")

    # The hub republishes; once the node holds the new snapshot, Bruno's tap opens it.
    observer.wait_for(
        lambda: observer.status["laser-1"].get("snapshot_version", 0) > version_before,
        what="laser-1 holding a newer snapshot",
    )
    send_tap(site.tap_socket("laser-1"), BADGE["bruno"])
    started = observer.wait_event("session.started", member_id="m-bruno")
    assert started.data["machine"] == "laser-1"

    browser.get(site.hub_url)
    board = wait_board(
        browser,
        "laser-1 in use by Bruno",
        lambda b: (
            machine(b, "laser-1")["state"] == FR["in_use"]
            and "Bruno" in machine(b, "laser-1")["who"]
        ),
    )
    assert machine(board, "laser-1")["who"].startswith("par Bruno depuis ")  # first names
    nav = browser.find_element(By.CSS_SELECTOR, "header nav.site-nav").text
    assert "Habiliter" in nav and "Membres" in nav
    screenshot(browser, "people-board-bruno-on-laser")

    # A plain member: their own page, and a refusal on the certify page.
    log_in(browser, site, "alice@fablab.example", "/me")
    wait.until(ec.presence_of_element_located((By.ID, "minutes-month")))
    assert "Bonjour Alice Martin" in browser.find_element(By.TAG_NAME, "main").text
    assert "Habiliter" not in browser.find_element(By.CSS_SELECTOR, "header").text
    screenshot(browser, "people-me-alice")
    assert http_status(browser, "/certify") == 403
    browser.get(site.hub_url + "certify")
    wait.until(ec.presence_of_element_located((By.TAG_NAME, "body")))
    assert not browser.find_elements(By.ID, "certify-submit")
    screenshot(browser, "people-certify-forbidden")
