"""``/api/v1``: usage for accounting, live machines and sessions, behind bearer tokens.

Usage reports can cover a year of per-minute rows, so JSON and CSV are both streamed
row by row from the database cursor instead of being built in memory. The body is
produced after the view has returned and the request's teardown has closed the request's
store, so a streamed report opens its own store and closes it after the last row (or when
the client goes away and the server closes the generator).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, g, jsonify, request

from gateway.billing.exports import FORMATS, chunked, usage_export
from gateway.billing.usage import DIMENSIONS, GRANULARITIES
from gateway.core.clock import utcnow
from gateway.core.months import local_month
from gateway.hub import personal_data
from gateway.hub.jobs import recent_jobs
from gateway.hub.machine_state import machines_live
from gateway.hub.sessions import recent_sessions
from gateway.web.auth import public
from gateway.web.bearer import check_bearer, endpoint_scope, scope
from gateway.web.context import get_store, hub_config, store_opener

api = Blueprint("api", __name__, url_prefix="/api/v1")

MAX_SESSIONS_LIMIT = 1000
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# "+01:00" arrives as " 01:00" when a client forgets to percent-encode the "+".
_SPACED_OFFSET = re.compile(r" (\d{2}:?\d{2})$")


class BadParameter(ValueError):
    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name}: {message}")
        self.name = name


@api.errorhandler(BadParameter)
def _bad_parameter(exc: BadParameter) -> tuple[Response, int]:
    return jsonify(error=str(exc), parameter=exc.name), 400


@api.before_request
def _require_token() -> tuple[Response, int, dict[str, str]] | None:
    return check_bearer(endpoint_scope())


def parse_bound(value: str, name: str, tz: str) -> datetime:
    """A date is local midnight at the site; a datetime must carry its zone."""
    value = value.strip()
    try:
        if _DATE.match(value):
            return datetime.combine(date.fromisoformat(value), time(0), ZoneInfo(tz))
        dt = datetime.fromisoformat(_SPACED_OFFSET.sub(r"+\1", value).replace("Z", "+00:00"))
    except ValueError as exc:
        raise BadParameter(
            name, f"{value!r} is not a date (YYYY-MM-DD) or an ISO 8601 datetime"
        ) from exc
    if dt.tzinfo is None:
        raise BadParameter(name, f"{value!r} has no timezone (add Z or +01:00)")
    return dt


def _range() -> tuple[datetime, datetime]:
    tz = hub_config().timezone
    start, end = local_month(utcnow(), tz)
    if request.args.get("from"):
        start = parse_bound(request.args["from"], "from", tz)
    if request.args.get("to"):
        end = parse_bound(request.args["to"], "to", tz)
    if end <= start:
        raise BadParameter("to", "must be after 'from'")
    return start, end


def _choice(name: str, allowed: tuple[str, ...], default: str) -> str:
    value = request.args.get(name, default) or default
    if value not in allowed:
        raise BadParameter(name, f"expected one of {', '.join(allowed)}, got {value!r}")
    return value


def _group_by() -> tuple[str, ...]:
    raw = request.args.get("group_by", "")
    dims = tuple(d.strip() for d in raw.split(",") if d.strip())
    for d in dims:
        if d not in DIMENSIONS:
            raise BadParameter(
                "group_by", f"unknown dimension {d!r} (expected {', '.join(DIMENSIONS)})"
            )
    if len(set(dims)) != len(dims):
        raise BadParameter("group_by", "a dimension is repeated")
    return dims


@api.get("/usage")
@public
@scope("usage")
def usage() -> Response:
    start, end = _range()
    granularity = _choice("granularity", GRANULARITIES, "session")
    group_by = _group_by()
    fmt = _choice("format", FORMATS, "json")
    tz = hub_config().timezone
    filters = {
        key: request.args[key] for key in ("member", "project", "machine") if request.args.get(key)
    }
    opener = store_opener()

    def body() -> Iterator[str]:
        # Opened at the first chunk: a response never iterated leaves nothing open.
        store = opener()
        try:
            yield from chunked(
                usage_export(
                    store,
                    start,
                    end,
                    granularity=granularity,
                    group_by=group_by,
                    fmt=fmt,
                    tz=tz,
                    filters=filters,
                )
            )
        finally:
            store.close()

    if fmt != "json":
        suffix = "-fr" if fmt == "csv-fr" else ""
        name = f"usage-{start.date().isoformat()}-{end.date().isoformat()}{suffix}.csv"
        return Response(
            body(),
            mimetype="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    return Response(body(), mimetype="application/json")


@api.get("/machines")
@public
@scope("machines")
def machines() -> Response:
    return jsonify(machines=machines_live(get_store()))


def _listing_args() -> dict[str, Any]:
    """Optional ``from``/``to`` bounds and a ``limit``, shared by the list endpoints."""
    tz = hub_config().timezone
    since = parse_bound(request.args["from"], "from", tz) if request.args.get("from") else None
    until = parse_bound(request.args["to"], "to", tz) if request.args.get("to") else None
    raw = request.args.get("limit", "100")
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_SESSIONS_LIMIT:
        raise BadParameter(
            "limit", f"expected an integer from 1 to {MAX_SESSIONS_LIMIT}, got {raw!r}"
        )
    return {"since": since, "until": until, "limit": int(raw)}


@api.get("/sessions")
@public
@scope("sessions")
def sessions() -> Response:
    return jsonify(sessions=recent_sessions(get_store(), **_listing_args()))


@api.get("/jobs")
@public
@scope("jobs")
def jobs() -> Response:
    """Jobs with their member, project and machine, newest first."""
    machine = request.args.get("machine") or None
    return jsonify(jobs=recent_jobs(get_store(), machine=machine, **_listing_args()))


@api.get("/members/<member_id>/export")
@public
@scope("members")
def member_export(member_id: str) -> Response | tuple[Response, int]:
    """Everything about one member (docs/rgpd.md), audited as asked by the token."""
    token = g.get("fabgate_token") or {}
    actor = f"token:{token.get('name') or token.get('source', '?')}"
    try:
        document = personal_data.export_member(get_store(), member_id, now=utcnow(), by=actor)
    except KeyError:
        return jsonify(error=f"no member {member_id!r}"), 404
    return jsonify(document)
