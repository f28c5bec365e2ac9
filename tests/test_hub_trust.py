"""Who may say what, at the hub, on a real SQLite file: a node only about its machine.

Every refused message changes nothing, is acknowledged, is kept with its reason and is
counted for its node on the board.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from gateway.config import GroupConfig, MachineConfig
from gateway.contract import Envelope, Topics, encode_status
from gateway.core.clock import iso
from gateway.hub.catalogue import sync_catalogue
from gateway.hub.certifications import certification_expiry, revoke_certification
from gateway.hub.db import HubStore, data_version
from gateway.hub.enrolment import create_enrolment
from gateway.hub.events.ingest import ingest_envelopes, ingest_messages
from gateway.hub.jobs import recent_jobs
from gateway.hub.machine_state import machines_live, set_node_status
from gateway.hub.presence import staff_present_until
from gateway.hub.seed import import_seed
from gateway.hub.sessions import recent_sessions, totals
from tests.support.builders import NOW, T0, ended, env, seed, started

TOPICS = Topics("fablab/t/")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[HubStore]:
    s = HubStore(tmp_path / "hub.db")
    sync_catalogue(
        s,
        [GroupConfig("laser", "Laser"), GroupConfig("cnc", "CNC")],
        [
            MachineConfig("laser1", "Laser 1", "laser", "laser"),
            MachineConfig("cnc1", "CNC", "cnc", "cnc"),
            # A machine whose node has another id (a spare Pi moved to it).
            MachineConfig("laser2", "Laser 2", "laser", "laser", certify_level=1, node="pi-07"),
        ],
    )
    import_seed(s, seed())
    yield s
    s.close()


def error_of(store: HubStore, e: Envelope) -> str | None:
    return store.conn.execute("SELECT error FROM events WHERE event_id = ?", (e.id,)).fetchone()[0]


def refusal_rows(store: HubStore) -> list[dict]:
    return [
        dict(r)
        for r in store.conn.execute(
            "SELECT node, event_id, event_type, kind, error FROM rejected_messages ORDER BY id"
        )
    ]


def assert_refused(store: HubStore, e: Envelope, reason: str, kind: str = "forbidden") -> None:
    """Acknowledged, stored with the reason, recorded once for its node."""
    assert ingest_envelopes(store, [e], NOW) == [e.id]
    error = error_of(store, e)
    assert error is not None and reason in error, error
    row = refusal_rows(store)[-1]
    assert (row["node"], row["event_id"], row["event_type"], row["kind"]) == (
        e.node,
        e.id,
        e.type,
        kind,
    )
    assert reason in row["error"]


def sessions(store: HubStore) -> list[tuple]:
    return [
        (
            s["session_id"],
            s["node"],
            s["machine_id"],
            s["member_id"],
            s["status"],
            s["duration_s"],
            s["ended_at"],
        )
        for s in recent_sessions(store)
    ]


def as_node(e: Envelope, node: str, **data: object) -> Envelope:
    """The same event sent by another node (a new event id), data changed."""
    return Envelope.new(
        node=node,
        seq=e.seq + 100,
        boot="hostile",
        type=e.type,
        data={**e.data, **data},
        time=datetime.fromisoformat(e.time.replace("Z", "+00:00")),
    )


# -- sessions ---------------------------------------------------------------------------


def test_a_node_cannot_start_a_session_on_another_machine(store: HubStore) -> None:
    hostile = Envelope(**{**started("S1", machine="cnc1").to_dict(), "node": "laser1"})
    assert_refused(store, hostile, "laser1 serves laser1, not cnc1")
    assert recent_sessions(store) == []
    assert {m["machine_id"]: m for m in machines_live(store, now=NOW)}["cnc1"]["session_id"] is None


def test_a_node_cannot_end_another_nodes_session(store: HubStore) -> None:
    ingest_envelopes(store, [started("C1", machine="cnc1")], NOW)
    before = sessions(store)
    # Naming cnc1: not its machine. Naming its own machine: not its session.
    assert_refused(
        store, as_node(ended("C1", 0, machine="cnc1"), "laser1"), "serves laser1, not cnc1"
    )
    assert_refused(
        store,
        as_node(ended("C1", 0, machine="cnc1"), "laser1", machine="laser1"),
        "opened by node cnc1",
    )
    assert sessions(store) == before
    live = {m["machine_id"]: m for m in machines_live(store, now=NOW)}
    assert live["cnc1"]["session_id"] == "C1"
    # Its real end, by cnc1, closes it; another node's end afterwards changes nothing.
    ingest_envelopes(store, [ended("C1", 600, machine="cnc1")], NOW)
    closed = sessions(store)
    assert closed[0][4:6] == ("closed", 600.0)
    assert_refused(
        store,
        as_node(ended("C1", 5, machine="cnc1"), "laser1", machine="laser1"),
        "opened by node cnc1",
    )
    assert sessions(store) == closed
    assert totals(store)["billable_minutes"] == 10


def test_a_node_cannot_take_another_nodes_session_id(store: HubStore) -> None:
    ingest_envelopes(store, [started("C1", machine="cnc1")], NOW)
    assert_refused(
        store,
        as_node(started("C1", machine="cnc1"), "laser1", machine="laser1"),
        "belongs to node cnc1",
    )
    assert sessions(store)[0][1:3] == ("cnc1", "cnc1")


def test_a_different_second_end_is_a_conflict_and_changes_nothing(store: HubStore) -> None:
    first = ended("S1", 125.5)
    ingest_envelopes(store, [started("S1"), first], NOW)
    billed = sessions(store), totals(store)
    again = Envelope.new(
        node="laser1",
        seq=9,
        boot="b1",
        type="session.ended",
        data={**first.data, "duration_s": 9000.0, "end_reason": "shutdown"},
    )
    assert_refused(store, again, f"already closed by event {first.id}", kind="conflict")
    assert error_of(store, again).startswith("conflict:")
    assert (sessions(store), totals(store)) == billed


def test_the_same_end_again_under_another_id_changes_nothing_and_is_no_conflict(
    store: HubStore,
) -> None:
    first = ended("S1", 125.5)
    ingest_envelopes(store, [started("S1"), first], NOW)
    same = Envelope.new(
        node="laser1", seq=9, boot="b2", type="session.ended", data=dict(first.data)
    )
    assert ingest_envelopes(store, [same], NOW) == [same.id]
    assert error_of(store, same) is None
    assert refusal_rows(store) == []
    assert totals(store)["seconds"] == 125.5


def test_a_node_named_in_the_config_speaks_for_its_machine_only(store: HubStore) -> None:
    # pi-07 serves laser2; a node called laser2 does not.
    ok = Envelope(**{**started("L2", machine="laser2").to_dict(), "node": "pi-07"})
    assert ingest_envelopes(store, [ok], NOW) == [ok.id] and error_of(store, ok) is None
    assert_refused(store, started("X2", machine="laser2"), "serves no machine")
    # A node the config does not know may only speak for a machine it does not know either.
    unknown = Envelope(**{**started("U1", machine="lathe9").to_dict(), "node": "lathe9"})
    assert ingest_envelopes(store, [unknown], NOW) == [unknown.id]
    assert error_of(store, unknown) is None


# -- jobs ---------------------------------------------------------------------------------


def job(
    node: str, machine: str, job_id: str = "j1", session_id: str | None = None, seq: int = 10
) -> Envelope:
    return env(
        "job",
        {
            "job_id": job_id,
            "event": "started",
            "session_id": session_id,
            "machine": machine,
            "member_id": "m1",
            "project_id": None,
            "name": "x.gcode",
            "progress": 0.0,
            "time_left_s": None,
            "detail": "",
        },
        node=node,
        seq=seq,
    )


def test_jobs_only_on_the_nodes_machine_and_sessions(store: HubStore) -> None:
    assert_refused(store, job("laser1", "cnc1"), "serves laser1, not cnc1")
    ingest_envelopes(store, [started("C1", machine="cnc1"), job("cnc1", "cnc1", "j-cnc")], NOW)
    assert_refused(store, job("laser1", "laser1", "j-cnc", seq=11), "job j-cnc belongs to")
    assert_refused(
        store, job("laser1", "laser1", "j-new", "C1", seq=12), "session C1 belongs to node cnc1"
    )
    ((job_row),) = recent_jobs(store)
    assert (job_row["job_id"], job_row["node"]) == ("j-cnc", "cnc1")


# -- status -------------------------------------------------------------------------------


def status(node: str, machine: str, *, relay: bool = False) -> bytes:
    return encode_status(node=node, machine=machine, online=True, relay=relay, time=T0)


def test_a_status_is_believed_only_about_the_nodes_own_machine(store: HubStore) -> None:
    ingest_envelopes(store, [started("C1", machine="cnc1")], NOW)
    set_node_status(
        store,
        "cnc1",
        {
            "node": "cnc1",
            "machine": "cnc1",
            "online": True,
            "relay": True,
            "time": iso(T0),
            "session": {"session_id": "C1", "member_id": "m1", "started_at": iso(T0)},
        },
    )
    result = ingest_messages(
        store,
        TOPICS,
        [
            (TOPICS.node_status("laser1"), status("laser1", "cnc1")),  # another machine
            (TOPICS.node_status("laser1"), status("cnc1", "cnc1")),  # another node's name
        ],
        NOW,
    )
    assert result.refused == 2 and result.failed == 0
    live = {m["machine_id"]: m for m in machines_live(store, now=NOW)}
    assert live["cnc1"]["state"] == "in_use" and live["cnc1"]["member_id"] == "m1"
    reasons = [r["error"] for r in refusal_rows(store)]
    assert "serves laser1, not cnc1" in reasons[0] and "saying node cnc1" in reasons[1]
    # Its own status is applied.
    ingest_messages(
        store, TOPICS, [(TOPICS.node_status("laser1"), status("laser1", "laser1", relay=True))], NOW
    )
    live = {m["machine_id"]: m for m in machines_live(store, now=NOW)}
    assert live["laser1"]["online"] and live["laser1"]["relay"]


def test_an_envelope_naming_another_node_is_refused_and_acknowledged(store: HubStore) -> None:
    e = started("C1", machine="cnc1")  # node cnc1, sent on laser1's topic
    result = ingest_messages(store, TOPICS, [(TOPICS.node_events("laser1"), e.encode())], NOW)
    assert result.acks == {"laser1": [e.id]}
    assert recent_sessions(store) == []
    assert refusal_rows(store)[0]["kind"] == "forbidden"


def test_an_event_id_of_another_node_is_refused(store: HubStore) -> None:
    real = started("C1", machine="cnc1")
    ingest_envelopes(store, [real], NOW)
    copy = Envelope(
        **{**real.to_dict(), "node": "laser1", "data": {**real.data, "machine": "laser1"}}
    )
    assert ingest_envelopes(store, [copy], NOW) == [copy.id]
    (row,) = refusal_rows(store)
    assert "already used by node cnc1" in row["error"] and row["node"] == "laser1"


# -- staff presence ---------------------------------------------------------------------


def test_only_staff_can_be_reported_present(store: HubStore) -> None:
    until = iso(T0 + timedelta(hours=4))
    assert_refused(
        store,
        env("staff.presence", {"member_id": "m1", "present": True, "until": until}),
        "not a staff member",
    )
    assert staff_present_until(store, T0) is None
    ok = env("staff.presence", {"member_id": "s1", "present": True, "until": until}, seq=2)
    ingest_envelopes(store, [ok], NOW)
    assert staff_present_until(store, T0) is not None


# -- certification at the machine --------------------------------------------------------


def certify_tap(member: str, node: str = "laser1", seq: int = 1, boot: str = "b1") -> Envelope:
    e = env(
        "tap",
        {
            "uid": "BB0202BB",
            "member_id": member,
            "action": "certify",
            "reason": "certified",
            "tap_id": None,
        },
        node=node,
        seq=seq,
    )
    return Envelope(**{**e.to_dict(), "boot": boot})


def grant(
    trainer: str = "m1",
    member: str = "m2",
    *,
    group: str = "laser",
    machine: str = "laser1",
    level: int = 2,
    node: str = "laser1",
    seq: int = 2,
) -> Envelope:
    return env(
        "certification.granted",
        {
            "trainer_id": trainer,
            "member_id": member,
            "group": group,
            "level": level,
            "machine": machine,
        },
        node=node,
        seq=seq,
    )


def laser_level(store: HubStore, member: str) -> int:
    return certification_expiry(store, member, "laser", T0)[0]


def cnc_level(store: HubStore, member: str) -> int:
    return certification_expiry(store, member, "cnc", T0)[0]


@pytest.mark.parametrize(
    ("name", "events", "reason"),
    [
        (
            "for another group",
            [certify_tap("m2"), grant(group="cnc")],
            "laser1 is a laser machine: it may not certify for cnc",
        ),
        (
            "for another machine",
            [certify_tap("m2"), grant(group="cnc", machine="cnc1")],
            "serves laser1, not cnc1",
        ),
        ("at another level", [certify_tap("m2"), grant(level=1)], "certifies at level 2, not 1"),
        (
            "by a member who is no trainer",
            [certify_tap("m2"), grant(trainer="m3")],
            "m3 is not a live level-3 trainer",
        ),
        (
            "by an unknown trainer",
            [certify_tap("m2"), grant(trainer="nobody")],
            "not a live level-3 trainer",
        ),
        (
            "by the trainee themselves",
            [certify_tap("m1"), grant(trainer="m1", member="m1")],
            "cannot certify themselves",
        ),
        (
            "of an unknown trainee",
            [certify_tap("ghost"), grant(member="ghost")],
            "trainee ghost is unknown",
        ),
        ("with no trainee tap", [grant()], "no certify tap by m2"),
        (
            "with the trainee's tap on another node",
            [certify_tap("m2", node="cnc1"), grant()],
            "no certify tap by m2",
        ),
        (
            "with a tap from an earlier boot",
            [certify_tap("m2", boot="old"), grant()],
            "no certify tap by m2",
        ),
        (
            "with a tap long before",
            [certify_tap("m2", seq=1), grant(seq=100)],
            "no certify tap by m2",
        ),
    ],
)
def test_refused_certifications_change_nothing(
    store: HubStore, name: str, events: list[Envelope], reason: str
) -> None:
    *before, last = events
    ingest_envelopes(store, before, NOW)
    levels = (laser_level(store, last.data["member_id"]), cnc_level(store, "m2"))
    version = data_version(store)
    assert_refused(store, last, reason)
    assert (laser_level(store, last.data["member_id"]), cnc_level(store, "m2")) == levels
    assert data_version(store) == version  # no new snapshot either


def test_a_live_trainer_certifies_after_the_trainees_tap(store: HubStore) -> None:
    tap, ok = certify_tap("m2"), grant()
    assert ingest_envelopes(store, [tap, ok], NOW) == [tap.id, ok.id]
    assert error_of(store, ok) is None and laser_level(store, "m2") == 2
    assert refusal_rows(store) == []


def test_a_revoked_trainer_cannot_certify(store: HubStore) -> None:
    revoke_certification(store, "m1", "laser", T0 - timedelta(days=1))
    ingest_envelopes(store, [certify_tap("m2")], NOW)
    assert_refused(store, grant(), "not a live level-3 trainer")


def test_certification_time_never_runs_ahead_of_the_hub(store: HubStore) -> None:
    future = datetime(2031, 1, 1, tzinfo=T0.tzinfo)
    e = env(
        "certification.granted",
        {"trainer_id": "m1", "member_id": "m2", "group": "laser", "level": 2, "machine": "laser1"},
        seq=2,
        time=future,
    )
    ingest_envelopes(store, [certify_tap("m2"), e], NOW)
    (row,) = store.conn.execute(
        "SELECT certified_at FROM certifications WHERE member_id = 'm2' AND group_id = 'laser'"
    ).fetchall()
    assert row[0] == iso(NOW)


# -- badge enrolment ----------------------------------------------------------------------


def enrolled(
    request_id: str, uid: str = "0BADC0DE", node: str = "cnc1", seq: int = 1, time: datetime = NOW
) -> Envelope:
    return env(
        "badge.enrolled",
        {"request_id": request_id, "uid": uid, "member_id": "m5"},
        node=node,
        seq=seq,
        time=time,
    )


def badge_owner(store: HubStore, uid: str) -> str | None:
    row = store.conn.execute("SELECT member_id FROM badges WHERE uid = ?", (uid,)).fetchone()
    return row[0] if row else None


def test_enrolment_only_into_a_window_the_hub_opened(store: HubStore) -> None:
    assert_refused(store, enrolled("made-up"), "no enrolment made-up was opened")
    request = create_enrolment(store, "m5", by="s1", now=NOW)
    # Received after the window closed (whatever time the node says).
    late = enrolled(request, seq=2, time=NOW + timedelta(seconds=5))  # the node says "in time"
    assert ingest_envelopes(store, [late], NOW + timedelta(seconds=31)) == [late.id]
    assert "is not open at" in error_of(store, late)
    assert badge_owner(store, "0BADC0DE") is None
    # In time, from any node: attached; the same window cannot be used twice.
    request = create_enrolment(store, "m5", by="s1", now=NOW)
    ingest_envelopes(store, [enrolled(request, seq=3, node="laser1")], NOW + timedelta(seconds=5))
    assert badge_owner(store, "0BADC0DE") == "m5"
    assert_refused(store, enrolled(request, uid="0BADC0DF", seq=4), "is attached, not open")
    assert badge_owner(store, "0BADC0DF") is None


# -- what the board shows ---------------------------------------------------------------


def test_refusals_are_counted_per_node_with_the_latest_reason(store: HubStore) -> None:
    ingest_envelopes(
        store, [grant(group="cnc", seq=1), as_node(ended("C9", 1, machine="cnc1"), "laser1")], NOW
    )
    live = {m["machine_id"]: m for m in machines_live(store, now=NOW)}
    assert live["laser1"]["refusals"] == 2
    assert "serves laser1, not cnc1" in live["laser1"]["refusal_reason"]
    assert live["cnc1"]["refusals"] == 0 and live["cnc1"]["refusal_reason"] is None
