"""The yearly activity report a public fablab owes its funders, computed from the hub.

Every figure is an SQL aggregate: a year holds tens of thousands of sessions and the
report is asked for over the web, so no query brings sessions into Python. Local
calendar periods (months, opening slots) are turned into UTC instants here, in Python,
and handed to SQLite as one JSON parameter that it joins against ``sessions`` by its
``started_at`` index; stored times are UTC ISO text, so text order is time order.

Conventions the figures follow (also printed in the report's method notes):

- Only closed sessions count, attributed to the period and month of their start, with
  their whole duration (a session crossing midnight on 31 December belongs to the year
  it started in). Occupancy is the exception: it clips each session to opening slots,
  so a session crossing a slot boundary or the period's end counts only its inside part.
- A member's category is the one the hub holds today: the store keeps no history.
- Open slots that touch or overlap are one span, so they never count twice.
"""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from gateway.core.clock import iso
from gateway.core.months import month_spans
from gateway.core.snapshot import OpeningHours, opening_hours_to_dict
from gateway.hub.db import HubStore

# The categories of the hub, in the order a report lists them; categories found in the
# data but not listed here follow, then members unknown to the hub.
CATEGORIES = ("grand_public", "adherent", "professionnel", "scolaire", "association")
UNKNOWN = "unknown"
# Where the store may (one day) record when a member joined, most specific first.
JOINED_COLUMNS = ("joined_at", "created_at")
_CLOSED = "s.status = 'closed'"


@dataclass(frozen=True)
class Month:
    key: str  # "2026-01"
    first: date  # first local day in the period
    until: date  # the local day after its last one in the period
    start: datetime  # local midnight of ``first``, as UTC
    end: datetime  # local midnight of ``until``, as UTC
    opening_minutes: float


@dataclass(frozen=True)
class AttendanceCell:
    members: int = 0
    sessions: int = 0


@dataclass
class Attendance:
    """Distinct members and sessions per month and category.

    Totals are distinct over the whole period: a member coming every month counts once
    in the year, so the year's total is *not* the sum of the months.
    """

    cells: dict[tuple[str, str], AttendanceCell] = field(default_factory=dict)
    by_category: dict[str, AttendanceCell] = field(default_factory=dict)
    by_month: dict[str, AttendanceCell] = field(default_factory=dict)
    total: AttendanceCell = AttendanceCell()

    def cell(self, month: str, category: str) -> AttendanceCell:
        return self.cells.get((month, category), AttendanceCell())


@dataclass(frozen=True)
class MachineUsage:
    """One machine × category line: what the hours and the money are made of."""

    machine_id: str
    category: str
    sessions: int
    members: int
    hours: float
    billable_minutes: int
    busy_minutes: int
    revenue_cents: int | None


@dataclass
class MachineOccupancy:
    machine_id: str
    name: str
    sessions: int = 0
    members: int = 0
    hours: float = 0.0  # whole durations of sessions started in the period
    busy_hours: float = 0.0
    jobs: int = 0
    jobs_finished: int = 0
    revenue_cents: int | None = None
    in_hours_minutes: float = 0.0  # session time inside opening slots of the period
    by_month_minutes: dict[str, float] = field(default_factory=dict)
    opening_minutes: float = 0.0

    @property
    def occupancy(self) -> float | None:
        return self.in_hours_minutes / self.opening_minutes if self.opening_minutes else None

    def month_occupancy(self, month: Month) -> float | None:
        if not month.opening_minutes:
            return None
        return self.by_month_minutes.get(month.key, 0.0) / month.opening_minutes


@dataclass(frozen=True)
class NewMembers:
    """Members who joined in the period; ``column`` is None when the hub does not know
    when members joined, and the report then says so instead of guessing."""

    column: str | None
    cells: dict[tuple[str, str], int] = field(default_factory=dict)
    by_category: dict[str, int] = field(default_factory=dict)
    total: int = 0

    @property
    def available(self) -> bool:
        return self.column is not None


@dataclass(frozen=True)
class CertificationCount:
    group_id: str
    group_name: str
    level: int
    granted: int
    members: int
    revoked: int


@dataclass(frozen=True)
class ProjectUsage:
    project_id: str | None  # None: sessions without a project
    name: str
    owner: str
    sessions: int
    members: int
    hours: float
    jobs: int


@dataclass
class Report:
    start: date  # first day
    end: date  # exclusive: the day after the last one
    tz: str
    generated_at: datetime
    opening_hours: dict[str, list[str]]
    months: list[Month]
    categories: list[str]
    attendance: Attendance
    machines: list[MachineOccupancy]
    usage: list[MachineUsage]
    revenue_available: bool
    new_members: NewMembers
    certifications: list[CertificationCount]
    projects: list[ProjectUsage]

    @property
    def last_day(self) -> date:
        return self.end - timedelta(days=1)

    @property
    def opening_minutes(self) -> float:
        return sum(m.opening_minutes for m in self.months)

    @property
    def hours(self) -> float:
        return sum(m.hours for m in self.machines)

    @property
    def revenue_cents(self) -> int | None:
        if not self.revenue_available:
            return None
        return sum(m.revenue_cents or 0 for m in self.machines)

    @property
    def occupancy(self) -> float | None:
        """Mean occupancy of the machines, each weighted by the same opening time."""
        values = [m.occupancy for m in self.machines if m.occupancy is not None]
        return sum(values) / len(values) if values else None

    def usage_for(self, machine_id: str, category: str) -> MachineUsage | None:
        for u in self.usage:
            if u.machine_id == machine_id and u.category == category:
                return u
        return None

    @property
    def certifications_granted(self) -> int:
        return sum(c.granted for c in self.certifications)


# -- time ----------------------------------------------------------------------------


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), zone).astimezone(UTC)


def opening_spans(
    hours: OpeningHours, tz: str, start: date, end: date
) -> list[tuple[datetime, datetime]]:
    """Opening slots of the local days [start, end) as merged UTC spans.

    Slots become instants day by day before anything is compared, which is what keeps
    DST days right (their wall clock is not monotonic, instants are). A slot closing at
    00:00 closes at the next midnight.
    """
    zone = ZoneInfo(tz)
    spans: list[tuple[datetime, datetime]] = []
    day = start
    while day < end:
        midnight = local_midnight(day + timedelta(days=1), zone)
        for opens, closes in hours.get(day.weekday(), ()):
            a = datetime.combine(day, opens, zone).astimezone(UTC)
            b = (
                midnight
                if closes == time(0)
                else datetime.combine(day, closes, zone).astimezone(UTC)
            )
            if b > a:
                spans.append((a, b))
        day += timedelta(days=1)
    merged: list[tuple[datetime, datetime]] = []
    for a, b in sorted(spans):
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


# -- schema probes -------------------------------------------------------------------


def _columns(store: HubStore, table: str) -> set[str]:
    return {r[1] for r in store.conn.execute(f"PRAGMA table_info({table})")}


def revenue_sql(store: HubStore, period: tuple[str, str]) -> str | None:
    """The SQL sum of a session group's revenue, or None when there is none to show.

    The one switch for revenue. Pricing (docs/billing.md) stores each session's price in
    ``sessions.amount_cents``; without that column, or when no session of the period was
    priced (no tariff configured), the report says "not available" rather than showing
    a revenue of zero or inventing a tariff.
    """
    if "amount_cents" not in _columns(store, "sessions"):
        return None
    priced = store.conn.execute(
        "SELECT count(s.amount_cents) FROM sessions s "
        f"WHERE s.started_at >= ? AND s.started_at < ? AND {_CLOSED}",
        period,
    ).fetchone()[0]
    return "sum(s.amount_cents)" if priced else None


def joined_column(store: HubStore) -> str | None:
    """Which members column says when a member joined, if the hub records it.

    The column alone is not enough: members imported before it existed have no date,
    and "0 new members" would then be a wrong figure rather than a missing one.
    """
    cols = _columns(store, "members")
    for c in JOINED_COLUMNS:
        if (
            c in cols
            and store.conn.execute(
                f"SELECT 1 FROM members WHERE {c} IS NOT NULL LIMIT 1"
            ).fetchone()
        ):
            return c
    return None


# -- the report ----------------------------------------------------------------------

_CAT = f"coalesce(mb.category, '{UNKNOWN}')"
# Months handed over as one JSON array of [key, first instant, end instant].
_MONTHS_CTE = (
    "WITH mo AS (SELECT json_extract(value, '$[0]') AS k, "
    "json_extract(value, '$[1]') AS lo, json_extract(value, '$[2]') AS hi "
    "FROM json_each(?))"
)


def _order_categories(seen: Iterable[str]) -> list[str]:
    seen = set(seen)
    extra = sorted(c for c in seen if c not in CATEGORIES and c != UNKNOWN)
    tail = [UNKNOWN] if UNKNOWN in seen else []
    return [*CATEGORIES, *extra, *tail]


def activity_report(
    store: HubStore,
    start: date,
    end: date,
    tz: str,
    opening_hours: OpeningHours,
    now: datetime | None = None,
) -> Report:
    """The activity of the local days [start, end) at a site in zone ``tz``."""
    if end <= start:
        raise ValueError("the report's end must be after its start")
    zone = ZoneInfo(tz)
    t0, t1 = local_midnight(start, zone), local_midnight(end, zone)
    period = (iso(t0), iso(t1))
    conn = store.conn

    spans = opening_spans(opening_hours, tz, start, end)
    months: list[Month] = []
    for first, nxt in month_spans(start, end):
        a, b = local_midnight(first, zone), local_midnight(nxt, zone)
        minutes = sum(
            (min(e, b) - max(s, a)).total_seconds() / 60 for s, e in spans if s < b and e > a
        )
        months.append(Month(first.strftime("%Y-%m"), first, nxt, a, b, minutes))
    months_json = json.dumps([[m.key, iso(m.start), iso(m.end)] for m in months])

    # -- attendance
    att = Attendance()
    seen_categories: set[str] = set()
    for r in conn.execute(
        f"{_MONTHS_CTE} "
        f"SELECT mo.k, {_CAT} AS cat, count(*) AS n, count(DISTINCT s.member_id) AS m "
        "FROM mo CROSS JOIN sessions s LEFT JOIN members mb ON mb.id = s.member_id "
        f"WHERE s.started_at >= mo.lo AND s.started_at < mo.hi AND {_CLOSED} "
        "GROUP BY mo.k, cat",
        (months_json,),
    ):
        att.cells[(r["k"], r["cat"])] = AttendanceCell(r["m"], r["n"])
        seen_categories.add(r["cat"])
    for r in conn.execute(
        f"{_MONTHS_CTE} "
        "SELECT mo.k, count(*) AS n, count(DISTINCT s.member_id) AS m "
        "FROM mo CROSS JOIN sessions s "
        f"WHERE s.started_at >= mo.lo AND s.started_at < mo.hi AND {_CLOSED} "
        "GROUP BY mo.k",
        (months_json,),
    ):
        att.by_month[r["k"]] = AttendanceCell(r["m"], r["n"])
    for r in conn.execute(
        f"SELECT {_CAT} AS cat, count(*) AS n, count(DISTINCT s.member_id) AS m "
        "FROM sessions s LEFT JOIN members mb ON mb.id = s.member_id "
        f"WHERE s.started_at >= ? AND s.started_at < ? AND {_CLOSED} GROUP BY cat",
        period,
    ):
        att.by_category[r["cat"]] = AttendanceCell(r["m"], r["n"])
    r = conn.execute(
        "SELECT count(*) AS n, count(DISTINCT s.member_id) AS m FROM sessions s "
        f"WHERE s.started_at >= ? AND s.started_at < ? AND {_CLOSED}",
        period,
    ).fetchone()
    att.total = AttendanceCell(r["m"], r["n"])

    # -- hours and revenue per machine and category
    revenue = revenue_sql(store, period)
    usage: list[MachineUsage] = []
    for r in conn.execute(
        f"SELECT s.machine_id, {_CAT} AS cat, count(*) AS n, "
        "count(DISTINCT s.member_id) AS m, coalesce(sum(s.duration_s), 0) AS secs, "
        "coalesce(sum(s.billable_minutes), 0) AS bill, "
        "coalesce(sum(s.busy_minutes), 0) AS busy, "
        f"{revenue or 'NULL'} AS revenue "
        "FROM sessions s LEFT JOIN members mb ON mb.id = s.member_id "
        f"WHERE s.started_at >= ? AND s.started_at < ? AND {_CLOSED} "
        "GROUP BY s.machine_id, cat ORDER BY s.machine_id, cat",
        period,
    ):
        usage.append(
            MachineUsage(
                r["machine_id"],
                r["cat"],
                r["n"],
                r["m"],
                r["secs"] / 3600,
                r["bill"],
                r["busy"],
                (int(r["revenue"] or 0) if revenue else None),
            )
        )
        seen_categories.add(r["cat"])

    machines: dict[str, MachineOccupancy] = {
        r["id"]: MachineOccupancy(r["id"], r["name"])
        for r in conn.execute("SELECT id, name FROM machines ORDER BY name, id")
    }
    for r in conn.execute(
        "SELECT s.machine_id, count(*) AS n, count(DISTINCT s.member_id) AS m, "
        "coalesce(sum(s.duration_s), 0) AS secs, coalesce(sum(s.busy_s), 0) AS busy, "
        f"coalesce(sum(s.jobs), 0) AS jobs, {revenue or 'NULL'} AS revenue "
        f"FROM sessions s WHERE s.started_at >= ? AND s.started_at < ? AND {_CLOSED} "
        "GROUP BY s.machine_id",
        period,
    ):
        mo = machines.setdefault(
            r["machine_id"], MachineOccupancy(r["machine_id"], r["machine_id"])
        )
        mo.sessions, mo.members = r["n"], r["m"]
        mo.hours, mo.busy_hours, mo.jobs = r["secs"] / 3600, r["busy"] / 3600, r["jobs"]
        mo.revenue_cents = int(r["revenue"] or 0) if revenue else None
    for r in conn.execute(
        "SELECT machine_id, count(*) AS n FROM jobs WHERE state = 'finished' "
        "AND coalesce(started_at, updated_at) >= ? AND coalesce(started_at, updated_at) < ?"
        " GROUP BY machine_id",
        period,
    ):
        if r["machine_id"] in machines:
            machines[r["machine_id"]].jobs_finished = r["n"]

    # -- occupancy: session time clipped to each opening span, per month
    _occupancy(store, machines, months, spans, t0, t1)

    # -- new members
    new_members = _new_members(store, months)
    seen_categories.update(new_members.by_category)

    # -- certifications granted in the period
    certs = [
        CertificationCount(
            r["group_id"],
            r["group_name"] or r["group_id"],
            r["level"],
            r["n"],
            r["m"],
            r["revoked"],
        )
        for r in conn.execute(
            "SELECT c.group_id, g.name AS group_name, c.level, count(*) AS n, "
            "count(DISTINCT c.member_id) AS m, count(c.revoked_at) AS revoked "
            "FROM certifications c LEFT JOIN groups g ON g.id = c.group_id "
            "WHERE c.certified_at >= ? AND c.certified_at < ? "
            "GROUP BY c.group_id, c.level ORDER BY g.name, c.group_id, c.level",
            period,
        )
    ]

    # -- usage per project, largest first
    projects = [
        ProjectUsage(
            r["project_id"],
            r["name"] or r["project_id"] or "",
            r["owner"] or "",
            r["n"],
            r["m"],
            r["secs"] / 3600,
            r["jobs"],
        )
        for r in conn.execute(
            "SELECT s.project_id, p.name, mb.name AS owner, count(*) AS n, "
            "count(DISTINCT s.member_id) AS m, "
            "coalesce(sum(s.duration_s), 0) AS secs, coalesce(sum(s.jobs), 0) AS jobs "
            "FROM sessions s LEFT JOIN projects p ON p.id = s.project_id "
            "LEFT JOIN members mb ON mb.id = p.member_id "
            f"WHERE s.started_at >= ? AND s.started_at < ? AND {_CLOSED} "
            "GROUP BY s.project_id ORDER BY secs DESC, s.project_id",
            period,
        )
    ]

    return Report(
        start=start,
        end=end,
        tz=tz,
        generated_at=now or datetime.now(UTC),
        opening_hours=opening_hours_to_dict(opening_hours),
        months=months,
        categories=_order_categories(seen_categories),
        attendance=att,
        machines=list(machines.values()),
        usage=usage,
        revenue_available=revenue is not None,
        new_members=new_members,
        certifications=certs,
        projects=projects,
    )


def _occupancy(
    store: HubStore,
    machines: dict[str, MachineOccupancy],
    months: list[Month],
    spans: list[tuple[datetime, datetime]],
    t0: datetime,
    t1: datetime,
) -> None:
    """Session minutes inside opening spans, per machine and month.

    Each span looks back by the longest session that could still be running when it
    opens, so the join walks the ``started_at`` index instead of crossing every session
    with every span; a session started before the period still counts its part inside.
    """
    for mo in machines.values():
        mo.opening_minutes = sum(m.opening_minutes for m in months)
    if not spans:
        return
    longest = store.conn.execute(
        "SELECT max(julianday(ended_at) - julianday(started_at)) FROM sessions "
        "WHERE status = 'closed' AND started_at < ? AND ended_at > ?",
        (iso(t1), iso(t0)),
    ).fetchone()[0]
    if longest is None:
        return
    lookback = timedelta(days=max(longest, 0.0)) + timedelta(seconds=1)
    rows = []
    mi = 0
    for a, b in spans:
        # A span may straddle two months (a slot open over midnight on the 1st): split.
        while a < b:
            while months[mi].end <= a:
                mi += 1
            cut = min(b, months[mi].end)
            rows.append([months[mi].key, iso(a - lookback), iso(a), iso(cut)])
            a = cut
    for r in store.conn.execute(
        "WITH o AS (SELECT json_extract(value, '$[0]') AS k, "
        "json_extract(value, '$[1]') AS lo, json_extract(value, '$[2]') AS a, "
        "json_extract(value, '$[3]') AS b FROM json_each(?)) "
        "SELECT o.k, s.machine_id, sum(max(0.0, "
        "min(julianday(s.ended_at), julianday(o.b)) "
        "- max(julianday(s.started_at), julianday(o.a)))) * 1440.0 AS minutes "
        "FROM o CROSS JOIN sessions s "
        "WHERE s.started_at >= o.lo AND s.started_at < o.b AND s.ended_at > o.a "
        f"AND {_CLOSED} GROUP BY o.k, s.machine_id",
        (json.dumps(rows),),
    ):
        mo = machines.setdefault(
            r["machine_id"],
            MachineOccupancy(
                r["machine_id"],
                r["machine_id"],
                opening_minutes=sum(m.opening_minutes for m in months),
            ),
        )
        # julianday() keeps about a millisecond: round away its float noise.
        minutes = round(r["minutes"], 3)
        mo.by_month_minutes[r["k"]] = minutes
        mo.in_hours_minutes = round(mo.in_hours_minutes + minutes, 3)


def _new_members(store: HubStore, months: list[Month]) -> NewMembers:
    col = joined_column(store)
    if col is None:
        return NewMembers(None)
    # A bare date is a local day; anything longer is a UTC instant like every stored time.
    bounds = json.dumps(
        [
            [m.key, iso(m.start), iso(m.end), m.first.isoformat(), m.until.isoformat()]
            for m in months
        ]
    )
    in_month = (
        f"CASE WHEN length(mb.{col}) = 10 THEN mb.{col} >= mo.lo_d "
        f"AND mb.{col} < mo.hi_d ELSE mb.{col} >= mo.lo AND mb.{col} < mo.hi END"
    )
    cells: dict[tuple[str, str], int] = {}
    by_cat: dict[str, int] = defaultdict(int)
    for r in store.conn.execute(
        "WITH mo AS (SELECT json_extract(value, '$[0]') AS k, "
        "json_extract(value, '$[1]') AS lo, json_extract(value, '$[2]') AS hi, "
        "json_extract(value, '$[3]') AS lo_d, json_extract(value, '$[4]') AS hi_d "
        "FROM json_each(?)) "
        "SELECT mo.k, mb.category AS cat, count(*) AS n FROM mo CROSS JOIN members mb "
        f"WHERE {in_month} GROUP BY mo.k, mb.category",
        (bounds,),
    ):
        cells[(r["k"], r["cat"])] = r["n"]
        by_cat[r["cat"]] += r["n"]
    return NewMembers(col, cells, dict(by_cat), sum(by_cat.values()))


# -- CSV -----------------------------------------------------------------------------


def _csv_lines(rows: Iterable[Iterable[object]]) -> Iterator[str]:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    for row in rows:
        writer.writerow(["" if v is None else v for v in row])
        yield buf.getvalue()
        buf.seek(0)
        buf.truncate()


def _num(value: float | None, digits: int = 2) -> str | None:
    return None if value is None else f"{value:.{digits}f}"


def report_csv(report: Report) -> Iterator[str]:
    """The report as RFC 4180 CSV lines (CRLF), one block per section.

    A block is a title row naming the section, a header row, the data rows and an empty
    row; columns are stable identifiers and numbers are plain (ISO dates, a dot for
    decimals) because the file is for spreadsheets and scripts, while the page is for
    people. Fields are quoted when needed, so names with commas or quotes survive.
    """
    months = report.months
    cats = report.categories

    def blocks() -> Iterator[list[object]]:
        yield ["section", "report"]
        yield ["start", "end_exclusive", "timezone", "generated_at", "opening_minutes"]
        yield [
            report.start.isoformat(),
            report.end.isoformat(),
            report.tz,
            iso(report.generated_at),
            _num(report.opening_minutes),
        ]
        yield []
        yield ["section", "attendance"]
        yield ["month", "category", "members", "sessions"]
        for m in months:
            for c in cats:
                cell = report.attendance.cell(m.key, c)
                yield [m.key, c, cell.members, cell.sessions]
            total = report.attendance.by_month.get(m.key, AttendanceCell())
            yield [m.key, "all", total.members, total.sessions]
        for c in cats:
            cell = report.attendance.by_category.get(c, AttendanceCell())
            yield ["period", c, cell.members, cell.sessions]
        yield ["period", "all", report.attendance.total.members, report.attendance.total.sessions]
        yield []
        yield ["section", "occupancy"]
        yield [
            "machine_id",
            "machine_name",
            "month",
            "in_hours_minutes",
            "opening_minutes",
            "occupancy",
        ]
        for mo in report.machines:
            for m in months:
                yield [
                    mo.machine_id,
                    mo.name,
                    m.key,
                    _num(mo.by_month_minutes.get(m.key, 0.0)),
                    _num(m.opening_minutes),
                    _num(mo.month_occupancy(m), 4),
                ]
            yield [
                mo.machine_id,
                mo.name,
                "period",
                _num(mo.in_hours_minutes),
                _num(mo.opening_minutes),
                _num(mo.occupancy, 4),
            ]
        yield []
        yield ["section", "machine_usage"]
        yield [
            "machine_id",
            "category",
            "sessions",
            "members",
            "hours",
            "billable_minutes",
            "busy_minutes",
            "revenue_cents",
        ]
        for u in report.usage:
            yield [
                u.machine_id,
                u.category,
                u.sessions,
                u.members,
                _num(u.hours),
                u.billable_minutes,
                u.busy_minutes,
                u.revenue_cents if report.revenue_available else "not available",
            ]
        yield []
        yield ["section", "new_members"]
        yield ["month", "category", "members"]
        if report.new_members.available:
            for m in months:
                for c in cats:
                    yield [m.key, c, report.new_members.cells.get((m.key, c), 0)]
            yield ["period", "all", report.new_members.total]
        else:
            yield ["not available", "", ""]
        yield []
        yield ["section", "certifications"]
        yield ["group_id", "group_name", "level", "granted", "members", "revoked_since"]
        for cert in report.certifications:
            yield [
                cert.group_id,
                cert.group_name,
                cert.level,
                cert.granted,
                cert.members,
                cert.revoked,
            ]
        yield []
        yield ["section", "projects"]
        yield ["project_id", "project_name", "owner", "sessions", "members", "hours", "jobs"]
        for p in report.projects:
            yield [p.project_id, p.name, p.owner, p.sessions, p.members, _num(p.hours), p.jobs]

    return _csv_lines(blocks())


def category_totals(report: Report) -> Mapping[str, float]:
    """Hours per category over every machine, for the summary."""
    out: dict[str, float] = defaultdict(float)
    for u in report.usage:
        out[u.category] += u.hours
    return out
