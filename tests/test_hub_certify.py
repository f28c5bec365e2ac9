"""Certification at the machine, badge enrolment and lapse without use, at the hub."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.config import GroupConfig, MachineConfig
from gateway.core.clock import parse_iso
from gateway.core.months import add_months
from gateway.hub.catalogue import sync_catalogue
from gateway.hub.certifications import certification_expiry, live_level, of_member
from gateway.hub.db import HubStore
from gateway.hub.enrolment import create_enrolment, enrolment_status, pending_enrolment
from gateway.hub.events.ingest import ingest_envelopes
from gateway.hub.seed import import_seed
from tests.support.builders import T0, env, seed, started


@pytest.fixture
def store(tmp_path: Path):
    s = HubStore(tmp_path / "hub.db")
    sync_catalogue(
        s,
        [GroupConfig("laser", "Laser", lapse_months=6), GroupConfig("cnc", "CNC")],
        [
            MachineConfig("laser1", "Laser 1", "laser", "laser"),
            MachineConfig("cnc1", "CNC", "cnc", "cnc"),
        ],
    )
    import_seed(s, seed())
    yield s
    s.close()


def certify_tap(member: str, seq: int = 1, at: datetime = T0):
    """The trainee's tap the node journals just before the certification."""
    return env(
        "tap",
        {
            "uid": "BB0202BB",
            "member_id": member,
            "action": "certify",
            "reason": "certified",
            "tap_id": None,
        },
        seq=seq,
        time=at,
    )


def granted(trainer: str, member: str, level: int = 2, at: datetime = T0, seq: int = 2):
    return env(
        "certification.granted",
        {
            "trainer_id": trainer,
            "member_id": member,
            "group": "laser",
            "level": level,
            "machine": "laser1",
        },
        time=at,
        seq=seq,
    )


def error_of(store: HubStore, event_id: str) -> str | None:
    return store.conn.execute(
        "SELECT error FROM events WHERE event_id = ?", (event_id,)
    ).fetchone()[0]


def test_a_level_3_trainer_certifies_at_the_machine(store: HubStore) -> None:
    # m1 is a live level 3 on the laser; m2 has no laser level and taps in certify mode.
    tap, e = certify_tap("m2"), granted("m1", "m2")
    assert ingest_envelopes(store, [tap, e], T0) == [tap.id, e.id]
    assert error_of(store, e.id) is None
    level, expires = certification_expiry(store, "m2", "laser", T0)
    assert level == 2
    assert expires == min(add_months(T0, 24), add_months(T0, 6))  # lapses before it ends


def test_a_non_trainer_cannot_certify(store: HubStore) -> None:
    bad = granted("m3", "m2")  # m3 is level 2 (and expired) on the laser
    ingest_envelopes(store, [certify_tap("m2"), bad], T0)
    assert "refused" in error_of(store, bad.id)
    assert certification_expiry(store, "m2", "laser", T0)[0] == 0


def test_a_trainer_whose_level_3_lapsed_cannot_certify(store: HubStore) -> None:
    # s1's level 3 dates from 800 days ago and the laser group lapses after 6 months
    # without use: the hub no longer holds s1 as a live trainer.
    bad = granted("s1", "m2")
    ingest_envelopes(store, [certify_tap("m2"), bad], T0)
    assert "not a live level-3 trainer" in error_of(store, bad.id)
    assert certification_expiry(store, "m2", "laser", T0)[0] == 0


def test_certification_lapses_after_months_without_use(store: HubStore) -> None:
    # m1 is level 3 on the laser, certified 10 days before T0, no expiry of its own.
    level, expires = certification_expiry(store, "m1", "laser", T0)
    assert level == 3 and expires == add_months(T0 - timedelta(days=10), 6)
    # A session on a laser pushes the lapse date.
    use = T0 + timedelta(days=100)
    ingest_envelopes(store, [started("u1", use, member="m1", machine="laser1")], T0)
    assert certification_expiry(store, "m1", "laser", use)[1] == add_months(use, 6)
    # No lapse on a group without the setting.
    assert certification_expiry(store, "m1", "cnc", T0)[1] is None


def test_the_member_page_and_the_snapshot_read_one_lapse_rule(store: HubStore) -> None:
    """The lapse date a member sees is the expiry the nodes get, and the page says
    expired exactly when the level is gone; a session pushes both the same way."""
    lapse = add_months(T0 - timedelta(days=10), 6)

    def shown(now: datetime) -> tuple[datetime, str]:  # m1's level-3 laser row
        (row,) = [
            c for c in of_member(store, "m1", now) if c["group_id"] == "laser" and c["level"] == 3
        ]
        return parse_iso(row["lapses_at"]), row["state"]

    before = lapse - timedelta(seconds=1)
    assert shown(before) == (lapse, "live")
    assert certification_expiry(store, "m1", "laser", before) == (3, lapse)
    assert shown(lapse) == (lapse, "expired")
    assert live_level(store, "m1", "laser", lapse) == 0
    use = lapse - timedelta(days=1)
    ingest_envelopes(store, [started("u1", use, member="m1", machine="laser1")], use)
    assert shown(lapse) == (add_months(use, 6), "live")
    assert certification_expiry(store, "m1", "laser", lapse) == (3, add_months(use, 6))
    assert live_level(store, "m1", "laser", lapse) == 3


def test_enrolment_attaches_one_badge_within_its_window(store: HubStore) -> None:
    now = datetime(2026, 11, 25, 18, 0, tzinfo=UTC)
    request = create_enrolment(store, "m5", by="s1", now=now)
    assert pending_enrolment(store, now)["request_id"] == request
    # The window is checked when the hub receives the event (its own clock), not at the
    # time the node says.
    late = env(
        "badge.enrolled",
        {"request_id": request, "uid": "0BADC0DE"},
        time=now + timedelta(seconds=5),
    )
    ingest_envelopes(store, [late], now + timedelta(seconds=31))
    assert "refused" in error_of(store, late.id)
    ok = env(
        "badge.enrolled",
        {"request_id": request, "uid": "0badc0de"},
        time=now + timedelta(seconds=5),
    )
    ingest_envelopes(store, [ok], now)
    assert enrolment_status(store, request, now)["status"] == "attached"
    assert (
        store.conn.execute("SELECT member_id FROM badges WHERE uid = '0BADC0DE'").fetchone()[0]
        == "m5"
    )
    assert pending_enrolment(store, now) is None


def test_a_new_request_ends_the_previous_one(store: HubStore) -> None:
    now = datetime(2026, 11, 25, 18, 0, tzinfo=UTC)
    first = create_enrolment(store, "m5", by="s1", now=now)
    second = create_enrolment(store, "m1", by="s1", now=now)
    assert enrolment_status(store, first, now)["status"] == "expired"
    assert pending_enrolment(store, now)["request_id"] == second


def test_add_months_clamps_to_the_end_of_the_month() -> None:
    assert add_months(datetime(2026, 1, 31, tzinfo=UTC), 1) == datetime(2026, 2, 28, tzinfo=UTC)
    assert add_months(datetime(2026, 11, 30, tzinfo=UTC), 3) == datetime(2027, 2, 28, tzinfo=UTC)
