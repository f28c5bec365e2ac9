"""Tap to relay inside the node: reader event -> policy -> journal -> relay pin.

The agent runs in this process (``connect=False``) with gpiozero's mock pins, the
simulated reader and a real journal file, so the figure includes the durable journal
writes a real tap pays for (WAL, ``synchronous=FULL``), and nothing of MQTT, which
happens after the relay. The clock starts when the reader is handed the badge and stops
inside the mock pin, at the instant its state changes. Denied taps never move the pin:
their clock stops when ``step()`` returns, once the decision is in the journal.

The bare script is the floor: the same reader events, polled and turned straight into a
pin toggle. Our time over it is what the policy, the journal and the session cost.
"""

from __future__ import annotations

import shutil
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from gpiozero import DigitalOutputDevice
from gpiozero.pins.mock import MockFactory

from bench.common import Bar, Figure, percentile
from gateway.config import MqttConfig, NodeConfig, ReaderConfig, RelayConfig, SessionConfig
from gateway.contract.signing import generate_key, sign_snapshot
from gateway.core.snapshot import MachineInfo, MemberGrant, Snapshot
from gateway.drivers.readers.simulated import SimulatedReader
from gateway.drivers.relay import GpioRelay
from gateway.node import NodeAgent

NAME = "tap"
PIN = 17
MEMBERS = 5000


def badge(i: int) -> str:
    return f"{0xB0000000 + i:08X}"


def make_snapshot(members: int) -> Snapshot:
    """Even members are certified (level 2) on the laser, odd ones are not (level 0)."""
    now = datetime.now(UTC)
    grants = {}
    badges = {}
    for i in range(members):
        mid = f"m-{i:05d}"
        badges[badge(i)] = mid
        grants[mid] = MemberGrant(
            member_id=mid,
            name=f"Member {i}",
            category="adherent",
            status="active",
            membership_end=date(2099, 1, 1),
            level=2 if i % 2 == 0 else 0,
            cert_expires=now + timedelta(days=3650),
            staff=False,
            project_id=None,
        )
    return Snapshot(
        site="bench",
        version=1,
        issued_at=now,
        valid_until=now + timedelta(days=7),
        machine=MachineInfo("laser-1", "Laser", "laser", "laser", min_level=2),
        timezone="Europe/Paris",
        badges=badges,
        members=grants,
        opening_hours={d: () for d in range(7)},
    )


def tap_sequence(taps: int, members: int) -> list[tuple[str, bool]]:
    """(uid, allowed) alternating allowed and denied: A starts, a stranger or an
    uncertified member is denied, A badges out, another denied, then the next A.

    Allowed members walk through the snapshot so lookups are not always the same key.
    """
    seq: list[tuple[str, bool]] = []
    k = 0
    while len(seq) < taps:
        a = badge((2 * k) % members)  # even: certified
        seq += [
            (a, True),
            (badge((2 * k + 1) % members), False),
            (a, True),
            (f"{0xDEAD0000 + k % 0xFFFF:08X}", False),
        ]
        k += 1
    return seq[:taps]


def _node_config(work: Path) -> NodeConfig:
    return NodeConfig(
        file=work / "node.yaml",
        site="bench",
        node_id="laser-1",
        machine_id="laser-1",
        journal=work / "journal.db",
        hub_public_key=work / "hub.pub",
        max_snapshot_age=timedelta(hours=72),
        heartbeat=timedelta(hours=1),
        mqtt=MqttConfig(prefix="fablab/bench/", client_id="bench-node"),
        relay=RelayConfig(pin=PIN),
        reader=ReaderConfig(driver="simulated", hold_off=0.0),
        session=SessionConfig(grace=0),
    )


class PinClock:
    """Stamps the instant a mock pin's state really changes."""

    def __init__(self, factory: MockFactory, pin: int) -> None:
        self.stamp = 0
        mock = factory.pin(pin)
        original = mock._change_state

        def change(value: bool) -> bool:
            changed = original(value)
            if changed:
                self.stamp = time.perf_counter_ns()
            return changed

        mock._change_state = change  # type: ignore[method-assign]


def run_node(
    work: Path, seq: list[tuple[str, bool]], snap_payload: bytes, key_pub: object
) -> tuple[list[float], list[float]]:
    """Latencies in ms of allowed (to the pin) and denied (to the journaled decision) taps."""
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    factory = MockFactory()
    relay = GpioRelay(PIN, pin_factory=factory)
    clock = PinClock(factory, PIN)
    reader = SimulatedReader()
    agent = NodeAgent(
        _node_config(work), relay=relay, reader=reader, public_key=key_pub, connect=False
    )  # type: ignore[arg-type]
    agent.on_snapshot("snapshot", snap_payload)
    agent.step()  # the loop, not the MQTT thread, takes the snapshot in
    assert agent.trust.snapshot is not None, "the node refused the benchmark's snapshot"
    allowed_ms: list[float] = []
    denied_ms: list[float] = []
    try:
        for uid, allowed in seq:
            clock.stamp = 0
            t0 = time.perf_counter_ns()
            reader.present(uid)
            agent.step()
            t1 = time.perf_counter_ns()
            if allowed:
                if not clock.stamp:
                    raise AssertionError(f"allowed tap {uid} did not move the relay")
                allowed_ms.append((clock.stamp - t0) / 1e6)
            else:
                if clock.stamp:
                    raise AssertionError(f"denied tap {uid} moved the relay")
                denied_ms.append((t1 - t0) / 1e6)
            agent.step()  # the card leaves the reader
    finally:
        agent.shutdown()
        agent.journal.close()
        factory.reset()
    return allowed_ms, denied_ms


def run_bare(seq: list[tuple[str, bool]]) -> list[float]:
    """The floor: the same reader events, each toggling the pin, nothing else."""
    factory = MockFactory()
    out = DigitalOutputDevice(PIN, initial_value=False, pin_factory=factory)
    clock = PinClock(factory, PIN)
    reader = SimulatedReader()
    ms: list[float] = []
    try:
        for uid, _allowed in seq:
            t0 = time.perf_counter_ns()
            reader.present(uid)
            if reader.poll():
                out.toggle()
            ms.append((clock.stamp - t0) / 1e6)
            reader.poll()
    finally:
        out.close()
        factory.reset()
    return ms


def run(work: Path, quick: bool) -> list[Figure]:
    taps = 300 if quick else 10_000
    runs = 1 if quick else 3
    key = generate_key()
    snap_payload = sign_snapshot(make_snapshot(MEMBERS), key)
    seq = tap_sequence(taps, MEMBERS)
    note = f"{taps} taps per run, {MEMBERS} members in the snapshot"
    f = {
        "all_p50": Figure(NAME, "tap→relay, all taps, p50", "ms", note=note),
        "all_p99": Figure(NAME, "tap→relay, all taps, p99", "ms", bar=Bar("<", 5.0), note=note),
        "ok_p50": Figure(NAME, "tap→relay, allowed taps (pin moves), p50", "ms"),
        "ok_p99": Figure(NAME, "tap→relay, allowed taps (pin moves), p99", "ms", bar=Bar("<", 5.0)),
        "no_p99": Figure(NAME, "tap→decision journaled, denied taps, p99", "ms"),
        "bare_p50": Figure(NAME, "bare pin toggle on the same reader events, p50", "ms"),
        "bare_p99": Figure(NAME, "bare pin toggle on the same reader events, p99", "ms"),
        "r50": Figure(NAME, "ratio to bare script, p50 (allowed taps)", "×"),
        "r99": Figure(NAME, "ratio to bare script, p99 (allowed taps)", "×"),
    }
    for i in range(runs):
        allowed, denied = run_node(work / f"run{i}", seq, snap_payload, key.public_key())
        bare = run_bare(seq)
        both = allowed + denied
        values = {
            "all_p50": percentile(both, 50),
            "all_p99": percentile(both, 99),
            "ok_p50": percentile(allowed, 50),
            "ok_p99": percentile(allowed, 99),
            "no_p99": percentile(denied, 99),
            "bare_p50": percentile(bare, 50),
            "bare_p99": percentile(bare, 99),
        }
        values["r50"] = values["ok_p50"] / values["bare_p50"]
        values["r99"] = values["ok_p99"] / values["bare_p99"]
        for k, v in values.items():
            f[k].values.append(round(v, 4 if k.startswith("bare") else 3))
    return list(f.values())
