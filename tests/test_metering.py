"""Billable minutes and per-minute slices: float edges, invariants, local days."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.policies.metering import billable_minutes, local_day, minute_slices

START = datetime(2026, 3, 10, 18, 4, 5, 123000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("duration", "minutes"),
    [
        (-5.0, 0),
        (-0.0, 0),
        (0.0, 0),
        (0, 0),
        (5e-324, 1),  # the smallest positive float still starts a minute
        (0.0001, 1),
        (59.999, 1),
        (60.0, 1),
        (60, 1),
        (60.0001, 2),
        (math.nextafter(60.0, math.inf), 2),
        (119.99999, 2),
        (120.0, 2),
        (math.nextafter(120.0, math.inf), 3),
        (3600.0, 60),
        (3600.5, 61),
        (math.nextafter(3600.0 * 24 * 365, math.inf), 525_601),
    ],
)
def test_billable_minutes_counts_started_minutes(duration: float, minutes: int) -> None:
    assert billable_minutes(duration) == minutes


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_durations_are_refused(bad: float) -> None:
    with pytest.raises(ValueError):
        billable_minutes(bad)
    with pytest.raises(ValueError):
        minute_slices(START, bad)  # eagerly, not at the first iteration


def test_slices_of_a_short_session() -> None:
    assert list(minute_slices(START, 12.5)) == [(START, 12.5)]


def test_slices_of_exactly_one_minute() -> None:
    assert list(minute_slices(START, 60.0)) == [(START, 60.0)]


def test_slices_are_session_relative_minutes() -> None:
    slices = list(minute_slices(START, 150.25))
    assert slices == [
        (START, 60.0),
        (START + timedelta(seconds=60), 60.0),
        (START + timedelta(seconds=120), 30.25),
    ]


def test_a_hair_over_a_minute_is_a_second_slice() -> None:
    duration = math.nextafter(60.0, math.inf)
    slices = list(minute_slices(START, duration))
    assert len(slices) == 2
    assert slices[0][1] + slices[1][1] == duration
    assert slices[1][1] > 0


@pytest.mark.parametrize("duration", [0.0, -3.0])
def test_no_slices_for_an_empty_session(duration: float) -> None:
    assert list(minute_slices(START, duration)) == []


def test_slices_count_elapsed_time_across_a_dst_change() -> None:
    # Paris 2026-03-29: 01:59 CET is followed one minute later by 03:00 CEST.
    paris = ZoneInfo("Europe/Paris")
    start = datetime(2026, 3, 29, 1, 59, tzinfo=paris)
    (first, _), (second, _) = minute_slices(start, 90.0)
    assert first == start
    assert second.astimezone(UTC) - start.astimezone(UTC) == timedelta(minutes=1)
    assert (second.hour, second.minute) == (3, 0)
    assert second.tzinfo is paris


def test_naive_start_is_kept_naive() -> None:
    start = datetime(2026, 3, 10, 18, 0)
    assert [t for t, _ in minute_slices(start, 61.0)] == [start, start + timedelta(minutes=1)]


durations = st.floats(
    min_value=-100.0, max_value=10 * 24 * 3600.0, allow_nan=False, allow_infinity=False
)
edge_durations = st.integers(-2, 2000).flatmap(
    lambda m: st.sampled_from(
        [60.0 * m, math.nextafter(60.0 * m, math.inf), math.nextafter(60.0 * m, -math.inf)]
    )
)
starts = st.datetimes(
    min_value=datetime(2020, 1, 1),
    max_value=datetime(2030, 1, 1),
    timezones=st.sampled_from([UTC, ZoneInfo("Europe/Paris")]),
)


@given(start=starts, duration=durations | edge_durations)
def test_slices_add_up_to_the_duration_and_the_bill(start: datetime, duration: float) -> None:
    slices = list(minute_slices(start, duration))
    assert len(slices) == billable_minutes(duration)
    if duration > 0:
        assert math.isclose(math.fsum(s for _, s in slices), duration, rel_tol=0, abs_tol=1e-9)
        assert sum(s for _, s in slices) == duration  # in order, the float sum is exact
    else:
        assert slices == []


@given(start=starts, duration=durations | edge_durations)
def test_every_slice_is_a_started_minute(start: datetime, duration: float) -> None:
    slices = list(minute_slices(start, duration))
    for k, (minute_start, seconds) in enumerate(slices):
        assert 0 < seconds <= 60
        assert minute_start.astimezone(UTC) - start.astimezone(UTC) == timedelta(minutes=k)
        if k < len(slices) - 1:
            assert seconds == 60.0


@given(duration=durations | edge_durations)
def test_billable_minutes_brackets_the_duration(duration: float) -> None:
    minutes = billable_minutes(duration)
    assert minutes >= 0
    if duration > 0:
        assert 60 * (minutes - 1) < duration <= 60 * minutes
    else:
        assert minutes == 0


# --- local_day -------------------------------------------------------------------------


def test_local_day_is_the_sites_calendar_day() -> None:
    t = datetime(2026, 12, 31, 23, 30, tzinfo=UTC)
    assert local_day(t, "Europe/Paris") == date(2027, 1, 1)
    assert local_day(t, "UTC") == date(2026, 12, 31)
    assert local_day(t, "America/Los_Angeles") == date(2026, 12, 31)


def test_local_day_around_a_dst_midnight() -> None:
    # Paris is UTC+2 in summer: 22:00 UTC on 2026-07-14 is already the 15th.
    assert local_day(datetime(2026, 7, 14, 21, 59, tzinfo=UTC), "Europe/Paris") == date(2026, 7, 14)
    assert local_day(datetime(2026, 7, 14, 22, 0, tzinfo=UTC), "Europe/Paris") == date(2026, 7, 15)


def test_local_day_refuses_naive_times() -> None:
    with pytest.raises(ValueError):
        local_day(datetime(2026, 3, 10, 12, 0), "Europe/Paris")
