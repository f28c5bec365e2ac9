"""Bearer tokens on HTTP requests: which scope a view accepts, and the check itself.

The token records (scopes, hashes) are the hub's (``gateway.hub.tokens``); this module
only reads the request. It imports neither the log-in module nor the token pages, which
both use it, so the access check and the views that declare scopes have no cycle.
Each API view names the one scope it needs with ``@scope("usage")``; a database token
must carry that scope. Tokens from the hub's config file carry every scope.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, Response, current_app, g, jsonify, request

from gateway.core.clock import utcnow
from gateway.hub.tokens import SCOPES, find_token, note_use
from gateway.web.context import get_store, hub_config


def mark_view(view: Callable[..., Any], name: str, value: object) -> None:
    """Set a declaration on a view function, read back with ``getattr``: by name, since
    a type checker knows no attribute of our own on a function."""
    setattr(view, name, value)


def view_scope(app: Flask, endpoint: str | None) -> str | None:
    """The bearer-token scope a view accepts (see ``tokens.scope``), if any."""
    if endpoint is None:
        return None
    return getattr(app.view_functions.get(endpoint), "fabgate_scope", None)


V = TypeVar("V", bound=Callable[..., Any])
Refusal = tuple[Response, int, dict[str, str]]


def scope(name: str) -> Callable[[V], V]:
    """The bearer scope a view accepts. API views are also ``@public`` (they never use
    the cookie); a ``@requires`` page with a scope also accepts a token (the report)."""
    if name not in SCOPES:
        raise ValueError(f"scope {name!r}: expected one of {', '.join(SCOPES)}")

    def mark(view: V) -> V:
        mark_view(view, "fabgate_scope", name)
        return view

    return mark


def endpoint_scope() -> str | None:
    return view_scope(current_app, request.endpoint)


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
        return _refuse(
            401,
            "a valid 'Authorization: Bearer <token>' header is required",
            'Bearer realm="fabgate"',
        )
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
    token = find_token(store, presented)
    if token is None or token.revoked:
        return _refuse(
            401,
            "a valid 'Authorization: Bearer <token>' header is required",
            'Bearer realm="fabgate", error="invalid_token"',
        )
    scopes = token.scopes
    if needed is None or needed not in scopes:
        return _refuse(
            403,
            f"this token lacks the scope {needed or 'admin'!r} "
            f"(it has {', '.join(sorted(scopes)) or 'none'})",
            f'Bearer realm="fabgate", error="insufficient_scope", scope="{needed or "admin"}"',
        )
    note_use(store, token, utcnow())
    g.fabgate_token = {"source": "database", "id": token.id, "name": token.name}
    return None
