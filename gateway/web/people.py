"""The pages people use every day: members, certifications, badges, projects, ``/me``.

Every change made here reaches the machines through the catalogue triggers (a new
certification, a blocked badge or a new current project bumps ``meta.data_version`` and
the hub republishes the snapshots), so the pages only change rows, through the hub module
that owns each table (``gateway.hub.members``, ``certifications``, ``sessions``...), and
never talk to the nodes. Each change that matters to safety or money (grant, revoke,
block, session moved) is written by those modules to the audit log in the same
transaction as the change itself: an audit entry for a change that was rolled back, or a
change without its entry, would make the log lie.

Who may do what is decided twice on purpose: ``@requires`` keeps the wrong roles off a
route, and the view then checks the finer rule (a trainer only on their own groups and up
to level 2; a member only on their own sessions), because a route-level role cannot see
which group or session a request is about.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    get_flashed_messages,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext, pgettext
from werkzeug.wrappers import Response as BaseResponse

from gateway.billing.credit import balance, members_with_credit
from gateway.billing.invoicing import is_closed, period_bounds, period_of
from gateway.billing.money import format_money
from gateway.core.clock import utcnow
from gateway.core.levels import CERTIFY_LEVELS, LEVELS, ROLES, Level
from gateway.hub import catalogue, certifications, enrolment, sessions
from gateway.hub import members as hub_members
from gateway.hub.accounts import User
from gateway.hub.db import HubStore
from gateway.web.auth import current_user, requires
from gateway.web.context import clock, get_store, hub_config
from gateway.web.dates import short_date
from gateway.web.invoices import member_invoices
from gateway.web.language import current_language

people = Blueprint("people", __name__)

STAFF = ("fabmanager", "admin")
# Every logged-in person may use their own pages, whatever else they may do.
EVERYONE = ROLES
TRAINER_MAX_LEVEL = max(CERTIFY_LEVELS)  # level 3 makes trainers: only the fabmanager grants it
MAX_VALIDITY_MONTHS = 120
MAX_PROJECT_NAME = 120
ENROLMENT_SECONDS = 30
ENROLMENT_POLL_MS = 1000
MEMBER_SESSIONS = 50


class Refused(Exception):
    """A request the rules refuse; its message, in the person's words, is shown to them."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# -- context ---------------------------------------------------------------------------


def _user() -> User:
    user = current_user()
    if user is None:  # @requires already turned anonymous requests away
        abort(401)
    return user


def _is_staff(user: User) -> bool:
    """Fabmanagers (and admins, who hold every role) manage every member and group."""
    return user.has(*STAFF)


def _lang() -> str:
    return current_language()


def _context(**extra: Any) -> dict[str, Any]:
    cfg = hub_config()
    lang = _lang()
    now = clock()()

    def day(value: str | datetime | None) -> str:
        return short_date(value, now=now, tz=cfg.timezone, lang=lang)

    def moment(value: str | None) -> str:
        return short_date(value, now=now, tz=cfg.timezone, lang=lang, time=True)

    user = current_user()
    return {
        "lang": lang,
        "site": cfg.site,
        "user": user,
        "is_staff": bool(user and _is_staff(user)),
        "day": day,
        "moment": moment,
        "money": lambda cents: format_money(cents, lang),
        "messages": get_flashed_messages(with_categories=True),
        **extra,
    }


def _say(category: str, message: str) -> None:
    """Flash a message already in the person's words (gettext at the call)."""
    flash(message, category)


def _back(default: str) -> str:
    """Where to return after a form: only a path on this site, never another host."""
    target = request.form.get("next", "")
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return default


@people.app_context_processor
def _navigation() -> dict[str, Any]:
    """Links for the header, by role: base.html shows them on every page, board included."""

    def nav() -> list[dict[str, Any]]:
        try:
            user = current_user()
        except RuntimeError:  # rendered outside a request (a test rendering a template)
            return []
        if user is None:
            return []
        links: list[tuple[str, str]] = [
            ("pages.index", gettext("Machines")),
            ("people.me", gettext("My page")),
            ("people.projects", gettext("My projects")),
        ]
        if user.has("fabmanager", "trainer"):
            links += [
                ("people.members", pgettext("nav.members", "Members")),
                ("people.certify", gettext("Certify")),
            ]
        if user.has("fabmanager", "accountant"):
            links.append(("invoices.invoice_list", gettext("Invoices")))
            links.append(("report.report_page", gettext("Activity report")))
        if user.has("accountant"):
            links.append(("tokens.token_list", gettext("API tokens")))
        if user.has("fabmanager", "accountant"):
            links.append(("admin.index", gettext("Administration")))
        return [
            {"href": url_for(endpoint), "label": text, "current": request.endpoint == endpoint}
            for endpoint, text in links
        ]

    return {"fabgate_nav": nav}


# -- queries ---------------------------------------------------------------------------


def _member(store: HubStore, member_id: str) -> dict[str, Any]:
    row = hub_members.member(store, member_id)
    if row is None:
        abort(404)
    return row


def _visible_groups(store: HubStore, user: User) -> list[dict[str, Any]]:
    groups = catalogue.groups(store)
    return groups if _is_staff(user) else [g for g in groups if g["id"] in user.trainer_groups]


def _sessions(
    store: HubStore, member_id: str, limit: int = MEMBER_SESSIONS
) -> list[dict[str, Any]]:
    """A member's latest sessions, each saying whether it may still change project."""
    tz = hub_config().timezone
    closed_cache: dict[str, bool] = {}
    out = []
    for s in sessions.of_member(store, member_id, limit):
        period = period_of(s["started_at"], tz)
        if period not in closed_cache:
            closed_cache[period] = is_closed(store, period)
        s["period_closed"] = closed_cache[period]
        s["movable"] = s["status"] == "closed" and not s["period_closed"]
        out.append(s)
    return out


def _members(store: HubStore, user: User, now: datetime) -> list[dict[str, Any]]:
    """Everyone, with their live level on each group the viewer may see.

    Trainers see every member too (a newcomer has no certification in their group yet,
    and must be found to be certified), but only the levels of their own groups.
    """
    groups = [g["id"] for g in _visible_groups(store, user)]
    everyone = hub_members.roster(store)
    levels = certifications.live_levels(store, groups, now)
    for m in everyone:
        m["levels"] = levels.get(m["id"], {})
    # SQLite orders by code point, which puts "Émile" after "Zoé"; people look names up
    # alphabetically, accents aside.
    return sorted(everyone, key=lambda m: (_sort_key(m["name"]), m["id"]))


def _sort_key(name: str) -> str:
    decomposed = unicodedata.normalize("NFKD", name.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


# -- rules -----------------------------------------------------------------------------


def _check_may_certify(
    store: HubStore, user: User, member_id: str, group_id: str, level: int
) -> None:
    if member_id == user.member_id:
        raise Refused(gettext("Nobody may certify themselves."))
    if not _is_staff(user):
        if not user.trains(group_id):
            raise Refused(gettext("You do not train on this machine group."))
        if level > TRAINER_MAX_LEVEL:
            raise Refused(
                gettext(
                    "A trainer certifies up to level %(max)s; level 3 is granted by the "
                    "fabmanager.",
                    max=TRAINER_MAX_LEVEL,
                )
            )


@dataclass(frozen=True)
class Grant:
    member_id: str
    group_id: str
    level: int
    months: int
    note: str | None


def _parse_grant(store: HubStore) -> Grant:
    form = request.form
    member_id = form.get("member_id", "").strip()
    if member_id.endswith(")") and "(" in member_id:  # "Name (id)", as the picker lists it
        member_id = member_id[member_id.rindex("(") + 1 : -1].strip()
    group_id = form.get("group_id", "").strip()
    if not member_id or not hub_members.exists(store, member_id):
        raise Refused(gettext("Choose a member."))
    group = catalogue.group(store, group_id)
    if group is None:
        raise Refused(gettext("Choose a machine group."))
    try:
        level = int(form.get("level", ""))
    except ValueError:
        raise Refused(gettext("Choose a level from 0 to 3.")) from None
    if level not in LEVELS:
        raise Refused(gettext("Choose a level from 0 to 3."))
    raw = form.get("validity_months", "").strip()
    try:
        months = int(raw) if raw else int(group["default_validity_months"])
    except ValueError:
        raise Refused(
            gettext(
                "The validity is a number of months between 1 and %(max)s.", max=MAX_VALIDITY_MONTHS
            )
        ) from None
    if not 1 <= months <= MAX_VALIDITY_MONTHS:
        raise Refused(
            gettext(
                "The validity is a number of months between 1 and %(max)s.", max=MAX_VALIDITY_MONTHS
            )
        )
    note = form.get("note", "").strip()[:500] or None
    return Grant(member_id, group_id, level, months, note)


# -- members ---------------------------------------------------------------------------


@people.get("/members")
@requires("fabmanager", "admin", "trainer")
def members() -> str:
    store, user = get_store(), _user()
    now = utcnow()
    return render_template(
        "members.html",
        **_context(members=_members(store, user, now), groups=_visible_groups(store, user)),
    )


@people.get("/members/<member_id>")
@requires("fabmanager", "admin", "trainer")
def member(member_id: str) -> str:
    store, user = get_store(), _user()
    now = utcnow()
    m = _member(store, member_id)
    staff = _is_staff(user)
    visible = None if staff else set(user.trainer_groups)
    shown = None
    request_id = request.args.get("enrolment", "")
    if staff and request_id:
        window = enrolment.enrolment_status(store, request_id, now)
        if window is not None and window["member_id"] == member_id:
            shown = window
    revocable = {g["id"] for g in _visible_groups(store, user)}
    if not staff:
        revocable = {
            g
            for g in revocable
            if certifications.live_level(store, member_id, g, now) <= TRAINER_MAX_LEVEL
        }
    return render_template(
        "member.html",
        **_context(
            member=m,
            certifications=certifications.of_member(store, member_id, now, visible),
            revocable=revocable if member_id != user.member_id else set(),
            badges=hub_members.badges_of(store, member_id) if staff else [],
            projects=hub_members.projects_of(store, member_id) if staff else [],
            sessions=_sessions(store, member_id) if staff else [],
            enrolment=shown,
            enrolment_poll_ms=ENROLMENT_POLL_MS,
        ),
    )


@people.post("/members/<member_id>/badges/<uid>/block")
@requires("fabmanager", "admin")
def block_badge(member_id: str, uid: str) -> BaseResponse:
    """Blocking takes effect at the next snapshot, within a second: a lost badge must
    stop opening machines before whoever found it reaches one."""
    store, user = get_store(), _user()
    if hub_members.block_badge(store, member_id, uid, by=user.member_id):
        _say("ok", gettext("Badge %(uid)s blocked.", uid=uid))
    else:
        _say("error", gettext("Badge %(uid)s is not active.", uid=uid))
    return redirect(url_for("people.member", member_id=member_id, lang=_lang()))


@people.post("/members/<member_id>/enrol")
@requires("fabmanager", "admin")
def enrol(member_id: str) -> BaseResponse:
    """Opens the enrolment window; the badge itself is attached (and audited as
    ``badge.enrolled``) by the hub when a node reports the tap."""
    store, user = get_store(), _user()
    _member(store, member_id)
    request_id = enrolment.create_enrolment(
        store, member_id, by=user.member_id, now=utcnow(), seconds=ENROLMENT_SECONDS
    )
    return redirect(
        url_for("people.member", member_id=member_id, enrolment=request_id, lang=_lang())
        + "#badges"
    )


@people.get("/members/<member_id>/enrolment/<request_id>")
@requires("fabmanager", "admin")
def enrolment_fragment(member_id: str, request_id: str) -> Response:
    store = get_store()
    window = enrolment.enrolment_status(store, request_id, utcnow())
    if window is None or window["member_id"] != member_id:
        abort(404)
    resp = Response(render_template("enrolment.html", **_context(enrolment=window)))
    resp.headers["Cache-Control"] = "no-store"
    return resp


# -- certifications --------------------------------------------------------------------


@people.route("/certify", methods=["GET", "POST"])
@requires("fabmanager", "admin", "trainer")
def certify() -> BaseResponse | tuple[str, int] | str:
    store, user = get_store(), _user()
    groups = _visible_groups(store, user)
    values = dict(request.form) if request.method == "POST" else dict(request.args)
    error: str | None = None
    if request.method == "POST":
        try:
            grant = _parse_grant(store)
            _check_may_certify(store, user, grant.member_id, grant.group_id, grant.level)
            now = utcnow()
            until = certifications.grant(
                store,
                grant.member_id,
                grant.group_id,
                grant.level,
                by=user.member_id,
                at=now,
                months=grant.months,
                note=grant.note,
            )
        except Refused as refused:
            error = refused.message
        else:
            m = _member(store, grant.member_id)
            group_name = next(
                (g["name"] for g in groups if g["id"] == grant.group_id), grant.group_id
            )
            _say(
                "ok",
                gettext(
                    "%(name)s is certified level %(level)s on “%(group)s” until %(until)s.",
                    name=m["name"],
                    group=group_name,
                    level=grant.level,
                    until=until.astimezone(ZoneInfo(hub_config().timezone)).strftime("%d/%m/%Y"),
                ),
            )
            effective = certifications.live_level(store, grant.member_id, grant.group_id, now)
            if effective > grant.level:
                _say(
                    "warning",
                    gettext(
                        "This member keeps their higher level %(level)s: revoke the "
                        "certification to lower it.",
                        level=effective,
                    ),
                )
            return redirect(url_for("people.member", member_id=grant.member_id, lang=_lang()))
    selectable = [m for m in _members(store, user, utcnow()) if m["id"] != user.member_id]
    group_id = values.get("group_id") or (groups[0]["id"] if len(groups) == 1 else "")
    default_months = next((g["default_validity_months"] for g in groups if g["id"] == group_id), "")
    page = render_template(
        "certify.html",
        **_context(
            members=selectable,
            groups=groups,
            error=error,
            values=values,
            selected_group=group_id,
            validity=values.get("validity_months") or default_months,
            max_level=Level.TRAINER if _is_staff(user) else TRAINER_MAX_LEVEL,
            levels=LEVELS,
            max_validity=MAX_VALIDITY_MONTHS,
        ),
    )
    return (page, 400) if error else page


@people.post("/members/<member_id>/certifications/<group_id>/revoke")
@requires("fabmanager", "admin", "trainer")
def revoke(member_id: str, group_id: str) -> BaseResponse:
    store, user = get_store(), _user()
    now = utcnow()
    _member(store, member_id)
    try:
        if member_id == user.member_id:
            raise Refused(gettext("Nobody may certify themselves."))
        if not _is_staff(user):
            if not user.trains(group_id):
                raise Refused(gettext("You do not train on this machine group."))
            if certifications.live_level(store, member_id, group_id, now) > TRAINER_MAX_LEVEL:
                raise Refused(gettext("A trainer cannot revoke a level-3 certification."))
        count = certifications.revoke(store, member_id, group_id, by=user.member_id, at=now)
    except Refused as refused:
        flash(refused.message, "error")
    else:
        _say(
            "ok" if count else "error",
            (
                gettext("Certification revoked: the machines refuse it from now on.")
                if count
                else gettext("No live certification to revoke.")
            ),
        )
    return redirect(url_for("people.member", member_id=member_id, lang=_lang()), 303)


# -- projects and sessions ---------------------------------------------------------------


@people.get("/projects")
@requires(*EVERYONE)
def projects() -> str:
    store, user = get_store(), _user()
    m = _member(store, user.member_id)
    return render_template(
        "projects.html",
        **_context(
            member=m,
            projects=hub_members.projects_of(store, user.member_id),
            sessions=_sessions(store, user.member_id),
        ),
    )


@people.post("/projects")
@requires(*EVERYONE)
def create_project() -> BaseResponse:
    store, user = get_store(), _user()
    name = " ".join(request.form.get("name", "").split())
    if not name or len(name) > MAX_PROJECT_NAME:
        _say(
            "error",
            gettext("A project needs a name (%(max)s characters at most).", max=MAX_PROJECT_NAME),
        )
        return redirect(url_for("people.projects", lang=_lang()))
    hub_members.create_project(
        store, user.member_id, name, current=bool(request.form.get("current"))
    )
    _say("ok", gettext("Project “%(name)s” created.", name=name))
    return redirect(url_for("people.projects", lang=_lang()))


@people.post("/projects/current")
@requires(*EVERYONE)
def set_current_project() -> BaseResponse:
    """The current project is what the next session at a machine is booked to; it
    travels in the snapshot, so the change reaches the nodes by itself."""
    store, user = get_store(), _user()
    project_id = request.form.get("project_id", "").strip() or None
    if project_id is not None and not hub_members.owns_project(store, user.member_id, project_id):
        _say("error", gettext("This project is not yours."))
    else:
        hub_members.set_current_project(store, user.member_id, project_id)
        _say("ok", gettext("Current project saved."))
    return redirect(_back(url_for("people.projects", lang=_lang())))


def move_session(
    store: HubStore, user: User, session_id: str, project_id: str, tz: str
) -> dict[str, Any]:
    """Book a closed session to another project of the same member, while its month is
    open; a closed month's invoices are final, so its sessions are too."""
    row = sessions.session(store, session_id)
    if row is None:
        raise Refused(gettext("Unknown session."))
    if row["member_id"] != user.member_id and not _is_staff(user):
        raise Refused(gettext("This session is not yours."))
    if row["status"] != "closed":
        raise Refused(
            gettext("The session is still running: move it once it has ended.")
        )  # the session's end would overwrite the project
    if not row["member_id"] or not hub_members.owns_project(store, row["member_id"], project_id):
        raise Refused(gettext("Choose a project of the same member."))
    period = period_of(row["started_at"], tz)
    if is_closed(store, period):
        start, _ = period_bounds(period, tz)
        month = f"{start.month:02d}/{start.year}"
        raise Refused(
            gettext(
                "The month %(month)s is closed (invoices issued): this session can no longer "
                "change project.",
                month=month,
            )
        )
    if row["project_id"] == project_id:
        return row
    sessions.move_to_project(
        store,
        session_id,
        project_id,
        by=user.member_id,
        member_id=row["member_id"],
        from_project=row["project_id"],
        period=period,
    )
    return row


@people.post("/sessions/<session_id>/project")
@requires(*EVERYONE)
def move(session_id: str) -> BaseResponse:
    store, user = get_store(), _user()
    try:
        move_session(
            store,
            user,
            session_id,
            request.form.get("project_id", "").strip(),
            hub_config().timezone,
        )
    except Refused as refused:
        flash(refused.message, "error")
    else:
        _say("ok", gettext("Session moved."))
    return redirect(_back(url_for("people.projects", lang=_lang())))


# -- me --------------------------------------------------------------------------------


def _year_bounds(year: int, tz: str) -> tuple[datetime, datetime]:
    zone = ZoneInfo(tz)
    return (
        datetime.combine(date(year, 1, 1), datetime.min.time(), zone),
        datetime.combine(date(year + 1, 1, 1), datetime.min.time(), zone),
    )


@people.get("/me")
@requires(*EVERYONE)
def me() -> str:
    store, user = get_store(), _user()
    tz = hub_config().timezone
    now = utcnow()
    month = period_of(now, tz)
    m = _member(store, user.member_id)
    return render_template(
        "me.html",
        **_context(
            member=m,
            certifications=certifications.of_member(store, user.member_id, now),
            projects=hub_members.projects_of(store, user.member_id),
            sessions=_sessions(store, user.member_id, limit=20),
            minutes_month=sessions.billable_minutes_of(
                store, user.member_id, *period_bounds(month, tz)
            ),
            minutes_year=sessions.billable_minutes_of(
                store, user.member_id, *_year_bounds(now.astimezone(ZoneInfo(tz)).year, tz)
            ),
            month_label=month,
            year_label=now.astimezone(ZoneInfo(tz)).year,
            show_amounts=True,
            invoices=member_invoices(user.member_id),
            credit_balance=balance(store, user.member_id),
            has_credit=user.member_id in members_with_credit(store),
        ),
    )
