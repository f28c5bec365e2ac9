"""The public board: which machine is free, in use since when, recent sessions.

It is public (a wall screen in the workshop), so it names nobody unless the site opts in
with ``web.board_names`` (``none`` by default, ``initials``, ``first_name``): no member
name, id, email or badge uid reaches the page or its fragment otherwise (docs/rgpd.md).
The names are cut here, before the template, so no template change can leak them.

The page polls a small HTML fragment every few seconds and swaps it in, rather than
reloading: no flash on a wall screen, and the fragment is rendered by the same template
as the first page, so there is one place that decides how the board looks.
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, current_app, jsonify, render_template

from gateway.core.clock import iso, parse_iso, utcnow
from gateway.hub.db import data_version
from gateway.hub.machine_state import machines_live
from gateway.hub.members import PSEUDONYM
from gateway.hub.sessions import recent_sessions
from gateway.web.auth import public
from gateway.web.context import clock, get_store, hub_config
from gateway.web.dates import short_date
from gateway.web.language import current_language
from gateway.web.machine_words import describe

pages = Blueprint("pages", __name__)

RECENT_SESSIONS = 50
ERASED_PREFIX = PSEUDONYM.split("{")[0]
REFRESH_MS = 5000


def _local(value: str | None, tz: str, fmt: str) -> str:
    if not value:
        return ""
    return parse_iso(value).astimezone(ZoneInfo(tz)).strftime(fmt)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def shown_name(name: str | None, mode: str) -> str | None:
    """What the board may say of a member: nothing (``none``), "A. M." (``initials``),
    or the first word of the name (``first_name``). An erased member shows nothing."""
    if mode == "none" or not name or name.startswith(ERASED_PREFIX):
        return None
    words = name.split()
    if mode == "initials":
        return " ".join(f"{w[0].upper()}." for w in words if w[0].isalnum()) or None
    return words[0]


# Only what the board shows of a machine or a session: every other column stays out.
_MACHINE_KEYS = (
    "machine_id",
    "name",
    "state",
    "silent",
    "last_seen",
    "since",
    "online",
    "activity",
    "detail",
    "ending",
    "refusals",
    "node_id",
    "job",
    "out_of_service_reason",  # staff's words for the public ("Lentille cassée")
)
_SESSION_KEYS = (
    "machine_id",
    "machine_name",
    "project_id",
    "project_name",
    "started_at",
    "ended_at",
    "status",
    "duration_s",
    "billable_minutes",
    "busy_minutes",
)


def _board_machine(m: dict[str, Any], mode: str) -> dict[str, Any]:
    out = {k: m.get(k) for k in _MACHINE_KEYS}
    out["who"] = shown_name(m.get("member_name"), mode)
    # The controller's words for people; the raw text stays in the card's title.
    out["detail_words"] = describe(m.get("detail"))
    # A refusal's reason may quote a member id or a badge uid: the board counts them,
    # the reasons are in the hub's log and rejected_messages.
    if out["job"]:
        out["job"] = {k: m["job"].get(k) for k in ("name", "progress", "paused")}
    return out


def _board_session(s: dict[str, Any], mode: str) -> dict[str, Any]:
    out = {k: s.get(k) for k in _SESSION_KEYS}
    out["who"] = shown_name(s.get("member_name"), mode)
    return out


def _context() -> dict[str, Any]:
    cfg = hub_config()
    lang = current_language()
    store = get_store()
    tz = cfg.timezone
    mode = cfg.board_names
    now = clock()()
    return {
        "lang": lang,
        "site": cfg.site,
        "names": mode != "none",
        "machines": [_board_machine(m, mode) for m in machines_live(store)],
        "sessions": [
            _board_session(s, mode) for s in recent_sessions(store, limit=RECENT_SESSIONS)
        ],
        "hm": lambda v: _local(v, tz, "%H:%M"),
        "dt": lambda v: short_date(v, now=now, tz=tz, lang=lang, time=True),
        "duration": _duration,
        "now": now.astimezone(ZoneInfo(tz)).strftime("%H:%M:%S"),
        "refresh_ms": REFRESH_MS,
    }


@pages.get("/")
@public
def index() -> str:
    return render_template("index.html", **_context())


@pages.get("/fragments/board")
@public
def board() -> Response:
    resp = Response(render_template("board.html", **_context()))
    resp.headers["Cache-Control"] = "no-store"
    return resp


@pages.get("/healthz")
@public
def healthz() -> tuple[Response, int]:
    """Health for a monitor or load balancer: 503 when the database cannot be read, the
    broker is unreachable, or a hub loop (ingest, snapshots, web, watch) is dead or stuck.

    The body names each part, so whoever is paged sees which one.
    """
    body: dict[str, Any] = {"status": "ok", "time": iso(utcnow())}
    healthy = True
    try:
        body["data_version"] = data_version(get_store())
        body["database"] = {"ok": True}
    except Exception as exc:  # noqa: BLE001 - any failure means "unhealthy"
        body["database"] = {"ok": False, "error": str(exc)}
        body["error"] = str(exc)
        healthy = False
    report = current_app.extensions.get("fabgate.health")
    if report is not None:
        hub = report()
        body["broker"] = hub["broker"]
        body["loops"] = hub["loops"]
        if "retention" in hub:
            body["retention"] = hub["retention"]
        healthy = healthy and bool(hub["healthy"])
    if not healthy:
        body["status"] = "error"
    resp = jsonify(body)
    resp.headers["Cache-Control"] = "no-store"
    return resp, 200 if healthy else 503
