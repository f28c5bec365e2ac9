"""Commissioning checks: the real ``fabgate node`` on a rig, end to end (see README.md).

One suite, two back-ends: in CI the rig is simulated (mock pins mirrored to files, the
RC522 simulator under the real ``mfrc522``, a sense board on a pty); with
``FABGATE_RIG=rig.yaml`` the same checks run on the bench that file describes and a
person performs the steps. The node is always a separate process supervised the way the
systemd unit does it, its snapshot comes from a real hub through a real Mosquitto, and
the relay is judged by its contact (simulated: the pin level the node's process drives;
real: a loopback input on the relay's NO contact), never by the node's word.

The checks run in file order on one bench; each leaves the relay open and no session.
The first line of each docstring is what the report says the check proves.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest

from gateway.config.rig import RigBadge
from gateway.contract import Envelope
from gateway.core.clock import parse_iso
from tests.hil.bench import EXPECTED_REASON, Bench
from tests.hil.rig import Rig, wait_until
from tests.hil.sim_rig import SimulatedRig

pytestmark = pytest.mark.hil

Measure = Callable[[str, float], None]
START_S = 30.0  # a node's start on a Pi (Python imports on an SD card) with a margin


def _has_snapshot(bench: Bench) -> dict | None:
    st = bench.status()
    return st if st.get("online") and st.get("snapshot_version") is not None else None


@pytest.fixture
def node(bench: Bench) -> Iterator[Bench]:
    """The node service running and holding a snapshot (started here if no check did)."""
    assert bench.node is not None
    if bench.node.proc is None:
        bench.node.start()
    bench.node.wait_ready(START_S)
    assert bench.observer is not None
    bench.observer.wait_for(lambda: _has_snapshot(bench), START_S, "the node's first snapshot")
    yield bench
    assert not bench.rig.relay_closed(), "a check left the relay closed"


def _mono_of(wall: datetime) -> float:
    """A wall time of this machine as a monotonic time (for the node's own records)."""
    return time.monotonic() - (datetime.now(UTC) - wall).total_seconds()


def _start_session(bench: Bench, rig: Rig) -> tuple[Envelope, float, float]:
    """Tap the valid badge: its session.started, when it was presented, when power came."""
    badge = rig.cfg.badge("valid")
    mark = bench.mark()
    presented = rig.tap(badge)
    closed = rig.wait_relay(True, rig.step_timeout, after=presented or 0.0)
    started = bench.wait_event("session.started", rig.step_timeout, after=mark, badge_uid=badge.uid)
    if presented is None:
        presented = _mono_of(parse_iso(started.data["started_at"]))
    return started, presented, closed


def test_relay_off_at_power_up(bench: Bench, rig: Rig, measure: Measure) -> None:
    """The relay stays open while the node starts, and until a badge allows."""
    assert bench.node is not None and bench.observer is not None
    assert not rig.relay_closed(), "the relay contact is closed before the node even started"
    started = time.monotonic()
    bench.node.start()
    ready = bench.node.wait_ready(START_S)
    measure("start_to_ready_s", ready.t - started)
    bench.observer.wait_for(lambda: _has_snapshot(bench), START_S, "the node's first snapshot")
    measure("start_to_snapshot_s", time.monotonic() - started)
    assert not rig.relay_closed()
    assert not rig.closed_since(started), f"the relay closed during start: {rig.relay_changes()}"
    if isinstance(rig, SimulatedRig):
        # The node drives the pin to OFF itself; a floating pin would also read open here.
        drives = [p for p in rig.pin_history() if p["pid"] == bench.node.pid]
        assert drives and drives[-1]["function"] == "output" and not drives[-1]["state"]


def test_valid_badge_closes_relay_in_time(node: Bench, rig: Rig, measure: Measure) -> None:
    """A valid badge closes the relay within the rig's limit; a second tap opens it."""
    started, presented, closed = _start_session(node, rig)
    latency = closed - presented
    measure("tap_to_relay_s", latency)
    assert latency <= rig.cfg.tap_to_relay, (
        f"tap to relay took {latency:.3f} s, the rig allows {rig.cfg.tap_to_relay} s"
    )
    mark = node.mark()
    out = rig.tap(rig.cfg.badge("valid"))
    opened = rig.wait_relay(False, rig.step_timeout, after=out or 0.0)
    ended = node.wait_event(
        "session.ended", rig.step_timeout, after=mark, session_id=started.data["session_id"]
    )
    assert ended.data["end_reason"] == "badge_out"
    if out is not None:
        measure("badge_out_to_relay_open_s", opened - out)


@pytest.mark.parametrize("kind", ["unknown", "expired", "supervised"])
def test_badge_is_refused_as_the_rig_file_says(
    node: Bench, rig: Rig, kind: str, measure: Measure
) -> None:
    """An unknown, an expired and a supervised badge are each refused, for their reason."""
    badge: RigBadge = rig.cfg.badge(kind)
    mark = node.mark()
    before = time.monotonic()
    rig.tap(badge)
    tap = node.wait_event("tap", rig.step_timeout, after=mark, uid=badge.uid)
    measure("tap_to_answer_s", time.monotonic() - before)
    assert (tap.data["action"], tap.data["reason"]) == ("deny", EXPECTED_REASON[kind])
    assert not rig.closed_since(before), f"the relay closed for a refused badge ({kind})"


def test_sense_board_reports_busy_and_idle(node: Bench, rig: Rig, measure: Measure) -> None:
    """Current through the clamp reads busy, no current reads idle, in the node's status."""
    node.wait_status("the sense board idle", rig.step_timeout, activity="idle")
    t = time.monotonic()
    rig.make_busy()
    node.wait_status("the sense board busy", rig.step_timeout, activity="busy")
    measure("load_to_busy_s", time.monotonic() - t)
    t = time.monotonic()
    rig.make_idle()
    node.wait_status("the sense board idle again", rig.step_timeout, activity="idle")
    measure("no_load_to_idle_s", time.monotonic() - t)


def test_serial_cable_pulled_and_plugged_back(node: Bench, rig: Rig, measure: Measure) -> None:
    """A pulled sense-board cable reads as unknown, never idle; plugged back, it recovers."""
    node.wait_status("the sense board idle", rig.step_timeout, activity="idle")
    t = time.monotonic()
    rig.pull_serial()
    lost = node.wait_status("the link loss", rig.step_timeout, activity="unknown")
    measure("pull_to_unknown_s", time.monotonic() - t)
    assert lost["detail"], "the status must say why the machine's state is unknown"
    t = time.monotonic()
    rig.plug_serial()
    node.wait_status("the sense board back", rig.step_timeout, activity="idle")
    measure("plug_to_idle_s", time.monotonic() - t)
    assert not rig.closed_since(t)


def test_sigkill_leaves_relay_off_and_session_closed(
    node: Bench, rig: Rig, measure: Measure
) -> None:
    """After SIGKILL mid-session the relay is open when the node is back, and stays open."""
    assert node.node is not None
    started, _, _ = _start_session(node, rig)
    sid = started.data["session_id"]
    mark = node.mark()
    pid = node.node.signal(signal.SIGKILL)
    killed = time.monotonic()
    node.node.wait_event("exited", pid=pid, timeout=10)
    ready = node.node.wait_ready(START_S, after=killed)
    opened = rig.wait_relay(False, rig.step_timeout, after=killed)
    measure("kill_to_relay_open_s", opened - killed)
    measure("kill_to_ready_s", ready.t - killed)
    boot = node.wait_event("node.boot", START_S, after=mark, recovered_session_id=sid)
    assert boot.data["relay"] is False
    ended = node.wait_event("session.ended", START_S, after=mark, session_id=sid)
    assert ended.data["end_reason"] != "badge_out"
    assert not rig.relay_closed() and not rig.closed_since(ready.t), "power came back by itself"


def test_watchdog_restarts_a_hung_node(node: Bench, rig: Rig, measure: Measure) -> None:
    """A hung node (SIGSTOP) is restarted by the watchdog, relay open, session closed."""
    service = node.node
    assert service is not None
    started, _, _ = _start_session(node, rig)
    sid = started.data["session_id"]
    mark = node.mark()
    pid = service.signal(signal.SIGSTOP)
    hung = time.monotonic()
    fired = service.wait_event("watchdog", pid=pid, timeout=service.watchdog_s + 10)
    measure("hang_to_watchdog_s", fired.t - hung)
    # The last ping may have left up to a third of the timeout before the hang (the
    # node rate-limits them so); a watchdog firing sooner had not been kept fed.
    assert fired.t - hung >= service.watchdog_s * 2 / 3 - 0.1, "the watchdog fired too early"
    ready = service.wait_ready(START_S + service.stop_timeout_s, after=hung)
    assert service.pid != pid
    opened = rig.wait_relay(False, rig.step_timeout, after=hung)
    measure("hang_to_relay_open_s", opened - hung)
    ended = node.wait_event("session.ended", START_S, after=mark, session_id=sid)
    assert ended.data["end_reason"] != "badge_out"
    assert not rig.relay_closed() and not rig.closed_since(ready.t)


def test_journal_reaches_the_hub(node: Bench, measure: Measure) -> None:
    """Every event the node journaled is stored by the hub and gone from the node's journal."""
    assert node.observer is not None
    t = time.monotonic()
    wait_until(lambda: node.journal_pending() == 0, 30, "the node's journal to empty")
    measure("journal_drain_s", time.monotonic() - t)
    with node.observer.cond:
        sent = {e.id: e.type for e in node.observer.events if e.node == node.node_id}
    stored = node.hub_events()
    missing = {i: kind for i, kind in sent.items() if i not in stored}
    assert not missing, f"events the hub does not have: {missing}"
    kinds = set(stored.values())
    assert {"node.boot", "tap", "session.started", "session.ended"} <= kinds, kinds
    measure("events_stored", len(stored))
