"""The node applies the session rules the hub signs, only while it may believe them.

In-process agent as in ``tests/test_node_agent.py`` (real journal file, gpiozero mock
pins, simulated reader, a fake clock): a rule in a newer snapshot applies to the session
already open at the next step; a stale, expired or forged snapshot's rules are never
used; the hub cannot make a printer cut a job in progress.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from gpiozero.pins.mock import MockFactory

from gateway.config import NodeConfig
from gateway.contract.signing import generate_key, sign_snapshot
from gateway.core.activity import Activity, MachineReport
from gateway.core.snapshot import MachineRules, Snapshot
from gateway.drivers.readers.simulated import SimulatedReader
from gateway.drivers.relay import GpioRelay
from gateway.node import Journal, NodeAgent
from tests.support.builders import ALICE, PIN, T0, node_config, snapshot
from tests.support.clock import FakeClock


def with_rules(snap: Snapshot, rules: MachineRules, kind: str | None = None) -> Snapshot:
    machine = dataclasses.replace(snap.machine, session=rules, kind=kind or snap.machine.kind)
    return dataclasses.replace(snap, machine=machine)


@pytest.fixture
def key() -> Any:
    return generate_key()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def cfg(tmp_path: Path) -> NodeConfig:
    return node_config(tmp_path / "journal.db")  # the laser class's rules: idle 15 min


@pytest.fixture
def agent(
    cfg: NodeConfig, clock: FakeClock, key: Any, mock_pins: MockFactory
) -> Iterator[NodeAgent]:
    a = NodeAgent(
        cfg,
        relay=GpioRelay(PIN, pin_factory=mock_pins),
        reader=SimulatedReader(),
        public_key=key.public_key(),
        mono=clock.mono,
        wall=clock.wall,
        connect=False,
    )
    yield a
    a.relay.close()
    a.journal.close()


def deliver(agent: NodeAgent, snap: Snapshot, key: Any) -> None:
    agent.on_snapshot("t", sign_snapshot(snap, key))
    agent.step()


def tap(agent: NodeAgent, uid: str) -> None:
    assert isinstance(agent.reader, SimulatedReader)
    agent.reader.present(uid)
    agent.step()
    agent.step()


def ended(cfg: NodeConfig) -> list[str]:
    j = Journal(cfg.journal)
    try:
        payloads = [json.loads(p) for p in j.all_payloads()]
    finally:
        j.close()
    return [e["data"]["end_reason"] for e in payloads if e["type"] == "session.ended"]


def test_a_lowered_idle_timeout_ends_the_open_session_at_the_next_step(
    agent: NodeAgent, cfg: NodeConfig, clock: FakeClock, key: Any
) -> None:
    deliver(agent, snapshot(1), key)
    tap(agent, ALICE)
    clock.advance(120)
    agent.step()
    assert agent.sessions.current is not None  # 2 min idle: the class's 15 min hold
    deliver(agent, with_rules(snapshot(2), MachineRules(idle_timeout_s=60.0)), key)
    assert agent.sessions.current is None and not agent.relay.is_on
    assert ended(cfg) == ["idle_timeout"]


def test_a_rule_from_a_stale_snapshot_is_not_used(
    agent: NodeAgent, cfg: NodeConfig, clock: FakeClock, key: Any
) -> None:
    """The hub allows 20 h idle; once its snapshot expires, the node's own 15 min rule."""
    generous = with_rules(snapshot(1, valid=timedelta(hours=1)), MachineRules(idle_timeout_s=72000))
    deliver(agent, generous, key)
    tap(agent, ALICE)
    clock.advance(40 * 60)
    agent.step()
    assert agent.sessions.current is not None  # 40 min idle: the hub's 20 h applies
    clock.advance(21 * 60)  # the snapshot's hour is over
    agent.step()
    assert agent.sessions.current is None
    assert ended(cfg) == ["idle_timeout"]


def test_a_forged_snapshot_changes_no_rule(
    agent: NodeAgent, cfg: NodeConfig, clock: FakeClock, key: Any, caplog: pytest.LogCaptureFixture
) -> None:
    deliver(agent, snapshot(1), key)
    tap(agent, ALICE)
    clock.advance(120)
    with caplog.at_level(logging.WARNING):
        deliver(agent, with_rules(snapshot(2), MachineRules(idle_timeout_s=1.0)), generate_key())
    assert "forged" in caplog.text
    agent.step()
    assert agent.sessions.current is not None and ended(cfg) == []


def test_the_hub_cannot_make_a_printer_cut_its_job(
    agent: NodeAgent, cfg: NodeConfig, clock: FakeClock, key: Any
) -> None:
    """never_cut_busy false and a one-minute maximum from the hub: the print goes on."""
    rules = MachineRules(never_cut_busy=False, max_length_s=60.0, idle_timeout_s=60.0)
    deliver(agent, with_rules(snapshot(1), rules, kind="printer"), key)
    tap(agent, ALICE)
    agent.on_report(MachineReport(Activity.BUSY, job_name="benchy.gcode", progress=10.0))
    agent.step()
    for _ in range(10):
        clock.advance(60)
        agent.on_report(MachineReport(Activity.BUSY, job_name="benchy.gcode", progress=20.0))
        agent.step()
    assert agent.sessions.current is not None and agent.relay.is_on
    # The print ends: the hub's maximum length applies to the idle printer at once.
    agent.on_report(MachineReport(Activity.IDLE))
    agent.step()
    assert agent.sessions.current is None
    assert ended(cfg) == ["max_length"]


def test_progress_every_follows_the_hub(agent: NodeAgent, clock: FakeClock, key: Any) -> None:
    deliver(agent, with_rules(snapshot(1), MachineRules(progress_every_s=42.0)), key)
    tap(agent, ALICE)
    agent.on_report(MachineReport(Activity.BUSY, job_name="plaque", progress=1.0))
    agent.step()
    assert agent.machine.jobs.progress_every_s == 42.0
