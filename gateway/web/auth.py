"""Accounts and the access rule every route follows: log-in, roles, CSRF, session cookie.

Access is declared on each view, not decided inside it: ``@public`` or
``@requires(role, ...)`` set ``view.fabgate_roles`` and an app-wide ``before_request``
enforces it. A view with no declaration is refused (500, logged as an error) rather than
served, so a route added without thinking about access fails closed and loudly, and the
route-matrix test names it. The decorators only set attributes (they do not wrap), so
their position relative to ``@blueprint.get`` does not matter.

Roles: every account is a ``member``; ``admin`` may do everything the other roles may.
A trainer's role names a certification group: ``requires("trainer")`` lets any trainer
in, and the view asks ``current_user().trains(group)`` for the group at hand.

Sessions are Flask's signed cookie. It holds the member id and a fingerprint of the
password hash, so changing a password ends every other session. The signing key lives
in ``web-secret.key`` beside the database (0600, made at first start): a restarted hub
keeps its users logged in, and the key never sits in a config file that gets shared.

CSRF: a random token per session, checked on every unsafe method of every view that may
use the cookie. Requests that carry ``Authorization: Bearer`` are exempt and are never
authenticated by the cookie (browsers do not attach such headers on their own), and so
are API views (public for cookies, guarded by bearer scopes in ``tokens.py``).

Accounts themselves (users, roles, passwords, the log-in lock-out) are the hub's
(``gateway.hub.accounts``): this module only carries them over HTTP.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import tempfile
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final, TypeVar
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    g,
    has_request_context,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.blueprints import BlueprintSetupState
from flask.sessions import SecureCookieSessionInterface
from flask.typing import ResponseReturnValue
from flask_babel import gettext, ngettext
from markupsafe import Markup
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.wrappers import Response as BaseResponse

from gateway.core.clock import utcnow
from gateway.core.levels import ROLES
from gateway.hub.accounts import (
    MIN_PASSWORD,
    LoginLocked,
    User,
    authenticate,
    check_new_password,
    load_user,
    password_hash,
    set_password,
)
from gateway.web.bearer import check_bearer, mark_view, view_scope
from gateway.web.context import get_store, hub_config
from gateway.web.errors import error_page
from gateway.web.language import current_language

log = logging.getLogger("fabgate.web.auth")

PUBLIC: Final = "public"
SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
# Flask's own static route: serving the stylesheet needs no declaration of ours.
FRAMEWORK_PUBLIC: Final = frozenset({"static"})

SESSION_LIFETIME = timedelta(hours=12)
SECRET_FILE = "web-secret.key"
COOKIE_NAME = "fabgate_session"

V = TypeVar("V", bound=Callable[..., Any])
Declaration = frozenset[str] | str


# -- declarations -------------------------------------------------------------------


def public(view: V) -> V:
    """Anyone may use this view, logged in or not (board, health, log-in page, API
    views whose bearer check lives in their blueprint)."""
    mark_view(view, "fabgate_roles", PUBLIC)
    return view


def requires(*roles: str) -> Callable[[V], V]:
    """Only accounts holding one of ``roles`` (admins always) may use this view; others
    get 403, and a browser without a session is sent to the log-in page."""
    unknown = [r for r in roles if r not in ROLES]
    if not roles or unknown:
        raise ValueError(f"requires() takes roles among {', '.join(ROLES)}; got {roles!r}")

    def mark(view: V) -> V:
        mark_view(view, "fabgate_roles", frozenset(roles))
        return view

    return mark


def owner_scoped(view: V) -> V:
    """The view serves people their own documents: roles that may see everyone's get any,
    others only their own and a 404 for the rest (whether it exists or not). Checked by
    the view itself; the mark tells the route-matrix test that such a 404 is expected."""
    mark_view(view, "fabgate_owner_scoped", True)
    return view


def declaration(app: Flask, endpoint: str) -> Declaration | None:
    """What an endpoint declared, or None when it declared nothing."""
    if endpoint in FRAMEWORK_PUBLIC or endpoint.endswith(".static"):
        return PUBLIC
    view = app.view_functions.get(endpoint)
    value = getattr(view, "fabgate_roles", None)
    if value == PUBLIC or isinstance(value, frozenset):
        return value
    return None


# -- the logged-in user -------------------------------------------------------------


def _bearer_presented() -> bool:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and bool(value.strip())


def _fingerprint(stored_hash: str | None) -> str:
    key = current_app.secret_key
    secret = key if isinstance(key, bytes) else str(key).encode()
    return hmac.new(secret, (stored_hash or "").encode(), hashlib.sha256).hexdigest()[:32]


def current_user() -> User | None:
    """The logged-in account of this request, or None (also for bearer requests)."""
    if "fabgate_user" in g:
        user: User | None = g.fabgate_user
        return user
    user = None
    member_id = session.get("uid")
    if member_id and not _bearer_presented():
        store = get_store()
        if hmac.compare_digest(
            session.get("pw", ""), _fingerprint(password_hash(store, member_id))
        ):
            user = load_user(store, member_id)
        if user is None:
            # Account deleted or password changed elsewhere: this cookie is over.
            session.pop("uid", None)
            session.pop("pw", None)
    g.fabgate_user = user
    return user


# -- CSRF ---------------------------------------------------------------------------


def csrf_token() -> str:
    """This session's CSRF token, created on first use."""
    token = session.get("csrf")
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


def csrf_field() -> Markup:
    """The hidden input every POST form carries: ``{{ csrf_field() }}``."""
    return Markup('<input type="hidden" name="csrf_token" value="{}">').format(csrf_token())


def _csrf_valid() -> bool:
    expected = session.get("csrf")
    given = request.headers.get("X-CSRF-Token") or request.form.get("csrf_token", "")
    return (
        isinstance(expected, str)
        and bool(expected)
        and bool(given)
        and hmac.compare_digest(expected.encode(), given.encode())
    )


# -- the app-wide check -------------------------------------------------------------


def _guard() -> ResponseReturnValue | None:
    endpoint = request.endpoint
    if endpoint is None:
        return None  # no route matched: Flask answers 404 or 405
    declared = declaration(current_app, endpoint)
    if declared is None:
        log.error(
            "REFUSED %s %s: endpoint %r declares no access; decorate it with "
            "@public or @requires(...) from gateway.web.auth",
            request.method,
            request.path,
            endpoint,
        )
        abort(500)
    scope = view_scope(current_app, endpoint)
    if declared != PUBLIC:
        assert isinstance(declared, frozenset)
        if scope and _bearer_presented():
            return check_bearer(scope)
        user = current_user()
        if user is None:
            if request.method in SAFE_METHODS and request.accept_mimetypes.accept_html:
                return redirect(url_for("auth.login", next=_local_target()))
            return (
                gettext("You need to log in.") + "\n",
                401,
                {"Content-Type": "text/plain; charset=utf-8"},
            )
        if not user.has(*declared):
            return error_page(403)
    if (
        request.method not in SAFE_METHODS
        and not _bearer_presented()
        and not (declared == PUBLIC and scope)
        and not _csrf_valid()
    ):
        log.warning(
            "CSRF token missing or wrong: %s %s from %s",
            request.method,
            request.path,
            request.remote_addr,
        )
        return (
            gettext(
                "The form expired or was sent from another site: reload the page and try again."
            )
            + "\n",
            400,
            {"Content-Type": "text/plain; charset=utf-8"},
        )
    return None


def _local_target() -> str:
    return request.full_path.rstrip("?") if request.query_string else request.path


def _safe_next(value: str | None) -> str:
    """Only a path on this site: ``next`` must not send a user to another host."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return url_for("pages.index") if "pages.index" in current_app.view_functions else "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return "/"
    return value


# -- cookie and key -----------------------------------------------------------------


class _SessionInterface(SecureCookieSessionInterface):
    """Flask's signed cookie, ``Secure`` per request when the request came over TLS."""

    def get_cookie_secure(self, app: Flask) -> bool:
        if app.config.get("SESSION_COOKIE_SECURE"):
            return True
        return has_request_context() and request.is_secure


def secret_key(database: Path) -> bytes:
    """The cookie signing key kept beside the database, created 0600 on first start.

    Written to a private temporary file then hard-linked into place, so two processes
    starting together agree on one key and nobody ever reads a half-written file.
    """
    path = database.parent / SECRET_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".web-secret-")  # mode 0600
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            try:
                os.link(tmp, path)
                log.info("created the web session key %s", path)
            except FileExistsError:
                pass
        finally:
            os.unlink(tmp)
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        log.warning("%s is readable by other users (mode %o): chmod 600 it", path, mode)
    key = path.read_text().strip()
    if len(key) < 32:
        raise RuntimeError(f"{path} holds no usable key; delete it to have a new one made")
    return key.encode()


def install(app: Flask) -> None:
    """Key, cookie settings, the access check and template helpers, on one app."""
    cfg = app.config["HUB"]
    app.secret_key = secret_key(Path(cfg.database))
    if cfg.web_trust_proxy:
        # Behind a reverse proxy every request comes from the proxy's address: one
        # mistyped password would lock everyone out. Trust its X-Forwarded-For and
        # X-Forwarded-Proto (one hop) only when the configuration says one is there.
        # Replacing wsgi_app is Flask's documented way to add WSGI middleware, but Flask
        # types it as a method, and mypy refuses any assignment to a method.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1)  # type: ignore[method-assign]
    app.session_interface = _SessionInterface()
    app.config.update(
        SESSION_COOKIE_NAME=COOKIE_NAME,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=cfg.web_secure_cookies,
        PERMANENT_SESSION_LIFETIME=SESSION_LIFETIME,
    )
    # First among the app's before_request hooks: nothing runs for an undeclared route.
    app.before_request_funcs.setdefault(None, []).insert(0, _guard)
    app.jinja_env.globals.update(
        csrf_field=csrf_field, csrf_token=csrf_token, current_user=current_user
    )


def _install_on(state: BlueprintSetupState) -> None:
    # Flask types the setup state's app as its framework-neutral base class; a Flask
    # blueprint is only ever registered on a Flask app.
    assert isinstance(state.app, Flask)
    install(state.app)


auth = Blueprint("auth", __name__)
auth.record_once(_install_on)


# -- views --------------------------------------------------------------------------


def _page(template: str, status: int = 200, **values: Any) -> tuple[str, int]:
    cfg = hub_config()
    lang = current_language()
    return render_template(
        template, lang=lang, site=cfg.site, min_password=MIN_PASSWORD, **values
    ), status


def _no_store(resp: BaseResponse) -> BaseResponse:
    resp.headers["Cache-Control"] = "no-store"
    return resp


@auth.route("/login", methods=["GET", "POST"])
@public
def login() -> BaseResponse:
    target = _safe_next(request.values.get("next"))
    if request.method == "GET":
        return _no_store(Response(*_page("login.html", next=target, email="", error=None)))
    email = request.form.get("email", "")
    password = request.form.get("password", "")
    now = utcnow()
    try:
        user = authenticate(get_store(), email, password, request.remote_addr, now)
    except LoginLocked as exc:
        minutes = max(
            1,
            -(
                -int(
                    (datetime.fromisoformat(exc.until.replace("Z", "+00:00")) - now).total_seconds()
                )
                // 60
            ),
        )
        body, status = _page(
            "login.html",
            429,
            next=target,
            email=email,
            error=ngettext(
                "Too many failed attempts: log-in blocked for %(num)s more minute.",
                "Too many failed attempts: log-in blocked for %(num)s more minutes.",
                minutes,
            ),
        )
        resp = Response(body, status)
        resp.headers["Retry-After"] = str(minutes * 60)
        return _no_store(resp)
    if user is None:
        return _no_store(
            Response(
                *_page(
                    "login.html",
                    401,
                    next=target,
                    email=email,
                    error=gettext("Wrong email address or password."),
                )
            )
        )
    # A fresh session on log-in: nothing set before it (a planted CSRF token) survives.
    session.clear()
    session.permanent = True
    session["uid"] = user.member_id
    session["pw"] = _fingerprint(password_hash(get_store(), user.member_id))
    csrf_token()
    log.info("log-in: %s (%s)", user.member_id, ", ".join(sorted(user.roles)))
    return redirect(target)


@auth.post("/logout")
@public
def logout() -> BaseResponse:
    session.clear()
    return redirect(_safe_next(None))


@auth.route("/account/password", methods=["GET", "POST"])
@requires("member")
def account_password() -> BaseResponse:
    user = current_user()
    assert user is not None
    if request.method == "GET":
        return _no_store(Response(*_page("account.html", user=user, error=None, done=False)))
    current = request.form.get("current", "")
    new = request.form.get("new", "")
    store = get_store()
    try:
        ok = authenticate(store, user.email, current, request.remote_addr, utcnow())
    except LoginLocked:
        ok = None
    error = None
    if ok is None:
        error = gettext("The current password is wrong.")
    elif new != request.form.get("confirm", ""):
        error = gettext("The two new passwords differ.")
    elif check_new_password(new):
        error = ngettext(
            "The new password needs at least %(num)s character.",
            "The new password needs at least %(num)s characters.",
            MIN_PASSWORD,
        )
    if error:
        return _no_store(Response(*_page("account.html", 400, user=user, error=error, done=False)))
    set_password(store, user.member_id, new, actor=user.member_id)
    session["pw"] = _fingerprint(password_hash(store, user.member_id))
    return _no_store(Response(*_page("account.html", user=user, error=None, done=True)))
