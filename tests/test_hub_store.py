"""Hub store on real SQLite files: idempotent ingest, sessions, snapshots, triggers."""

from __future__ import annotations

import json
import sqlite3
from datetime import date, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.config import (
    GroupConfig,
    MachineConfig,
)
from gateway.contract import Envelope
from gateway.core.clock import iso
from gateway.hub.catalogue import sync_catalogue
from gateway.hub.certifications import add_certification, revoke_certification
from gateway.hub.db import HubStore, data_version
from gateway.hub.events.ingest import ingest_envelopes
from gateway.hub.machine_state import machines_live, set_node_status
from gateway.hub.presence import staff_present_until
from gateway.hub.seed import import_seed
from gateway.hub.sessions import recent_sessions, session_rows, totals
from gateway.hub.snapshots import build_snapshot, next_snapshot_version
from tests.support.builders import NOW, T0, ended, env, seed, started


@pytest.fixture
def store(tmp_path: Path):
    s = HubStore(tmp_path / "hub.sqlite")
    sync_catalogue(
        s,
        [GroupConfig("laser", "Découpe laser"), GroupConfig("cnc", "CNC")],
        [
            MachineConfig("laser1", "Laser 1", "laser", "laser"),
            MachineConfig("laser2", "Laser 2", "laser", "laser", min_level=1),
            MachineConfig("cnc1", "CNC", "cnc", "cnc"),
        ],
    )
    import_seed(s, seed())
    try:
        yield s
    finally:
        s.close()


def test_open_is_idempotent_and_pragmas_set(tmp_path: Path) -> None:
    path = tmp_path / "hub.sqlite"
    HubStore(path).close()
    with HubStore(path) as s:
        assert s.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert s.conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        tables = {
            r[0] for r in s.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
    assert {
        "members",
        "badges",
        "groups",
        "machines",
        "certifications",
        "projects",
        "events",
        "sessions",
        "machine_state",
        "staff_presence",
        "meta",
    } <= tables


def test_foreign_keys_enforced(store: HubStore) -> None:
    with pytest.raises(sqlite3.IntegrityError):
        store.conn.execute("INSERT INTO badges (uid, member_id) VALUES ('FF', 'nobody')")


def test_session_start_then_end(store: HubStore) -> None:
    s1, e1 = started("S1"), ended("S1", 125.5)
    assert ingest_envelopes(store, [s1], NOW) == [s1.id]
    (row,) = recent_sessions(store)
    assert row["status"] == "open" and row["ended_at"] is None
    live = {m["machine_id"]: m for m in machines_live(store)}
    assert live["laser1"]["session_id"] == "S1" and live["laser1"]["member_name"] == "Alice"
    assert ingest_envelopes(store, [e1], NOW) == [e1.id]
    (row,) = recent_sessions(store)
    assert row["status"] == "closed"
    assert row["duration_s"] == 125.5
    assert row["billable_minutes"] == 3  # recomputed, not the node's 999
    assert row["end_reason"] == "badge_out" and row["project_id"] == "p1"
    assert row["first_event_at"] == iso(T0)
    assert {m["machine_id"]: m for m in machines_live(store)}["laser1"]["session_id"] is None


def test_end_without_start_creates_closed_session(store: HubStore) -> None:
    ingest_envelopes(store, [ended("S9", 61)], NOW)
    (row,) = list(session_rows(store, None, None))
    assert row["session_id"] == "S9" and row["status"] == "closed"
    assert row["billable_minutes"] == 2
    # A start arriving afterwards does not reopen it.
    ingest_envelopes(store, [started("S9")], NOW)
    assert recent_sessions(store)[0]["status"] == "closed"


def test_same_batch_twice_changes_no_total(store: HubStore) -> None:
    batch = [
        started("A"),
        ended("A", 90),
        started("B", T0 + timedelta(hours=1)),
        ended("B", 30, T0 + timedelta(hours=1)),
    ]
    assert ingest_envelopes(store, batch, NOW) == [e.id for e in batch]
    first = totals(store)
    events = store.conn.execute("SELECT count(*) FROM events").fetchone()[0]
    assert ingest_envelopes(store, batch, NOW + timedelta(minutes=1)) == [e.id for e in batch]
    assert totals(store) == first == {"sessions": 2, "seconds": 120.0, "billable_minutes": 3}
    assert store.conn.execute("SELECT count(*) FROM events").fetchone()[0] == events == 4


def test_replayed_end_with_changed_data_is_not_applied(store: HubStore) -> None:
    e = ended("A", 90)
    ingest_envelopes(store, [e], NOW)
    replay = Envelope(**{**e.to_dict(), "data": {**e.data, "duration_s": 9000}})
    ingest_envelopes(store, [replay], NOW)
    assert totals(store)["seconds"] == 90


def test_malformed_data_stored_with_error_and_acknowledged(store: HubStore) -> None:
    bad = env(
        "session.ended",
        {"session_id": "X", "machine": "laser1", "duration_s": "long", "started_at": "yesterday"},
    )
    bad2 = env("staff.presence", {"member_id": "s1", "present": "yes"}, seq=2)
    good = ended("G", 60, seq=3)
    unknown = env("firmware.updated", {"anything": [1, 2]}, seq=4)
    tap = env(
        "tap",
        {
            "uid": "AA0101AA",
            "member_id": "m1",
            "action": "deny",
            "reason": "in_use",
            "tap_id": None,
        },
        seq=5,
    )
    batch = [bad, bad2, good, unknown, tap]
    assert ingest_envelopes(store, batch, NOW) == [e.id for e in batch]
    rows = {r["event_id"]: dict(r) for r in store.conn.execute("SELECT * FROM events")}
    assert len(rows) == 5
    assert rows[bad.id]["error"] and rows[bad2.id]["error"]
    assert json.loads(rows[bad.id]["data"])["duration_s"] == "long"
    assert rows[good.id]["error"] is None and rows[unknown.id]["error"] is None
    assert rows[tap.id]["error"] is None
    assert [s["session_id"] for s in recent_sessions(store)] == ["G"]
    assert store.conn.execute("SELECT count(*) FROM staff_presence").fetchone()[0] == 0


def test_staff_presence(store: HubStore) -> None:
    until = T0 + timedelta(hours=4)
    ingest_envelopes(
        store,
        [env("staff.presence", {"member_id": "s1", "present": True, "until": iso(until)})],
        NOW,
    )
    assert staff_present_until(store, T0 + timedelta(hours=1)) == until
    assert staff_present_until(store, until + timedelta(seconds=1)) is None
    # A later check-out wins; a replayed older check-in (new id) does not undo it.
    ingest_envelopes(
        store,
        [
            env(
                "staff.presence",
                {"member_id": "s1", "present": False, "until": None},
                seq=3,
                time=T0 + timedelta(hours=2),
            )
        ],
        NOW,
    )
    ingest_envelopes(
        store,
        [
            env(
                "staff.presence",
                {"member_id": "s1", "present": True, "until": iso(until)},
                seq=2,
                time=T0 + timedelta(hours=1),
            )
        ],
        NOW,
    )
    assert staff_present_until(store, T0 + timedelta(hours=3)) is None


def test_snapshot_contents(store: HubStore) -> None:
    revoke_certification(store, "m5", "laser", T0)
    add_certification(
        store, "m5", "laser", 1, certified_by="s1", certified_at=T0 + timedelta(minutes=1)
    )
    store.conn.execute(
        "INSERT INTO badges (uid, member_id, status) VALUES ('AA9999AA', 'm1', 'blocked')"
    )
    store.conn.commit()
    spu = T0 + timedelta(hours=3)
    snap = build_snapshot(
        store,
        "laser1",
        now=T0,
        version=7,
        validity=timedelta(hours=72),
        timezone="Europe/Paris",
        opening_hours={},
        staff_present_until=spu,
        site="lab",
    )
    assert snap.version == 7 and snap.site == "lab"
    assert snap.valid_until == T0 + timedelta(hours=72) and snap.staff_present_until == spu
    assert snap.machine.group == "laser" and snap.machine.min_level == 2
    assert "AA9999AA" not in snap.badges  # blocked badge absent
    assert snap.badges["AA0101AA"] == "m1"
    alice = snap.members["m1"]
    assert alice.level == 3 and alice.project_id == "p1" and alice.cert_expires is None
    assert snap.members["m2"].status == "suspended"
    chloe = snap.members["m3"]
    assert chloe.level == 2 and chloe.cert_expires == T0 - timedelta(days=70)
    assert chloe.membership_end == date(2027, 1, 31)
    assert snap.members["s1"].staff and not alice.staff
    assert snap.members["m5"].level == 1  # the revoked level 3 is ignored
    cnc = build_snapshot(
        store,
        "cnc1",
        now=T0,
        version=8,
        validity=timedelta(hours=1),
        timezone="Europe/Paris",
        opening_hours={},
        staff_present_until=None,
    )
    assert cnc.members["m1"].level == 1 and cnc.members["m3"].level == 0
    # The snapshot survives the wire format.
    assert type(snap).from_dict(snap.to_dict()).to_dict() == snap.to_dict()


def test_data_version_bumps_on_catalogue_changes_only(store: HubStore) -> None:
    v0 = data_version(store)
    add_certification(store, "m3", "laser", 2, certified_by="s1", certified_at=T0)
    v1 = data_version(store)
    assert v1 > v0
    import_seed(store, seed())  # same content again: nothing changed
    assert data_version(store) == v1
    ingest_envelopes(store, [started("Z"), ended("Z", 10)], NOW)
    assert data_version(store) == v1
    store.conn.execute("UPDATE badges SET status = 'blocked' WHERE uid = 'BB0202BB'")
    store.conn.commit()
    assert data_version(store) > v1


def test_snapshot_version_persists(tmp_path: Path) -> None:
    with HubStore(tmp_path / "h.sqlite") as s:
        a, b = next_snapshot_version(s), next_snapshot_version(s)
    with HubStore(tmp_path / "h.sqlite") as s:
        assert a < b < next_snapshot_version(s)


def test_node_status_sets_online(store: HubStore) -> None:
    set_node_status(
        store,
        "laser1",
        {
            "node": "laser1",
            "machine": "laser1",
            "online": True,
            "relay": False,
            "session": None,
            "time": iso(T0),
        },
    )
    live = {m["machine_id"]: m for m in machines_live(store)}
    assert live["laser1"]["state"] == "free" and live["laser2"]["state"] == "offline"
    set_node_status(
        store,
        "laser1",
        {
            "node": "laser1",
            "machine": "laser1",
            "online": True,
            "relay": True,
            "time": iso(T0),
            "session": {"session_id": "S", "member_id": "m1", "started_at": iso(T0)},
        },
    )
    live = {m["machine_id"]: m for m in machines_live(store)}
    assert live["laser1"]["state"] == "in_use" and live["laser1"]["since"] == iso(T0)


def test_session_rows_range_and_order(store: HubStore) -> None:
    batch = []
    for i in (3, 1, 2, 0):
        start = T0 + timedelta(hours=i)
        batch += [started(f"S{i}", start, seq=2 * i + 1), ended(f"S{i}", 60, start, seq=2 * i + 2)]
    batch.append(started("OPEN", T0 + timedelta(hours=1, minutes=30), seq=50))
    ingest_envelopes(store, batch, NOW)
    rows = session_rows(store, T0 + timedelta(hours=1), T0 + timedelta(hours=3))
    assert not isinstance(rows, list)
    assert [r["session_id"] for r in rows] == ["S1", "S2"]
    assert [s["session_id"] for s in recent_sessions(store, limit=2)] == ["S3", "S2"]


# -- order independence ----------------------------------------------------------------


def _stream() -> list[Envelope]:
    out = []
    for i, dur in enumerate([0.5, 59.9, 60, 61, 3600.25]):
        start = T0 + timedelta(minutes=7 * i)
        out += [
            started(f"H{i}", start, seq=2 * i + 1, member=f"m{i % 2}"),
            ended(f"H{i}", dur, start, seq=2 * i + 2, member=f"m{i % 2}"),
        ]
    out.append(ended("H9", 42, T0 + timedelta(hours=3), seq=20))  # end without start
    out.append(started("H8", T0 + timedelta(hours=4), seq=21))  # still open
    return out


STREAM = _stream()


def _fingerprint(s: HubStore) -> tuple:
    rows = s.conn.execute(
        "SELECT session_id, node, machine_id, member_id, badge_uid, project_id, started_at,"
        " ended_at, duration_s, billable_minutes, end_reason, status, first_event_at "
        "FROM sessions ORDER BY session_id"
    ).fetchall()
    return tuple(tuple(r) for r in rows), tuple(totals(s).items())


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    with HubStore(tmp_path_factory.mktemp("ref") / "hub.sqlite") as s:
        ingest_envelopes(s, STREAM, NOW)
        return _fingerprint(s)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    order=st.permutations(range(len(STREAM))),
    dupes=st.lists(st.integers(0, len(STREAM) - 1), max_size=8),
    cuts=st.lists(st.integers(0, len(STREAM) + 8), max_size=3),
)
def test_any_permutation_or_duplication_gives_same_sessions(
    tmp_path_factory: pytest.TempPathFactory,
    reference: tuple,
    order: list[int],
    dupes: list[int],
    cuts: list[int],
) -> None:
    events = [STREAM[i] for i in order] + [STREAM[i] for i in dupes]
    bounds = sorted({0, len(events), *[min(c, len(events)) for c in cuts]})
    with HubStore(tmp_path_factory.mktemp("perm") / "hub.sqlite") as s:
        for a, b in zip(bounds, bounds[1:], strict=False):
            acked = ingest_envelopes(s, events[a:b], NOW)
            assert acked == [e.id for e in events[a:b]]
        assert _fingerprint(s) == reference
    assert dict(reference[1])["billable_minutes"] == 1 + 1 + 1 + 2 + 61 + 1
