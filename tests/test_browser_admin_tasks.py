"""The fabmanager's other daily tasks on the real pages, each checked where it acts.

The site of ``tests/test_browser_fabmanager.py`` (a real Mosquitto, a hub process and the
laser's node process, the simulated reader fed through its tap socket), its helpers and
its moved clock: hub and node run on the 14th of the month after the test's own today,
at 10:00 (Paris), so that "today" and "now" are days and hours the test knows, and in
the future for Chromium's cookies (see that module's docstring). Karim, fabmanager and
admin as in the demo, does through the pages only:

1. suspends Alice: the node refuses her tap (``suspended``); reinstated, it lets her in;
2. moves Alice from *adhérent* to *scolaire* and has her paid for by a school created on
   the organisations page: the node's snapshot carries her new category, the school's
   page lists her among the members it pays for;
3. puts the laser out of service with a reason: the node refuses taps
   (``out_of_service``), the public board shows the reason; back in service;
4. sets the laser's idle timeout on the machine page: the node holds it in its next
   snapshot;
5. sets today's opening hours and then a closure for today. In the access policy
   (``gateway/policies/access.py``, ``presence.py``) hours refuse nobody by themselves:
   they bound how long a staff check-in lasts, hence supervised (level 1) use. So the
   check is what a staff badge at the node does: inside today's slot, Karim's check-in
   ends when the slot closes; with today closed, it lasts until midnight;
6. gives Bruno a log-in, then the trainer role: without it the certify page is not his,
   with it he logs in and gets the certify form.

Only Karim's own log-in is written directly (as ``fabgate user add`` would). Elements are
found by ids, names, data attributes and URLs; visible text is checked only for names
and reasons. Waits are on the page (WebDriverWait) and on MQTT (``Observer``).
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

import pytest
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from gateway.core.clock import parse_iso
from gateway.hub import accounts
from gateway.hub.db import HubStore
from tests import test_browser as board_tests
from tests.support.harness import BADGE, Observer, Site
from tests.support.wallclock import clock_at
from tests.test_browser import ready, screenshot
from tests.test_browser_fabmanager import (
    KARIM,
    NODE,
    TZ,
    find,
    first_of_next_month,
    follow,
    go,
    node_holds,
    norm,
    pick_member,
    set_date,
    tap,
    type_into,
    waiter,
)
from tests.test_browser_people import add_account, http_status, log_in

pytestmark = pytest.mark.integration

browser = board_tests.browser

ALICE = "m-alice"  # an autonomous (level 2) laser user in the demo data, adhérente
BRUNO = "m-bruno"  # a member with no log-in in the demo data
BRUNO_EMAIL = "bruno.lefevre@fablab.example"
BRUNO_PASSWORD = "le mot de passe de Bruno"
SCHOOL = "college-jean-moulin"
SCHOOL_NAME = "Collège Jean Moulin"
OOS_REASON = "Tube laser en remplacement"


def to_admin(driver: WebDriver, link_css: str, then: str) -> None:
    """From any page, through the site's menu to the administration, then one of its links."""
    follow(driver, "nav.site-nav a[href='/admin/']", "ul.admin-links")
    follow(driver, f"ul.admin-links {link_css}", then)


def edit_alice(driver: WebDriver) -> None:
    """Alice's edit page, reached as a fabmanager does: members list, her page, Edit."""
    to_admin(driver, "a[href^='/members']", f"tr[data-member='{ALICE}']")
    follow(driver, f"tr[data-member='{ALICE}'] a[href^='/members/{ALICE}']", "#edit-member")
    follow(driver, "#edit-member", "#member-form")


def presence_change(observer: Observer, before: int) -> dict[str, object]:
    """The first staff check-in or check-out the node reported after ``before`` of them."""

    def changes() -> list[dict[str, object]]:
        return [e.data for e in observer.events if e.type == "staff.presence"]

    observer.wait_for(lambda: len(changes()) > before, what="Karim's staff presence change")
    return changes()[before]


def presences(observer: Observer) -> int:
    return sum(1 for e in observer.events if e.type == "staff.presence")


def karim_in_and_out(site: Site, observer: Observer) -> datetime:
    """Karim badges in at the laser (a staff member starting a machine checks in) and out
    again (checks out); returns when the node said his check-in would end."""
    before = presences(observer)
    started = tap(site, observer, BADGE["karim"])
    assert (started["action"], started["reason"]) == ("start", "allowed"), started
    checked_in = presence_change(observer, before)
    assert checked_in["present"] is True and checked_in["until"], checked_in
    ended = tap(site, observer, BADGE["karim"])
    assert ended["action"] == "end", ended
    assert presence_change(observer, before + 1)["present"] is False
    return parse_iso(str(checked_in["until"]))


def test_a_fabmanagers_other_daily_tasks(
    site: Site, observer: Observer, browser: WebDriver
) -> None:
    month_start = first_of_next_month(datetime.now(TZ).date())
    working_day = datetime(month_start.year, month_start.month, 14, 10, 0, tzinfo=TZ)
    today = working_day.date()
    on_the_14th = clock_at(working_day)
    site.start_hub(env=on_the_14th)
    site.start_node(NODE, env=on_the_14th)
    ready(observer, NODE)
    add_account(site, "m-karim", KARIM, "fabmanager")
    with HubStore(site.files.data / "hub.db") as store:
        accounts.grant_role(store, "m-karim", "admin", None, actor="test")
    log_in(browser, site, KARIM, "/admin/")
    alice_badge = BADGE["alice"]

    # -- 1. Alice suspended, then reinstated --------------------------------------------
    edit_alice(browser)
    go(browser, find(browser, "#suspend"), "#reinstate")
    node_holds(observer, site, "Alice suspended", lambda s: s.members[ALICE].status == "suspended")
    refused = tap(site, observer, alice_badge)
    assert (refused["action"], refused["reason"], refused["member_id"]) == (
        "deny",
        "suspended",
        ALICE,
    )
    go(browser, find(browser, "#reinstate"), "#suspend")
    node_holds(observer, site, "Alice reinstated", lambda s: s.members[ALICE].status == "active")
    allowed = tap(site, observer, alice_badge)
    assert (allowed["action"], allowed["reason"]) == ("start", "allowed"), allowed
    assert tap(site, observer, alice_badge)["action"] == "end"

    # -- 2. Alice a pupil, paid for by her school ---------------------------------------
    to_admin(browser, "a[href^='/admin/organisations']", "#organisations")
    type_into(browser, "form.certify #id", SCHOOL)
    type_into(browser, "form.certify #name", SCHOOL_NAME)
    Select(find(browser, "form.certify #kind")).select_by_value("school")
    type_into(browser, "form.certify #city", "Grenoble")
    go(browser, find(browser, "form.certify button[type=submit]"), "#paid-members")
    # Created, and on its own page: Alice attached to it, with the page's member picker.
    pick_member(browser, "#attach-member", "alice m")
    go(
        browser,
        find(browser, "#paid-members form:not(.inline) button[type=submit]"),
        f"#paid-members li[data-member='{ALICE}']",
    )
    assert "Alice" in find(browser, f"#paid-members li[data-member='{ALICE}']").text
    edit_alice(browser)
    assert Select(find(browser, "#paid_by")).first_selected_option.get_attribute("value") == (
        SCHOOL
    )
    category = Select(find(browser, "#category"))
    assert category.first_selected_option.get_attribute("value") == "adherent"
    category.select_by_value("scolaire")
    go(browser, find(browser, "#member-save"), ".message-ok")
    node_holds(
        observer, site, "Alice as a pupil", lambda s: s.members[ALICE].category == "scolaire"
    )

    # -- 3. the laser out of service, with a reason; back in service --------------------
    to_admin(browser, "a[href^='/admin/machines']", f"#machines tr[data-machine='{NODE}']")
    follow(browser, f"tr[data-machine='{NODE}'] a[href^='/admin/machines/{NODE}']", "#rules-form")
    type_into(browser, "form.service input[name=out_of_service_reason]", OOS_REASON)
    go(browser, find(browser, f"#out-{NODE}"), f"#back-{NODE}")
    node_holds(
        observer,
        site,
        "the laser out of service",
        lambda s: s.machine.out_of_service and s.machine.out_of_service_reason == OOS_REASON,
    )
    refused = tap(site, observer, alice_badge)
    assert (refused["action"], refused["reason"]) == ("deny", "out_of_service"), refused
    machine_page = browser.current_url
    browser.get(site.hub_url)

    def laser_reason(d: WebDriver) -> str | bool:
        shown = [
            li.find_element(By.CSS_SELECTOR, ".oos-reason").text
            for li in d.find_elements(By.CSS_SELECTOR, "li.machine.state-out_of_service")
            if f"({NODE})" in li.find_element(By.CSS_SELECTOR, ".name").text
        ]
        return shown[0] if shown else False

    assert norm(waiter(browser).until(laser_reason)) == OOS_REASON
    screenshot(browser, "admin-tasks-board-out-of-service")
    browser.get(machine_page)
    go(browser, find(browser, f"#back-{NODE}"), f"#out-{NODE}")
    node_holds(observer, site, "the laser in service", lambda s: not s.machine.out_of_service)

    # -- 4. the laser's idle timeout, set on its page ------------------------------------
    type_into(browser, "#rule_idle_timeout", "7m")
    go(browser, find(browser, "#rules-save"), "#rules-form")
    assert not browser.find_elements(By.CSS_SELECTOR, "#rules-error")
    node_holds(
        observer, site, "a 7-minute idle timeout", lambda s: s.machine.session.idle_timeout_s == 420
    )

    # -- 5. today's opening hours, then a closure for today ------------------------------
    weekday = today.weekday()
    to_admin(browser, "a[href^='/admin/hours']", "#hours-form")
    type_into(browser, f"#hours-form #day{weekday}", "09:00-10:30")
    go(browser, find(browser, "#hours-form button[type=submit]"), "#closure-form")
    slot = ((time(9, 0), time(10, 30)),)
    node_holds(
        observer, site, "today's 09:00-10:30", lambda s: s.opening_hours.get(weekday) == slot
    )
    slot_end = datetime.combine(today, time(10, 30), TZ)
    assert karim_in_and_out(site, observer) == slot_end

    set_date(browser, "#closure-form #first_day", today.isoformat())
    type_into(browser, "#closure-form #label", "Inventaire")
    go(browser, find(browser, "#closure-form button[type=submit]"), "#closures form")
    assert "Inventaire" in find(browser, "#closures").text
    node_holds(observer, site, "today closed", lambda s: not s.opening_hours.get(weekday))
    midnight = datetime.combine(today + timedelta(days=1), time(0), TZ)
    assert karim_in_and_out(site, observer) == midnight

    # -- 6. Bruno's log-in, then the trainer role -----------------------------------------
    to_admin(browser, "a[href^='/admin/accounts']", "#account-new")
    pick_member(browser, "#account-new #member_id", "lefèvre")
    type_into(browser, "#account-new #email", BRUNO_EMAIL)
    type_into(browser, "#account-new #password", BRUNO_PASSWORD)
    go(browser, find(browser, "#account-new button[type=submit]"), f"tr[data-account='{BRUNO}']")
    log_in(browser, site, BRUNO_EMAIL, "/me", password=BRUNO_PASSWORD)
    assert http_status(browser, "/certify") == 403  # a plain member's log-in

    log_in(browser, site, KARIM, "/admin/accounts")
    row = f"tr[data-account='{BRUNO}']"
    Select(find(browser, f"{row} select[name=role]")).select_by_value("trainer")
    Select(find(browser, f"{row} select[name=group_id]")).select_by_value("cnc")
    go(browser, find(browser, f"{row} select[name=group_id] ~ button"), f"{row} .role")
    assert [r.text for r in browser.find_elements(By.CSS_SELECTOR, f"{row} .role")] == [
        "trainer:cnc"
    ]
    log_in(browser, site, BRUNO_EMAIL, "/me", password=BRUNO_PASSWORD)
    follow(browser, "nav.site-nav a[href='/certify']", "#certify-submit")
    screenshot(browser, "admin-tasks-bruno-certify")
