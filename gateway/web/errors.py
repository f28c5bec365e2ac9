"""The pages a person sees when a page is refused (403) or does not exist (404).

Every role check ends here: the app-wide guard (``auth._guard``) and any view's
``abort(403)`` render the same styled page, in the reader's language, with a way back
(the page they came from when it is on this site, the home page, and logging in as
someone else: the usual cause of a 403 at the desk is the wrong account). A program
(``Accept`` without HTML, or an ``/api/`` path) keeps a short plain-text answer.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, Response, render_template, request, url_for
from flask_babel import gettext
from werkzeug.exceptions import HTTPException

from gateway.web.context import hub_config


def _wants_page() -> bool:
    if request.path.startswith("/api/"):
        return False
    if request.headers.get("Authorization", "").lower().startswith("bearer "):
        return False
    return request.accept_mimetypes.accept_html


def _back() -> str | None:
    """The referring page, only when it is a page of this site (never another host)."""
    ref = request.referrer or ""
    parts = urlsplit(ref)
    if not ref or parts.netloc != request.host or parts.path == request.path:
        return None
    return parts.path + (f"?{parts.query}" if parts.query else "")


def error_page(status: int) -> Response:
    """The styled page for ``status`` (403 or 404), or plain text for a program."""
    if status == 403:
        text = gettext("Access denied: your role does not allow this page.")
    else:
        text = gettext("This page does not exist.")
    if not _wants_page():
        return Response(text + "\n", status, {"Content-Type": "text/plain; charset=utf-8"})
    body = render_template(
        "error.html",
        status=status,
        message=text,
        back=_back(),
        home=url_for("pages.index"),
        relogin=url_for("auth.login", next=request.full_path.rstrip("?")),
        site=hub_config().site,
    )
    resp = Response(body, status)
    resp.headers["Cache-Control"] = "no-store"
    return resp


def _handle(exc: HTTPException) -> Response:
    return error_page(exc.code or 500)


def install(app: Flask) -> None:
    app.register_error_handler(403, _handle)
    app.register_error_handler(404, _handle)
