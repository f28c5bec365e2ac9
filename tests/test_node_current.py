"""A node following its machine by current: busy time, the hold at maximum length, and
the permissives, end to end through the node agent (in-process, real journal, mock pins).

Metering and the hold run on injected clocks: the test moves time, takes one sample of
the simulated clamp (``CurrentController.sample_once``) and steps the node, so a 25 s job
takes no 25 s. The permissives run against the simulated sense board on a real pty, in
real time, through the real driver and protocol 2.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory

from gateway.config import ControllerConfig, NodeConfig, PermissiveConfig, SessionConfig
from gateway.contract.signing import generate_key, sign_snapshot
from gateway.core.activity import Activity
from gateway.core.snapshot import MachineInfo
from gateway.drivers.machines.current import CurrentController, SerialSenseBoard
from gateway.drivers.readers.simulated import SimulatedReader
from gateway.drivers.relay import GpioRelay
from gateway.drivers.simulators.current import SenseBoardSimulator, SimulatedCurrent
from gateway.node import NodeAgent
from gateway.policies.current import BusyDetector
from tests.support.builders import ALICE, PIN, T0, node_config, snapshot
from tests.support.clock import FakeClock
from tests.test_node_agent import deliver, events, tap

# The shipped laser's settings (config/nodes/laser-1.yaml).
LASER_DETECTOR = dict(threshold_on_a=1.5, threshold_off_a=0.8, on_after_s=3.0, off_after_s=20.0)


class HoldCounter(CurrentController):
    """The real controller; counts the holds the node asks for."""

    holds: list[float]

    def safe_stop(self) -> None:
        self.holds.append(self._clock())
        super().safe_stop()


class Rig:
    """A node, its clamp and its controller on one fake clock."""

    def __init__(
        self, cfg: NodeConfig, pins: MockFactory, *, kind: str = "laser", dt: float = 0.5
    ) -> None:
        self.clock = FakeClock(T0)
        self.dt = dt
        self.clamp = SimulatedCurrent(0.05, clock=self.clock.mono)
        self.controller = HoldCounter(
            self.clamp, BusyDetector(**LASER_DETECTOR), clock=self.clock.mono
        )
        self.controller.holds = []
        key = generate_key()
        self.agent = NodeAgent(
            cfg,
            relay=GpioRelay(PIN, pin_factory=pins),
            reader=SimulatedReader(),
            public_key=key.public_key(),
            controller=self.controller,  # not started: the test samples it
            mono=self.clock.mono,
            wall=self.clock.wall,
            connect=False,
        )
        snap = snapshot()
        snap = replace(snap, machine=MachineInfo("laser-1", "laser-1", kind, kind, min_level=2))
        deliver(self.agent.on_snapshot, sign_snapshot(snap, key))
        self.cfg = cfg

    def run(self, seconds: float) -> None:
        """``seconds`` of the machine's life: a sample and a node step every ``dt``."""
        end = self.clock.mono() + seconds
        while self.clock.mono() < end - 1e-9:
            self.clock.advance(self.dt)
            self.controller.sample_once()
            self.agent.step()

    def ended(self) -> dict:
        return [e for e in events(self.cfg) if e["type"] == "session.ended"][-1]["data"]

    def close(self) -> None:
        self.agent.relay.close()
        self.agent.journal.close()


@pytest.fixture
def laser_cfg(tmp_path: Path) -> NodeConfig:
    return replace(
        node_config(tmp_path / "journal.db"),
        controller=ControllerConfig(driver="current", port="/dev/null"),
        session=SessionConfig(grace=0, idle_timeout=0, max_length=0),
    )


@pytest.mark.parametrize(("on_s", "dt"), [(25.0, 0.5), (25.0, 0.2), (7.0, 0.5), (90.0, 1.0)])
def test_a_current_pulse_is_metered_as_long_as_it_lasted(
    laser_cfg: NodeConfig, mock_pins: MockFactory, on_s: float, dt: float
) -> None:
    """Busy time runs between the real edges: with the debounce's edges a 25 s job was
    metered 42 s (20 s off-delay minus 3 s on-delay added)."""
    rig = Rig(laser_cfg, mock_pins, dt=dt)
    try:
        rig.run(2.0)
        tap(rig.agent, ALICE)
        rig.run(10.0)  # the member sets up: idle
        rig.clamp.run_job(6.0, on_s)
        rig.run(on_s + LASER_DETECTOR["off_after_s"] + 5.0)
        assert rig.agent.machine.activity is Activity.IDLE
        tap(rig.agent, ALICE)
        ended = rig.ended()
        assert ended["busy_s"] == pytest.approx(on_s, abs=1.0)
        assert ended["busy_s"] + ended["idle_s"] == pytest.approx(ended["duration_s"], abs=0.01)
    finally:
        rig.close()


def test_two_jobs_and_a_short_pause_between_passes(
    laser_cfg: NodeConfig, mock_pins: MockFactory
) -> None:
    """A 5 s pause inside a job is not an end (the debounce), and is billed as busy;
    two jobs 60 s apart are metered each for its own length."""
    rig = Rig(laser_cfg, mock_pins)
    try:
        tap(rig.agent, ALICE)
        rig.clamp.run_job(6.0, 30.0)
        rig.run(35.0)  # 30 s of current, then 5 s of pause
        rig.clamp.run_job(6.0, 10.0)
        rig.run(10.0 + 60.0)
        rig.clamp.run_job(6.0, 12.0)
        rig.run(12.0 + 30.0)
        tap(rig.agent, ALICE)
        assert rig.ended()["busy_s"] == pytest.approx(30 + 5 + 10 + 12, abs=1.5)
    finally:
        rig.close()


def test_max_length_on_a_busy_laser_holds_then_switches_off_after_the_delay(
    laser_cfg: NodeConfig, mock_pins: MockFactory
) -> None:
    cfg = replace(laser_cfg, session=SessionConfig(grace=0, max_length=60.0, hold_for=10.0))
    rig = Rig(cfg, mock_pins)
    try:
        tap(rig.agent, ALICE)
        rig.clamp.run_job(6.0, 600.0)
        rig.run(59.0)
        assert rig.controller.holds == [] and rig.agent.relay.is_on
        rig.run(1.0)  # the maximum length
        assert len(rig.controller.holds) == 1  # the hold is asked for once...
        started_hold = rig.controller.holds[0]
        assert rig.agent.relay.is_on  # ...and power stays on while the machine holds
        assert rig.agent.status()["ending"] is True
        rig.run(9.5)
        assert rig.agent.relay.is_on and len(rig.controller.holds) == 1
        rig.run(0.5)
        assert not rig.agent.relay.is_on
        assert rig.clock.mono() - started_hold == pytest.approx(10.0)
        ended = rig.ended()
        assert ended["end_reason"] == "max_length"
        assert ended["duration_s"] == pytest.approx(70.0, abs=0.01)
    finally:
        rig.close()


def test_a_printer_is_never_cut_mid_job_at_max_length_or_by_a_badge_out(
    laser_cfg: NodeConfig, mock_pins: MockFactory
) -> None:
    cfg = replace(laser_cfg, session=SessionConfig(grace=0, max_length=60.0, hold_for=10.0))
    rig = Rig(cfg, mock_pins, kind="embroidery")
    try:
        tap(rig.agent, ALICE)
        rig.clamp.run_job(6.0, 300.0)
        rig.run(30.0)
        tap(rig.agent, ALICE)  # badge-out mid-job
        rig.run(200.0)  # far past the maximum length
        assert rig.agent.relay.is_on and rig.controller.holds == []
        rig.run(100.0 + 25.0)  # the job ends, then the debounce says idle
        assert not rig.agent.relay.is_on
        # Off once idle; the limit passed during the job is what the session ran into.
        assert rig.ended()["end_reason"] == "max_length"
    finally:
        rig.close()


# --------------------------------------------------------------------------- permissives


@pytest.fixture
def board() -> Iterator[SenseBoardSimulator]:
    sim = SenseBoardSimulator(interval=0.02, permissive_every=2)
    try:
        yield sim
    finally:
        sim.close()


@pytest.fixture
def permissive_node(
    tmp_path: Path, mock_pins: MockFactory, board: SenseBoardSimulator
) -> Iterator[tuple[NodeAgent, HoldCounter, threading.Condition, NodeConfig]]:
    cfg = replace(
        node_config(tmp_path / "journal.db"),
        controller=ControllerConfig(driver="current", port=board.port),
        session=SessionConfig(grace=0),
        permissives=(
            PermissiveConfig(input=0, name="water_flow", on_drop="hold", hold_for=1.0),
            PermissiveConfig(input=1, name="fume_extraction", on_drop="off"),
        ),
    )
    sensor = SerialSenseBoard(board.port, silence_s=1.0, open_grace_s=3.0)
    controller = HoldCounter(sensor, BusyDetector(1.5, 0.8, 0.0, 0.5), sample_interval=0.02)
    controller.holds = []
    key = generate_key()
    agent = NodeAgent(
        cfg,
        relay=GpioRelay(PIN, pin_factory=mock_pins),
        reader=SimulatedReader(),
        public_key=key.public_key(),
        controller=controller,
        connect=False,
    )
    deliver(agent.on_snapshot, sign_snapshot(snapshot(issued=datetime.now(UTC)), key))
    changed = threading.Condition()

    def notify(_report: object) -> None:
        with changed:
            changed.notify_all()

    controller.subscribe(notify)
    agent.start()
    try:
        yield agent, controller, changed, cfg
    finally:
        agent.stopping.set()
        agent.shutdown()


def run_until(
    agent: NodeAgent, cond: threading.Condition, predicate: Callable[[], bool], what: str
) -> None:
    """Step the node at each controller report until ``predicate`` holds (10 s at most)."""

    def check() -> bool:
        agent.step()
        return bool(predicate())

    with cond:
        if not cond.wait_for(check, 10.0):
            raise AssertionError(f"timed out waiting for {what}")


def last_tap(cfg: NodeConfig) -> dict:
    return [e for e in events(cfg) if e["type"] == "tap"][-1]["data"]


def test_permissives_gate_the_relay_and_a_drop_mid_job_holds_then_switches_off(
    permissive_node: tuple[NodeAgent, HoldCounter, threading.Condition, NodeConfig],
    board: SenseBoardSimulator,
    mock_pins: MockFactory,
) -> None:
    agent, controller, changed, cfg = permissive_node
    board.set_permissive(0, False)  # the chiller is off
    run_until(agent, changed, lambda: agent.machine.permissives == {0: False, 1: True}, "inputs")
    tap(agent, ALICE)
    assert not agent.relay.is_on and agent.sessions.current is None
    assert (last_tap(cfg)["action"], last_tap(cfg)["reason"]) == (
        "deny",
        "permissive_off:water_flow",
    )
    assert "permissive off: water_flow" in agent.status()["detail"]

    board.set_permissive(0, True)
    board.set_permissive(1, None)  # the extractor's contact is no longer reported: unknown
    board.set_permissive(1, None)
    run_until(agent, changed, lambda: agent.machine.permissives.get(0) is True, "water back")
    sensor = controller.sensor
    assert isinstance(sensor, SerialSenseBoard)
    sensor.permissive_valid_s = 0.2
    run_until(agent, changed, lambda: 1 not in agent.machine.permissives, "extractor unknown")
    tap(agent, ALICE)
    assert not agent.relay.is_on
    assert last_tap(cfg)["reason"] == "permissive_off:fume_extraction"

    board.set_permissive(1, True)
    run_until(agent, changed, lambda: agent.machine.permissives == {0: True, 1: True}, "all on")
    tap(agent, ALICE)
    assert agent.relay.is_on and last_tap(cfg)["action"] == "start"

    board.currents[0].run_job(6.0, 60.0)
    run_until(agent, changed, lambda: agent.machine.activity is Activity.BUSY, "busy")
    board.set_permissive(0, False)  # the water stops mid-job
    run_until(agent, changed, lambda: bool(controller.holds), "the hold")
    assert agent.relay.is_on  # held first: the laser's controller gets its second
    run_until(agent, changed, lambda: not agent.relay.is_on, "power off")
    assert mock_pins.pin(PIN).state == 0
    ended = [e for e in events(cfg) if e["type"] == "session.ended"][-1]["data"]
    assert ended["end_reason"] == "permissive_off"
    assert ended["duration_s"] > 0
    assert len(controller.holds) == 1
