"""A G-code sender beside the node: through the GRBL driver's link to the simulator.

Real sockets, real ptys, the real driver and the GRBL simulator: the sender in
``tests/support/gcode_sender.py`` streams like UGS (send-response, a lost ``ok`` stalls
it) or like a fast laser sender (character counting) and counts every reply it gets.
Waits are on conditions (replies, reports, bytes the simulator received), never sleeps.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.core.activity import Activity, MachineReport
from gateway.drivers.machines.grbl import GrblController
from gateway.drivers.machines.sender_link import BUSY
from gateway.drivers.simulators.grbl import GrblSimulator
from tests.support.gcode_sender import GcodeSender
from tests.support.harness import poll_until

pytestmark = pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")

POLL = 0.25
JOB = ["(plaque chene)", "; lines: 35", "G21", "G90", "M3 S800"]
JOB += [f"G1 X{i} Y{i % 7} F1200" for i in range(30)]
JOB += ["M5", "G0 X0 Y0"]
JOB_GCODE_LINES = 35  # every line but the two comments


class Reports:
    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.items: list[MachineReport] = []

    def __call__(self, report: MachineReport) -> None:
        with self.cond:
            self.items.append(report)
            self.cond.notify_all()

    def wait(
        self, pred: Callable[[MachineReport], bool], timeout: float = 10.0, after: int = 0
    ) -> MachineReport:
        found: list[MachineReport] = []

        def match() -> bool:
            found[:] = [r for r in self.items[after:] if pred(r)]
            return bool(found)

        with self.cond:
            if not self.cond.wait_for(match, timeout):
                seen = [(r.activity.value, r.detail) for r in self.items][-6:]
                raise AssertionError(f"no matching report; last {seen}")
        return found[-1]


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[GrblSimulator]:
    with GrblSimulator(link=tmp_path / "ttyGRBL", line_time=0.02) as simulator:
        yield simulator


def _controller(sim: GrblSimulator, reports: Reports, **link: Any) -> Iterator[GrblController]:
    controller = GrblController(sim.port, poll_interval=POLL, answer_timeout=1.0, **link)
    controller.subscribe(reports)
    controller.start()
    try:
        reports.wait(lambda r: r.activity is Activity.IDLE)
        yield controller
    finally:
        controller.close()


@pytest.fixture
def reports() -> Reports:
    return Reports()


@pytest.fixture
def tcp_node(sim: GrblSimulator, reports: Reports) -> Iterator[GrblController]:
    yield from _controller(sim, reports, sender_tcp=("127.0.0.1", 0))


@pytest.fixture
def pty_node(sim: GrblSimulator, reports: Reports, tmp_path: Path) -> Iterator[GrblController]:
    yield from _controller(sim, reports, sender_pty=str(tmp_path / "ttyFabgate"))


def _sender(node: GrblController) -> GcodeSender:
    assert node.link is not None and node.relay is not None
    sender = GcodeSender(tcp=node.link.tcp_address)
    relay = node.relay
    poll_until(lambda: relay.connected, 5, "the node to see the sender")
    return sender


def test_send_response_job_gets_every_ok_and_reaches_the_hub_events(
    tcp_node: GrblController, sim: GrblSimulator, reports: Reports
) -> None:
    tcp_node.set_session_open(True)
    sender = _sender(tcp_node)
    try:
        replies = sender.stream(JOB, poll=0.2)
        assert replies == ["ok"] * len(JOB)  # one ok per line: none lost, none extra
        end = reports.wait(lambda r: r.activity is Activity.IDLE and r.job_name is not None)
    finally:
        sender.close()
    assert end.job_name == "plaque chene"
    assert end.data["lines"] == {"sent": JOB_GCODE_LINES, "acked": JOB_GCODE_LINES, "total": 35}
    busy = [r for r in reports.items if r.activity is Activity.BUSY and r.lines_done]
    assert busy, "the node's own tracking saw the job run"
    assert busy[-1].progress is not None and busy[-1].progress > 50
    # Every line reached the controller once, in order; the port was opened once.
    received = sim.received.decode("ascii", "replace")
    positions = [received.index(f"G1 X{i} Y") for i in range(30)]
    assert positions == sorted(positions)
    assert tcp_node.opens == 1


def test_status_reports_the_sender_asks_for_are_never_withheld(
    tcp_node: GrblController, sim: GrblSimulator
) -> None:
    """The node polls too (the sender polls slower): every sender `?` still gets a report."""
    sender = _sender(tcp_node)
    seen = 0  # `?` bytes the controller had received at the end of the last round
    try:
        for i in range(12):
            sender.query()
            sender.wait_for(lambda n=i: len(sender.heard.statuses) > n, what="a report")
            # The report may be one the node had asked for (handed to the sender, whose
            # own `?` then answers the node): wait for the sender's `?` to reach GRBL
            # before counting, or it would pass for the node's poll.
            assert sim.wait_count(b"?", seen + 1), "the sender's query reached GRBL"
            # Stay quiet longer than a poll interval: the node then polls on its own.
            assert sim.wait_count(b"?", sim.received.count(b"?") + 1), "the node polled"
            seen = sim.received.count(b"?")
        # One more round trip: any report the node asked for has arrived before its answer.
        sender.query()
        sender.wait_for(lambda: len(sender.heard.statuses) > 12, what="the last report")
    finally:
        sender.close()
    assert sender.queries_sent == 13
    assert len(sender.heard.statuses) == 13  # exactly one report per `?` it sent
    assert sim.received.count(b"?") >= 25  # the node's 12 polls were answered to the node


def test_realtime_bytes_pass_through_mid_line(tcp_node: GrblController, sim: GrblSimulator) -> None:
    sender = _sender(tcp_node)
    try:
        # Feed hold, cycle start, jog cancel and two overrides in the middle of a line.
        sender.write(b"G2")
        sender.write(b"!~\x85\x91\x9e")
        assert sim.wait_received(b"!~\x85\x91\x9e")
        sender.write(b"1 S0\n")  # the line itself: G21 S0 (modal settings only)
        sender.wait_for(lambda: sender.heard.replies == ["ok"], what="the line's ok")
        assert sender.send_line("$G") == "ok"
        sender.write(b"\x18")  # soft reset: the banner comes back to the sender
        sender.wait_for(lambda: any("Grbl" in p for p in sender.heard.pushes), what="banner")
    finally:
        sender.close()
    assert b"G21 S0\n" in sim.received
    assert b"\x18" in sim.received


def test_without_a_session_motion_is_refused_and_never_reaches_the_controller(
    tcp_node: GrblController, sim: GrblSimulator
) -> None:
    sender = _sender(tcp_node)
    try:
        assert sender.send_line("G0 X10 Y10") == "error:9"
        assert sender.send_line("$J=G91 X5 F500") == "error:9"
        assert sender.send_line("M3 S1000") == "error:9"
        assert sender.send_line("$$") == "ok"  # settings reads pass
        assert sender.send_line("G21") == "ok"  # so do modal settings
        sender.query()
        sender.wait_for(lambda: bool(sender.heard.statuses), what="a status report")
    finally:
        sender.close()
    assert any("badge in" in p for p in sender.heard.pushes)
    for refused in (b"G0 X10", b"$J=", b"M3"):
        assert refused not in sim.received
    assert b"$$\n" in sim.received
    assert sim.state == "Idle"


def test_character_counting_over_a_pty_keeps_reply_order_around_refused_lines(
    pty_node: GrblController, sim: GrblSimulator
) -> None:
    """Lines in flight, some refused: each reply still answers its own line, in order."""
    assert pty_node.link is not None and pty_node.link.pty_link is not None
    sender = GcodeSender(pty=str(pty_node.link.pty_link))
    relay = pty_node.relay
    assert relay is not None
    poll_until(lambda: relay.connected, 5, "the node to see the pty opened")
    lines = []
    for i in range(12):
        lines += ["G21", f"G1 X{i} F900", "$G"]
    try:
        replies = sender.stream_counting(lines, poll=0.2)
    finally:
        sender.close()
    assert replies == ["ok", "error:9", "ok"] * 12
    assert b"G1 X" not in sim.received


def test_lines_of_a_sender_that_left_are_not_answered_to_the_next_one(
    tcp_node: GrblController, sim: GrblSimulator
) -> None:
    tcp_node.set_session_open(True)
    sim.line_time = 0.2  # the 10 lines beyond the planner's 15 wait 2 s for their ok
    first = _sender(tcp_node)
    # Fill the planner so the controller withholds its oks, then leave.
    first.write(b"".join(f"G1 X{i} F600\n".encode() for i in range(25)))
    assert sim.wait_received(b"G1 X24 F600\n")
    first.close()
    relay = tcp_node.relay
    assert relay is not None
    poll_until(lambda: not relay.connected, 5, "the node to see the sender leave")
    assert relay.in_flight > 0  # the first sender's unanswered lines, now orphans
    second = _sender(tcp_node)
    try:
        assert second.send_line("G21", timeout=10) == "ok"
        poll_until(lambda: relay.in_flight == 0, 10, "the orphans' answers")
    finally:
        second.close()
    assert second.heard.replies == ["ok"]  # only its own line's answer


def test_a_second_sender_is_told_the_machine_is_taken(tcp_node: GrblController) -> None:
    first = _sender(tcp_node)
    assert tcp_node.link is not None
    second = GcodeSender(tcp=tcp_node.link.tcp_address)
    try:
        second.wait_for(lambda: second.closed, what="the second connection closed")
        assert bytes(second.raw) == BUSY
        assert first.send_line("$G") == "ok"
    finally:
        second.close()
        first.close()


def test_unplugged_controller_drops_the_sender_and_comes_back(
    tcp_node: GrblController, sim: GrblSimulator, reports: Reports
) -> None:
    sender = _sender(tcp_node)
    sim.unplug()
    sender.wait_for(lambda: sender.closed, what="the sender to be disconnected")
    assert any("USB link was lost" in p for p in sender.heard.pushes)
    reports.wait(lambda r: r.detail == "link lost")
    sim.replug()
    mark = len(reports.items)
    reports.wait(lambda r: r.activity is Activity.IDLE, after=mark)
    again = _sender(tcp_node)
    try:
        assert again.send_line("$G") == "ok"
    finally:
        again.close()
