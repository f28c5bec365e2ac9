"""The access policy: each check, their order, and invariants over arbitrary snapshots."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.core.snapshot import MachineInfo, MemberGrant, Snapshot
from gateway.policies.access import (
    DENY_REASONS,
    Action,
    Decision,
    MachineState,
    Reason,
    decide,
    explain,
)

NOW = datetime(2026, 3, 10, 18, 0, tzinfo=UTC)
MAX_AGE = timedelta(hours=24)
ALICE_UID = "A1A1A1A1"
BOB_UID = "B0B0B0B0"


def grant(member_id: str = "alice", **over: object) -> MemberGrant:
    base = MemberGrant(
        member_id=member_id,
        name=member_id.title(),
        category="adult",
        status="active",
        membership_end=date(2026, 12, 31),
        level=2,
        cert_expires=datetime(2027, 1, 1, tzinfo=UTC),
        staff=False,
    )
    return replace(base, **over)


def snapshot(
    *members: MemberGrant,
    badges: dict[str, str] | None = None,
    min_level: int = 2,
    out_of_service: bool = False,
    issued_at: datetime = NOW - timedelta(minutes=5),
    valid_until: datetime = NOW + timedelta(days=2),
    timezone: str = "Europe/Paris",
) -> Snapshot:
    if not members:
        members = (grant("alice"), grant("bob"))
    if badges is None:
        badges = {ALICE_UID: "alice", BOB_UID: "bob"}
    machine = MachineInfo(
        id="laser-1",
        name="Laser 1",
        kind="laser",
        group="laser",
        min_level=min_level,
        out_of_service=out_of_service,
    )
    return Snapshot(
        site="fablab",
        version=1,
        issued_at=issued_at,
        valid_until=valid_until,
        machine=machine,
        timezone=timezone,
        badges=badges,
        members={m.member_id: m for m in members},
    )


def tap(
    snap: Snapshot | None,
    uid: str = ALICE_UID,
    *,
    now: datetime = NOW,
    staff: bool = False,
    state: MachineState | None = None,
    max_age: timedelta = MAX_AGE,
) -> Decision:
    return decide(
        snap,
        badge_uid=uid,
        now=now,
        staff_present=staff,
        state=state or MachineState(),
        max_snapshot_age=max_age,
    )


ALICE_SESSION = MachineState(session_member_id="alice", session_badge_uid=ALICE_UID)
BOB_SESSION = MachineState(session_member_id="bob", session_badge_uid=BOB_UID)


# --- the plain cases -------------------------------------------------------------------


def test_certified_member_starts_the_machine() -> None:
    d = tap(snapshot())
    assert (d.action, d.reason) == (Action.START, Reason.ALLOWED)
    assert d.member is not None and d.member.member_id == "alice"
    assert d.allowed


def test_uid_is_matched_in_any_reader_spelling() -> None:
    assert tap(snapshot(), "a1:a1:a1:a1").reason is Reason.ALLOWED


def test_unknown_badge_is_denied_without_member() -> None:
    d = tap(snapshot(), "DEADBEEF")
    assert (d.action, d.reason, d.member) == (Action.DENY, Reason.UNKNOWN_BADGE, None)
    assert not d.allowed


def test_badge_mapped_to_a_member_missing_from_the_snapshot_is_unknown() -> None:
    snap = snapshot(grant("alice"), badges={ALICE_UID: "ghost"})
    assert tap(snap).reason is Reason.UNKNOWN_BADGE


def test_malformed_uid_is_an_unknown_badge_not_a_crash() -> None:
    assert tap(snapshot(), "not a uid").reason is Reason.UNKNOWN_BADGE


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError):
        tap(snapshot(), now=NOW.replace(tzinfo=None))


# --- badge-out -------------------------------------------------------------------------


def test_owner_badge_out_ends_the_session() -> None:
    d = tap(snapshot(), state=ALICE_SESSION)
    assert (d.action, d.reason) == (Action.END, Reason.BADGE_OUT)
    assert d.member is not None and d.member.member_id == "alice"
    assert d.allowed


def test_owner_badge_out_with_another_badge_of_the_same_member() -> None:
    snap = snapshot(badges={ALICE_UID: "alice", "A2A2A2A2": "alice", BOB_UID: "bob"})
    assert tap(snap, "A2A2A2A2", state=ALICE_SESSION).reason is Reason.BADGE_OUT


@pytest.mark.parametrize(
    "snap",
    [
        None,
        snapshot(issued_at=NOW - timedelta(days=30), valid_until=NOW - timedelta(days=1)),
        snapshot(out_of_service=True),
        snapshot(grant("alice", status="suspended")),
    ],
    ids=["no-snapshot", "expired", "out-of-service", "suspended"],
)
def test_owner_badge_out_works_whatever_the_snapshot(snap: Snapshot | None) -> None:
    d = tap(snap, state=ALICE_SESSION)
    assert (d.action, d.reason) == (Action.END, Reason.BADGE_OUT)


def test_badge_out_by_uid_when_the_snapshot_no_longer_knows_the_badge() -> None:
    snap = snapshot(grant("bob"), badges={BOB_UID: "bob"})
    d = tap(snap, state=ALICE_SESSION)
    assert (d.action, d.reason, d.member) == (Action.END, Reason.BADGE_OUT, None)


def test_badge_out_by_uid_reports_the_owner_when_the_snapshot_has_them() -> None:
    snap = snapshot(grant("alice"), badges={})
    d = tap(snap, state=ALICE_SESSION)
    assert d.reason is Reason.BADGE_OUT
    assert d.member is not None and d.member.member_id == "alice"


def test_badge_out_compares_canonical_uids() -> None:
    state = MachineState(session_member_id="alice", session_badge_uid="a1:a1:a1:a1")
    assert tap(None, "0xA1A1A1A1", state=state).reason is Reason.BADGE_OUT


def test_badge_reassigned_to_another_member_does_not_end_the_session() -> None:
    # The snapshot knows this badge, and it is not the session owner's any more.
    snap = snapshot(badges={ALICE_UID: "bob", BOB_UID: "bob"})
    d = tap(snap, state=ALICE_SESSION)
    assert (d.action, d.reason) == (Action.DENY, Reason.IN_USE)


def test_other_member_cannot_end_or_take_a_running_session() -> None:
    d = tap(snapshot(), BOB_UID, state=ALICE_SESSION)
    assert (d.action, d.reason) == (Action.DENY, Reason.IN_USE)
    assert d.member is not None and d.member.member_id == "bob"


def test_without_snapshot_a_stranger_is_denied_even_during_a_session() -> None:
    assert tap(None, BOB_UID, state=ALICE_SESSION).reason is Reason.NO_SNAPSHOT


# --- snapshot freshness ----------------------------------------------------------------


def test_no_snapshot() -> None:
    d = tap(None)
    assert (d.action, d.reason) == (Action.DENY, Reason.NO_SNAPSHOT)


def test_snapshot_exactly_max_age_old_is_still_used() -> None:
    snap = snapshot(issued_at=NOW - MAX_AGE)
    assert tap(snap).reason is Reason.ALLOWED


def test_snapshot_older_than_max_age_is_too_old() -> None:
    snap = snapshot(issued_at=NOW - MAX_AGE - timedelta(microseconds=1))
    assert tap(snap).reason is Reason.SNAPSHOT_TOO_OLD


def test_snapshot_reaching_valid_until_is_too_old() -> None:
    assert tap(snapshot(valid_until=NOW)).reason is Reason.SNAPSHOT_TOO_OLD
    assert tap(snapshot(valid_until=NOW + timedelta(seconds=1))).reason is Reason.ALLOWED


def test_stale_snapshot_is_reported_before_unknown_badge() -> None:
    snap = snapshot(issued_at=NOW - 2 * MAX_AGE)
    assert tap(snap, "DEADBEEF").reason is Reason.SNAPSHOT_TOO_OLD


# --- machine and member ----------------------------------------------------------------


def test_out_of_service_is_reported_before_unknown_badge() -> None:
    assert tap(snapshot(out_of_service=True), "DEADBEEF").reason is Reason.OUT_OF_SERVICE


@pytest.mark.parametrize("status", ["suspended", "blocked", "", "ACTIVE"])
def test_any_status_but_active_is_suspended(status: str) -> None:
    d = tap(snapshot(grant("alice", status=status)))
    assert (d.action, d.reason) == (Action.DENY, Reason.SUSPENDED)
    assert d.member is not None


def test_suspension_is_reported_before_expired_membership() -> None:
    g = grant("alice", status="suspended", membership_end=date(2020, 1, 1))
    assert tap(snapshot(g)).reason is Reason.SUSPENDED


def test_membership_ending_today_still_works_all_day() -> None:
    g = grant("alice", membership_end=date(2026, 3, 10))
    assert tap(snapshot(g)).reason is Reason.ALLOWED


def test_membership_ended_yesterday_is_expired() -> None:
    g = grant("alice", membership_end=date(2026, 3, 9))
    assert tap(snapshot(g)).reason is Reason.MEMBERSHIP_EXPIRED


def test_membership_day_is_the_sites_local_day_not_utc() -> None:
    # 23:30 UTC on the 10th is already the 11th in Paris, still the 10th in New York.
    late = datetime(2026, 3, 10, 23, 30, tzinfo=UTC)
    g = grant("alice", membership_end=date(2026, 3, 10))
    assert tap(snapshot(g, timezone="Europe/Paris"), now=late).reason is Reason.MEMBERSHIP_EXPIRED
    assert tap(snapshot(g, timezone="America/New_York"), now=late).reason is Reason.ALLOWED


def test_membership_without_end_never_expires() -> None:
    assert tap(snapshot(grant("alice", membership_end=None))).reason is Reason.ALLOWED


def test_expired_membership_is_reported_before_in_use() -> None:
    g = grant("bob", membership_end=date(2026, 1, 1))
    d = tap(snapshot(grant("alice"), g), BOB_UID, state=ALICE_SESSION)
    assert d.reason is Reason.MEMBERSHIP_EXPIRED


def test_in_use_is_reported_before_certification_problems() -> None:
    d = tap(snapshot(grant("alice"), grant("bob", level=0)), BOB_UID, state=ALICE_SESSION)
    assert d.reason is Reason.IN_USE


def test_session_known_only_by_its_badge_still_blocks_others() -> None:
    state = MachineState(session_badge_uid=ALICE_UID)
    assert tap(snapshot(), BOB_UID, state=state).reason is Reason.IN_USE


# --- certification ---------------------------------------------------------------------


def test_level_zero_is_not_certified() -> None:
    d = tap(snapshot(grant("alice", level=0), min_level=0), staff=True)
    assert (d.action, d.reason) == (Action.DENY, Reason.NOT_CERTIFIED)


def test_not_certified_is_reported_before_expired_certification() -> None:
    g = grant("alice", level=0, cert_expires=NOW - timedelta(days=1))
    assert tap(snapshot(g)).reason is Reason.NOT_CERTIFIED


def test_certification_expiring_now_is_expired() -> None:
    assert tap(snapshot(grant("alice", cert_expires=NOW))).reason is Reason.CERTIFICATION_EXPIRED
    later = NOW + timedelta(microseconds=1)
    assert tap(snapshot(grant("alice", cert_expires=later))).reason is Reason.ALLOWED


def test_expiry_is_compared_as_an_instant_on_a_fall_back_night() -> None:
    # Paris, 2026-10-25: 02:50 CEST comes an hour before 02:10 CET.
    paris = ZoneInfo("Europe/Paris")
    expires = datetime(2026, 10, 25, 2, 50, tzinfo=paris, fold=0)
    now = datetime(2026, 10, 25, 2, 10, tzinfo=paris, fold=1)
    snap = snapshot(
        grant("alice", cert_expires=expires),
        issued_at=datetime(2026, 10, 25, tzinfo=UTC),
        valid_until=datetime(2026, 10, 26, tzinfo=UTC),
    )
    assert tap(snap, now=now).reason is Reason.CERTIFICATION_EXPIRED


def test_snapshot_age_is_elapsed_time_across_dst() -> None:
    # Issued 00:30 CET on 2026-03-29; 03:30 CEST is two real hours later, not three.
    paris = ZoneInfo("Europe/Paris")
    issued = datetime(2026, 3, 29, 0, 30, tzinfo=paris)
    now = datetime(2026, 3, 29, 3, 30, tzinfo=paris)
    snap = snapshot(issued_at=issued, valid_until=now + timedelta(days=1))
    assert tap(snap, now=now, max_age=timedelta(hours=2)).reason is Reason.ALLOWED
    assert (
        tap(snap, now=now, max_age=timedelta(hours=2) - timedelta(seconds=1)).reason
        is Reason.SNAPSHOT_TOO_OLD
    )


def test_certification_without_expiry_does_not_expire() -> None:
    assert tap(snapshot(grant("alice", cert_expires=None))).reason is Reason.ALLOWED


def test_expired_certification_is_reported_before_level_too_low() -> None:
    g = grant("alice", level=1, cert_expires=NOW - timedelta(days=1))
    assert tap(snapshot(g, min_level=3)).reason is Reason.CERTIFICATION_EXPIRED


@pytest.mark.parametrize(("level", "min_level"), [(1, 2), (2, 3), (1, 3)])
def test_level_below_machine_minimum_is_too_low(level: int, min_level: int) -> None:
    d = tap(snapshot(grant("alice", level=level), min_level=min_level), staff=True)
    assert (d.action, d.reason) == (Action.DENY, Reason.LEVEL_TOO_LOW)


@pytest.mark.parametrize("min_level", [0, 1])
def test_supervised_level_needs_staff(min_level: int) -> None:
    snap = snapshot(grant("alice", level=1), min_level=min_level)
    assert tap(snap, staff=False).reason is Reason.STAFF_REQUIRED
    assert tap(snap, staff=True).reason is Reason.ALLOWED


@pytest.mark.parametrize(("level", "min_level"), [(2, 1), (2, 2), (3, 3), (3, 1)])
def test_autonomous_levels_need_no_staff(level: int, min_level: int) -> None:
    snap = snapshot(grant("alice", level=level), min_level=min_level)
    assert tap(snap, staff=False).reason is Reason.ALLOWED


def test_decision_is_not_allowed_only_when_denied() -> None:
    assert Decision(Action.START, Reason.ALLOWED).allowed
    assert Decision(Action.END, Reason.BADGE_OUT).allowed
    assert not Decision(Action.DENY, Reason.IN_USE).allowed


def test_wire_values_are_stable() -> None:
    assert Reason.CERTIFICATION_EXPIRED == "certification_expired"
    assert Reason.SNAPSHOT_TOO_OLD.value == "snapshot_too_old"
    assert [a.value for a in Action] == ["start", "end", "deny"]


# --- human explanations ----------------------------------------------------------------


def test_every_deny_reason_is_explained_in_french_and_english() -> None:
    deny = set(Reason) - {Reason.ALLOWED, Reason.BADGE_OUT}
    assert set(DENY_REASONS) == deny
    for texts in DENY_REASONS.values():
        assert set(texts) == {"en", "fr"}
        assert all(t.strip() and "\n" not in t for t in texts.values())
        assert texts["en"] != texts["fr"]


def test_deny_reasons_can_be_looked_up_by_wire_value() -> None:
    assert DENY_REASONS["in_use"]["fr"] == DENY_REASONS[Reason.IN_USE]["fr"]


def test_deny_reasons_are_read_only() -> None:
    with pytest.raises(TypeError):
        DENY_REASONS[Reason.IN_USE] = {"en": "x", "fr": "x"}  # type: ignore[index]


def test_explain_covers_every_reason_and_falls_back_to_english() -> None:
    for reason in Reason:
        assert explain(reason, "fr") and explain(reason, "en")
    assert explain("in_use", "de") == DENY_REASONS[Reason.IN_USE]["en"]
    assert explain(Reason.ALLOWED, "fr") != explain(Reason.BADGE_OUT, "fr")


# --- properties over arbitrary snapshots -----------------------------------------------

UIDS = ["A1A1A1A1", "B0B0B0B0", "C2C2C2C2", "D3D3D3D3", "DEADBEEF"]
MEMBER_IDS = ["alice", "bob", "carol"]
times = st.datetimes(
    min_value=datetime(2025, 1, 1), max_value=datetime(2028, 1, 1), timezones=st.just(UTC)
)

grants = st.builds(
    MemberGrant,
    member_id=st.sampled_from(MEMBER_IDS),
    name=st.just("x"),
    category=st.just("adult"),
    status=st.sampled_from(["active", "active", "suspended"]),
    membership_end=st.none() | st.dates(date(2025, 1, 1), date(2028, 1, 1)),
    level=st.integers(0, 3),
    cert_expires=st.none() | times,
    staff=st.booleans(),
)


@st.composite
def snapshots(draw: st.DrawFn) -> Snapshot:
    members = draw(st.lists(grants, unique_by=lambda g: g.member_id, max_size=3))
    badges = draw(st.dictionaries(st.sampled_from(UIDS[:4]), st.sampled_from(MEMBER_IDS)))
    machine = MachineInfo(
        id="m",
        name="m",
        kind="laser",
        group="laser",
        min_level=draw(st.integers(0, 3)),
        out_of_service=draw(st.booleans()),
    )
    issued = draw(times)
    return Snapshot(
        site="s",
        version=1,
        issued_at=issued,
        valid_until=issued + draw(st.timedeltas(timedelta(0), timedelta(days=5))),
        machine=machine,
        timezone=draw(
            st.sampled_from(["UTC", "Europe/Paris", "Pacific/Kiritimati", "America/Los_Angeles"])
        ),
        badges=badges,
        members={g.member_id: g for g in members},
    )


states = st.builds(
    MachineState,
    session_member_id=st.none() | st.sampled_from(MEMBER_IDS),
    session_badge_uid=st.none() | st.sampled_from(UIDS),
)
ages = st.timedeltas(timedelta(0), timedelta(days=3))
tap_args = {
    "snap": st.none() | snapshots(),
    "uid": st.sampled_from(UIDS),
    "now": times,
    "staff": st.booleans(),
    "state": states,
    "max_age": ages,
}


@given(**tap_args)
def test_action_and_reason_always_agree(
    snap: Snapshot | None,
    uid: str,
    now: datetime,
    staff: bool,
    state: MachineState,
    max_age: timedelta,
) -> None:
    d = tap(snap, uid, now=now, staff=staff, state=state, max_age=max_age)
    assert (d.action is Action.START) == (d.reason is Reason.ALLOWED)
    assert (d.action is Action.END) == (d.reason is Reason.BADGE_OUT)
    assert d.allowed == (d.reason not in DENY_REASONS)
    assert (d.action is Action.DENY) == (d.reason in DENY_REASONS)


@given(**tap_args)
def test_start_only_when_every_condition_holds(
    snap: Snapshot | None,
    uid: str,
    now: datetime,
    staff: bool,
    state: MachineState,
    max_age: timedelta,
) -> None:
    d = tap(snap, uid, now=now, staff=staff, state=state, max_age=max_age)
    if d.action is not Action.START:
        return
    assert snap is not None and d.member is not None
    m = d.member
    assert snap.badges[uid] == m.member_id and snap.members[m.member_id] == m
    assert now - snap.issued_at <= max_age and now < snap.valid_until
    assert not snap.machine.out_of_service
    assert m.status == "active"
    assert m.cert_expires is None or m.cert_expires > now
    assert m.level >= max(1, snap.machine.min_level)
    assert m.level >= 2 or staff
    assert not state.in_session


@given(**tap_args)
def test_member_below_machine_minimum_never_starts(
    snap: Snapshot | None,
    uid: str,
    now: datetime,
    staff: bool,
    state: MachineState,
    max_age: timedelta,
) -> None:
    d = tap(snap, uid, now=now, staff=staff, state=state, max_age=max_age)
    if snap is None:
        return
    member = snap.member_for_badge(uid)
    if member is not None and member.level < snap.machine.min_level:
        assert d.action is not Action.START


@given(
    snap=st.none() | snapshots(), uid=st.sampled_from(UIDS), now=times, state=states, max_age=ages
)
def test_supervised_member_without_staff_never_starts(
    snap: Snapshot | None, uid: str, now: datetime, state: MachineState, max_age: timedelta
) -> None:
    d = tap(snap, uid, now=now, staff=False, state=state, max_age=max_age)
    member = snap.member_for_badge(uid) if snap else None
    if member is not None and member.level <= 1:
        assert d.action is not Action.START


@given(snap=st.none() | snapshots(), now=times, staff=st.booleans(), state=states, max_age=ages)
def test_unknown_badges_are_always_denied(
    snap: Snapshot | None, now: datetime, staff: bool, state: MachineState, max_age: timedelta
) -> None:
    stranger = "EEEEEEEEEE"
    assert state.session_badge_uid != stranger
    d = tap(snap, stranger, now=now, staff=staff, state=state, max_age=max_age)
    assert d.action is Action.DENY
    assert d.member is None


@given(
    snap=st.none() | snapshots(),
    uid=st.sampled_from(UIDS),
    now=times,
    staff=st.booleans(),
    max_age=ages,
)
def test_owner_badge_out_is_end_whatever_the_snapshot(
    snap: Snapshot | None, uid: str, now: datetime, staff: bool, max_age: timedelta
) -> None:
    # The session was opened with this very badge, by whoever the snapshot maps it to.
    owner = snap.badges.get(uid, "someone") if snap else "someone"
    state = MachineState(session_member_id=owner, session_badge_uid=uid)
    d = tap(snap, uid, now=now, staff=staff, state=state, max_age=max_age)
    assert (d.action, d.reason) == (Action.END, Reason.BADGE_OUT)


@given(**tap_args)
def test_nobody_else_ever_ends_a_session(
    snap: Snapshot | None,
    uid: str,
    now: datetime,
    staff: bool,
    state: MachineState,
    max_age: timedelta,
) -> None:
    d = tap(snap, uid, now=now, staff=staff, state=state, max_age=max_age)
    if d.action is Action.END:
        member = snap.member_for_badge(uid) if snap else None
        if member is not None:
            assert member.member_id == state.session_member_id
        else:
            assert uid == state.session_badge_uid
