"""Calendar months: the one place the gateway adds months or cuts time into them.

Certifications last a number of months, invoices and exports cover the site's local
months, the report draws one bar per month. Month arithmetic is easy to get subtly wrong
(31 January plus one month, December plus one, a month with a DST change in it), so it
is written once here and everything else calls it.

A month is named by its first day (a ``date``) or, in files and URLs, ``YYYY-MM``; its
span in time is the site's local midnight on the first to local midnight on the first
of the next month, as aware datetimes, so a month with a DST change is an hour short or
long, exactly as it is on the wall.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from typing import TypeVar
from zoneinfo import ZoneInfo

_D = TypeVar("_D", date, datetime)
_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


def add_months(t: _D, months: int) -> _D:
    """Calendar months later (or earlier), clamped to the month's last day.

    31 Jan + 1 = 28/29 Feb; the time of day and the timezone stay as they are.
    """
    y, m = divmod(t.month - 1 + months, 12)
    year, month = t.year + y, m + 1
    last = (date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)).day
    return t.replace(year=year, month=month, day=min(t.day, last))


def month_bounds(first: date, tz: str) -> tuple[datetime, datetime]:
    """The local month starting on ``first`` as an instant range ``[start, end)``."""
    zone = ZoneInfo(tz)
    start = date(first.year, first.month, 1)
    return (
        datetime.combine(start, time(0), zone),
        datetime.combine(add_months(start, 1), time(0), zone),
    )


def local_month(t: datetime, tz: str, shift: int = 0) -> tuple[datetime, datetime]:
    """The site's month containing the instant ``t`` (``shift`` months on), as
    ``[start, end)``: ``shift=-1`` is the month that just ended."""
    local = t.astimezone(ZoneInfo(tz))
    return month_bounds(add_months(date(local.year, local.month, 1), shift), tz)


def month_spans(start: date, end: date) -> Iterator[tuple[date, date]]:
    """The days ``[start, end)`` cut at each first of the month: ``(first, next)`` pairs,
    the first and last clipped to the range."""
    first = start
    while first < end:
        nxt = add_months(date(first.year, first.month, 1), 1)
        yield first, min(nxt, end)
        first = nxt


def parse_month(text: str) -> date:
    """``"2026-11"`` -> ``date(2026, 11, 1)``; ValueError for anything else."""
    m = _MONTH.match(text or "")
    if not m:
        raise ValueError(f"a month is written YYYY-MM, got {text!r}")
    return date(int(m.group(1)), int(m.group(2)), 1)


def month_text(day: date) -> str:
    """The ``YYYY-MM`` name of the month ``day`` (a date or a local datetime) is in."""
    return f"{day.year:04d}-{day.month:02d}"
