"""The yearly activity report as a printable page and as CSV.

The page is meant to be printed or saved as PDF and handed to funders, so everything a
reader needs is on it: figures written out, charts drawn on the server (see
``charts.py``), method notes, and no script at all. Numbers are formatted here for the
reader's language; the CSV keeps plain machine-readable numbers.

Access: public like the other pages for now. The accounts issue will restrict it to
staff roles (it shows member counts and project names, though no member's personal
data); put the check in ``_period()``'s callers when roles exist.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, render_template, request, url_for
from flask_babel import gettext, ngettext
from markupsafe import Markup

from gateway.core.clock import utcnow
from gateway.core.snapshot import WEEKDAYS
from gateway.hub import categories
from gateway.hub.report import AttendanceCell, Report, activity_report, category_totals, report_csv
from gateway.web import charts
from gateway.web.auth import requires
from gateway.web.bearer import scope
from gateway.web.context import clock, get_store, hub_config
from gateway.web.dates import long_date, month_name, weekday_name
from gateway.web.labels import label
from gateway.web.language import current_language

report_pages = Blueprint("report", __name__)
_NONE = AttendanceCell()

MAX_DAYS = 5 * 366 + 1  # a report is about a year; five keeps a mistake cheap
TOP_PROJECTS_CHART = 15
TOP_PROJECTS_TABLE = 25
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

# Okabe-Ito colours: distinguishable with the common colour-vision deficiencies, and
# still apart when printed in greyscale thanks to their different lightness.
CATEGORY_COLORS = {
    "grand_public": "#E69F00",
    "adherent": "#0072B2",
    "professionnel": "#009E73",
    "scolaire": "#CC79A7",
    "association": "#56B4E9",
    "unknown": "#999999",
}
EXTRA_COLORS = ("#D55E00", "#000000", "#F0E442")
LEVEL_COLORS = {0: "#bdbdbd", 1: "#9ecae1", 2: "#3182bd", 3: "#08306b"}
OCCUPANCY_COLOR = "#0072B2"


class BadPeriod(ValueError):
    pass


def _parse_day(name: str) -> date | None:
    value = request.args.get(name, "").strip()
    if not value:
        return None
    if not _DATE.match(value):
        raise BadPeriod(f"{name}={value!r}: YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise BadPeriod(f"{name}={value!r}: {exc}") from exc


def _period(tz: str) -> tuple[date, date]:
    """``from`` and ``to`` are local days, ``to`` excluded; the default is the current
    calendar year at the site, since the report is yearly."""
    this_year = utcnow().astimezone(ZoneInfo(tz)).year
    start = _parse_day("from") or date(this_year, 1, 1)
    end = _parse_day("to") or date(start.year + 1, 1, 1)
    if end <= start:
        raise BadPeriod("'to' must be after 'from'")
    if (end - start).days > MAX_DAYS:
        raise BadPeriod(f"at most {MAX_DAYS} days")
    return start, end


class Formats:
    """Numbers, money, percentages and dates the way a French or English reader writes
    them (a narrow no-break space groups thousands in French, and precedes % and €)."""

    def __init__(self, lang: str) -> None:
        self.lang = lang

    def num(self, value: float, digits: int = 0) -> str:
        text = f"{value:,.{digits}f}"
        if self.lang == "fr":
            text = text.replace(",", "\u202f").replace(".", ",")
        return text

    def pct(self, fraction: float | None) -> str:
        if fraction is None:
            return "–"
        value = self.num(fraction * 100)
        return f"{value}\u202f%" if self.lang == "fr" else f"{value}%"

    def hours(self, value: float) -> str:
        return gettext("%(n)s h", n=self.num(value, 1 if 0 < value < 10 else 0))

    def money(self, cents: int | None) -> str:
        if cents is None:
            return gettext("not available")
        value = self.num(cents / 100, 2)
        return f"{value}\u202f€" if self.lang == "fr" else f"€{value}"

    def day(self, d: date) -> str:
        return long_date(d, self.lang)

    def month(self, key: str, long: bool = False) -> str:
        y, m = (int(p) for p in key.split("-"))
        return month_name(y, m, self.lang, short=not long)


def _series(report: Report, names: dict[str, str]) -> list[charts.Series]:
    """One series per member category, named as the ``member_categories`` table says
    (categories are data: a site's own category shows its own label)."""
    extra = iter(EXTRA_COLORS * 4)
    out = []
    for c in report.categories:
        name = names.get(c) or (gettext("Unknown") if c == "unknown" else c)
        out.append(charts.Series(c, name, CATEGORY_COLORS.get(c) or next(extra)))
    return out


def _view(report: Report, lang: str, site: str, category_names: dict[str, str]) -> dict[str, Any]:
    f = Formats(lang)
    series = _series(report, category_names)
    active = [
        s
        for s in series
        if s.key in report.attendance.by_category or s.key in category_totals(report)
    ]
    active = active or series
    month_labels = [f.month(m.key) for m in report.months]
    att = report.attendance

    def count(n: float) -> str:
        return f.num(n)

    busiest = max(report.months, key=lambda m: att.by_month.get(m.key, _NONE).members, default=None)
    busiest_cell = att.by_month.get(busiest.key, _NONE) if busiest else _NONE
    busiest_members, busiest_sessions = busiest_cell.members, busiest_cell.sessions
    members_chart = charts.stacked_columns(
        "chart-members",
        gettext("Distinct members per month, by category"),
        gettext(
            "Busiest month: %(month)s, %(n)s. Over the period: %(total)s.",
            month=f.month(busiest.key, True) if busiest else "–",
            n=ngettext("%(n)s member", "%(n)s members", busiest_members, n=count(busiest_members)),
            total=ngettext(
                "%(n)s member", "%(n)s members", att.total.members, n=count(att.total.members)
            ),
        ),
        month_labels,
        active,
        [[att.cell(m.key, s.key).members for s in active] for m in report.months],
        count,
    )
    sessions_chart = charts.stacked_columns(
        "chart-sessions",
        gettext("Sessions per month, by category"),
        gettext(
            "Busiest month: %(month)s, %(n)s. Over the period: %(total)s.",
            month=f.month(busiest.key, True) if busiest else "–",
            n=ngettext(
                "%(n)s session",
                "%(n)s sessions",
                busiest_sessions,
                n=count(busiest_sessions),
            ),
            total=ngettext(
                "%(n)s session",
                "%(n)s sessions",
                att.total.sessions,
                n=count(att.total.sessions),
            ),
        ),
        month_labels,
        active,
        [[att.cell(m.key, s.key).sessions for s in active] for m in report.months],
        count,
        height=260,
    )

    machines = report.machines
    names = [m.name for m in machines]
    occupancy_chart = charts.gauges(
        "chart-occupancy",
        gettext("Machine occupancy during opening hours"),
        "; ".join(f"{m.name} : {f.pct(m.occupancy)}" for m in machines),
        names,
        [m.occupancy for m in machines],
        f.pct,
        color=OCCUPANCY_COLOR,
    )
    hours_values = []
    for m in machines:
        row = []
        for s in active:
            u = report.usage_for(m.machine_id, s.key)
            row.append(u.hours if u else 0.0)
        hours_values.append(row)
    hours_chart = charts.stacked_bars(
        "chart-hours",
        gettext("Hours of use per machine, by category"),
        gettext(
            "Hours of use: %(values)s.",
            values="; ".join(f"{m.name} : {f.hours(m.hours)}" for m in machines),
        ),
        names,
        active,
        hours_values,
        f.hours,
    )

    new_chart = None
    if report.new_members.available and report.new_members.total:
        nm = report.new_members
        new_chart = charts.stacked_columns(
            "chart-new-members",
            gettext("New members per month, by category"),
            ngettext("%(n)s member", "%(n)s members", nm.total, n=count(nm.total)),
            month_labels,
            active,
            [[nm.cells.get((m.key, s.key), 0) for s in active] for m in report.months],
            count,
            height=240,
        )

    cert_chart = None
    groups: dict[str, str] = {}
    for c in report.certifications:
        groups.setdefault(c.group_id, c.group_name)
    if groups:
        levels = sorted({c.level for c in report.certifications})
        level_series = [
            charts.Series(str(lv), f"{lv} – {label('level', lv)}", LEVEL_COLORS.get(lv, "#999999"))
            for lv in levels
        ]
        granted = {(c.group_id, c.level): c.granted for c in report.certifications}
        cert_chart = charts.stacked_bars(
            "chart-certifications",
            gettext("Certifications granted per machine group, by level"),
            "; ".join(
                f"{name} : {sum(granted.get((g, lv), 0) for lv in levels)}"
                for g, name in groups.items()
            ),
            list(groups.values()),
            level_series,
            [[granted.get((g, lv), 0) for lv in levels] for g in groups],
            count,
        )

    named = [p for p in report.projects if p.project_id is not None]
    top = named[:TOP_PROJECTS_CHART]
    project_chart = None
    if top:
        project_chart = charts.stacked_bars(
            "chart-projects",
            ngettext(
                "Hours of use of the most active project",
                "Hours of use of the %(num)s most active projects",
                len(top),
            ),
            "; ".join(f"{p.name} : {f.hours(p.hours)}" for p in top),
            [p.name for p in top],
            [charts.Series("hours", gettext("Hours"), "#009E73")],
            [[p.hours] for p in top],
            f.hours,
        )
    rest = named[TOP_PROJECTS_TABLE:]
    no_project = next((p for p in report.projects if p.project_id is None), None)
    project_hours = sum(p.hours for p in named)

    opening = [
        (
            weekday_name(d, lang),
            ", ".join(s.replace("-", "–") for s in report.opening_hours.get(d, []))
            or gettext("closed"),
        )
        for d in WEEKDAYS
    ]

    kpis = [
        (f.num(att.total.members), gettext("members came")),
        (f.num(att.total.sessions), gettext("sessions")),
        (f.num(report.hours), gettext("machine hours")),
        (f.pct(report.occupancy), gettext("average occupancy")),
        (
            f.num(report.new_members.total)
            if report.new_members.available
            else gettext("not available"),
            gettext("new members"),
        ),
        (f.num(report.certifications_granted), gettext("certifications granted")),
        (f.money(report.revenue_cents), gettext("revenue")),
    ]
    return {
        "f": f,
        "report": report,
        "series": active,
        "kpis": kpis,
        "members_chart": members_chart,
        "sessions_chart": sessions_chart,
        "occupancy_chart": occupancy_chart,
        "hours_chart": hours_chart,
        "new_chart": new_chart,
        "cert_chart": cert_chart,
        "project_chart": project_chart,
        "project_chart_n": len(top),
        "projects": named[:TOP_PROJECTS_TABLE],
        "projects_rest": rest,
        "projects_rest_totals": (
            sum(p.sessions for p in rest),
            sum(p.hours for p in rest),
            sum(p.jobs for p in rest),
        ),
        "no_project": no_project,
        "project_share": f.pct(project_hours / report.hours if report.hours else None),
        "opening": opening,
        "site": site,
        "opening_total": f.hours(report.opening_minutes / 60),
    }


def _bad(lang: str, exc: BadPeriod) -> Response:
    message = gettext("Invalid period: %(error)s", error=str(exc))
    return Response(message + "\n", status=400, mimetype="text/plain")


@report_pages.get("/report")
@requires("accountant", "admin", "fabmanager")
@scope("report")
def report_page() -> Response | str:
    cfg = hub_config()
    lang = current_language()
    try:
        start, end = _period(cfg.timezone)
    except BadPeriod as exc:
        return _bad(lang, exc)
    report = activity_report(get_store(), start, end, cfg.timezone, cfg.opening_hours)
    view = _view(report, lang, cfg.site, categories.labels(get_store(), lang))
    f: Formats = view["f"]
    # Any values: url_for's keyword-only options (_external: bool...) would otherwise be
    # checked against the str of every ** key.
    query: dict[str, Any] = {"from": start.isoformat(), "to": end.isoformat()}
    return render_template(
        "report.html",
        lang=lang,
        **view,
        period_text=gettext(
            "from %(start)s to %(end)s", start=f.day(start), end=f.day(report.last_day)
        ),
        generated_text=gettext(
            "Generated on %(date)s · local times (%(tz)s)",
            date=f.day(clock()().astimezone(ZoneInfo(cfg.timezone)).date()),
            tz=cfg.timezone,
        ),
        csv_url=url_for("report.report_csv_file", **query),
        lang_urls={
            code: url_for("report.report_page", **query, lang=code) for code in ("fr", "en")
        },
        query=query,
        nbsp=Markup("&nbsp;"),
    )


@report_pages.get("/report.csv")
@requires("accountant", "admin", "fabmanager")
@scope("report")
def report_csv_file() -> Response:
    cfg = hub_config()
    try:
        start, end = _period(cfg.timezone)
    except BadPeriod as exc:
        return _bad(current_language(), exc)
    report = activity_report(get_store(), start, end, cfg.timezone, cfg.opening_hours)
    name = f"activite-{start.isoformat()}-{end.isoformat()}.csv"
    # The report is aggregates only (a few hundred rows): computed now, streamed as lines.
    return Response(
        report_csv(report),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
