"""The activity report: figures against a hand-made dataset, CSV, HTTP and a browser.

The small dataset is written so that every expected number can be worked out on paper:
a lab open on Tuesdays only, 10:00-12:00 and 14:00-18:00 Paris time, reported over
March and April 2026 (the clocks change on 29 March, between two Tuesdays).
"""

from __future__ import annotations

import base64
import csv
import io
import re
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.support.wait import WebDriverWait
from werkzeug.serving import make_server

from gateway.config import (
    ApiToken,
    GroupConfig,
    HubConfig,
    MachineConfig,
    Seed,
    SeedMember,
)
from gateway.core.clock import iso
from gateway.core.snapshot import parse_opening_hours
from gateway.demo.site import OPENING_HOURS
from gateway.demo.year import generate_year
from gateway.hub import accounts
from gateway.hub.catalogue import sync_catalogue
from gateway.hub.certifications import add_certification
from gateway.hub.db import HubStore
from gateway.hub.report import Report, activity_report, opening_spans, report_csv
from gateway.hub.seed import import_seed
from gateway.hub.sessions import totals
from gateway.web import create_app
from tests import test_browser as board_tests
from tests.support import builders

browser = board_tests.browser  # the board tests' chromium, as a fixture here too
TZ = "Europe/Paris"
PARIS = ZoneInfo(TZ)
HOURS = parse_opening_hours({"tue": ["10:00-12:00", "14:00-18:00"]})
START, END = date(2026, 3, 1), date(2026, 5, 1)
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
# The report is for staff: HTTP tests present a token with the `report` scope, the
# browser logs in as a fabmanager.
REPORT_TOKEN = "report-token-0123456789abcdef"
STAFF_EMAIL, STAFF_PASSWORD = "fabmanager@example.org", "a long enough passphrase"


def local(y: int, mo: int, d: int, h: int, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=PARIS)


def add_session(
    store: HubStore,
    sid: str,
    member: str | None,
    machine: str,
    start: datetime,
    minutes: float,
    *,
    project: str | None = None,
    status: str = "closed",
) -> None:
    end = start + timedelta(minutes=minutes)
    store.conn.execute(
        "INSERT INTO sessions (session_id, node, machine_id, member_id, project_id, "
        "started_at, ended_at, duration_s, billable_minutes, end_reason, status, "
        "first_event_at, busy_s, busy_minutes, idle_minutes, jobs) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'badge_out', ?, ?, ?, ?, 0, 1)",
        (
            sid,
            machine,
            machine,
            member,
            project,
            iso(start),
            iso(end) if status == "closed" else None,
            minutes * 60 if status == "closed" else None,
            int(minutes),
            status,
            iso(start),
            minutes * 30,
            int(minutes / 2),
        ),
    )


def build_small(db: Path) -> None:
    with HubStore(db) as store:
        sync_catalogue(
            store,
            [GroupConfig("laser", "Découpe laser"), GroupConfig("cnc", "Fraisage")],
            [
                MachineConfig("laser1", "Laser", "laser", "laser"),
                MachineConfig("cnc1", "CNC", "cnc", "cnc"),
            ],
        )
        import_seed(
            store,
            Seed(
                file=db.with_suffix(".yaml"),
                members=(
                    SeedMember("a1", "Alice", "adherent"),
                    SeedMember("a2", "Ahmed", "adherent"),
                    SeedMember("g1", "Gaëlle", "grand_public"),
                    SeedMember("s1", "Collège", "scolaire"),
                ),
            ),
        )
        store.conn.execute(
            "INSERT INTO projects (id, member_id, name) VALUES "
            "('p1', 'a1', 'Lampe, \"la grande\"'), ('p2', 'a2', 'Boîte')"
        )
        with store.atomic():
            # March (UTC+1). Inside opening hours: 60 + 30 + (30 + 30) = 150 minutes.
            add_session(store, "S1", "a1", "laser1", local(2026, 3, 3, 10, 30), 60, project="p1")
            # 17:30-18:45 crosses closing time: 30 minutes inside, 75 of use.
            add_session(store, "S2", "a1", "laser1", local(2026, 3, 10, 17, 30), 75, project="p1")
            # 11:30-14:30 spans the lunch closure: 30 + 30 inside.
            add_session(store, "S3", "a2", "laser1", local(2026, 3, 10, 11, 30), 180, project="p2")
            # A Sunday: used, but never inside opening hours.
            add_session(store, "S4", "g1", "cnc1", local(2026, 3, 15, 10), 60)
            # Still open: it counts nowhere.
            add_session(store, "S5", "a2", "laser1", local(2026, 3, 17, 10), 30, status="open")
            # April (UTC+2). 09:00-10:15 opens at 10:00: 15 inside; 15:00-16:00: 60 inside.
            add_session(store, "S6", "a1", "laser1", local(2026, 4, 7, 9), 75)
            add_session(store, "S7", "s1", "laser1", local(2026, 4, 14, 15), 60)
            # A member the hub does not know yet.
            add_session(store, "S8", "ghost", "cnc1", local(2026, 4, 21, 10), 30)
            # Before and after the period.
            add_session(store, "S0", "a2", "laser1", local(2026, 2, 24, 10), 60)
            add_session(store, "S9", "a2", "laser1", local(2026, 5, 5, 10), 60)
        for member, group, level, at in (
            ("a1", "laser", 2, local(2026, 3, 5, 18)),
            ("s1", "laser", 1, local(2026, 4, 20, 18)),
            ("a2", "laser", 2, local(2026, 2, 10, 18)),  # before
            ("g1", "cnc", 2, local(2026, 5, 1, 0, 30)),  # 22:30 UTC on 30 April
            ("a1", "cnc", 3, local(2026, 3, 1, 0, 30)),
        ):  # 23:30 UTC on 28 Feb
            add_certification(store, member, group, level, certified_by=None, certified_at=at)
        store.conn.commit()


@pytest.fixture
def small(tmp_path: Path) -> Path:
    db = tmp_path / "hub.sqlite"
    build_small(db)
    return db


def report_of(db: Path) -> Report:
    with HubStore(db) as store:
        return activity_report(store, START, END, TZ, HOURS)


# -- figures ------------------------------------------------------------------------


def test_opening_minutes_follow_local_time_across_the_clock_change(tmp_path: Path) -> None:
    spans = opening_spans(HOURS, TZ, START, END)
    assert len(spans) == 2 * 9  # 5 Tuesdays in March, 4 in April
    assert spans[0] == (datetime(2026, 3, 3, 9, tzinfo=UTC), datetime(2026, 3, 3, 11, tzinfo=UTC))
    assert spans[-1][0] == datetime(2026, 4, 28, 12, tzinfo=UTC)  # 14:00 in summer time
    with HubStore(tmp_path / "empty.sqlite") as store:
        r = activity_report(store, START, END, TZ, HOURS)
    assert [m.opening_minutes for m in r.months] == [5 * 360, 4 * 360]
    assert r.opening_minutes == 3240


def test_slots_that_touch_merge_and_midnight_closes_the_day() -> None:
    hours = parse_opening_hours({"wed": ["20:00-00:00", "18:00-20:30"]})
    spans = opening_spans(hours, TZ, date(2026, 6, 3), date(2026, 6, 4))
    assert spans == [(datetime(2026, 6, 3, 16, tzinfo=UTC), datetime(2026, 6, 3, 22, tzinfo=UTC))]


def test_distinct_members_and_sessions_per_month_and_category(small: Path) -> None:
    r = report_of(small)
    att = r.attendance
    assert [m.key for m in r.months] == ["2026-03", "2026-04"]
    assert (att.cell("2026-03", "adherent").members, att.cell("2026-03", "adherent").sessions) == (
        2,
        3,
    )
    assert (
        att.cell("2026-03", "grand_public").members,
        att.cell("2026-03", "grand_public").sessions,
    ) == (1, 1)
    assert att.cell("2026-03", "scolaire").sessions == 0
    assert (att.cell("2026-04", "adherent").members, att.cell("2026-04", "adherent").sessions) == (
        1,
        1,
    )
    assert att.cell("2026-04", "scolaire").members == 1
    assert att.cell("2026-04", "unknown").members == 1
    # a1 came in both months: once in the period, and the total is not the sum of months.
    assert att.by_category["adherent"].members == 2
    assert att.by_category["adherent"].sessions == 4
    assert (att.by_month["2026-03"].members, att.by_month["2026-04"].members) == (3, 3)
    assert (att.total.members, att.total.sessions) == (5, 7)
    assert r.categories == [
        "grand_public",
        "adherent",
        "professionnel",
        "scolaire",
        "association",
        "unknown",
    ]


def test_occupancy_counts_only_minutes_inside_opening_hours(small: Path) -> None:
    r = report_of(small)
    laser = next(m for m in r.machines if m.machine_id == "laser1")
    cnc = next(m for m in r.machines if m.machine_id == "cnc1")
    assert laser.by_month_minutes == pytest.approx({"2026-03": 150, "2026-04": 75})
    assert laser.in_hours_minutes == pytest.approx(225)
    assert laser.opening_minutes == 3240
    assert laser.occupancy == pytest.approx(225 / 3240)
    assert laser.month_occupancy(r.months[0]) == pytest.approx(150 / 1800)
    # S8 is on a Tuesday (10:00-10:30); S4 on a Sunday counts nothing.
    assert cnc.in_hours_minutes == pytest.approx(30)
    # Hours are whole sessions: 60 + 75 + 180 + 75 + 60 minutes.
    assert laser.hours == pytest.approx(7.5)
    assert laser.sessions == 5 and laser.members == 3


def test_occupancy_counts_a_session_started_before_the_period(tmp_path: Path) -> None:
    db = tmp_path / "hub.sqlite"
    with HubStore(db) as store:
        sync_catalogue(
            store,
            [GroupConfig("laser", "Laser")],
            [MachineConfig("laser1", "Laser", "laser", "laser")],
        )
        # Monday 23:00 to Tuesday 11:00: the period starts on Tuesday 3 March.
        add_session(store, "L", None, "laser1", local(2026, 3, 2, 23), 12 * 60)
        store.conn.commit()
        r = activity_report(store, date(2026, 3, 3), date(2026, 3, 4), TZ, HOURS)
    (laser,) = r.machines
    assert laser.sessions == 0  # it started before the period
    assert laser.in_hours_minutes == pytest.approx(60)
    assert laser.occupancy == pytest.approx(60 / 360)


def test_usage_per_machine_and_category_and_revenue_not_available(small: Path) -> None:
    r = report_of(small)
    assert not r.revenue_available and r.revenue_cents is None
    u = r.usage_for("laser1", "adherent")
    assert u is not None
    assert (u.sessions, u.members, u.hours) == (4, 2, pytest.approx((60 + 75 + 180 + 75) / 60))
    assert u.revenue_cents is None
    assert r.usage_for("cnc1", "unknown").sessions == 1  # type: ignore[union-attr]


def test_revenue_and_new_members_appear_when_the_hub_records_them(small: Path) -> None:
    with HubStore(small) as store:
        store.conn.execute("UPDATE sessions SET amount_cents = 250")
        store.conn.execute(
            "UPDATE members SET joined_at = CASE id WHEN 'a1' THEN '2026-03-01' "
            "WHEN 's1' THEN '2026-04-30T21:59:00.000Z' "
            "WHEN 'g1' THEN '2026-04-30T22:00:00.000Z' ELSE '2025-01-01' END"
        )
        store.conn.commit()
    r = report_of(small)
    assert r.revenue_available and r.revenue_cents == 7 * 250
    assert r.usage_for("laser1", "adherent").revenue_cents == 4 * 250  # type: ignore[union-attr]
    assert r.new_members.available and r.new_members.column == "joined_at"
    # g1 joined at 00:00 on 1 May, Paris time: after the period.
    assert r.new_members.cells == {("2026-03", "adherent"): 1, ("2026-04", "scolaire"): 1}
    assert r.new_members.total == 2


def test_new_members_not_available_without_any_join_date(small: Path) -> None:
    r = report_of(small)
    assert not r.new_members.available and r.new_members.total == 0


def test_certifications_counted_by_local_period_group_and_level(small: Path) -> None:
    r = report_of(small)
    got = {(c.group_id, c.level): c.granted for c in r.certifications}
    assert got == {("cnc", 3): 1, ("laser", 1): 1, ("laser", 2): 1}
    assert r.certifications_granted == 3


def test_usage_per_project(small: Path) -> None:
    r = report_of(small)
    by_id = {p.project_id: p for p in r.projects}
    assert by_id["p1"].sessions == 2 and by_id["p1"].hours == pytest.approx(135 / 60)
    assert by_id["p1"].owner == "Alice"
    assert by_id["p2"].hours == pytest.approx(3)
    assert by_id[None].sessions == 4
    assert [p.project_id for p in r.projects] == [None, "p2", "p1"]  # largest first


def test_csv_is_rfc4180_blocks_that_parse(small: Path) -> None:
    r = report_of(small)
    text = "".join(report_csv(r))
    assert "\r\n" in text and "\n" not in text.replace("\r\n", "")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    blocks: dict[str, list[list[str]]] = {}
    current = None
    for row in rows:
        if row and row[0] == "section":
            current = row[1]
            blocks[current] = []
        elif row and current:
            blocks[current].append(row)
    assert list(blocks) == [
        "report",
        "attendance",
        "occupancy",
        "machine_usage",
        "new_members",
        "certifications",
        "projects",
    ]
    header, *att = blocks["attendance"]
    assert header == ["month", "category", "members", "sessions"]
    assert ["2026-03", "adherent", "2", "3"] in att
    assert ["period", "all", "5", "7"] in att
    occ = {(row[0], row[2]): row for row in blocks["occupancy"][1:]}
    assert occ[("laser1", "period")][3:] == ["225.00", "3240.00", "0.0694"]
    assert blocks["new_members"][1] == ["not available", "", ""]
    assert all(row[-1] == "not available" for row in blocks["machine_usage"][1:])
    projects = {row[0]: row for row in blocks["projects"][1:]}
    assert projects["p1"][1] == 'Lampe, "la grande"'  # quoted, and back intact


# -- HTTP ---------------------------------------------------------------------------


@dataclass
class Server:
    base: str

    def get(self, path: str, lang: str = "fr") -> tuple[int, dict[str, str], str]:
        req = urllib.request.Request(
            self.base + path,
            headers={"Accept-Language": lang, "Authorization": f"Bearer {REPORT_TOKEN}"},
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, dict(resp.headers), resp.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, dict(err.headers), err.read().decode()


def hub_config(db: Path, hours: dict[str, list[str]]) -> HubConfig:
    return builders.hub_config(
        db.parent,
        db,
        timezone=TZ,
        tokens=(ApiToken("report", REPORT_TOKEN),),
        opening_hours=parse_opening_hours(hours),
    )


def serve(db: Path, hours: dict[str, list[str]]) -> Iterator[Server]:
    app = create_app(hub_config(db, hours))
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield Server(f"http://127.0.0.1:{httpd.server_port}")
    finally:
        httpd.shutdown()
        thread.join(timeout=5)


@pytest.fixture
def server(small: Path) -> Iterator[Server]:
    yield from serve(small, {"tue": ["10:00-12:00", "14:00-18:00"]})


PERIOD = "from=2026-03-01&to=2026-05-01"


def test_report_page_in_french_with_charts(server: Server) -> None:
    status, headers, body = server.get(f"/report?{PERIOD}")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert '<html lang="fr">' in body
    assert "Rapport d'activité" in body and "du 1 mars 2026 au 30 avril 2026" in body
    assert body.count("<svg") >= 4 and 'role="img"' in body
    assert "Recettes non disponibles" in body
    assert "6,9\u202f%" not in body and "7\u202f%" in body  # 225 / 3240, rounded
    assert "Lampe, &#34;la grande&#34;" in body or "Lampe, &quot;la grande&quot;" in body
    assert "<script" not in body


def test_report_page_in_english(server: Server) -> None:
    status, _, body = server.get(f"/report?{PERIOD}&lang=en")
    assert status == 200 and '<html lang="en">' in body
    assert "Activity report" in body and "from 1 March 2026 to 30 April 2026" in body
    assert "Revenue not available" in body


def test_report_defaults_to_the_current_calendar_year(server: Server) -> None:
    year = datetime.now(PARIS).year
    _, _, default = server.get("/report.csv")
    _, _, explicit = server.get(f"/report.csv?from={year}-01-01&to={year + 1}-01-01")
    strip = re.compile(r"\d{4}-\d\d-\d\dT[\d:.]+Z")  # the generation time differs
    assert strip.sub("", default) == strip.sub("", explicit)
    assert f"{year}-01-01,{year + 1}-01-01,{TZ}" in default


def test_report_csv_over_http(server: Server) -> None:
    status, headers, body = server.get(f"/report.csv?{PERIOD}")
    assert status == 200 and headers["Content-Type"].startswith("text/csv")
    assert 'filename="activite-2026-03-01-2026-05-01.csv"' in headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(body, newline="")))
    assert ["2026-04", "scolaire", "1", "1"] in rows


@pytest.mark.parametrize(
    "query",
    [
        "from=2026-13-01",
        "from=2026-05-01&to=2026-03-01",
        "from=yesterday",
        "from=2020-01-01&to=2030-01-01",
    ],
)
def test_a_bad_period_is_a_400(server: Server, query: str) -> None:
    for path in ("/report", "/report.csv"):
        status, _, body = server.get(f"{path}?{query}")
        assert status == 400, (path, query)
        assert "Période invalide" in body


# -- a generated year -----------------------------------------------------------------

YEAR = 2025


@pytest.fixture(scope="module")
def year_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("year") / "hub.sqlite"
    generate_year(db, YEAR, seed=7)
    return db


def test_generated_year_is_plausible_and_deterministic(year_db: Path, tmp_path: Path) -> None:
    again = tmp_path / "again.sqlite"
    summary = generate_year(again, YEAR, seed=7)
    assert 13_000 <= summary.sessions <= 17_000
    with HubStore(year_db) as a, HubStore(again) as b:
        assert totals(a) == totals(b)
        r = activity_report(
            a, date(YEAR, 1, 1), date(YEAR + 1, 1, 1), TZ, parse_opening_hours(OPENING_HOURS)
        )
        # Sessions on one machine never overlap.
        overlaps = a.conn.execute(
            "SELECT count(*) FROM sessions x JOIN sessions y ON x.machine_id = y.machine_id "
            "AND x.session_id < y.session_id AND x.started_at < y.ended_at "
            "AND y.started_at < x.ended_at"
        ).fetchone()[0]
    assert overlaps == 0
    assert r.attendance.total.sessions == summary.sessions
    assert all(
        r.attendance.by_category[c].members > 0
        for c in ("grand_public", "adherent", "professionnel", "scolaire", "association")
    )
    assert all(0.2 < (m.occupancy or 0) < 0.9 for m in r.machines)
    assert r.certifications_granted > 100
    # Running it again adds nothing.
    generate_year(again, YEAR, seed=7)
    with HubStore(again) as b:
        assert totals(b)["sessions"] == summary.sessions


# -- browser ------------------------------------------------------------------------


@pytest.fixture
def year_server(year_db: Path) -> Iterator[Server]:
    with HubStore(year_db) as store:
        if (
            store.conn.execute("SELECT 1 FROM accounts WHERE email = ?", (STAFF_EMAIL,)).fetchone()
            is None
        ):
            member = store.conn.execute("SELECT min(id) FROM members").fetchone()[0]
            accounts.create_account(
                store, member, STAFF_EMAIL, actor="test", password=STAFF_PASSWORD
            )
            accounts.grant_role(store, member, "fabmanager", None, actor="test")
    yield from serve(year_db, OPENING_HOURS)


def full_page_png(driver: WebDriver, name: str) -> Path:
    """The whole page, not just the window: what a reader scrolls through."""
    ARTIFACTS.mkdir(exist_ok=True)
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}
    )
    path = ARTIFACTS / f"{name}.png"
    path.write_bytes(base64.b64decode(shot["data"]))
    return path


READ_REPORT_JS = """
const visible = (el) => getComputedStyle(el).display !== "none"
  && el.getClientRects().length > 0;
return {
  charts: Array.from(document.querySelectorAll("svg.chart")).map((svg) => ({
    id: svg.id, bars: svg.querySelectorAll("rect.bar").length,
    title: svg.querySelector("title") ? svg.querySelector("title").textContent : "",
    labelled: svg.getAttribute("aria-labelledby") || "",
    width: svg.getBoundingClientRect().width,
  })),
  navs: Array.from(document.querySelectorAll("nav")).map(visible),
  header: visible(document.querySelector("body > header")),
  sections: document.querySelectorAll("section.report-section").length,
  breaks: Array.from(document.querySelectorAll("section.report-section")).map(
    (s) => getComputedStyle(s).breakBefore),
};
"""


@pytest.mark.integration
def test_report_of_a_generated_year_in_a_browser(year_server: Server, browser: WebDriver) -> None:
    browser.get(f"{year_server.base}/login?next=/report")
    browser.find_element("css selector", "input[name=email]").send_keys(STAFF_EMAIL)
    browser.find_element("css selector", "input[name=password]").send_keys(STAFF_PASSWORD)
    browser.find_element("css selector", "form.login button[type=submit]").click()
    WebDriverWait(browser, 30).until(lambda d: "/login" not in d.current_url)
    browser.get(f"{year_server.base}/report?from={YEAR}-01-01&to={YEAR + 1}-01-01&lang=fr")
    assert browser.execute_script("return document.readyState") == "complete"
    assert browser.execute_script("return document.documentElement.lang") == "fr"
    seen = browser.execute_script(READ_REPORT_JS)
    charts = {c["id"]: c for c in seen["charts"]}
    assert {
        "chart-members",
        "chart-sessions",
        "chart-occupancy",
        "chart-hours",
        "chart-certifications",
        "chart-projects",
    } <= set(charts)
    assert charts["chart-members"]["bars"] >= 12 * 4  # 12 months, stacked
    assert charts["chart-hours"]["bars"] >= 4
    assert charts["chart-occupancy"]["bars"] == 4
    assert all(c["labelled"] and c["title"] and c["width"] > 300 for c in charts.values())
    assert all(seen["navs"]) and seen["header"]
    full_page_png(browser, "report-fr-screen")

    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
    printed = browser.execute_script(READ_REPORT_JS)
    assert printed["navs"] and not any(printed["navs"]), "navigation shows in print"
    assert not printed["header"]
    assert printed["breaks"] == ["page"] * printed["sections"]
    browser.set_window_size(794, 1123)  # A4 at 96 dpi
    full_page_png(browser, "report-fr-print")

    pdf = base64.b64decode(
        browser.execute_cdp_cmd(
            "Page.printToPDF", {"preferCSSPageSize": True, "printBackground": True}
        )["data"]
    )
    (ARTIFACTS / "report-fr.pdf").write_bytes(pdf)
    boxes = re.findall(rb"/MediaBox\s*\[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", pdf)
    assert boxes and all(
        abs(float(w) - 595.3) < 2 and abs(float(h) - 841.9) < 2 for w, h in boxes
    ), boxes[:3]
    assert len(boxes) >= 1 + printed["sections"]  # one page or more each

    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})
    browser.set_window_size(1280, 1000)
    browser.get(f"{year_server.base}/report?from={YEAR}-01-01&to={YEAR + 1}-01-01&lang=en")
    assert browser.execute_script("return document.documentElement.lang") == "en"
    assert (
        "Activity report"
        in browser.find_element("css selector", "h1.report-title, .report-head h1").text
    )
    full_page_png(browser, "report-en-screen")


def test_certified_at_boundaries_use_local_midnight() -> None:
    # The hand-made data relies on these two instants being on either side of midnight.
    assert iso(local(2026, 3, 1, 0, 30)) == "2026-02-28T23:30:00.000Z"
    assert datetime.combine(date(2026, 5, 1), time(0), PARIS).astimezone(UTC) == datetime(
        2026, 4, 30, 22, tzinfo=UTC
    )
