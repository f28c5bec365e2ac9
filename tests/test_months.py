"""Calendar months, written once: certifications, invoices, exports and the report use them."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.core.months import (
    add_months,
    local_month,
    month_bounds,
    month_spans,
    month_text,
    parse_month,
)

TZ = "Europe/Paris"
days = st.dates(min_value=date(1990, 1, 1), max_value=date(2200, 12, 31))


def test_add_months_clamps_to_the_last_day() -> None:
    assert add_months(date(2026, 1, 31), 1) == date(2026, 2, 28)
    assert add_months(date(2028, 1, 31), 1) == date(2028, 2, 29)
    assert add_months(datetime(2026, 11, 30, 9, tzinfo=UTC), 3) == datetime(
        2027, 2, 28, 9, tzinfo=UTC
    )
    assert add_months(date(2026, 3, 31), -1) == date(2026, 2, 28)
    assert add_months(date(2026, 12, 15), 1) == date(2027, 1, 15)


@given(days, st.integers(-600, 600))
def test_add_months_lands_in_the_right_month(day: date, n: int) -> None:
    later = add_months(day, n)
    assert (later.year * 12 + later.month) - (day.year * 12 + day.month) == n
    last = (add_months(later.replace(day=1), 1) - timedelta(days=1)).day
    assert later.day == min(day.day, last)
    if day.day <= 28:
        assert later.day == day.day and add_months(later, -n) == day


def test_month_bounds_follow_the_wall_clock_over_dst() -> None:
    start, end = month_bounds(date(2026, 3, 1), TZ)  # DST starts on 29 March
    assert start == datetime(2026, 3, 1, tzinfo=ZoneInfo(TZ))
    assert end == datetime(2026, 4, 1, tzinfo=ZoneInfo(TZ))
    # An hour short in real time (compared in UTC: Python subtracts same-zone wall times).
    assert end.astimezone(UTC) - start.astimezone(UTC) == timedelta(days=31, hours=-1)


@given(
    st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    ),
    st.integers(-24, 24),
)
def test_local_month_contains_the_instant(t: datetime, shift: int) -> None:
    start, end = local_month(t, TZ)
    assert start <= t < end
    assert start.astimezone(ZoneInfo(TZ)).day == 1
    shifted = local_month(t, TZ, shift)
    assert shifted == month_bounds(add_months(start.date(), shift), TZ)


def test_the_month_that_just_ended() -> None:
    start, end = local_month(datetime(2026, 1, 1, 0, 30, tzinfo=ZoneInfo(TZ)), TZ, -1)
    assert (month_text(start), end) == ("2025-12", datetime(2026, 1, 1, tzinfo=ZoneInfo(TZ)))


@given(days, days)
def test_month_spans_cover_the_range_once(a: date, b: date) -> None:
    start, end = min(a, b), max(a, b)
    spans = list(month_spans(start, end))
    assert [s for s, _ in spans[:1]] == ([start] if start < end else [])
    assert all(x[1] == y[0] for x, y in zip(spans, spans[1:], strict=False))
    assert spans[-1][1] == end if spans else start == end
    assert all(s.day == 1 for s, _ in spans[1:])


def test_month_text_round_trip() -> None:
    assert parse_month("2026-11") == date(2026, 11, 1)
    assert month_text(date(2026, 11, 30)) == "2026-11"
    for bad in ("2026-13", "2026-1", "26-11", "", "2026-11-01"):
        with pytest.raises(ValueError, match="YYYY-MM"):
            parse_month(bad)
