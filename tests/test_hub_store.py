"""Hub store on real SQLite files: idempotent ingest, sessions, snapshots, triggers."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.config import (
    GroupConfig,
    MachineConfig,
    Seed,
    SeedCertification,
    SeedMember,
    SeedProject,
)
from gateway.contract import Envelope
from gateway.core.clock import iso
from gateway.hub.store import HubStore

T0 = datetime(2026, 11, 25, 18, 0, tzinfo=UTC)
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def env(type_: str, data: dict, *, seq: int = 1, time: datetime = T0, node: str = "laser1",
        id_: str | None = None) -> Envelope:
    e = Envelope.new(node=node, seq=seq, boot="b1", type=type_, data=data, time=time)
    return e if id_ is None else Envelope(**{**e.to_dict(), "id": id_})


def started(sid: str, start: datetime = T0, *, member: str = "m1", machine: str = "laser1",
            seq: int = 1) -> Envelope:
    return env("session.started", {
        "session_id": sid, "machine": machine, "member_id": member, "badge_uid": "AA0101AA",
        "project_id": None, "started_at": iso(start), "staff_present": False},
        seq=seq, time=start, node=machine)


def ended(sid: str, duration: float, start: datetime = T0, *, member: str = "m1",
          machine: str = "laser1", seq: int = 2) -> Envelope:
    end = start + timedelta(seconds=duration)
    return env("session.ended", {
        "session_id": sid, "machine": machine, "member_id": member, "badge_uid": "AA0101AA",
        "project_id": "p1", "started_at": iso(start), "ended_at": iso(end),
        "duration_s": duration, "billable_minutes": 999, "end_reason": "badge_out"},
        seq=seq, time=end, node=machine)


def seed() -> Seed:
    return Seed(
        file=Path("seed.yaml"),
        members=(
            SeedMember(id="m1", name="Alice", category="adherent", badges=("AA0101AA",),
                       current_project="p1"),
            SeedMember(id="m2", name="Bob", category="adherent", status="suspended",
                       badges=("BB0202BB",)),
            SeedMember(id="m3", name="Chloé", category="professionnel", badges=("CC0303CC",),
                       membership_end=date(2027, 1, 31)),
            SeedMember(id="s1", name="Sam", category="adherent", staff=True,
                       badges=("DD0404DD",)),
            SeedMember(id="m5", name="Eve", category="adherent", badges=("EE0505EE",)),
        ),
        projects=(SeedProject(id="p1", member="m1", name="Lamp"),),
        certifications=(
            # m1: level 2 and level 3 on laser -> 3; a level 1 on cnc does not count.
            SeedCertification("m1", "laser", 2, "s1", T0 - timedelta(days=400), None),
            SeedCertification("m1", "laser", 3, "s1", T0 - timedelta(days=10), None),
            SeedCertification("m1", "cnc", 1, "s1", T0 - timedelta(days=10), None),
            # m3: expired level 2
            SeedCertification("m3", "laser", 2, "s1", T0 - timedelta(days=800),
                              T0 - timedelta(days=70)),
            SeedCertification("s1", "laser", 3, None, T0 - timedelta(days=800), None),
            # m5: level 3 that will be revoked, plus a live level 1
            SeedCertification("m5", "laser", 3, "s1", T0 - timedelta(days=50), None),
            SeedCertification("m5", "laser", 1, "s1", T0 - timedelta(days=40), None),
        ),
    )


@pytest.fixture
def store(tmp_path: Path):
    s = HubStore(tmp_path / "hub.sqlite")
    s.sync_catalogue(
        [GroupConfig("laser", "Découpe laser"), GroupConfig("cnc", "CNC")],
        [MachineConfig("laser1", "Laser 1", "laser", "laser"),
         MachineConfig("laser2", "Laser 2", "laser", "laser", min_level=1),
         MachineConfig("cnc1", "CNC", "cnc", "cnc")])
    s.import_seed(seed())
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
        tables = {r[0] for r in s.conn.execute("SELECT name FROM sqlite_master "
                                              "WHERE type = 'table'")}
    assert {"members", "badges", "groups", "machines", "certifications", "projects",
            "events", "sessions", "machine_state", "staff_presence", "meta"} <= tables


def test_foreign_keys_enforced(store: HubStore) -> None:
    with pytest.raises(sqlite3.IntegrityError):
        store.conn.execute("INSERT INTO badges (uid, member_id) VALUES ('FF', 'nobody')")


def test_session_start_then_end(store: HubStore) -> None:
    s1, e1 = started("S1"), ended("S1", 125.5)
    assert store.ingest([s1], NOW) == [s1.id]
    (row,) = store.sessions()
    assert row["status"] == "open" and row["ended_at"] is None
    live = {m["machine_id"]: m for m in store.machines_live()}
    assert live["laser1"]["session_id"] == "S1" and live["laser1"]["member_name"] == "Alice"
    assert store.ingest([e1], NOW) == [e1.id]
    (row,) = store.sessions()
    assert row["status"] == "closed"
    assert row["duration_s"] == 125.5
    assert row["billable_minutes"] == 3  # recomputed, not the node's 999
    assert row["end_reason"] == "badge_out" and row["project_id"] == "p1"
    assert row["first_event_at"] == iso(T0)
    assert {m["machine_id"]: m for m in store.machines_live()}["laser1"]["session_id"] is None


def test_end_without_start_creates_closed_session(store: HubStore) -> None:
    store.ingest([ended("S9", 61)], NOW)
    (row,) = list(store.session_rows(None, None))
    assert row["session_id"] == "S9" and row["status"] == "closed"
    assert row["billable_minutes"] == 2
    # A start arriving afterwards does not reopen it.
    store.ingest([started("S9")], NOW)
    assert store.sessions()[0]["status"] == "closed"


def test_same_batch_twice_changes_no_total(store: HubStore) -> None:
    batch = [started("A"), ended("A", 90), started("B", T0 + timedelta(hours=1)),
             ended("B", 30, T0 + timedelta(hours=1))]
    assert store.ingest(batch, NOW) == [e.id for e in batch]
    totals = store.totals()
    events = store.conn.execute("SELECT count(*) FROM events").fetchone()[0]
    assert store.ingest(batch, NOW + timedelta(minutes=1)) == [e.id for e in batch]
    assert store.totals() == totals == {"sessions": 2, "seconds": 120.0,
                                        "billable_minutes": 3}
    assert store.conn.execute("SELECT count(*) FROM events").fetchone()[0] == events == 4


def test_replayed_end_with_changed_data_is_not_applied(store: HubStore) -> None:
    e = ended("A", 90)
    store.ingest([e], NOW)
    replay = Envelope(**{**e.to_dict(), "data": {**e.data, "duration_s": 9000}})
    store.ingest([replay], NOW)
    assert store.totals()["seconds"] == 90


def test_malformed_data_stored_with_error_and_acknowledged(store: HubStore) -> None:
    bad = env("session.ended", {"session_id": "X", "machine": "laser1",
                                "duration_s": "long", "started_at": "yesterday"})
    bad2 = env("staff.presence", {"member_id": "s1", "present": "yes"}, seq=2)
    good = ended("G", 60, seq=3)
    unknown = env("firmware.updated", {"anything": [1, 2]}, seq=4)
    tap = env("tap", {"uid": "AA0101AA", "member_id": "m1", "action": "deny",
                      "reason": "in_use", "tap_id": None}, seq=5)
    batch = [bad, bad2, good, unknown, tap]
    assert store.ingest(batch, NOW) == [e.id for e in batch]
    rows = {r["event_id"]: dict(r) for r in store.conn.execute("SELECT * FROM events")}
    assert len(rows) == 5
    assert rows[bad.id]["error"] and rows[bad2.id]["error"]
    assert json.loads(rows[bad.id]["data"])["duration_s"] == "long"
    assert rows[good.id]["error"] is None and rows[unknown.id]["error"] is None
    assert rows[tap.id]["error"] is None
    assert [s["session_id"] for s in store.sessions()] == ["G"]
    assert store.conn.execute("SELECT count(*) FROM staff_presence").fetchone()[0] == 0


def test_staff_presence(store: HubStore) -> None:
    until = T0 + timedelta(hours=4)
    store.ingest([env("staff.presence", {"member_id": "s1", "present": True,
                                         "until": iso(until)})], NOW)
    assert store.staff_present_until(T0 + timedelta(hours=1)) == until
    assert store.staff_present_until(until + timedelta(seconds=1)) is None
    # A later check-out wins; a replayed older check-in (new id) does not undo it.
    store.ingest([env("staff.presence", {"member_id": "s1", "present": False, "until": None},
                      seq=3, time=T0 + timedelta(hours=2))], NOW)
    store.ingest([env("staff.presence", {"member_id": "s1", "present": True,
                                         "until": iso(until)}, seq=2,
                      time=T0 + timedelta(hours=1))], NOW)
    assert store.staff_present_until(T0 + timedelta(hours=3)) is None


def test_snapshot_contents(store: HubStore) -> None:
    store.revoke_certification("m5", "laser", T0)
    store.add_certification("m5", "laser", 1, certified_by="s1",
                            certified_at=T0 + timedelta(minutes=1))
    store.conn.execute("INSERT INTO badges (uid, member_id, status) "
                       "VALUES ('AA9999AA', 'm1', 'blocked')")
    store.conn.commit()
    spu = T0 + timedelta(hours=3)
    snap = store.build_snapshot("laser1", now=T0, version=7, validity=timedelta(hours=72),
                                timezone="Europe/Paris", opening_hours={},
                                staff_present_until=spu, site="lab")
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
    cnc = store.build_snapshot("cnc1", now=T0, version=8, validity=timedelta(hours=1),
                               timezone="Europe/Paris", opening_hours={},
                               staff_present_until=None)
    assert cnc.members["m1"].level == 1 and cnc.members["m3"].level == 0
    # The snapshot survives the wire format.
    assert type(snap).from_dict(snap.to_dict()).to_dict() == snap.to_dict()


def test_data_version_bumps_on_catalogue_changes_only(store: HubStore) -> None:
    v0 = store.data_version()
    store.add_certification("m3", "laser", 2, certified_by="s1", certified_at=T0)
    v1 = store.data_version()
    assert v1 > v0
    store.import_seed(seed())  # same content again: nothing changed
    assert store.data_version() == v1
    store.ingest([started("Z"), ended("Z", 10)], NOW)
    assert store.data_version() == v1
    store.conn.execute("UPDATE badges SET status = 'blocked' WHERE uid = 'BB0202BB'")
    store.conn.commit()
    assert store.data_version() > v1


def test_snapshot_version_persists(tmp_path: Path) -> None:
    with HubStore(tmp_path / "h.sqlite") as s:
        a, b = s.next_snapshot_version(), s.next_snapshot_version()
    with HubStore(tmp_path / "h.sqlite") as s:
        assert a < b < s.next_snapshot_version()


def test_node_status_sets_online(store: HubStore) -> None:
    store.set_node_status("laser1", {"node": "laser1", "machine": "laser1", "online": True,
                                     "relay": False, "session": None,
                                     "time": iso(T0)})
    live = {m["machine_id"]: m for m in store.machines_live()}
    assert live["laser1"]["state"] == "free" and live["laser2"]["state"] == "offline"
    store.set_node_status("laser1", {"node": "laser1", "machine": "laser1", "online": True,
                                     "relay": True, "time": iso(T0), "session": {
                                         "session_id": "S", "member_id": "m1",
                                         "started_at": iso(T0)}})
    live = {m["machine_id"]: m for m in store.machines_live()}
    assert live["laser1"]["state"] == "in_use" and live["laser1"]["since"] == iso(T0)


def test_session_rows_range_and_order(store: HubStore) -> None:
    batch = []
    for i in (3, 1, 2, 0):
        start = T0 + timedelta(hours=i)
        batch += [started(f"S{i}", start, seq=2 * i + 1), ended(f"S{i}", 60, start,
                                                                  seq=2 * i + 2)]
    batch.append(started("OPEN", T0 + timedelta(hours=1, minutes=30), seq=50))
    store.ingest(batch, NOW)
    rows = store.session_rows(T0 + timedelta(hours=1), T0 + timedelta(hours=3))
    assert not isinstance(rows, list)
    assert [r["session_id"] for r in rows] == ["S1", "S2"]
    assert [s["session_id"] for s in store.sessions(limit=2)] == ["S3", "S2"]


# -- order independence ----------------------------------------------------------------

def _stream() -> list[Envelope]:
    out = []
    for i, dur in enumerate([0.5, 59.9, 60, 61, 3600.25]):
        start = T0 + timedelta(minutes=7 * i)
        out += [started(f"H{i}", start, seq=2 * i + 1, member=f"m{i % 2}"),
                ended(f"H{i}", dur, start, seq=2 * i + 2, member=f"m{i % 2}")]
    out.append(ended("H9", 42, T0 + timedelta(hours=3), seq=20))  # end without start
    out.append(started("H8", T0 + timedelta(hours=4), seq=21))  # still open
    return out


STREAM = _stream()


def _fingerprint(s: HubStore) -> tuple:
    rows = s.conn.execute(
        "SELECT session_id, node, machine_id, member_id, badge_uid, project_id, started_at,"
        " ended_at, duration_s, billable_minutes, end_reason, status, first_event_at "
        "FROM sessions ORDER BY session_id").fetchall()
    return tuple(tuple(r) for r in rows), tuple(s.totals().items())


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    with HubStore(tmp_path_factory.mktemp("ref") / "hub.sqlite") as s:
        s.ingest(STREAM, NOW)
        return _fingerprint(s)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(order=st.permutations(range(len(STREAM))),
       dupes=st.lists(st.integers(0, len(STREAM) - 1), max_size=8),
       cuts=st.lists(st.integers(0, len(STREAM) + 8), max_size=3))
def test_any_permutation_or_duplication_gives_same_sessions(
        tmp_path_factory: pytest.TempPathFactory, reference: tuple, order: list[int],
        dupes: list[int], cuts: list[int]) -> None:
    events = [STREAM[i] for i in order] + [STREAM[i] for i in dupes]
    bounds = sorted({0, len(events), *[min(c, len(events)) for c in cuts]})
    with HubStore(tmp_path_factory.mktemp("perm") / "hub.sqlite") as s:
        for a, b in zip(bounds, bounds[1:], strict=False):
            acked = s.ingest(events[a:b], NOW)
            assert acked == [e.id for e in events[a:b]]
        assert _fingerprint(s) == reference
    assert dict(reference[1])["billable_minutes"] == 1 + 1 + 1 + 2 + 61 + 1
