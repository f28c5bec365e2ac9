"""API tokens over HTTP: the bearer check of the API views and the token pages.

Tokens themselves (scopes, hashing, creation, revocation) are the hub's
(``gateway.hub.tokens``). Each API view names the one scope it needs with
``@scope("usage")``; a database token must carry that scope. Tokens from the hub's
config file carry every scope (they are the admin's, and existing integrations keep
working). Accountants may only make and revoke tokens whose scopes are all billing
scopes.
"""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext
from werkzeug.wrappers import Response as BaseResponse

from gateway.hub.tokens import (
    allowed_scopes,
    create_token,
    list_tokens,
    revoke_token,
    token_scopes,
)
from gateway.web.auth import current_user, requires
from gateway.web.context import get_store, hub_config
from gateway.web.language import current_language

# -- pages --------------------------------------------------------------------------

tokens = Blueprint("tokens", __name__)


def _render(status: int = 200, **values: Any) -> BaseResponse:
    cfg = hub_config()
    lang = current_language()
    user = current_user()
    assert user is not None
    body = render_template(
        "tokens.html",
        lang=lang,
        site=cfg.site,
        tokens=list_tokens(get_store()),
        scopes=allowed_scopes(user.roles),
        **values,
    )
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
    wanted = request.form.getlist("scopes")
    if any(s not in allowed_scopes(user.roles) for s in wanted):
        abort(403)
    try:
        token_id, secret = create_token(
            get_store(), request.form.get("name", ""), wanted, created_by=user.member_id
        )
    except ValueError as exc:
        return _render(
            400, created=None, error=gettext("Token not created: %(error)s", error=str(exc))
        )
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
