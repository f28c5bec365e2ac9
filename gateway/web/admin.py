"""The administration pages: running the lab from the web instead of YAML and restarts.

Members (create, edit, suspend, category, membership dates, staff flag, payer), badges
typed in or reactivated, member categories, machines and groups (out of service with a
reason, each machine's session rules), opening hours and closures, dated tariffs with a
price preview, organisations, log-ins and roles, prepaid top-ups. docs/admin.md lists the pages and
who may use each.

Every change goes through the hub (or billing) module that owns the table, which writes
the audit entry in the same transaction; nothing here runs SQL. Whatever changes access
(a suspension, a machine out of service, hours, a category...) bumps ``data_version``
through the schema's triggers, and the hub's snapshot loop, which watches that counter
every 0.1 s, publishes newly signed snapshots: the same path a certification takes, so
no restart and no message to the nodes from here.

Forms are plain HTML posts (CSRF checked by ``gateway.web.auth`` on every POST); a
refused form is shown again with the error and what was typed, status 400.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, g, redirect, render_template, request, url_for
from flask_babel import gettext, ngettext
from werkzeug.wrappers import Response as BaseResponse

from gateway.billing import credit, organisations, pricing
from gateway.billing.money import format_money, parse_amount
from gateway.billing.organisations import Organisation, OrganisationError
from gateway.billing.tariffs import (
    Tariff,
    TariffError,
    explain,
    parse_tariffs,
    price_session,
    round_half_up,
    select_tariff,
)
from gateway.config import GroupConfig, MachineConfig
from gateway.config.loader import parse_duration
from gateway.config.models import MACHINE_KINDS, SessionConfig
from gateway.core.clock import utcnow
from gateway.core.ids import normalise_uid
from gateway.core.levels import CERTIFY_LEVELS, LEVELS, STORED_ROLES, Level
from gateway.core.snapshot import RULE_BOUNDS, WEEKDAYS, MachineRules
from gateway.hub import accounts, catalogue, categories, hours, machine_rules
from gateway.hub import members as hub_members
from gateway.hub.catalogue import CatalogueError
from gateway.hub.categories import CategoryError
from gateway.hub.hours import HoursError
from gateway.hub.machine_rules import RulesError
from gateway.hub.members import MemberError, MemberFields
from gateway.policies.session_rules import DEFAULT_RULES, SessionRules, never_cut_kind
from gateway.web.auth import current_user, requires
from gateway.web.context import get_store, hub_config
from gateway.web.labels import label
from gateway.web.language import current_language
from gateway.web.people import _context, _say

admin = Blueprint("admin", __name__, url_prefix="/admin")

# Who may do what (docs/accounts.md); admins hold every role.
STAFF = ("fabmanager",)
MONEY = ("fabmanager", "accountant")
ADMINS = ("admin",)
MAX_NOTE = 200
PICKER_LIMIT = 5000  # members offered in a <datalist>; the server accepts any id anyway


class Refused(Exception):
    """A form the rules refuse: the field and the message (already in the person's words
    where the hub module gave a plain sentence)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def _lang() -> str:
    return current_language()


def _by() -> str:
    user = current_user()
    if user is None:
        abort(401)
    return user.member_id


def _page(template: str, status: int = 200, **values: Any) -> tuple[str, int]:
    return render_template(template, **_context(**values)), status


def _refused(exc: Exception) -> Refused:
    field = getattr(exc, "field", getattr(exc, "key", ""))
    message = getattr(exc, "message", None) or str(exc)
    if isinstance(exc, TariffError):
        message = f"{exc.key}: {exc.expected}" + (f" ({exc.got!r})" if exc.got is not None else "")
    return Refused(str(field), str(message))


def _form(name: str) -> str:
    return request.form.get(name, "").strip()


def _day(name: str, *, required: bool = False) -> date | None:
    text = _form(name)
    if not text:
        if required:
            raise Refused(name, gettext("a date (YYYY-MM-DD)"))
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise Refused(name, gettext("a date (YYYY-MM-DD)")) from None


def _int(name: str, default: int | None = None) -> int:
    text = _form(name)
    if not text and default is not None:
        return default
    try:
        return int(text)
    except ValueError:
        raise Refused(name, gettext("a whole number")) from None


def _cents(name: str, *, optional: bool = False) -> int | None:
    text = _form(name)
    if not text:
        if optional:
            return None
        return 0
    try:
        cents = parse_amount(text)
    except ValueError:
        raise Refused(name, gettext("an amount in euros, 0 or more (12.50)")) from None
    if cents < 0:
        raise Refused(name, gettext("an amount in euros, 0 or more (12.50)"))
    return cents


# -- shared lookups --------------------------------------------------------------------


@admin.app_context_processor
def _helpers() -> dict[str, Any]:
    """``category_label(code)`` for every template: categories are data now, so their
    labels come from the database, in the page's language."""

    def category_label(code: str | None) -> str:
        if not code:
            return ""
        if "fabgate_category_labels" not in g:
            try:
                g.fabgate_category_labels = categories.labels(get_store(), _lang())
            except RuntimeError:  # rendered outside a request
                return code
        labels: dict[str, str] = g.fabgate_category_labels
        return labels.get(code, code)

    return {"category_label": category_label}


def member_picker(store: Any) -> list[dict[str, Any]]:
    """Everyone, for a ``<datalist>``: id and name, by name."""
    return hub_members.find_members(store, limit=PICKER_LIMIT)[1]


def picked_member(store: Any, field: str = "member_id") -> str:
    """The member a picker names: its id, or ``Name (id)`` as the datalist shows it."""
    text = _form(field)
    if text.endswith(")") and "(" in text:
        text = text[text.rindex("(") + 1 : -1].strip()
    if not text or not hub_members.exists(store, text):
        raise Refused(field, gettext("a member from the list (name or id)"))
    return text


# -- index -----------------------------------------------------------------------------


@admin.get("/")
@requires("fabmanager", "accountant")
def index() -> tuple[str, int]:
    return _page("admin/index.html")


# -- members ---------------------------------------------------------------------------


def _member_fields(store: Any) -> MemberFields:
    paid_by = _form("paid_by") or None
    return MemberFields(
        name=_form("name"),
        email=_form("email") or None,
        category=_form("category"),
        status=_form("status") or "active",
        membership_end=_day("membership_end"),
        staff=bool(request.form.get("staff")),
        paid_by=paid_by,
    )


def _member_form(status: int = 200, **values: Any) -> tuple[str, int]:
    store = get_store()
    return _page(
        "admin/member_form.html",
        status,
        categories=categories.categories(store),
        organisations=organisations.organisations(store),
        **values,
    )


@admin.route("/members/new", methods=["GET", "POST"])
@requires(*STAFF)
def member_new() -> BaseResponse | tuple[str, int]:
    store = get_store()
    if request.method == "GET":
        return _member_form(member=None, values={"category": "adherent", "status": "active"})
    try:
        badge = _form("badge")
        uids = []
        if badge:
            try:
                uids = [normalise_uid(badge)]
            except ValueError as exc:
                raise Refused("badge", str(exc)) from None
        member_id = hub_members.create_member(
            store,
            _member_fields(store),
            by=_by(),
            member_id=_form("id") or None,
            badges=uids,
            joined=utcnow().astimezone(ZoneInfo(hub_config().timezone)).date(),
        )
    except (MemberError, Refused) as exc:
        r = _refused(exc)
        return _member_form(400, member=None, values=dict(request.form), error=r.message)
    _say("ok", gettext("Member created."))
    return redirect(url_for("people.member", member_id=member_id, lang=_lang()))


@admin.route("/members/<member_id>", methods=["GET", "POST"])
@requires(*STAFF)
def member_edit(member_id: str) -> BaseResponse | tuple[str, int]:
    store = get_store()
    m = hub_members.member(store, member_id)
    if m is None:
        abort(404)
    badges = hub_members.badges_of(store, member_id)
    if request.method == "GET":
        return _member_form(member=m, values=m, badges=badges)
    try:
        changes = hub_members.edit_member(store, member_id, _member_fields(store), by=_by())
    except (MemberError, Refused) as exc:
        r = _refused(exc)
        return _member_form(
            400, member=m, values=dict(request.form), badges=badges, error=r.message
        )
    _say("ok", (gettext("Saved.") if changes else gettext("Nothing changed.")))
    return redirect(url_for("admin.member_edit", member_id=member_id, lang=_lang()))


@admin.post("/members/<member_id>/status")
@requires(*STAFF)
def member_status(member_id: str) -> BaseResponse:
    """Suspend or reinstate in one click; the next snapshot says so within a second."""
    store = get_store()
    m = hub_members.member(store, member_id)
    if m is None:
        abort(404)
    status = _form("status")
    fields = MemberFields(
        name=m["name"],
        email=m["email"],
        category=m["category"],
        status=status,
        membership_end=date.fromisoformat(m["membership_end"]) if m["membership_end"] else None,
        staff=bool(m["staff"]),
        paid_by=m["paid_by"],
    )
    try:
        hub_members.edit_member(store, member_id, fields, by=_by())
    except MemberError as exc:
        _say("error", gettext("Refused: %(message)s", message=exc.message))
    else:
        _say(
            "ok",
            (
                gettext("Member suspended: the machines refuse them from now on.")
                if status == "suspended"
                else gettext("Member reinstated.")
            ),
        )
    return redirect(url_for("admin.member_edit", member_id=member_id, lang=_lang()))


@admin.post("/members/<member_id>/badges")
@requires(*STAFF)
def badge_add(member_id: str) -> BaseResponse:
    try:
        hub_members.add_badge_by_uid(get_store(), member_id, _form("uid"), by=_by())
    except MemberError as exc:
        _say("error", gettext("Refused: %(message)s", message=exc.message))
    else:
        _say("ok", gettext("Badge added: it opens machines from now on."))
    return redirect(url_for("admin.member_edit", member_id=member_id, lang=_lang()) + "#badges")


@admin.post("/members/<member_id>/badges/<uid>/reactivate")
@requires(*STAFF)
def badge_reactivate(member_id: str, uid: str) -> BaseResponse:
    ok = hub_members.reactivate_badge(get_store(), member_id, uid, by=_by())
    _say(
        "ok" if ok else "error",
        (gettext("Badge reactivated.") if ok else gettext("This badge was not blocked.")),
    )
    return redirect(url_for("admin.member_edit", member_id=member_id, lang=_lang()) + "#badges")


# -- categories ------------------------------------------------------------------------


@admin.route("/categories", methods=["GET", "POST"])
@requires(*STAFF)
def category_list() -> BaseResponse | tuple[str, int]:
    store = get_store()
    error = None
    if request.method == "POST":
        try:
            categories.create_category(
                store, _form("code"), _form("label_fr"), _form("label_en"), by=_by()
            )
        except CategoryError as exc:
            error = str(exc)
        else:
            _say("ok", gettext("Saved."))
            return redirect(url_for("admin.category_list", lang=_lang()))
    return _page(
        "admin/categories.html",
        400 if error else 200,
        categories=categories.categories(store),
        error=error,
        values=dict(request.form),
    )


@admin.post("/categories/<code>")
@requires(*STAFF)
def category_edit(code: str) -> BaseResponse:
    try:
        changed = categories.update_category(
            get_store(),
            code,
            label_fr=_form("label_fr"),
            label_en=_form("label_en"),
            active=bool(request.form.get("active")),
            by=_by(),
        )
    except CategoryError as exc:
        _say("error", gettext("Refused: %(message)s", message=str(exc)))
    else:
        _say("ok", (gettext("Saved.") if changed else gettext("Nothing changed.")))
    return redirect(url_for("admin.category_list", lang=_lang()))


# -- machines and groups -----------------------------------------------------------------


def _machine_config(machine_id: str) -> MachineConfig:
    node = _form("node")
    return MachineConfig(
        id=machine_id,
        name=_form("name"),
        kind=_form("kind"),
        group=_form("group"),
        min_level=_int("min_level", int(Level.AUTONOMOUS)),
        out_of_service=bool(request.form.get("out_of_service")),
        requires_credit=bool(request.form.get("requires_credit")),
        certify_level=_int("certify_level", int(Level.AUTONOMOUS)),
        node=node if node and node != machine_id else None,
    )


def _machines_page(status: int = 200, **values: Any) -> tuple[str, int]:
    store = get_store()
    return _page(
        "admin/machines.html",
        status,
        machines=catalogue.machines(store),
        groups=catalogue.groups(store),
        kinds=MACHINE_KINDS,
        levels=[lv for lv in LEVELS if lv >= Level.SUPERVISED],
        certify_levels=CERTIFY_LEVELS,
        **values,
    )


@admin.route("/machines", methods=["GET", "POST"])
@requires(*STAFF)
def machine_list() -> BaseResponse | tuple[str, int]:
    if request.method == "GET":
        return _machines_page(values={})
    try:
        machine_id = _form("id")
        catalogue.save_machine(
            get_store(),
            _machine_config(machine_id),
            by=_by(),
            new=True,
            reason=_form("out_of_service_reason"),
        )
    except (CatalogueError, Refused) as exc:
        return _machines_page(400, values=dict(request.form), error=_refused(exc).message)
    _say("ok", gettext("Machine created."))
    return redirect(url_for("admin.machine_list", lang=_lang()))


@admin.route("/machines/<machine_id>", methods=["GET", "POST"])
@requires(*STAFF)
def machine_edit(machine_id: str) -> BaseResponse | tuple[str, int]:
    store = get_store()
    m = catalogue.machine(store, machine_id)
    if m is None:
        abort(404)
    values: dict[str, Any] = {**m, "group": m["group_id"], "node": m["node_id"]}
    if request.method == "POST":
        try:
            changes = catalogue.save_machine(
                store,
                _machine_config(machine_id),
                by=_by(),
                new=False,
                reason=_form("out_of_service_reason"),
            )
        except (CatalogueError, Refused) as exc:
            return _machine_page(m, 400, values=dict(request.form), error=_refused(exc).message)
        _say("ok", (gettext("Saved.") if changes else gettext("Nothing changed.")))
        return redirect(url_for("admin.machine_edit", machine_id=machine_id, lang=_lang()))
    return _machine_page(m, values=values)


# The session rules' form fields, named as in a node file's ``session:`` section, and the
# snapshot's name of each (docs/admin.md, "Session rules").
RULE_FIELDS = {
    "grace": "grace_s",
    "idle_timeout": "idle_timeout_s",
    "max_length": "max_length_s",
    "cooldown": "cooldown_s",
    "hold_for": "hold_s",
    "progress_every": "progress_every_s",
}


def duration_text(seconds: float | None) -> str:
    """900 -> "15m", 90 -> "1m30s": what the form shows, and takes back."""
    if seconds is None:
        return ""
    whole = int(seconds)
    if whole != seconds:
        return f"{seconds:g}s"
    parts = []
    for unit, size in (("h", 3600), ("m", 60), ("s", 1)):
        if whole >= size:
            parts.append(f"{whole // size}{unit}")
            whole %= size
    return "".join(parts) or "0s"


def _class_defaults(kind: str) -> dict[str, str]:
    """What a machine of ``kind`` does when neither the hub nor its node file says."""
    base: SessionRules = DEFAULT_RULES.get(kind, DEFAULT_RULES["other"])
    never = gettext("none")

    def text(value: float | None) -> str:
        return never if value is None else duration_text(value)

    return {
        "grace": text(base.grace_s),
        "idle_timeout": text(base.idle_timeout_s),
        "max_length": text(base.max_session_s),
        "cooldown": text(base.cooldown_s),
        "hold_for": text(base.hold_s),
        "progress_every": duration_text(SessionConfig().progress_every),
        "never_cut_busy": gettext("yes") if base.never_cut_busy else gettext("no"),
    }


def _rule_values(rules: MachineRules) -> dict[str, str]:
    values = {field: duration_text(getattr(rules, wire)) for field, wire in RULE_FIELDS.items()}
    flag = rules.never_cut_busy
    values["never_cut_busy"] = "" if flag is None else str(int(flag))
    return values


def _machine_page(
    m: dict[str, Any],
    status: int = 200,
    *,
    values: dict[str, Any],
    error: str | None = None,
    rule_values: dict[str, str] | None = None,
    rules_error: str | None = None,
) -> tuple[str, int]:
    store = get_store()
    return _page(
        "admin/machine.html",
        status,
        machine=m,
        values=values,
        groups=catalogue.groups(store),
        kinds=MACHINE_KINDS,
        certify_levels=CERTIFY_LEVELS,
        error=error,
        rule_values=(
            rule_values
            if rule_values is not None
            else _rule_values(machine_rules.rules_of(store, m["id"]))
        ),
        rule_fields=list(RULE_FIELDS),
        rule_defaults=_class_defaults(m["kind"]),
        never_cut_kind=never_cut_kind(m["kind"]),
        rules_error=rules_error,
    )


def _rules_from_form() -> MachineRules:
    """The form's rules; an empty field is "the node's own setting" (None)."""
    values: dict[str, Any] = {}
    for field, wire in RULE_FIELDS.items():
        text = _form(field)
        if not text:
            values[wire] = None
            continue
        try:
            seconds = parse_duration(text).total_seconds()
        except ValueError:
            message = gettext(
                "%(rule)s: a duration such as 90s, 15m or 1h30m", rule=label("admin.rules", field)
            )
            raise Refused(field, message) from None
        lo, hi = RULE_BOUNDS[wire]
        if not lo <= seconds <= hi:
            raise Refused(
                field,
                gettext(
                    "%(rule)s: from %(lo)s to %(hi)s",
                    rule=label("admin.rules", field),
                    lo=duration_text(lo),
                    hi=duration_text(hi),
                ),
            )
        values[wire] = seconds
    flag = _form("never_cut_busy")
    if flag not in ("", "0", "1"):
        raise Refused("never_cut_busy", gettext("node's setting, yes or no"))
    values["never_cut_busy"] = None if flag == "" else flag == "1"
    return MachineRules(**values)


@admin.post("/machines/<machine_id>/rules")
@requires(*STAFF)
def machine_rules_edit(machine_id: str) -> BaseResponse | tuple[str, int]:
    """The machine's session rules; its node applies them from its next snapshot (within
    a second), to the open session too, at its next check."""
    store = get_store()
    m = catalogue.machine(store, machine_id)
    if m is None:
        abort(404)
    try:
        changes = machine_rules.set_rules(store, machine_id, _rules_from_form(), by=_by())
    except (RulesError, Refused) as exc:
        message = _refused(exc).message
        if isinstance(exc, RulesError) and exc.field == "never_cut_busy":
            # One literal, not a parenthesised concatenation: extraction must find it.
            message = gettext(
                "A machine of kind %(kind)s never cuts a job in progress: this cannot be turned off from the web.",  # noqa: E501
                kind=m["kind"],
            )
        return _machine_page(
            m,
            400,
            values={**m, "group": m["group_id"], "node": m["node_id"]},
            rule_values={k: _form(k) for k in (*RULE_FIELDS, "never_cut_busy")},
            rules_error=message,
        )
    _say(
        "ok",
        (
            gettext("Rules saved: the node applies them from now on.")
            if changes
            else gettext("Nothing changed.")
        ),
    )
    return redirect(url_for("admin.machine_edit", machine_id=machine_id, lang=_lang()))


@admin.post("/machines/<machine_id>/service")
@requires(*STAFF)
def machine_service(machine_id: str) -> BaseResponse:
    """Out of service (with the reason the node and the board show) or back in service;
    the machine's node has it in its next snapshot, within a second."""
    store = get_store()
    if catalogue.machine(store, machine_id) is None:
        abort(404)
    out = _form("out_of_service") == "1"
    try:
        catalogue.set_out_of_service(
            store, machine_id, out, _form("out_of_service_reason"), by=_by()
        )
    except CatalogueError as exc:
        _say("error", gettext("Refused: %(message)s", message=exc.message))
    else:
        _say("ok", (gettext("Put out of service") if out else gettext("Back in service")))
    return redirect(_back(url_for("admin.machine_list", lang=_lang())))


def _back(default: str) -> str:
    target = request.form.get("next", "")
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return default


def _group_config(group_id: str) -> GroupConfig:
    lapse = _form("lapse_months")
    return GroupConfig(
        id=group_id,
        name=_form("name"),
        default_validity_months=_int("default_validity_months", 24),
        lapse_months=_int("lapse_months") if lapse else None,
    )


@admin.route("/groups", methods=["GET", "POST"])
@requires(*STAFF)
def group_list() -> BaseResponse | tuple[str, int]:
    store = get_store()
    error = None
    if request.method == "POST":
        try:
            catalogue.save_group(store, _group_config(_form("id")), by=_by(), new=True)
        except (CatalogueError, Refused) as exc:
            error = _refused(exc).message
        else:
            _say("ok", gettext("Saved."))
            return redirect(url_for("admin.group_list", lang=_lang()))
    return _page(
        "admin/groups.html",
        400 if error else 200,
        groups=catalogue.groups(store),
        error=error,
        values=dict(request.form),
    )


@admin.post("/groups/<group_id>")
@requires(*STAFF)
def group_edit(group_id: str) -> BaseResponse:
    store = get_store()
    if catalogue.group(store, group_id) is None:
        abort(404)
    try:
        changes = catalogue.save_group(store, _group_config(group_id), by=_by(), new=False)
    except (CatalogueError, Refused) as exc:
        _say("error", gettext("Refused: %(message)s", message=_refused(exc).message))
    else:
        _say("ok", (gettext("Saved.") if changes else gettext("Nothing changed.")))
    return redirect(url_for("admin.group_list", lang=_lang()))


# -- opening hours and closures ------------------------------------------------------------


def _slots(text: str, day: int) -> tuple[tuple[time, time], ...]:
    out = []
    for part in text.replace(";", ",").split(","):
        part = part.strip()
        if not part:
            continue
        try:
            a, b = (time.fromisoformat(p.strip()) for p in part.split("-"))
        except ValueError:
            raise Refused(
                f"day{day}", gettext("“%(slot)s” is not an HH:MM-HH:MM slot", slot=part)
            ) from None
        out.append((a, b))
    return tuple(sorted(out))


def _hours_page(status: int = 200, **values: Any) -> tuple[str, int]:
    store = get_store()
    weekly = hours.weekly_hours(store)
    tz = ZoneInfo(hub_config().timezone)
    today = utcnow().astimezone(tz).date()
    return _page(
        "admin/hours.html",
        status,
        weekdays=WEEKDAYS,
        weekly={
            d: ", ".join(f"{a:%H:%M}-{b:%H:%M}" for a, b in weekly.get(d, ())) for d in range(7)
        },
        closures=hours.closures(store, from_day=today - timedelta(days=30)),
        **values,
    )


@admin.route("/hours", methods=["GET", "POST"])
@requires(*STAFF)
def hours_page() -> BaseResponse | tuple[str, int]:
    if request.method == "GET":
        return _hours_page()
    try:
        weekly = {d: s for d in range(7) if (s := _slots(_form(f"day{d}"), d))}
        changed = hours.set_weekly_hours(get_store(), weekly, by=_by())
    except (HoursError, Refused) as exc:
        return _hours_page(400, error=_refused(exc).message)
    _say("ok", (gettext("Saved.") if changed else gettext("Nothing changed.")))
    return redirect(url_for("admin.hours_page", lang=_lang()))


@admin.post("/closures")
@requires(*STAFF)
def closure_add() -> BaseResponse | tuple[str, int]:
    try:
        first = _day("first_day", required=True)
        last = _day("last_day") or first
        assert first is not None and last is not None
        hours.add_closure(get_store(), first, last, _form("label"), by=_by())
    except (HoursError, Refused) as exc:
        return _hours_page(400, error=_refused(exc).message)
    _say("ok", gettext("Closure added."))
    return redirect(url_for("admin.hours_page", lang=_lang()))


@admin.post("/closures/<int:closure_id>/remove")
@requires(*STAFF)
def closure_remove(closure_id: int) -> BaseResponse:
    ok = hours.remove_closure(get_store(), closure_id, by=_by())
    _say(
        "ok" if ok else "error",
        (gettext("Closure removed.") if ok else gettext("Unknown closure.")),
    )
    return redirect(url_for("admin.hours_page", lang=_lang()))


# -- tariffs ---------------------------------------------------------------------------


def _tariff_from_form() -> Tariff:
    """The form as the hub file's tariff entry, checked by the same parser: the same
    rules and messages (key, what was expected) whichever way a tariff is written."""
    store = get_store()
    item: dict[str, Any] = {"name": _form("name"), "valid_from": _form("valid_from")}
    for key in ("machines", "groups", "categories"):
        chosen = [v for v in request.form.getlist(key) if v]
        if chosen:
            item[key] = chosen
    if _form("mode") == "split":
        item["busy_rate"] = _cents("busy_rate")
        item["idle_rate"] = _cents("idle_rate")
    else:
        item["rate"] = _cents("rate")
    item["startup"] = _cents("startup")
    item["minimum"] = _cents("minimum")
    item["unit"] = _int("unit", 1)
    item["free_under"] = _int("free_under_s", 0)
    per_gram = _form("material_per_gram").replace(",", ".")
    if per_gram:
        item["material_per_gram"] = per_gram
    vat = _form("vat_percent").replace(",", ".")
    try:
        item["vat_rate"] = str(Decimal(vat) / 100) if vat else "0.20"
    except InvalidOperation:
        raise Refused("vat_percent", gettext("a whole number")) from None
    return parse_tariffs(
        [item],
        "tariff",
        tz=hub_config().timezone,
        machines=catalogue.machine_ids(store),
        groups=[gr["id"] for gr in catalogue.groups(store)],
        categories=categories.codes(store),
    )[0]


def _tariff_values(t: Tariff) -> dict[str, Any]:
    tz = ZoneInfo(hub_config().timezone)
    local = t.valid_from.astimezone(tz)

    def euros(cents: int | None) -> str:
        return "" if cents is None else f"{cents / 100:.2f}"

    return {
        "name": t.name,
        "valid_from": local.date().isoformat() if local.time() == time(0) else local.isoformat(),
        "machines": list(t.machines),
        "groups": list(t.groups),
        "categories": list(t.categories),
        "mode": "split" if t.split else "rate",
        "rate": euros(t.rate),
        "busy_rate": euros(t.busy_rate),
        "idle_rate": euros(t.idle_rate),
        "startup": euros(t.startup),
        "minimum": euros(t.minimum),
        "unit": t.unit,
        "free_under_s": int(t.free_under_s),
        "material_per_gram": str(t.material_per_gram),
        "vat_percent": f"{t.vat_rate * 100:g}",
    }


def _tariffs_context() -> dict[str, Any]:
    store = get_store()
    lang = _lang()
    return {
        "entries": pricing.tariff_entries(store),
        "machines": catalogue.machines(store),
        "groups": catalogue.groups(store),
        "categories": categories.categories(store),
        "money": lambda cents: "" if cents is None else format_money(cents, lang),
        "local": lambda dt: dt.astimezone(ZoneInfo(hub_config().timezone)).strftime(
            "%d/%m/%Y %H:%M"
        ),
    }


@admin.route("/tariffs", methods=["GET", "POST"])
@requires(*MONEY)
def tariff_list() -> BaseResponse | tuple[str, int]:
    store = get_store()
    if request.method == "GET":
        return _page(
            "admin/tariffs.html",
            values={"mode": "rate", "vat_percent": "20", "unit": 1},
            tariff_id=None,
            **_tariffs_context(),
        )
    try:
        _, repriced = pricing.save_tariff(store, None, _tariff_from_form(), by=_by())
    except (TariffError, Refused) as exc:
        return _page(
            "admin/tariffs.html",
            400,
            values=_sticky(),
            tariff_id=None,
            error=_refused(exc).message,
            **_tariffs_context(),
        )
    _say_repriced(repriced)
    return redirect(url_for("admin.tariff_list", lang=_lang()))


def _sticky() -> dict[str, Any]:
    values: dict[str, Any] = dict(request.form)
    for key in ("machines", "groups", "categories"):
        values[key] = request.form.getlist(key)
    return values


def _say_repriced(repriced: pricing.Repricing | None) -> None:
    if repriced is not None and repriced.changed:
        _say(
            "warning",
            ngettext(
                "Saved: %(num)s session re-priced, difference %(delta)s.",
                "Saved: %(num)s sessions re-priced, difference %(delta)s.",
                repriced.changed,
                delta=format_money(repriced.delta_cents, _lang()),
            ),
        )
    else:
        _say("ok", gettext("Saved."))


@admin.route("/tariffs/<tariff_id>", methods=["GET", "POST"])
@requires(*MONEY)
def tariff_edit(tariff_id: str) -> BaseResponse | tuple[str, int]:
    store = get_store()
    entry = next((e for e in pricing.tariff_entries(store) if e.tariff_id == tariff_id), None)
    if entry is None:
        abort(404)
    if request.method == "GET":
        return _page(
            "admin/tariffs.html",
            values=_tariff_values(entry.tariff),
            tariff_id=tariff_id,
            origin=entry.origin,
            **_tariffs_context(),
        )
    try:
        _, repriced = pricing.save_tariff(store, tariff_id, _tariff_from_form(), by=_by())
    except (TariffError, Refused) as exc:
        return _page(
            "admin/tariffs.html",
            400,
            values=_sticky(),
            tariff_id=tariff_id,
            error=_refused(exc).message,
            **_tariffs_context(),
        )
    _say_repriced(repriced)
    return redirect(url_for("admin.tariff_list", lang=_lang()))


@admin.post("/tariffs/<tariff_id>/delete")
@requires(*MONEY)
def tariff_delete(tariff_id: str) -> BaseResponse:
    try:
        repriced = pricing.delete_tariff(get_store(), tariff_id, by=_by())
    except TariffError:
        abort(404)
    _say_repriced(repriced)
    return redirect(url_for("admin.tariff_list", lang=_lang()))


def preview(
    tariffs: tuple[Tariff, ...],
    *,
    machine: str,
    group: str,
    category: str,
    at: datetime,
    duration_s: float,
    busy_s: float | None,
    material_g: Decimal,
    lang: str,
) -> dict[str, Any]:
    """What a session would cost: the tariff the one pricing rule selects and its price,
    with the line an invoice prints. Pure: the same functions price closed sessions."""
    tariff = select_tariff(tariffs, machine=machine, group=group, category=category, at=at)
    price = price_session(tariff, duration_s=duration_s, busy_s=busy_s, material_g=material_g)
    vat = 0 if tariff is None else round_half_up(price.total * tariff.vat_rate)
    return {
        "tariff": tariff,
        "price": price,
        "explain": explain(price, lang),
        "ht": format_money(price.total, lang),
        "vat": format_money(vat, lang),
        "ttc": format_money(price.total + vat, lang),
    }


@admin.get("/tariffs/preview")
@requires(*MONEY)
def tariff_preview() -> tuple[str, int]:
    store = get_store()
    args = request.args
    result = None
    error = None
    if args.get("machine"):
        try:
            m = catalogue.machine(store, args["machine"])
            if m is None:
                raise Refused("machine", gettext("a known machine"))
            tz = ZoneInfo(hub_config().timezone)
            at_text = args.get("at") or utcnow().astimezone(tz).strftime("%Y-%m-%dT%H:%M")
            at = datetime.fromisoformat(at_text)
            at = at if at.tzinfo else at.replace(tzinfo=tz)
            minutes = Decimal(args.get("minutes", "0").replace(",", ".") or "0")
            busy = args.get("busy_minutes", "").replace(",", ".")
            grams = Decimal(args.get("grams", "0").replace(",", ".") or "0")
            if minutes < 0 or grams < 0:
                raise Refused("minutes", gettext("a whole number"))
            result = preview(
                pricing.load_tariffs(store),
                machine=m["id"],
                group=m["group_id"],
                category=args.get("category", ""),
                at=at,
                duration_s=float(minutes * 60),
                busy_s=float(Decimal(busy) * 60) if busy else None,
                material_g=grams,
                lang=_lang(),
            )
        except (ValueError, InvalidOperation, Refused) as exc:
            error = _refused(exc).message if isinstance(exc, Refused) else str(exc)
    return _page(
        "admin/tariff_preview.html",
        400 if error else 200,
        result=result,
        error=error,
        values=dict(args),
        **_tariffs_context(),
    )


# -- organisations -----------------------------------------------------------------------


def _organisation(org_id: str) -> Organisation:
    return Organisation(
        id=org_id,
        name=_form("name"),
        kind=_form("kind") or "other",
        address=_form("address") or None,
        postcode=_form("postcode") or None,
        city=_form("city") or None,
        country=_form("country") or None,
        siret=_form("siret") or None,
        vat_number=_form("vat_number") or None,
        email=_form("email") or None,
    )


@admin.route("/organisations", methods=["GET", "POST"])
@requires(*MONEY)
def organisation_list() -> BaseResponse | tuple[str, int]:
    store = get_store()
    error = None
    if request.method == "POST":
        try:
            organisations.save_organisation(store, _organisation(_form("id")), by=_by(), new=True)
        except OrganisationError as exc:
            error = exc.message
        else:
            _say("ok", gettext("Saved."))
            return redirect(url_for("admin.organisation_edit", org_id=_form("id"), lang=_lang()))
    return _page(
        "admin/organisations.html",
        400 if error else 200,
        organisations=organisations.organisations(store),
        kinds=organisations.KINDS,
        error=error,
        values=dict(request.form),
    )


@admin.route("/organisations/<org_id>", methods=["GET", "POST"])
@requires(*MONEY)
def organisation_edit(org_id: str) -> BaseResponse | tuple[str, int]:
    store = get_store()
    org = organisations.organisation(store, org_id)
    if org is None:
        abort(404)
    error = None
    values: dict[str, Any] = org
    if request.method == "POST":
        try:
            changes = organisations.save_organisation(
                store, _organisation(org_id), by=_by(), new=False
            )
        except OrganisationError as exc:
            error, values = exc.message, dict(request.form)
        else:
            _say("ok", (gettext("Saved.") if changes else gettext("Nothing changed.")))
            return redirect(url_for("admin.organisation_edit", org_id=org_id, lang=_lang()))
    return _page(
        "admin/organisation.html",
        400 if error else 200,
        org=org,
        values=values,
        kinds=organisations.KINDS,
        paid=hub_members.find_members(store, paid_by=org_id, limit=PICKER_LIMIT)[1],
        picker=member_picker(store),
        error=error,
    )


@admin.post("/organisations/<org_id>/members")
@requires(*MONEY)
def organisation_members(org_id: str) -> BaseResponse:
    """Attach a member (a pupil to the school that pays for them), or detach one: their
    next sessions are invoiced to the organisation, or to themselves again."""
    store = get_store()
    if organisations.organisation(store, org_id) is None:
        abort(404)
    try:
        member_id = picked_member(store)
        m = hub_members.member(store, member_id)
        assert m is not None
        detach = _form("action") == "detach"
        if detach and m["paid_by"] != org_id:
            raise Refused("member_id", gettext("this member is not attached to this organisation"))
        hub_members.edit_member(
            store,
            member_id,
            MemberFields(
                name=m["name"],
                email=m["email"],
                category=m["category"],
                status=m["status"],
                membership_end=date.fromisoformat(m["membership_end"])
                if m["membership_end"]
                else None,
                staff=bool(m["staff"]),
                paid_by=None if detach else org_id,
            ),
            by=_by(),
        )
    except (MemberError, Refused) as exc:
        _say("error", gettext("Refused: %(message)s", message=_refused(exc).message))
    else:
        _say(
            "ok",
            (
                gettext("%(name)s is detached.", name=m["name"])
                if detach
                else gettext(
                    "%(name)s is attached: their next sessions are invoiced to it.",
                    name=m["name"],
                )
            ),
        )
    return redirect(url_for("admin.organisation_edit", org_id=org_id, lang=_lang()))


# -- log-ins and roles -------------------------------------------------------------------


def _accounts_page(status: int = 200, **values: Any) -> tuple[str, int]:
    store = get_store()
    return _page(
        "admin/accounts.html",
        status,
        accounts=accounts.list_accounts(store),
        picker=member_picker(store),
        roles=STORED_ROLES,
        groups=catalogue.groups(store),
        **values,
    )


@admin.route("/accounts", methods=["GET", "POST"])
@requires(*ADMINS)
def account_list() -> BaseResponse | tuple[str, int]:
    store = get_store()
    if request.method == "GET":
        return _accounts_page(values={})
    try:
        member_id = picked_member(store)
        email = _form("email") or hub_members.email_of(store, member_id) or ""
        password = request.form.get("password", "") or None
        accounts.create_account(store, member_id, email, actor=_by(), password=password)
    except Refused as exc:
        return _accounts_page(400, values=dict(request.form), error=exc.message)
    except ValueError as exc:
        return _accounts_page(400, values=dict(request.form), error=str(exc))
    _say("ok", gettext("Log-in created."))
    return redirect(url_for("admin.account_list", lang=_lang()))


@admin.post("/accounts/<member_id>/roles")
@requires(*ADMINS)
def account_role(member_id: str) -> BaseResponse:
    store = get_store()
    role = _form("role")
    group_id = _form("group_id") or None if role == "trainer" else None
    try:
        if _form("action") == "revoke":
            ok = accounts.revoke_role(store, member_id, role, group_id, actor=_by())
            said = gettext("Role revoked.") if ok else gettext("Nothing changed.")
        else:
            if accounts.load_user(store, member_id) is None:
                raise ValueError(f"no account for member {member_id!r}")
            ok = accounts.grant_role(store, member_id, role, group_id, actor=_by())
            said = gettext("Role granted.") if ok else gettext("Nothing changed.")
    except ValueError as exc:
        _say("error", gettext("Refused: %(message)s", message=str(exc)))
    else:
        _say("ok", said)
    return redirect(url_for("admin.account_list", lang=_lang()))


@admin.post("/accounts/<member_id>/password")
@requires(*ADMINS)
def account_password(member_id: str) -> BaseResponse:
    """A first password, or a new one for someone who lost theirs (their other sessions
    end: the cookie carries a fingerprint of the hash)."""
    try:
        accounts.set_password(get_store(), member_id, request.form.get("password", ""), actor=_by())
    except ValueError as exc:
        _say("error", gettext("Refused: %(message)s", message=str(exc)))
    else:
        _say("ok", gettext("Password saved."))
    return redirect(url_for("admin.account_list", lang=_lang()))


# -- prepaid credit ----------------------------------------------------------------------


@admin.route("/credit", methods=["GET", "POST"])
@requires(*MONEY)
def credit_page() -> BaseResponse | tuple[str, int]:
    store = get_store()
    lang = _lang()
    error = None
    if request.method == "POST":
        try:
            member_id = picked_member(store)
            text = _form("amount")
            negative = text.startswith("-")
            cents = parse_amount(text.lstrip("-"))
            new = credit.top_up(
                store,
                member_id,
                -cents if negative else cents,
                at=utcnow(),
                note=_form("note")[:MAX_NOTE],
                by=_by(),
            )
        except Refused as exc:
            error = exc.message
        except ValueError as exc:
            error = str(exc)
        else:
            _say(
                "ok", gettext("Credited: new balance %(balance)s.", balance=format_money(new, lang))
            )
            return redirect(url_for("admin.credit_page", lang=lang))
    return _page(
        "admin/credit.html",
        400 if error else 200,
        balances=credit.balances(store),
        picker=member_picker(store),
        money=lambda cents: format_money(cents, lang),
        error=error,
        values=dict(request.form),
    )
