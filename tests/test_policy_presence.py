"""Staff presence windows (opening hours, DST, midnight) and staff tap toggling."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.core.snapshot import MachineInfo, MemberGrant, OpeningHours, Snapshot
from gateway.policies.access import Action, Decision, Reason
from gateway.policies.presence import presence_until, staff_present, staff_toggle

PARIS = "Europe/Paris"
TZ = ZoneInfo(PARIS)
MON, TUE, WED, SAT, SUN = 0, 1, 2, 5, 6

# Tuesday and Wednesday evenings, Saturday afternoon until midnight.
HOURS: OpeningHours = {
    TUE: ((time(14, 0), time(18, 0)), (time(19, 0), time(22, 0))),
    WED: ((time(18, 0), time(22, 0)),),
    SAT: ((time(14, 0), time(0, 0)),),
}


def paris(y: int, mo: int, d: int, h: int = 0, mi: int = 0, fold: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=TZ, fold=fold)


def utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=UTC)


# 2026-03-10 is a Tuesday; 2026-03-14 a Saturday.


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (paris(2026, 3, 10, 15, 0), paris(2026, 3, 10, 18, 0)),  # inside the first slot
        (paris(2026, 3, 10, 14, 0), paris(2026, 3, 10, 18, 0)),  # exactly at opening
        (paris(2026, 3, 10, 18, 0), paris(2026, 3, 10, 22, 0)),  # at closing: next slot
        (paris(2026, 3, 10, 18, 30), paris(2026, 3, 10, 22, 0)),  # between slots
        (paris(2026, 3, 10, 9, 0), paris(2026, 3, 10, 18, 0)),  # before the first slot
        (paris(2026, 3, 10, 21, 59), paris(2026, 3, 10, 22, 0)),  # inside the last slot
        (paris(2026, 3, 10, 22, 0), paris(2026, 3, 11, 0, 0)),  # after the last: midnight
        (paris(2026, 3, 9, 12, 0), paris(2026, 3, 10, 0, 0)),  # closed day: midnight
    ],
)
def test_presence_until_follows_the_days_slots(now: datetime, expected: datetime) -> None:
    assert presence_until(HOURS, PARIS, now) == expected


def test_slot_closing_at_00_00_closes_at_midnight() -> None:
    assert presence_until(HOURS, PARIS, paris(2026, 3, 14, 20, 0)) == paris(2026, 3, 15)
    assert presence_until(HOURS, PARIS, paris(2026, 3, 14, 10, 0)) == paris(2026, 3, 15)


def test_slot_00_00_to_00_00_is_the_whole_day() -> None:
    hours = {MON: ((time(0), time(0)),)}
    assert presence_until(hours, PARIS, paris(2026, 3, 9, 0, 0)) == paris(2026, 3, 10)


def test_no_opening_hours_at_all_means_local_midnight() -> None:
    assert presence_until({}, PARIS, paris(2026, 3, 9, 12, 0)) == paris(2026, 3, 10)


def test_touching_or_overlapping_slots_are_one_period() -> None:
    hours = {MON: ((time(10), time(12)), (time(12), time(14)), (time(13), time(16)))}
    assert presence_until(hours, PARIS, paris(2026, 3, 9, 11, 0)) == paris(2026, 3, 9, 16, 0)


def test_unsorted_slots_are_handled() -> None:
    hours = {MON: ((time(19), time(22)), (time(9), time(12)))}
    assert presence_until(hours, PARIS, paris(2026, 3, 9, 10, 0)) == paris(2026, 3, 9, 12, 0)
    assert presence_until(hours, PARIS, paris(2026, 3, 9, 13, 0)) == paris(2026, 3, 9, 22, 0)


def test_weekday_is_the_sites_local_weekday() -> None:
    # Tuesday 23:30 UTC is Wednesday 00:30 in Paris: Wednesday's evening slot applies.
    now = utc(2026, 3, 10, 23, 30)
    assert presence_until(HOURS, PARIS, now) == paris(2026, 3, 11, 22, 0)
    # In New York it is still Tuesday 19:30: inside Tuesday's 19:00-22:00 slot.
    ny = ZoneInfo("America/New_York")
    assert presence_until(HOURS, "America/New_York", now) == datetime(2026, 3, 10, 22, tzinfo=ny)


def test_result_keeps_the_timezone_of_now() -> None:
    now = utc(2026, 3, 10, 14, 0)
    result = presence_until(HOURS, PARIS, now)
    assert result.tzinfo is UTC
    assert result == utc(2026, 3, 10, 17, 0)


def test_spring_forward_day_midnight_and_slot_end() -> None:
    # 2026-03-29: Paris jumps from 02:00 CET to 03:00 CEST; the day is 23 hours long.
    hours = {SUN: ((time(1, 0), time(5, 0)),)}
    assert presence_until(hours, PARIS, utc(2026, 3, 29, 0, 30)) == utc(2026, 3, 29, 3, 0)
    assert presence_until(hours, PARIS, utc(2026, 3, 29, 3, 0)) == utc(2026, 3, 29, 22, 0)
    assert presence_until({}, PARIS, utc(2026, 3, 28, 23, 30)) == utc(2026, 3, 29, 22, 0)


def test_fall_back_day_midnight_and_slot_end() -> None:
    # 2026-10-25: Paris goes back from 03:00 CEST to 02:00 CET; the day is 25 hours long.
    hours = {SUN: ((time(1, 0), time(4, 0)),)}
    # 02:30 CET (second pass) is 01:30 UTC; the slot still ends at 04:00 CET = 03:00 UTC.
    assert presence_until(hours, PARIS, utc(2026, 10, 25, 1, 30)) == utc(2026, 10, 25, 3, 0)
    assert presence_until({}, PARIS, utc(2026, 10, 24, 22, 30)) == utc(2026, 10, 25, 23, 0)


def test_a_close_time_shown_twice_means_its_first_occurrence() -> None:
    hours = {SUN: ((time(1, 0), time(2, 30)),)}
    # The first 02:30 is 02:30 CEST, i.e. 00:30 UTC.
    assert presence_until(hours, PARIS, utc(2026, 10, 25, 0, 0)) == utc(2026, 10, 25, 0, 30)
    # After the first 02:30 the slot is over, even though the clock shows 02:xx again;
    # `now` given in the site's own zone must be compared as an instant, not a wall time.
    second_pass = paris(2026, 10, 25, 2, 10, fold=1)
    assert presence_until(hours, PARIS, second_pass) == utc(2026, 10, 25, 23, 0)


def test_slot_closing_inside_the_skipped_hour_runs_into_the_next_one() -> None:
    # 2026-03-29 in Paris: 02:30 does not exist; read as 03:30 CEST it reaches past the
    # 03:00 opening, so the two slots are one continuous period.
    hours = {SUN: ((time(1, 0), time(2, 30)), (time(3, 0), time(5, 0)))}
    assert presence_until(hours, PARIS, utc(2026, 3, 29, 0, 10)) == utc(2026, 3, 29, 3, 0)


def test_midnight_skipped_by_dst_is_still_the_days_end() -> None:
    # Santiago moves its clocks at midnight: on 2026-09-06 00:00 becomes 01:00.
    santiago = ZoneInfo("America/Santiago")
    now = datetime(2026, 9, 5, 22, 0, tzinfo=santiago)
    result = presence_until({}, "America/Santiago", now).astimezone(UTC)
    assert result == utc(2026, 9, 6, 4, 0)
    assert (result - timedelta(microseconds=1)).astimezone(santiago).date() == date(2026, 9, 5)
    assert result.astimezone(santiago).date() == date(2026, 9, 6)


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError):
        presence_until(HOURS, PARIS, datetime(2026, 3, 10, 15, 0))


# --- property: presence is always a window that starts now and stays within the day -----

ZONES = [
    "UTC",
    PARIS,
    "America/New_York",
    "America/Santiago",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
    "Pacific/Apia",
]
walls = st.times().map(lambda t: t.replace(second=0, microsecond=0))


@st.composite
def opening_hours(draw: st.DrawFn) -> dict[int, tuple[tuple[time, time], ...]]:
    hours = {}
    for day in draw(st.sets(st.integers(0, 6))):
        slots = []
        for opens, closes in draw(st.lists(st.tuples(walls, walls), max_size=3)):
            closes = time(0) if closes <= opens else closes
            slots.append((opens, closes))
        hours[day] = tuple(sorted(slots))
    return hours


instants = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2030, 12, 31), timezones=st.just(UTC)
)


def _inside(hours: OpeningHours, zone: ZoneInfo, now: datetime) -> list[datetime]:
    """Ends of the slots containing now, computed independently (straight from the data)."""
    day = now.astimezone(zone).date()
    ends = []
    for opens, closes in hours.get(day.weekday(), ()):
        start = datetime.combine(day, opens, tzinfo=zone)
        end = (
            datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
            if closes == time(0)
            else datetime.combine(day, closes, tzinfo=zone)
        )
        if start <= now < end:
            ends.append(end)
    return ends


@given(hours=opening_hours(), tz=st.sampled_from(ZONES), now=instants)
def test_presence_is_after_now_and_within_the_local_day(
    hours: OpeningHours, tz: str, now: datetime
) -> None:
    zone = ZoneInfo(tz)
    result = presence_until(hours, tz, now)
    assert result > now
    last_instant = (result - timedelta(microseconds=1)).astimezone(zone)
    assert last_instant.date() == now.astimezone(zone).date()


@given(hours=opening_hours(), tz=st.sampled_from(ZONES), now=instants)
def test_presence_inside_a_slot_lasts_at_least_to_its_end(
    hours: OpeningHours, tz: str, now: datetime
) -> None:
    ends = _inside(hours, ZoneInfo(tz), now)
    if ends:
        assert presence_until(hours, tz, now) >= max(ends)


@given(tz=st.sampled_from(ZONES), now=instants)
def test_outside_any_opening_hours_presence_lasts_to_the_next_local_midnight(
    tz: str, now: datetime
) -> None:
    zone = ZoneInfo(tz)
    result = presence_until({}, tz, now)
    # Midnight is the first instant whose local date is not today's.
    assert result.astimezone(zone).date() > now.astimezone(zone).date()
    assert (result - timedelta(microseconds=1)).astimezone(zone).date() == now.astimezone(
        zone
    ).date()


# --- staff_present ---------------------------------------------------------------------

NOW = utc(2026, 3, 10, 15, 0)


def snap(until: datetime | None) -> Snapshot:
    machine = MachineInfo(id="m", name="m", kind="laser", group="laser")
    return Snapshot(
        site="s",
        version=1,
        issued_at=NOW,
        valid_until=NOW + timedelta(days=1),
        machine=machine,
        timezone=PARIS,
        staff_present_until=until,
    )


@pytest.mark.parametrize(
    ("hub", "local", "expected"),
    [
        (None, None, False),
        (snap(None), None, False),
        (snap(NOW + timedelta(hours=1)), None, True),
        (snap(NOW), None, False),  # the window is half-open
        (snap(NOW - timedelta(hours=1)), None, False),
        (None, NOW + timedelta(minutes=1), True),
        (snap(None), NOW, False),
        (snap(NOW - timedelta(hours=1)), NOW + timedelta(hours=1), True),
        (snap(NOW + timedelta(hours=1)), NOW - timedelta(hours=1), True),
    ],
    ids=[
        "nothing",
        "hub-none",
        "hub-ahead",
        "hub-now",
        "hub-past",
        "local-ahead",
        "local-now",
        "local-rescues",
        "hub-rescues",
    ],
)
def test_staff_present(hub: Snapshot | None, local: datetime | None, expected: bool) -> None:
    assert staff_present(hub, local, NOW) is expected


def test_staff_present_compares_instants_on_a_fall_back_night() -> None:
    # 02:50 CEST (first pass) is before 02:10 CET (second pass), though its wall time is not.
    until = paris(2026, 10, 25, 2, 50, fold=0)
    assert staff_present(snap(until), None, paris(2026, 10, 25, 2, 10, fold=1)) is False
    assert staff_present(None, until, paris(2026, 10, 25, 2, 40, fold=0)) is True


def test_staff_present_refuses_naive_now() -> None:
    with pytest.raises(ValueError):
        staff_present(None, None, datetime(2026, 3, 10))


# --- staff_toggle ----------------------------------------------------------------------

STAFF = MemberGrant(
    member_id="sam",
    name="Sam",
    category="staff",
    status="active",
    membership_end=None,
    level=3,
    cert_expires=None,
    staff=True,
)
START = Decision(Action.START, Reason.ALLOWED, STAFF)
END = Decision(Action.END, Reason.BADGE_OUT, STAFF)
DENY = Decision(Action.DENY, Reason.NOT_CERTIFIED, STAFF)


@pytest.mark.parametrize("locally_present", [False, True])
def test_staff_starting_a_machine_checks_in(locally_present: bool) -> None:
    assert staff_toggle(STAFF, START, locally_present) is True


@pytest.mark.parametrize("locally_present", [False, True])
def test_staff_ending_a_session_checks_out(locally_present: bool) -> None:
    assert staff_toggle(STAFF, END, locally_present) is False


def test_staff_denied_tap_flips_presence() -> None:
    assert staff_toggle(STAFF, DENY, False) is True
    assert staff_toggle(STAFF, DENY, True) is False


decisions = st.builds(Decision, st.sampled_from(Action), st.sampled_from(Reason))


@given(decision=decisions, locally_present=st.booleans())
def test_non_staff_never_change_presence(decision: Decision, locally_present: bool) -> None:
    member = replace(STAFF, staff=False)
    assert staff_toggle(member, decision, locally_present) is None


@given(
    decision=decisions,
    locally_present=st.booleans(),
    status=st.sampled_from(["suspended", "blocked", ""]),
)
def test_inactive_staff_never_change_presence(
    decision: Decision, locally_present: bool, status: str
) -> None:
    assert staff_toggle(replace(STAFF, status=status), decision, locally_present) is None


@given(decision=decisions, locally_present=st.booleans())
def test_active_staff_always_get_a_presence_answer(
    decision: Decision, locally_present: bool
) -> None:
    assert staff_toggle(STAFF, decision, locally_present) in (True, False)
