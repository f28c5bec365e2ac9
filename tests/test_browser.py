"""The hub's board page in a real browser: Debian's chromium driven by Selenium.

A real Mosquitto, the hub and a node run as processes (see ``tests/support/harness.py``); a badge
tapped on the node must show up on the open board page without a reload, because the
page swaps in ``/fragments/board`` by itself. Only the system browser and its matching
driver are used, given by path, so Selenium never downloads anything. When they are
missing the tests fail (a skipped browser test would read as green in CI) and say how to
install them.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.common.exceptions import JavascriptException, TimeoutException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from gateway.drivers.readers.simulated import send_tap
from tests.conftest import README_TEST_COMMAND
from tests.support.harness import BADGE, Observer, Site

pytestmark = pytest.mark.integration

# Debian's packages `chromium` and `chromium-driver` (same version, both from apt).
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM_ARGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--window-size=1280,1000",
)
# Neither French nor English: the page must fall back to the site's language (French).
BROWSER_LANGUAGES = "de-DE,de"

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
# The page refreshes its board every 5 s; a state change also has to travel node -> MQTT
# -> hub -> SQLite first.
BOARD_TIMEOUT_S = 20.0

MACHINE_IDS = ("laser-1", "cnc-1", "printer-1", "embroidery-1")

# What the page shows, as the French catalogue says it. Literal on purpose: the test checks
# the words a member reads, not that the catalogue agrees with itself.
FR = {
    "title": "Machines de l'atelier",
    "free": "Libre",
    "in_use": "Utilisée",
    "offline": "Hors ligne",
    "recent_sessions": "Dernières sessions",
    "open": "en cours",
}
EN = {
    "title": "Workshop machines",
    "free": "Free",
    "in_use": "In use",
    "offline": "Offline",
    "recent_sessions": "Recent sessions",
    "open": "in progress",
}

# The board as the browser renders it, read in one script so a fragment swapped in
# between two reads cannot mix two versions of the board.
READ_BOARD_JS = """
const text = (el) => (el ? el.innerText.replace(/\\s+/g, " ").trim() : "");
return {
  lang: document.documentElement.lang,
  title: text(document.querySelector("h1")),
  machines: Array.from(document.querySelectorAll("li.machine")).map((li) => ({
    name: text(li.querySelector(".name")),
    state: text(li.querySelector(".state")),
    who: text(li.querySelector(".who")),
  })),
  sessions: Array.from(document.querySelectorAll("table.sessions tbody tr")).map(
    (tr) => Array.from(tr.cells).map(text)),
  body: text(document.body),
};
"""

Board = dict[str, Any]


# --- fixtures --------------------------------------------------------------------------


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    missing = [
        f"{path} (Debian package {package})"
        for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver"))
        if not os.access(path, os.X_OK)
    ]
    if missing:
        pytest.fail(
            f"the browser tests need {' and '.join(missing)}; run the README test command "
            f"`{README_TEST_COMMAND}`, which installs them",
            pytrace=False,
        )
    options = Options()
    options.binary_location = str(CHROMIUM)
    for arg in CHROMIUM_ARGS:
        options.add_argument(arg)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    options.add_experimental_option("prefs", {"intl.accept_languages": BROWSER_LANGUAGES})
    # A driver path given to the Service means Selenium Manager is never consulted.
    service = Service(
        executable_path=str(CHROMEDRIVER), log_output=str(tmp_path / "chromedriver.log")
    )
    driver = webdriver.Chrome(service=service, options=options)
    try:
        driver.set_page_load_timeout(30)
        yield driver
    finally:
        driver.quit()


# --- helpers ---------------------------------------------------------------------------


def read_board(driver: WebDriver) -> Board:
    board: Board = driver.execute_script(READ_BOARD_JS)
    return board


def machine(board: Board, machine_id: str) -> dict[str, str]:
    (found,) = [m for m in board["machines"] if f"({machine_id})" in m["name"]]
    return found


def wait_board(
    driver: WebDriver,
    what: str,
    predicate: Callable[[Board], bool],
    timeout: float = BOARD_TIMEOUT_S,
) -> Board:
    """Wait until the board in the page satisfies ``predicate``; the page is never
    reloaded here, so only the page's own refresh can make it true."""
    last: list[Board] = []

    def check(d: WebDriver) -> Board | bool:
        board = read_board(d)
        last[:] = [board]
        return board if predicate(board) else False

    try:
        result: Board = WebDriverWait(
            driver, timeout, poll_frequency=0.2, ignored_exceptions=(JavascriptException,)
        ).until(check)
    except TimeoutException:
        seen = last[0] if last else {}
        raise AssertionError(
            f"timed out after {timeout} s waiting for the board to show "
            f"{what}; it shows machines {seen.get('machines')} and "
            f"sessions {seen.get('sessions')}"
        ) from None
    return result


def screenshot(driver: WebDriver, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    assert driver.save_screenshot(str(path)), f"could not save {path}"
    return path


def ready(observer: Observer, node: str) -> None:
    """The node is up and holds a signed snapshot, so a tap will be decided."""
    observer.wait_for(
        lambda: (observer.status.get(node) or {}).get("snapshot_version"),
        what=f"{node} online with a snapshot",
    )


def is_free(machine_id: str) -> Callable[[Board], bool]:
    return lambda b: machine(b, machine_id)["state"] == FR["free"]


# --- tests -----------------------------------------------------------------------------


def test_board_follows_a_session_live_without_reloading(
    site: Site, observer: Observer, browser: WebDriver
) -> None:
    site.start_hub()
    site.start_node("laser-1")
    ready(observer, "laser-1")

    browser.get(site.hub_url)
    board = wait_board(browser, "laser-1 free", is_free("laser-1"))
    assert board["lang"] == "fr"
    assert board["title"].startswith(FR["title"])
    assert len(board["machines"]) == 4, board["machines"]
    for machine_id in MACHINE_IDS:
        machine(board, machine_id)
    assert machine(board, "laser-1")["who"] == ""
    # Only laser-1 has a node running; the board must not call the others free.
    for machine_id in MACHINE_IDS[1:]:
        assert machine(board, machine_id)["state"] == FR["offline"]
    assert not any("Alice Martin" in cell for row in board["sessions"] for cell in row)
    screenshot(browser, "board-fr-laser-1-free")

    # Anything the page keeps in `window` disappears if the page is reloaded.
    marker = secrets.token_hex(8)
    browser.execute_script("window.__fabgateMarker = arguments[0];", marker)

    send_tap(site.tap_socket("laser-1"), BADGE["alice"])
    board = wait_board(
        browser,
        "laser-1 in use by Alice",
        lambda b: (
            machine(b, "laser-1")["state"] == FR["in_use"]
            and "Alice" in machine(b, "laser-1")["who"]
            and any(row[1] == "Alice" and FR["open"] in row[4] for row in b["sessions"])
        ),
    )
    # The demo's board shows first names only (web.board_names: first_name).
    assert re.fullmatch(r"par Alice depuis \d\d:\d\d", machine(board, "laser-1")["who"])
    assert "Martin" not in board["body"]
    assert browser.execute_script("return window.__fabgateMarker;") == marker, (
        "the page was reloaded; the board must update itself in place"
    )
    screenshot(browser, "board-fr-laser-1-in-use-alice")

    send_tap(site.tap_socket("laser-1"), BADGE["alice"])

    def session_closed(b: Board) -> bool:
        return any(
            row[0].endswith("(laser-1)")
            and row[1] == "Alice"
            and row[4]
            and FR["open"] not in row[4]
            and row[6] == "1"
            for row in b["sessions"]
        )

    board = wait_board(
        browser,
        "laser-1 free again and Alice's session closed",
        lambda b: is_free("laser-1")(b) and session_closed(b),
    )
    assert machine(board, "laser-1")["who"] == ""
    (row,) = [r for r in board["sessions"] if r[1] == "Alice"]
    assert row[2] == "Lampe en contreplaqué"  # the project name, not its id
    assert re.fullmatch(r"0:00:\d\d", row[5]), row
    assert browser.execute_script("return window.__fabgateMarker;") == marker, (
        "the page was reloaded; the board must update itself in place"
    )
    screenshot(browser, "board-fr-laser-1-free-after-session")


def test_board_is_french_by_default_and_english_on_request(
    site: Site, observer: Observer, browser: WebDriver
) -> None:
    site.start_hub()
    site.start_node("laser-1")
    ready(observer, "laser-1")

    # The browser asks for German, which the site does not have: French, the site's own.
    browser.get(site.hub_url)
    board = wait_board(browser, "laser-1 free (in French)", is_free("laser-1"))
    assert board["lang"] == "fr"
    assert board["title"].startswith(FR["title"])
    assert FR["recent_sessions"] in board["body"]
    assert EN["title"] not in board["body"]

    browser.get(site.hub_url + "?lang=en")
    board = wait_board(
        browser, "laser-1 free (in English)", lambda b: machine(b, "laser-1")["state"] == EN["free"]
    )
    assert board["lang"] == "en"
    assert board["title"].startswith(EN["title"])
    assert EN["recent_sessions"] in board["body"]
    assert machine(board, "cnc-1")["state"] == EN["offline"]
    assert FR["title"] not in board["body"]

    # The page's own refresh keeps the language: an English board stays English.
    browser.execute_script("window.__fabgateMarker = 1;")
    send_tap(site.tap_socket("laser-1"), BADGE["alice"])
    board = wait_board(
        browser,
        "laser-1 in use (in English)",
        lambda b: machine(b, "laser-1")["state"] == EN["in_use"],
    )
    assert re.fullmatch(r"by Alice since \d\d:\d\d", machine(board, "laser-1")["who"])
    assert EN["open"] in board["body"]
    assert browser.execute_script("return window.__fabgateMarker;") == 1
    screenshot(browser, "board-en-laser-1-in-use-alice")
