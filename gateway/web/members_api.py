"""``/api/v1/members``: the member list (with filters) and member creation, for other tools.

A fixed interface (docs/admin.md, "Members API"): a bearer token with the ``members``
scope (or a hub-configuration token). ``GET`` lists, ``POST`` creates one member (and
their badges) exactly as the member page does, through ``gateway.hub.members``, audited
with the token as the actor. A new member's badges open machines at the next snapshot,
within a second, like any other change.
"""

from __future__ import annotations

from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, g, jsonify, request

from gateway.core.clock import utcnow
from gateway.core.ids import normalise_uid
from gateway.hub import members
from gateway.hub.members import MemberError, MemberFields
from gateway.web.auth import public
from gateway.web.bearer import check_bearer, endpoint_scope, scope
from gateway.web.context import get_store, hub_config

members_api = Blueprint("members_api", __name__, url_prefix="/api/v1")

MAX_LIMIT = 1000
_KEYS = frozenset(
    {"id", "name", "email", "category", "status", "membership_end", "staff", "paid_by", "badges"}
)


class BadRequest(ValueError):
    def __init__(self, field: str, message: str, status: int = 400) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.status = status


@members_api.errorhandler(BadRequest)
def _bad(exc: BadRequest) -> tuple[Response, int]:
    return jsonify(error=str(exc), field=exc.field), exc.status


@members_api.before_request
def _require_token() -> tuple[Response, int, dict[str, str]] | None:
    return check_bearer(endpoint_scope())


def _actor() -> str:
    token = g.get("fabgate_token") or {}
    if token.get("source") == "database":
        return f"token:{token.get('name')}"
    return "token:config"


def _flag(name: str) -> bool | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    if raw.lower() in ("1", "true", "yes"):
        return True
    if raw.lower() in ("0", "false", "no"):
        return False
    raise BadRequest(name, f"true or false, got {raw!r}")


def _number(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name, str(default))
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise BadRequest(name, f"an integer from {low} to {high}, got {raw!r}")
    return int(raw)


@members_api.get("/members")
@public
@scope("members")
def list_members() -> Response:
    """``?q=&status=&category=&paid_by=&staff=&limit=&offset=``; newest filters AND-ed."""
    status = request.args.get("status") or None
    if status is not None and status not in ("active", "suspended"):
        raise BadRequest("status", f"active or suspended, got {status!r}")
    total, rows = members.find_members(
        get_store(),
        q=request.args.get("q") or None,
        status=status,
        category=request.args.get("category") or None,
        paid_by=request.args.get("paid_by") or None,
        staff=_flag("staff"),
        limit=_number("limit", 100, 1, MAX_LIMIT),
        offset=_number("offset", 0, 0, 10**9),
    )
    return jsonify(total=total, members=rows)


def _text(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadRequest(key, "text")
    return value


@members_api.post("/members")
@public
@scope("members")
def create_member() -> tuple[Response, int]:
    """One member from a JSON object; 201 with the stored member, 400 naming the field,
    409 when the id or a badge is already someone's."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise BadRequest("body", "a JSON object")
    unknown = sorted(set(body) - _KEYS)
    if unknown:
        raise BadRequest(unknown[0], f"a known key ({', '.join(sorted(_KEYS))})")
    end_text = _text(body, "membership_end")
    try:
        end = date.fromisoformat(end_text) if end_text else None
    except ValueError:
        raise BadRequest("membership_end", "a date YYYY-MM-DD") from None
    staff = body.get("staff", False)
    if not isinstance(staff, bool):
        raise BadRequest("staff", "true or false")
    raw_badges = body.get("badges", [])
    if not isinstance(raw_badges, list) or not all(isinstance(b, str) for b in raw_badges):
        raise BadRequest("badges", "a list of badge UIDs")
    try:
        badges = list(dict.fromkeys(normalise_uid(b) for b in raw_badges))
    except ValueError as exc:
        raise BadRequest("badges", str(exc)) from None
    fields = MemberFields(
        name=_text(body, "name") or "",
        category=_text(body, "category") or "",
        email=_text(body, "email"),
        status=_text(body, "status") or "active",
        membership_end=end,
        staff=staff,
        paid_by=_text(body, "paid_by"),
    )
    store = get_store()
    try:
        member_id = members.create_member(
            store,
            fields,
            by=_actor(),
            member_id=_text(body, "id"),
            badges=badges,
            joined=utcnow().astimezone(ZoneInfo(hub_config().timezone)).date(),
        )
    except MemberError as exc:
        taken = "already" in exc.message
        raise BadRequest(exc.field, exc.message, 409 if taken else 400) from None
    _, rows = members.find_members(store, q=member_id, limit=MAX_LIMIT)
    created = next(r for r in rows if r["id"] == member_id)
    return jsonify(member=created), 201
