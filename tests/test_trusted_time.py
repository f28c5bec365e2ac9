"""Trusted time: never before what the hub signed; snapshot age on the monotonic clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from gateway.policies.access import MachineState, Reason, decide
from gateway.policies.trusted_time import (
    CLOCK_TOLERANCE,
    UNKNOWN_AGE,
    SignedTime,
    clock_behind,
    latest,
    receive,
    snapshot_age,
    trusted_now,
)
from tests.test_policy_access import ALICE_UID, grant, snapshot

SIGNED = datetime(2026, 3, 10, 18, 0, tzinfo=UTC)
YEAR = timedelta(days=365)

shifts = st.timedeltas(min_value=-2 * YEAR, max_value=2 * YEAR)
elapsed = st.floats(min_value=0, max_value=10 * 365 * 86400, allow_nan=False)
monos = st.floats(min_value=0, max_value=1e6, allow_nan=False)


@given(shift=shifts, mono0=monos, dt=elapsed)
def test_trusted_now_is_never_before_the_signed_bound_nor_the_wall(shift, mono0, dt) -> None:
    floor = SignedTime(SIGNED, mono0)
    bound = SIGNED + timedelta(seconds=dt)
    wall = bound + shift
    now = trusted_now(wall, floor, mono0 + dt)
    assert now >= bound and now >= wall
    assert now in (bound, wall)
    assert clock_behind(wall, floor, mono0 + dt) == (shift < -CLOCK_TOLERANCE)


@given(
    mono0=monos,
    steps=st.lists(st.floats(min_value=0, max_value=1e5), max_size=20),
    wall_back=st.timedeltas(min_value=timedelta(0), max_value=5 * YEAR),
)
def test_a_clock_set_back_cannot_move_trusted_time_backwards(mono0, steps, wall_back) -> None:
    floor = SignedTime(SIGNED, mono0)
    mono, previous = mono0, SIGNED
    for step in steps:
        mono += step
        now = trusted_now(SIGNED - wall_back, floor, mono)
        assert now >= previous
        previous = now


def test_a_persisted_floor_holds_after_a_restart_but_does_not_advance() -> None:
    persisted = SignedTime(SIGNED + timedelta(hours=3))  # no monotonic anchor: new boot
    assert trusted_now(SIGNED - YEAR, persisted, 5.0) == SIGNED + timedelta(hours=3)
    assert trusted_now(SIGNED - YEAR, persisted, 5e6) == SIGNED + timedelta(hours=3)
    assert clock_behind(SIGNED - YEAR, persisted, 0.0)
    assert trusted_now(SIGNED + YEAR, persisted, 0.0) == SIGNED + YEAR


@given(mono0=monos, a=elapsed, b=elapsed, now=elapsed)
def test_latest_keeps_the_later_floor(mono0, a, b, now) -> None:
    fa = SignedTime(SIGNED + timedelta(seconds=a), mono0)
    fb = SignedTime(SIGNED + timedelta(seconds=b))
    kept = latest(fa, fb, mono0 + now)
    assert kept.bound(mono0 + now) == max(fa.bound(mono0 + now), fb.bound(mono0 + now))
    assert latest(None, fb, 0.0) is fb and latest(fa, None, 0.0) is fa


@given(
    age0=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=30)),
    mono0=monos,
    dt=elapsed,
)
def test_snapshot_age_is_age_at_receipt_plus_monotonic_time(age0, mono0, dt) -> None:
    receipt = receive(SIGNED, SIGNED + age0, mono0)
    assert snapshot_age(receipt, mono0 + dt) == age0 + timedelta(seconds=dt)


def test_a_snapshot_issued_after_the_wall_clock_is_zero_days_old() -> None:
    assert snapshot_age(receive(SIGNED, SIGNED - YEAR, 0.0), 0.0) == timedelta(0)


def test_an_unknown_age_is_older_than_any_limit() -> None:
    receipt = receive(SIGNED, None, 10.0)
    assert snapshot_age(receipt, 11.0) == UNKNOWN_AGE
    snap = snapshot(grant("alice"), issued_at=SIGNED, valid_until=SIGNED + timedelta(days=7))
    d = decide(
        snap,
        badge_uid=ALICE_UID,
        now=SIGNED,
        staff_present=False,
        state=MachineState(),
        max_snapshot_age=timedelta(hours=72),
        snapshot_age=UNKNOWN_AGE,
    )
    assert d.reason is Reason.SNAPSHOT_TOO_OLD


@given(shift=shifts, age_h=st.floats(min_value=0, max_value=24 * 10, allow_nan=False))
def test_freshness_follows_the_monotonic_age_whatever_the_wall_clock_says(shift, age_h) -> None:
    snap = snapshot(
        grant("alice", cert_expires=None, membership_end=None),
        issued_at=SIGNED,
        valid_until=SIGNED + timedelta(days=7),
    )
    age = timedelta(hours=age_h)
    d = decide(
        snap,
        badge_uid=ALICE_UID,
        now=SIGNED + age + shift,
        staff_present=False,
        state=MachineState(),
        max_snapshot_age=timedelta(hours=72),
        snapshot_age=age,
    )
    assert (d.reason is Reason.SNAPSHOT_TOO_OLD) == (age > timedelta(hours=72))
