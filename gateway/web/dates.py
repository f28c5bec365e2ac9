"""Dates and times on the pages, in the reader's language (Babel's CLDR patterns).

One rule for every page: a date of this year goes without its year ("3 mars 14:05",
"Mar 3, 2:05 PM" is not used: times stay 24-hour), any other date carries it ("3 mars
2025"), so December's page read in January does not leave the reader guessing. "This
year" is the local year of ``now``, which callers take from the app's injected clock
(``gateway/core/clock.py``), never from the wall clock here.

Month and weekday names come from Babel's locale data rather than the catalogues:
they are the same words every French or English calendar prints.
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime, get_day_names

from gateway.core.clock import parse_iso

WEEKDAY_CODES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

# CLDR skeletons: the locale orders the parts ("3 mars 2025" / "Mar 3, 2025").
_DAY = {"fr": "d MMM", "en": "MMM d"}
_DAY_YEAR = {"fr": "d MMM y", "en": "MMM d, y"}


def _local(value: str | datetime | date, tz: str) -> datetime | date:
    if isinstance(value, str):
        if len(value) == 10:  # already a local day (membership end, a payment's date)
            return date.fromisoformat(value)
        value = parse_iso(value)
    if isinstance(value, datetime):
        return value.astimezone(ZoneInfo(tz))
    return value


def short_date(
    value: str | datetime | date | None,
    *,
    now: datetime,
    tz: str,
    lang: str,
    time: bool = False,
) -> str:
    """``3 mars`` (this year), ``3 mars 2025`` (another year); ``time`` adds ``14:05``.

    ``value`` is an ISO time (UTC, as stored), an aware datetime, or a local day
    (``YYYY-MM-DD``, shown as it is: a day has no time zone)."""
    if value is None or value == "":
        return ""
    when = _local(value, tz)
    this_year = now.astimezone(ZoneInfo(tz)).year
    lang = lang if lang in _DAY else "fr"
    pattern = (_DAY if when.year == this_year else _DAY_YEAR)[lang]
    if isinstance(when, datetime):
        if time:
            pattern += " HH:mm" if lang == "fr" else ", HH:mm"
        return format_datetime(when, pattern, tzinfo=when.tzinfo, locale=lang)
    return format_date(when, pattern, locale=lang)


def month_name(year: int, month: int, lang: str, *, short: bool = False) -> str:
    """``janv.`` / ``Jan`` (short, for chart axes), ``janvier 2026`` / ``January 2026``."""
    d = date(year, month, 1)
    return format_date(d, "LLL" if short else "LLLL y", locale=lang)


def long_date(d: date, lang: str) -> str:
    """``3 janvier 2026`` / ``3 January 2026``: a report's period, always with its year."""
    return format_date(d, "d MMMM y", locale=lang)


def weekday_name(code: str, lang: str) -> str:
    """``mon`` -> ``lundi`` / ``Monday``; the code itself when it is not a weekday."""
    if code not in WEEKDAY_CODES:
        return code
    return str(get_day_names("wide", locale=lang)[WEEKDAY_CODES.index(code)])
