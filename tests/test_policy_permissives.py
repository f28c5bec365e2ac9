"""Permissives and the hold before power-off, as pure policy: no node, no clock, no board."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.contract import ContractError, Tap
from gateway.core.activity import Activity
from gateway.policies import session_rules as sr
from gateway.policies.access import Action, MachineState, Reason, decide, explain
from gateway.policies.permissives import (
    CLASS_DROP_RULES,
    PERMISSIVE_OFF,
    DropRule,
    Permissive,
    blocking,
    deny_reason,
    resolve,
)
from tests.support.builders import ALICE, snapshot

WATER = Permissive("water_flow", 0, DropRule.HOLD, 5.0)
FUMES = Permissive("fume_extraction", 1, DropRule.OFF, 0.0)
NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def test_blocking_is_the_first_permissive_not_known_closed() -> None:
    both = [WATER, FUMES]
    assert blocking(both, {0: True, 1: True}) is None
    assert blocking(both, {0: True, 1: False}) is FUMES
    assert blocking(both, {1: True}) is WATER  # unknown is off
    assert blocking(both, {}) is WATER
    assert blocking([], {}) is None
    assert deny_reason(WATER) == "permissive_off:water_flow"


def test_class_rules_and_overrides() -> None:
    assert resolve("laser", name="w", input=0, on_drop=None, hold_s=None) == Permissive(
        "w", 0, DropRule.HOLD, CLASS_DROP_RULES["laser"][1]
    )
    assert resolve("other", name="w", input=0, on_drop=None, hold_s=None).on_drop is DropRule.OFF
    assert resolve("laser", name="w", input=1, on_drop="off", hold_s=None).on_drop is DropRule.OFF
    assert resolve("other", name="w", input=0, on_drop="hold", hold_s=None).hold_s > 0
    assert resolve("printer", name="w", input=0, on_drop=None, hold_s=2.0).hold_s == 2.0
    assert resolve("unheard-of", name="w", input=0, on_drop=None, hold_s=None).on_drop is (
        DropRule.OFF
    )


# -- taps ------------------------------------------------------------------------------


def test_a_permissive_off_denies_the_tap_last_with_its_name() -> None:
    snap = snapshot(issued=NOW)
    blocked = MachineState(interlock="water_flow")
    d = decide(
        snap,
        badge_uid=ALICE,
        now=NOW,
        staff_present=False,
        state=blocked,
        max_snapshot_age=timedelta(days=3),
    )
    assert (d.action, d.reason, d.detail) == (Action.DENY, Reason.PERMISSIVE_OFF, "water_flow")
    assert d.wire_reason == "permissive_off:water_flow"
    assert d.member is not None
    assert "water_flow" in explain(d.wire_reason) and "water_flow" in explain(d.wire_reason, "fr")
    # Without the interlock the same tap starts; an unknown badge still hears unknown_badge.
    ok = decide(
        snap,
        badge_uid=ALICE,
        now=NOW,
        staff_present=False,
        state=MachineState(),
        max_snapshot_age=timedelta(days=3),
    )
    assert ok.action is Action.START
    stranger = decide(
        snap,
        badge_uid="DEADBEEF",
        now=NOW,
        staff_present=False,
        state=blocked,
        max_snapshot_age=timedelta(days=3),
    )
    assert stranger.reason is Reason.UNKNOWN_BADGE


def test_the_contract_takes_a_named_permissive_and_nothing_else() -> None:
    tap = Tap(uid=ALICE, member_id="m-alice", action="deny", reason="permissive_off:water_flow")
    assert Tap.from_data(tap.to_data()).reason == "permissive_off:water_flow"
    for bad in (
        "permissive_off:",
        "permissive_off:Water",
        "permissive_off:" + "x" * 33,
        "permissive_off:a:b",
        "unknown_badge:water",
        "nonsense",
    ):
        with pytest.raises(ContractError):
            Tap.from_data({**tap.to_data(), "reason": bad})


# -- the session's side ------------------------------------------------------------------

LASER = sr.resolve("laser")
PRINTER = sr.resolve("printer")
ACTIVITIES = st.sampled_from(list(Activity))


def view(**kw: object) -> sr.SessionView:
    base = dict(
        started=0.0,
        badged_out=None,
        activity=Activity.BUSY,
        last_active=0.0,
        job_running=True,
    )
    base.update(kw)
    return sr.SessionView(**base)  # type: ignore[arg-type]


def test_max_length_on_a_busy_laser_asks_a_hold_then_ends_after_it() -> None:
    at = LASER.max_session_s or 0.0
    first = sr.evaluate(LASER, view(), at)
    assert first == sr.Ruling(sr.Verdict.SAFE_STOP_THEN_END, "max_length", LASER.hold_s)
    assert LASER.hold_s == 10
    held = view(stop=sr.Stop("max_length", at, LASER.hold_s), activity=Activity.PAUSED)
    assert sr.evaluate(LASER, held, at + LASER.hold_s - 0.1) == sr.KEEP
    assert sr.evaluate(LASER, held, at + LASER.hold_s) == sr.Ruling(sr.Verdict.END, "max_length")
    # The machine stopped before the deadline: off at once.
    idle = replace(held, activity=Activity.IDLE, job_running=False)
    assert sr.evaluate(LASER, idle, at + 1).verdict is sr.Verdict.END


def test_a_permissive_drop_on_an_idle_machine_is_off_at_once() -> None:
    idle = view(activity=Activity.IDLE, job_running=False, interlock=WATER)
    assert sr.evaluate(LASER, idle, 5.0) == sr.Ruling(sr.Verdict.END, PERMISSIVE_OFF)
    off_rule = view(interlock=FUMES)
    assert sr.evaluate(LASER, off_rule, 5.0) == sr.Ruling(sr.Verdict.END, PERMISSIVE_OFF)
    busy = view(interlock=WATER)
    assert sr.evaluate(PRINTER, busy, 5.0) == sr.Ruling(
        sr.Verdict.SAFE_STOP_THEN_END, PERMISSIVE_OFF, WATER.hold_s
    )


stops = st.one_of(
    st.none(),
    st.builds(
        sr.Stop,
        st.sampled_from(["max_length", "credit_exhausted", PERMISSIVE_OFF]),
        st.floats(0, 1000),
        st.floats(0, 60),
    ),
)
perms = st.one_of(
    st.none(),
    st.builds(
        Permissive,
        st.just("water_flow"),
        st.integers(0, 1),
        st.sampled_from(list(DropRule)),
        st.floats(0, 60),
    ),
)
rules = st.builds(
    sr.SessionRules,
    grace_s=st.floats(0, 300),
    idle_timeout_s=st.one_of(st.none(), st.floats(1, 3600)),
    max_session_s=st.one_of(st.none(), st.floats(1, 3600)),
    cooldown_s=st.floats(0, 600),
    never_cut_busy=st.booleans(),
    hold_s=st.floats(0, 60),
)
views = st.builds(
    sr.SessionView,
    started=st.just(0.0),
    badged_out=st.one_of(st.none(), st.floats(0, 2000)),
    activity=ACTIVITIES,
    last_active=st.floats(0, 2000),
    job_running=st.booleans(),
    job_ended=st.one_of(st.none(), st.floats(0, 2000)),
    credit_limit_s=st.one_of(st.none(), st.floats(0, 3600)),
    interlock=perms,
    stop=stops,
)


@settings(max_examples=300)
@given(r=rules, v=views, now=st.floats(0, 5000))
def test_a_permissive_off_never_keeps_power_on_silently(
    r: sr.SessionRules, v: sr.SessionView, now: float
) -> None:
    """With a permissive off, power is off now, or a hold is under way that ends no
    later than the permissive's own hold would from now."""
    p = v.interlock
    if p is None:
        return
    ruling = sr.evaluate(r, v, now)
    if ruling.verdict is sr.Verdict.END:
        return
    if ruling.verdict is sr.Verdict.SAFE_STOP_THEN_END:
        assert ruling.hold_s <= p.hold_s and ruling.reason == PERMISSIVE_OFF
        assert p.on_drop is DropRule.HOLD
        return
    assert v.stop is not None and now < v.stop.deadline <= now + p.hold_s


@settings(max_examples=300)
@given(r=rules, v=views, now=st.floats(0, 5000))
def test_a_hold_never_outlasts_its_deadline(
    r: sr.SessionRules, v: sr.SessionView, now: float
) -> None:
    if v.stop is None:
        return
    ruling = sr.evaluate(r, v, now)
    if now >= v.stop.deadline:
        assert ruling.verdict is sr.Verdict.END
    assert ruling.verdict is not sr.Verdict.SAFE_STOP_THEN_END or (
        v.interlock is not None and now + ruling.hold_s < v.stop.deadline
    )


@settings(max_examples=300)
@given(r=rules, v=views, now=st.floats(0, 5000))
def test_a_never_cut_machine_is_never_stopped_mid_job_by_badge_out_or_length(
    r: sr.SessionRules, v: sr.SessionView, now: float
) -> None:
    """Only an interlock (or a hold it asked for) may stop a printer's job."""
    r = replace(r, never_cut_busy=True)
    v = replace(v, interlock=None, stop=None)
    if not (v.job_running or v.activity in (Activity.BUSY, Activity.PAUSED)):
        return
    assert sr.evaluate(r, v, now) == sr.KEEP


@settings(max_examples=200)
@given(r=rules, v=views, now=st.floats(0, 5000))
def test_a_limit_on_a_busy_cuttable_machine_is_a_hold_of_the_rules_length(
    r: sr.SessionRules, v: sr.SessionView, now: float
) -> None:
    r = replace(r, never_cut_busy=False, max_session_s=100.0)
    v = replace(v, interlock=None, stop=None, job_running=True, credit_limit_s=None)
    if now < 100.0:
        return
    ruling = sr.evaluate(r, v, now)
    assert ruling.verdict is sr.Verdict.SAFE_STOP_THEN_END and ruling.reason == "max_length"
    assert ruling.hold_s == (r.hold_s if r.hold_s > 0 else 0.0)
