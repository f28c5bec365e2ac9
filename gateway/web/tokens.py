"""API tokens over HTTP: the bearer check of the API views and the token pages.

Tokens themselves (scopes, hashing, creation, revocation) are the hub's
(``gateway.hub.tokens``). Each API view names the one scope it needs with
``@scope("usage")``; a database token must carry that scope. Tokens from the hub's
config file carry every scope (they are the admin's, and existing integrations keep
working). Accountants may only make and revoke tokens whose scopes are all billing
scopes.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Any, TypeVar

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

from gateway.core.clock import utcnow
from gateway.hub.tokens import (
    SCOPES,
    allowed_scopes,
    create_token,
    find_token,
    list_tokens,
    note_use,
    revoke_token,
    token_scopes,
)
from gateway.web import get_store, hub_config
from gateway.web.auth import current_user, mark_view, requires, view_scope
from gateway.web.i18n import choose_language, translator

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
    token = find_token(store, presented)
    if token is None or token.revoked:
        return _refuse(401, "a valid 'Authorization: Bearer <token>' header is required",
                       'Bearer realm="fabgate", error="invalid_token"')
    scopes = token.scopes
    if needed is None or needed not in scopes:
        return _refuse(403, f"this token lacks the scope {needed or 'admin'!r} "
                            f"(it has {', '.join(sorted(scopes)) or 'none'})",
                       f'Bearer realm="fabgate", error="insufficient_scope", '
                       f'scope="{needed or "admin"}"')
    note_use(store, token, utcnow())
    g.fabgate_token = {"source": "database", "id": token.id, "name": token.name}
    return None


# -- pages --------------------------------------------------------------------------

tokens = Blueprint("tokens", __name__)


def _render(status: int = 200, **values: Any) -> BaseResponse:
    cfg = hub_config()
    lang = choose_language(request, cfg.language)
    user = current_user()
    assert user is not None
    body = render_template("tokens.html", lang=lang, t=translator(lang), site=cfg.site,
                           tokens=list_tokens(get_store()),
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
        token_id, secret = create_token(get_store(), request.form.get("name", ""),
                                        wanted, created_by=user.member_id)
    except ValueError as exc:
        return _render(400, created=None, error=t("tokens.invalid", error=str(exc)))
    return _render(created={"id": token_id, "secret": secret}, error=None)


@tokens.post("/tokens/<int:token_id>/revoke")
@requires("admin", "accountant")
def token_revoke(token_id: int) -> BaseResponse:
    user = current_user()
    assert user is not None
    store = get_store()
    scopes = token_scopes(store, token_id)
    if scopes is None:
        abort(404)
    if not scopes <= set(allowed_scopes(user.roles)):
        abort(403)
    revoke_token(store, token_id, by=user.member_id)
    return redirect(url_for("tokens.token_list"))
