"""The node agent in-process: real journal file, gpiozero mock pins, simulated reader.

MQTT is left out here (``connect=False``); messages are given to the handler the MQTT
thread would call, which only queues them, and the next loop step handles them
(``deliver``). The integration tests cover the same agent over a real broker.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory

from gateway.config import NodeConfig
from gateway.contract import MAX_DETAIL, MAX_NAME, Envelope, Job
from gateway.contract.signing import generate_key, sign_snapshot
from gateway.core.activity import Activity, MachineReport
from gateway.core.snapshot import MachineInfo, Snapshot
from gateway.drivers.readers.simulated import SimulatedReader
from gateway.drivers.relay import GpioRelay
from gateway.node import Journal, NodeAgent
from tests.support.builders import ALICE, BOB, PIN, STAFF, T0, grant, node_config, snapshot
from tests.support.clock import FakeClock


@pytest.fixture
def key():
    return generate_key()


@pytest.fixture
def cfg(tmp_path: Path) -> NodeConfig:
    return node_config(tmp_path / "journal.db")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


def make_agent(cfg: NodeConfig, key, clock: FakeClock, pins: MockFactory) -> NodeAgent:
    relay = GpioRelay(PIN, pin_factory=pins)
    return NodeAgent(
        cfg,
        relay=relay,
        reader=SimulatedReader(),
        public_key=key.public_key(),
        mono=clock.mono,
        wall=clock.wall,
        connect=False,
    )


def events(cfg: NodeConfig) -> list[dict]:
    j = Journal(cfg.journal)
    try:
        return [json.loads(p) for p in j.all_payloads()]
    finally:
        j.close()


def deliver(handler, payload: bytes) -> None:
    """What paho's thread does with a message (queue it), then the step that handles it."""
    handler("t", payload)
    handler.__self__.step()


def tap(agent: NodeAgent, uid: str) -> None:
    assert isinstance(agent.reader, SimulatedReader)
    agent.reader.present(uid)
    agent.step()  # card on the reader
    agent.step()  # card gone


@pytest.fixture
def agent(cfg, key, clock, mock_pins):
    a = make_agent(cfg, key, clock, mock_pins)
    deliver(a.on_snapshot, sign_snapshot(snapshot(), key))
    yield a
    a.relay.close()
    a.journal.close()


def pin_state(pins: MockFactory) -> bool:
    return bool(pins.pin(PIN).state)


def test_relay_is_off_at_start(cfg, key, clock, mock_pins) -> None:
    make_agent(cfg, key, clock, mock_pins)
    assert pin_state(mock_pins) is False


def test_allowed_tap_powers_on_and_badge_out_powers_off(agent, cfg, clock, mock_pins) -> None:
    tap(agent, ALICE)
    assert pin_state(mock_pins) is True
    clock.advance(61)
    tap(agent, ALICE)
    assert pin_state(mock_pins) is False
    evs = events(cfg)
    types = [e["type"] for e in evs]
    assert types == ["node.boot", "tap", "session.started", "tap", "session.ended"]
    ended = evs[-1]["data"]
    assert ended["duration_s"] == pytest.approx(61)
    assert ended["billable_minutes"] == 2
    assert ended["project_id"] == "p1"
    assert ended["end_reason"] == "badge_out"
    assert [e["seq"] for e in evs] == sorted(e["seq"] for e in evs)
    assert len({e["id"] for e in evs}) == len(evs)


def test_denied_tap_leaves_power_off_and_is_journaled(agent, cfg, mock_pins) -> None:
    tap(agent, BOB)
    tap(agent, "0BADC0DE")
    assert pin_state(mock_pins) is False
    taps = [e["data"] for e in events(cfg) if e["type"] == "tap"]
    assert [(t["action"], t["reason"]) for t in taps] == [
        ("deny", "not_certified"),
        ("deny", "unknown_badge"),
    ]
    assert agent.sessions.current is None


def test_other_member_cannot_end_or_take_a_session(agent, mock_pins) -> None:
    tap(agent, ALICE)
    tap(agent, STAFF)
    assert pin_state(mock_pins) is True
    assert agent.sessions.current is not None and agent.sessions.current.member_id == "alice"


def test_restart_with_open_session_keeps_power_off_and_closes_it(
    cfg, key, clock, mock_pins
) -> None:
    first = make_agent(cfg, key, clock, mock_pins)
    deliver(first.on_snapshot, sign_snapshot(snapshot(), key))
    tap(first, ALICE)
    clock.advance(10)
    first.step()  # 10 s < the 15 s heartbeat: nothing recorded yet
    clock.advance(10)
    first.step()  # 20 s: the heartbeat records the last known time
    clock.advance(100)  # then the power is cut: no shutdown, no session end
    first.journal.close()
    mock_pins.reset()

    second = make_agent(cfg, key, clock, mock_pins)
    assert pin_state(mock_pins) is False
    assert second.sessions.current is None
    evs = events(cfg)
    ended = [e for e in evs if e["type"] == "session.ended"][-1]["data"]
    assert ended["end_reason"] == "node_restart"
    assert ended["duration_s"] == pytest.approx(20)
    assert ended["ended_at"] == "2026-11-25T18:00:20.000Z"
    boot = [e for e in evs if e["type"] == "node.boot"][-1]["data"]
    assert boot["recovered_session_id"] == ended["session_id"]
    # The held snapshot survived the restart: the node still decides without a broker.
    assert second.trust.snapshot is not None
    tap(second, ALICE)
    assert pin_state(mock_pins) is True
    second.relay.close()
    second.journal.close()


def test_shutdown_switches_off_and_ends_the_session(agent, cfg, clock, mock_pins) -> None:
    tap(agent, ALICE)
    clock.advance(5)
    agent.shutdown()
    assert pin_state(mock_pins) is False
    ended = [e for e in events(cfg) if e["type"] == "session.ended"][-1]["data"]
    assert ended["end_reason"] == "shutdown"


def test_relay_failure_ends_the_session_and_power_stays_off(
    agent, cfg, mock_pins, monkeypatch
) -> None:
    def broken() -> None:
        raise OSError("relay board unplugged")

    monkeypatch.setattr(agent.relay, "on", broken)
    with pytest.raises(OSError):
        tap(agent, ALICE)
    assert pin_state(mock_pins) is False
    ended = [e for e in events(cfg) if e["type"] == "session.ended"][-1]["data"]
    assert ended["end_reason"] == "relay_error"


def test_stale_snapshot_denies_but_badge_out_still_works(agent, clock, mock_pins, cfg) -> None:
    tap(agent, ALICE)
    clock.advance(timedelta(hours=73).total_seconds())
    tap(agent, ALICE)  # badge-out is always possible
    assert pin_state(mock_pins) is False
    tap(agent, ALICE)
    assert pin_state(mock_pins) is False
    last = [e for e in events(cfg) if e["type"] == "tap"][-1]["data"]
    assert last["reason"] == "snapshot_too_old"


def test_no_snapshot_denies(cfg, key, clock, mock_pins) -> None:
    a = make_agent(cfg, key, clock, mock_pins)
    tap(a, ALICE)
    assert pin_state(mock_pins) is False
    assert [e["data"]["reason"] for e in events(cfg) if e["type"] == "tap"] == ["no_snapshot"]


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (lambda key: sign_snapshot(snapshot(2), generate_key()), "forged"),
        (
            lambda key: json.dumps({"v": 1, "alg": "Ed25519", "payload": "e30="}).encode(),
            "unsigned",
        ),
        (lambda key: sign_snapshot(snapshot(1, valid=timedelta(days=6)), key), "older"),
        (lambda key: sign_snapshot(snapshot(3, issued=T0 - timedelta(days=8)), key), "expired"),
        (lambda key: sign_snapshot(snapshot(4, machine="cnc-1"), key), "wrong_machine"),
        (lambda key: b"\xff not json", "malformed"),
    ],
)
def test_bad_snapshots_are_rejected_logged_and_journaled(
    agent, key, cfg, caplog, message, reason
) -> None:
    held = agent.trust.snapshot
    caplog.set_level(logging.WARNING)
    deliver(agent.on_snapshot, message(key))
    assert agent.trust.snapshot is held
    assert f"snapshot rejected ({reason})" in caplog.text
    rejected = [e["data"] for e in events(cfg) if e["type"] == "snapshot.rejected"]
    assert [r["reason"] for r in rejected] == [reason]


def test_redelivered_retained_snapshot_is_not_an_alarm(agent, key, cfg, caplog) -> None:
    payload = sign_snapshot(snapshot(5), key)
    deliver(agent.on_snapshot, payload)
    deliver(agent.on_snapshot, payload)  # the broker's retained copy after a reconnect
    assert agent.trust.snapshot.version == 5
    assert not [e for e in events(cfg) if e["type"] == "snapshot.rejected"]


def test_newer_snapshot_revokes_at_the_next_tap(agent, key, mock_pins) -> None:
    revoked = snapshot(2)
    revoked = Snapshot(
        **{**revoked.__dict__, "members": {**revoked.members, "alice": grant("alice", level=0)}}
    )
    deliver(agent.on_snapshot, sign_snapshot(revoked, key))
    tap(agent, ALICE)
    assert pin_state(mock_pins) is False


def test_staff_tap_marks_presence_for_supervised_members(cfg, key, clock, mock_pins) -> None:
    a = make_agent(cfg, key, clock, mock_pins)
    snap = snapshot(min_level=1)
    snap = Snapshot(
        **{
            **snap.__dict__,
            "members": {**snap.members, "bob": grant("bob", level=1)},
            "opening_hours": {
                d: ((T0.time().replace(hour=0), T0.time().replace(hour=0)),) for d in range(7)
            },
        }
    )
    deliver(a.on_snapshot, sign_snapshot(snap, key))
    tap(a, BOB)
    assert pin_state(mock_pins) is False
    tap(a, STAFF)  # staff starts a session and is now present
    clock.advance(10)
    tap(a, STAFF)  # ... and ends it, checking out
    tap(a, BOB)
    assert pin_state(mock_pins) is False
    presence = [e["data"] for e in events(cfg) if e["type"] == "staff.presence"]
    assert [p["present"] for p in presence] == [True, False]
    taps = [e["data"]["reason"] for e in events(cfg) if e["type"] == "tap"]
    assert taps == ["staff_required", "allowed", "badge_out", "staff_required"]
    a.relay.close()
    a.journal.close()


def test_acknowledged_events_leave_the_journal(agent, cfg) -> None:
    tap(agent, ALICE)
    pending = agent.journal.pending()
    first_two = [p.id for p in pending[:2]]
    deliver(agent.on_ack, json.dumps({"v": 1, "ids": first_two}).encode())
    assert [p.id for p in agent.journal.pending()] == [p.id for p in pending[2:]]
    deliver(agent.on_ack, b"garbage")  # logged and ignored, nothing removed
    assert len(agent.journal.pending()) == len(pending) - 2


def credit_snapshot(alice_credit_s: float | None, kind: str = "laser") -> Snapshot:
    snap = snapshot(7)
    machine = MachineInfo("laser-1", "laser-1", kind, "laser", requires_credit=True)
    return Snapshot(
        **{
            **snap.__dict__,
            "machine": machine,
            "members": {**snap.members, "alice": grant("alice", credit_s=alice_credit_s)},
        }
    )


def test_prepaid_machine_denies_an_empty_balance(agent, key, mock_pins, cfg) -> None:
    deliver(agent.on_snapshot, sign_snapshot(credit_snapshot(0.0), key))
    tap(agent, ALICE)
    assert pin_state(mock_pins) is False
    assert [e["data"]["reason"] for e in events(cfg) if e["type"] == "tap"] == [
        "insufficient_credit"
    ]


def test_laser_session_is_cut_when_the_balance_is_spent(agent, key, clock, mock_pins, cfg) -> None:
    deliver(agent.on_snapshot, sign_snapshot(credit_snapshot(600.0), key))
    tap(agent, ALICE)
    assert pin_state(mock_pins) is True
    clock.advance(599)
    agent.step()
    assert pin_state(mock_pins) is True
    clock.advance(1)
    agent.step()
    assert pin_state(mock_pins) is False
    ended = [e for e in events(cfg) if e["type"] == "session.ended"][-1]["data"]
    assert ended["end_reason"] == "credit_exhausted"
    assert ended["duration_s"] == pytest.approx(600)


def test_trainer_double_tap_certifies_the_next_member(agent, clock, mock_pins, cfg) -> None:
    tap(agent, STAFF)  # level 3: a session starts
    clock.advance(1)
    tap(agent, STAFF)  # within the double-tap window: badge-out, and certify mode opens
    assert agent.certify.trainer is not None and agent.sessions.current is None
    assert not pin_state(mock_pins)  # the second tap kept its meaning: power off
    tap(agent, ALICE)  # already level 2: her tap is a normal one (a session starts)
    assert agent.sessions.current is not None and agent.sessions.current.member_id == "alice"
    tap(agent, BOB)  # the trainee (level 0) taps within 15 s
    granted = [e["data"] for e in events(cfg) if e["type"] == "certification.granted"]
    assert granted == [
        {
            "trainer_id": "staff",
            "member_id": "bob",
            "group": "laser",
            "level": 2,
            "machine": "laser-1",
        }
    ]
    assert agent.certify.trainer is None
    assert agent.sessions.current.member_id == "alice"  # the trainee's tap touched nothing else


def test_certify_mode_expires(agent, clock, cfg) -> None:
    tap(agent, STAFF)
    clock.advance(1)
    tap(agent, STAFF)
    clock.advance(16)
    tap(agent, BOB)
    assert not [e for e in events(cfg) if e["type"] == "certification.granted"]
    assert [e["data"]["reason"] for e in events(cfg) if e["type"] == "tap"][-1] == "not_certified"


def test_non_trainers_cannot_open_certify_mode(agent, clock, mock_pins, cfg) -> None:
    tap(agent, ALICE)  # level 2
    clock.advance(1)
    tap(agent, ALICE)  # a plain badge-out
    assert agent.certify.trainer is None and agent.sessions.current is None


def test_unknown_badge_is_enrolled_while_the_hub_asks(agent, clock, cfg) -> None:
    from gateway.contract import encode_enrolment
    from gateway.core.clock import iso

    until = clock.wall() + timedelta(seconds=30)
    deliver(agent.on_enrolment, encode_enrolment("req-1", "alice", iso(until)))
    tap(agent, "0BADC0DE")
    tap(agent, "0CAFE0CA")  # the window serves one badge only
    enrolled = [e["data"] for e in events(cfg) if e["type"] == "badge.enrolled"]
    assert enrolled == [{"request_id": "req-1", "uid": "0BADC0DE", "member_id": "alice"}]
    assert [e["data"]["reason"] for e in events(cfg) if e["type"] == "tap"] == [
        "enrolment",
        "unknown_badge",
    ]


def test_expired_enrolment_window_is_not_used(agent, clock, cfg) -> None:
    from gateway.contract import encode_enrolment
    from gateway.core.clock import iso

    deliver(
        agent.on_enrolment,
        encode_enrolment("req-1", "alice", iso(clock.wall() + timedelta(seconds=30))),
    )
    clock.advance(31)
    tap(agent, "0BADC0DE")
    assert not [e for e in events(cfg) if e["type"] == "badge.enrolled"]


# -- what the node journals is what the hub's contract accepts ------------------------
# The node builds every event as its contract type and the hub decodes through the same
# types: decoding each journaled envelope as the hub does catches a field renamed on one
# side, or a controller text over the contract's bounds, here rather than as a refusal.


def journaled(cfg) -> list[Envelope]:
    j = Journal(cfg.journal)
    try:
        return [Envelope.decode(p) for p in j.all_payloads()]
    finally:
        j.close()


def test_every_event_of_a_day_at_the_machine_decodes_as_its_contract_type(
    cfg, key, clock, mock_pins
) -> None:
    agent = make_agent(cfg, key, clock, mock_pins)
    deliver(agent.on_snapshot, sign_snapshot(snapshot(), key))
    tap(agent, ALICE)  # session started (and its tap)
    clock.advance(75)
    tap(agent, ALICE)  # badge-out: session ended
    tap(agent, BOB)  # denied
    tap(agent, STAFF)  # a staff member: presence and a session
    clock.advance(5)
    tap(agent, STAFF)
    deliver(agent.on_snapshot, b'{"not": "a snapshot"}')  # snapshot.rejected
    tap(agent, ALICE)
    clock.advance(30)
    agent.step()
    agent.journal.close()
    mock_pins.reset()
    make_agent(cfg, key, clock, mock_pins)  # restart: node_restart end and node.boot

    envelopes = journaled(cfg)
    kinds = {e.type for e in envelopes}
    assert {
        "node.boot",
        "tap",
        "session.started",
        "session.ended",
        "staff.presence",
        "snapshot.rejected",
    } <= kinds
    for env in envelopes:
        typed = env.event()  # raises ContractError where the hub would refuse it
        assert typed is not None, env.type
        assert typed.to_data() == env.data  # nothing lost or added on the way
    reasons = [e.event().end_reason for e in envelopes if e.type == "session.ended"]
    assert reasons == ["badge_out", "badge_out", "node_restart"]


def test_controller_texts_and_estimates_are_kept_within_the_contracts_bounds(
    cfg, key, clock, mock_pins
) -> None:
    agent = make_agent(cfg, key, clock, mock_pins)
    deliver(agent.on_snapshot, sign_snapshot(snapshot(), key))
    tap(agent, ALICE)
    long_name = "/sd/" + "tres-long-dossier/" * 300 + "piece.gcode"
    agent.on_report(
        MachineReport(
            Activity.BUSY,
            job_name=long_name,
            progress=140.0,
            time_left_s=timedelta(days=4000).total_seconds(),
            detail="x" * (MAX_DETAIL * 2),
        )
    )
    agent.step()

    jobs = [e for e in journaled(cfg) if e.type == "job"]
    assert jobs, "the busy report should have started a job"
    job = jobs[0].event()
    assert isinstance(job, Job)
    assert job.name is not None and len(job.name) == MAX_NAME
    assert job.name.startswith("/sd/tres-long-dossier/") and job.name.endswith("\u2026")
    assert job.progress is None or 0 <= job.progress <= 100
    assert len(job.detail) <= MAX_DETAIL
