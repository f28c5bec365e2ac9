"""Which language a page speaks, and the gettext catalogues behind it (Flask-Babel).

The pages' strings are English msgids in the code and templates, translated by the
catalogues under ``gateway/web/translations/`` (docs/translations.md: extract, update,
compile). The language of a request is, in order:

1. ``?lang=fr`` / ``?lang=en``: a shared link keeps its language, and choosing one
   makes it sticky: a cookie remembers it for the next pages;
2. that cookie (``fabgate_lang``), so the choice follows a person across pages without
   every link carrying ``lang``;
3. the site's ``language:`` from the hub configuration.

The browser's Accept-Language is not consulted: a wall screen or a borrowed laptop shows
the site's language until someone picks another, and everyone sees the same page.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from flask import Flask, Request, current_app, has_request_context, request
from flask_babel import Babel, get_locale
from werkzeug.wrappers import Response as BaseResponse

LANGUAGES = ("fr", "en")
DEFAULT = "fr"
COOKIE = "fabgate_lang"
COOKIE_AGE = 365 * 24 * 3600
TRANSLATIONS = Path(__file__).parent / "translations"


def _asked(req: Request) -> str | None:
    asked = req.args.get("lang", "").lower()
    return asked if asked in LANGUAGES else None


def choose_language(req: Request, configured: str | None) -> str:
    """The request's language: ``?lang=``, then the cookie, then the site's."""
    asked = _asked(req)
    if asked:
        return asked
    kept = req.cookies.get(COOKIE, "")
    if kept in LANGUAGES:
        return kept
    return configured if configured in LANGUAGES else DEFAULT


def current_language() -> str:
    """The language of the request being served (Flask-Babel's locale, as "fr"/"en")."""
    locale = get_locale()
    return locale.language if locale is not None else DEFAULT


def lang_url(code: str) -> str:
    """This page in another language: the same path and query, ``lang`` replaced."""
    args = [(k, v) for k, v in request.args.items(multi=True) if k != "lang"]
    args.append(("lang", code))
    return f"{request.path}?{urlencode(args)}"


def _select() -> str:
    if not has_request_context():
        return DEFAULT
    return choose_language(request, current_app.config["HUB"].language)


def _remember(resp: BaseResponse) -> BaseResponse:
    asked = _asked(request)
    if asked and request.cookies.get(COOKIE) != asked:
        resp.set_cookie(
            COOKIE,
            asked,
            max_age=COOKIE_AGE,
            samesite="Lax",
            httponly=True,
            secure=bool(current_app.config.get("SESSION_COOKIE_SECURE")),
        )
    return resp


def install(app: Flask) -> None:
    """Flask-Babel on the app, the sticky cookie, and what every template may use."""
    Babel(
        app,
        locale_selector=_select,
        default_locale=DEFAULT,
        default_translation_directories=str(TRANSLATIONS),
        default_timezone=app.config["HUB"].timezone,
    )
    app.after_request(_remember)
    from gateway.web.context import clock
    from gateway.web.dates import short_date, weekday_name
    from gateway.web.labels import label

    @app.context_processor
    def _language() -> dict[str, Any]:
        if not has_request_context():
            return {}
        lang = current_language()
        tz = app.config["HUB"].timezone
        now = clock()()

        def when(value: Any, time: bool = False) -> str:
            return short_date(value, now=now, tz=tz, lang=lang, time=time)

        return {
            "lang": lang,
            "lang_url": lang_url,
            "label": label,
            "when": when,
            "weekday_name": lambda code: weekday_name(code, lang),
        }
