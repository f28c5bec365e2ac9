"""A node whose machine link fails: it logs, marks the state unknown, keeps the session.

The real GRBL driver talks over a real pty to our simulator; the node agent runs
in-process (no broker) so the test can watch its state directly.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory

from gateway.config import SessionConfig
from gateway.contract.signing import generate_key, sign_snapshot
from gateway.core.activity import Activity
from gateway.drivers.machines.grbl import GrblController
from gateway.drivers.readers.simulated import SimulatedReader
from gateway.drivers.relay import GpioRelay
from gateway.drivers.simulators.grbl import GrblSimulator
from gateway.node import NodeAgent
from tests.support.builders import ALICE, PIN, node_config, snapshot
from tests.test_node_agent import deliver, events

pytestmark = pytest.mark.integration


@pytest.fixture
def rig(tmp_path: Path, mock_pins: MockFactory):
    sim = GrblSimulator().start()
    controller = GrblController(sim.port, poll_interval=0.2, answer_timeout=1.0)
    key = generate_key()
    cfg = replace(
        node_config(tmp_path / "journal.db"), session=SessionConfig(grace=0, progress_every=0.5)
    )
    agent = NodeAgent(
        cfg,
        relay=GpioRelay(PIN, pin_factory=mock_pins),
        reader=SimulatedReader(),
        public_key=key.public_key(),
        controller=controller,
        connect=False,
    )
    # The agent runs on the real clocks (the driver is real-time): sign the snapshot now.
    deliver(agent.on_snapshot, sign_snapshot(snapshot(issued=datetime.now(UTC)), key))
    changed = threading.Condition()
    controller.subscribe(lambda _r: _notify(changed))
    agent.start()
    yield sim, agent, changed, cfg, mock_pins
    agent.stopping.set()
    agent.shutdown()
    sim.close()


def _notify(cond: threading.Condition) -> None:
    with cond:
        cond.notify_all()


def run_until(
    agent: NodeAgent,
    cond: threading.Condition,
    predicate,
    timeout: float = 10.0,
    what: str = "condition",
) -> None:
    """Step the node each time the controller reports, until ``predicate`` holds."""

    def check() -> bool:
        agent.step()
        return bool(predicate())

    with cond:
        if not cond.wait_for(check, timeout):
            raise AssertionError(f"timed out waiting for {what}")


def tap(agent: NodeAgent, uid: str) -> None:
    assert isinstance(agent.reader, SimulatedReader)
    agent.reader.present(uid)
    agent.step()
    agent.step()


def test_unplugged_mid_job_keeps_the_session_and_power(rig, caplog) -> None:
    sim, agent, changed, cfg, pins = rig
    run_until(agent, changed, lambda: agent.machine.activity == Activity.IDLE, what="idle")
    tap(agent, ALICE)
    sim.run_job(200, 20.0)
    run_until(agent, changed, lambda: agent.machine.jobs.running, what="job started")
    sim.unplug()
    run_until(agent, changed, lambda: agent.machine.activity == Activity.UNKNOWN, what="unknown")
    assert "link lost" in agent.machine.detail
    assert agent.sessions.current is not None and agent.relay.is_on
    assert agent.machine.jobs.running  # a lost link says nothing about the job
    assert "link lost" in caplog.text or "lost" in caplog.text.lower()


def test_garbage_and_silence_mark_unknown_then_recover(rig) -> None:
    sim, agent, changed, cfg, pins = rig
    run_until(agent, changed, lambda: agent.machine.activity == Activity.IDLE, what="idle")
    tap(agent, ALICE)
    sim.send_garbage(b"\xff\xfe\x00<<garbage>>\r\n\x80")
    sim.go_silent()
    run_until(agent, changed, lambda: agent.machine.activity == Activity.UNKNOWN, what="unknown")
    assert agent.sessions.current is not None and agent.relay.is_on
    sim.resume()
    run_until(agent, changed, lambda: agent.machine.activity == Activity.IDLE, what="back to idle")
    tap(agent, ALICE)
    assert not agent.relay.is_on
    ended = [e for e in events(cfg) if e["type"] == "session.ended"][-1]["data"]
    assert ended["end_reason"] == "badge_out"


def test_alarm_fails_the_job_and_is_journaled(rig) -> None:
    sim, agent, changed, cfg, pins = rig
    run_until(agent, changed, lambda: agent.machine.activity == Activity.IDLE, what="idle")
    tap(agent, ALICE)
    sim.run_job(200, 20.0)
    run_until(agent, changed, lambda: agent.machine.jobs.running, what="job started")
    sim.inject_alarm(1)
    run_until(agent, changed, lambda: not agent.machine.jobs.running, what="job ended")
    jobs = [e["data"] for e in events(cfg) if e["type"] == "job"]
    assert [j["event"] for j in jobs] == ["started", "failed"]
    assert "ALARM:1" in jobs[-1]["detail"]
    assert agent.sessions.current is not None  # an alarm is the machine's business, not a badge-out
