"""API tokens: made in the web UI by admins and accountants, checked by the API blueprints.

A token is shown once, when it is made, and only its SHA-256 is stored: a copy of the
database does not hand out access to the API. SHA-256 rather than a slow password hash
because tokens are 256 random bits, not something a person chose, so there is nothing
to brute-force, and every API call checks one.

Each API view names the one scope it needs with ``@scope("usage")``; a database token
must carry that scope. Tokens from the hub's config file carry every scope (they are the
admin's, and existing integrations keep working). Accountants may only make and revoke
tokens whose scopes are all billing scopes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import sqlite3
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any, Final, TypeVar

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from werkzeug.wrappers import Response as BaseResponse

from gateway.core.clock import iso, utcnow
from gateway.hub import audit
from gateway.web import get_store, hub_config
from gateway.web.auth import current_user, requires, view_scope
from gateway.web.i18n import choose_language, translator

SCOPES: Final = ("usage", "invoices", "machines", "sessions", "jobs", "report")
BILLING_SCOPES: Final = frozenset({"usage", "invoices", "report"})
PREFIX = "fgt_"
MAX_NAME = 80
# last_used_at is for "is this token still in use?", not an access log: one write a
# minute per token is enough and keeps API reads from all becoming writes.
LAST_USED_RESOLUTION = timedelta(minutes=1)

V = TypeVar("V", bound=Callable[..., Any])
Refusal = tuple[Response, int, dict[str, str]]


def scope(name: str) -> Callable[[V], V]:
    """The bearer scope a view accepts. API views are also ``@public`` (they never use
    the cookie); a ``@requires`` page with a scope also accepts a token (the report)."""
    if name not in SCOPES:
        raise ValueError(f"scope {name!r}: expected one of {', '.join(SCOPES)}")

    def mark(view: V) -> V:
        view.fabgate_scope = name  # type: ignore[attr-defined]
        return view

    return mark


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def endpoint_scope() -> str | None:
    return view_scope(current_app._get_current_object(),  # type: ignore[attr-defined]
                      request.endpoint)


def _presented() -> str | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    value = value.strip()
    return value if scheme.lower() == "bearer" and value else None


def _refuse(status: int, message: str, challenge: str) -> Refusal:
    return jsonify(error=message), status, {"WWW-Authenticate": challenge}


def check_bearer(needed: str | None) -> Refusal | None:
    """None when the request's bearer token may use scope ``needed``; else the 401/403
    to answer. ``needed=None`` (a view without ``@scope``) admits config tokens only."""
    presented = _presented()
    if presented is None:
        return _refuse(401, "a valid 'Authorization: Bearer <token>' header is required",
                       'Bearer realm="fabgate"')
    given = presented.encode()
    config_match = False
    # Compare against every config token without stopping early: no timing hint about
    # which token (or how many) exist.
    for tok in hub_config().api_tokens:
        config_match |= hmac.compare_digest(given, tok.token.encode())
    if config_match:
        g.fabgate_token = {"source": "config"}
        return None
    store = get_store()
    row = store.conn.execute("SELECT id, name, scopes, revoked_at, last_used_at "
                             "FROM api_tokens WHERE token_hash = ?",
                             (token_hash(presented),)).fetchone()
    if row is None or row[3] is not None:
        return _refuse(401, "a valid 'Authorization: Bearer <token>' header is required",
                       'Bearer realm="fabgate", error="invalid_token"')
    scopes = set(json.loads(row[2]))
    if needed is None or needed not in scopes:
        return _refuse(403, f"this token lacks the scope {needed or 'admin'!r} "
                            f"(it has {', '.join(sorted(scopes)) or 'none'})",
                       f'Bearer realm="fabgate", error="insufficient_scope", '
                       f'scope="{needed or "admin"}"')
    now = utcnow()
    if row[4] is None or row[4] < iso(now - LAST_USED_RESOLUTION):
        with store.conn:
            store.conn.execute("UPDATE api_tokens SET last_used_at = ? WHERE id = ?",
                               (iso(now), row[0]))
    g.fabgate_token = {"source": "database", "id": row[0], "name": row[1]}
    return None


# -- the model ------------------------------------------------------------------------

def create_token(conn: sqlite3.Connection, name: str, scopes: Iterable[str], *,
                 created_by: str) -> tuple[int, str]:
    """Store a new token and return ``(id, secret)``; the secret is never stored."""
    chosen = sorted(set(scopes))
    name = name.strip()
    if not name or len(name) > MAX_NAME:
        raise ValueError(f"a name of 1 to {MAX_NAME} characters")
    if not chosen or any(s not in SCOPES for s in chosen):
        raise ValueError(f"scopes among {', '.join(SCOPES)}")
    secret = PREFIX + secrets.token_urlsafe(32)
    with conn:
        cur = conn.execute("INSERT INTO api_tokens (name, token_hash, scopes, created_by, "
                           "created_at) VALUES (?, ?, ?, ?, ?)",
                           (name, token_hash(secret), json.dumps(chosen), created_by,
                            iso(utcnow())))
        token_id = int(cur.lastrowid or 0)
        audit.record(conn, created_by, audit.TOKEN_CREATED, f"token:{token_id}",
                     {"name": name, "scopes": chosen})
    return token_id, secret


def revoke_token(conn: sqlite3.Connection, token_id: int, *, by: str) -> bool:
    with conn:
        cur = conn.execute("UPDATE api_tokens SET revoked_at = ? WHERE id = ? "
                           "AND revoked_at IS NULL", (iso(utcnow()), token_id))
        if cur.rowcount:
            audit.record(conn, by, audit.TOKEN_REVOKED, f"token:{token_id}", {})
    return bool(cur.rowcount)


def list_tokens(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    rows = conn.execute("SELECT id, name, scopes, created_by, created_at, revoked_at, "
                        "last_used_at FROM api_tokens ORDER BY revoked_at IS NOT NULL, "
                        "id DESC").fetchall()
    return [{"id": r[0], "name": r[1], "scopes": json.loads(r[2]), "created_by": r[3],
             "created_at": r[4], "revoked_at": r[5], "last_used_at": r[6]} for r in rows]


def allowed_scopes(roles: frozenset[str]) -> tuple[str, ...]:
    if "admin" in roles:
        return SCOPES
    return tuple(s for s in SCOPES if s in BILLING_SCOPES)


# -- pages --------------------------------------------------------------------------

tokens = Blueprint("tokens", __name__)


def _render(status: int = 200, **values: Any) -> BaseResponse:
    cfg = hub_config()
    lang = choose_language(request, cfg.language)
    user = current_user()
    assert user is not None
    body = render_template("tokens.html", lang=lang, t=translator(lang), site=cfg.site,
                           tokens=list_tokens(get_store().conn),
                           scopes=allowed_scopes(user.roles), **values)
    resp = Response(body, status)
    # The page may hold a secret shown once: never keep it in a cache.
    resp.headers["Cache-Control"] = "no-store"
    return resp


@tokens.get("/tokens")
@requires("admin", "accountant")
def token_list() -> BaseResponse:
    return _render(created=None, error=None)


@tokens.post("/tokens")
@requires("admin", "accountant")
def token_create() -> BaseResponse:
    user = current_user()
    assert user is not None
    t = translator(choose_language(request, hub_config().language))
    wanted = request.form.getlist("scopes")
    if any(s not in allowed_scopes(user.roles) for s in wanted):
        abort(403)
    try:
        token_id, secret = create_token(get_store().conn, request.form.get("name", ""),
                                        wanted, created_by=user.member_id)
    except ValueError as exc:
        return _render(400, created=None, error=t("tokens.invalid", error=str(exc)))
    return _render(created={"id": token_id, "secret": secret}, error=None)


@tokens.post("/tokens/<int:token_id>/revoke")
@requires("admin", "accountant")
def token_revoke(token_id: int) -> BaseResponse:
    user = current_user()
    assert user is not None
    conn = get_store().conn
    row = conn.execute("SELECT scopes FROM api_tokens WHERE id = ?", (token_id,)).fetchone()
    if row is None:
        abort(404)
    if not set(json.loads(row[0])) <= set(allowed_scopes(user.roles)):
        abort(403)
    revoke_token(conn, token_id, by=user.member_id)
    return redirect(url_for("tokens.token_list"))
