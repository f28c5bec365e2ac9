"""The GRBL driver against the GRBL simulator over a real pty.

Every test waits on reports (or on bytes the simulator received) with a condition
variable; nothing sleeps to synchronise. Unhandled exceptions in the driver's threads
fail the test: the driver must survive anything that comes down the wire.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gateway.core.activity import Activity, MachineReport
from gateway.drivers.machines.grbl import (
    GrblController,
    GrblJobDetector,
    Status,
    alarm_detail,
    parse_status,
)
from gateway.drivers.simulators.grbl import GrblSimulator

pytestmark = pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")

WAIT = 5.0


class Reports:
    """Collects a driver's reports and lets a test wait for one that matches."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.items: list[MachineReport] = []

    def __call__(self, report: MachineReport) -> None:
        with self._cond:
            self.items.append(report)
            self._cond.notify_all()

    def mark(self) -> int:
        """A position: later waits can ask for reports that arrive after it."""
        with self._cond:
            return len(self.items)

    def wait_for(
        self,
        pred: Callable[[MachineReport], bool],
        *,
        after: int = 0,
        timeout: float = WAIT,
    ) -> MachineReport:
        found: list[MachineReport] = []

        def match() -> bool:
            found[:] = [r for r in self.items[after:] if pred(r)]
            return bool(found)

        with self._cond:
            if not self._cond.wait_for(match, timeout):
                seen = [(r.activity.value, r.detail) for r in self.items[after:]][-8:]
                raise AssertionError(f"no matching report within {timeout}s; last: {seen}")
        return found[0]

    def wait_activity(self, activity: Activity, *, after: int = 0) -> MachineReport:
        return self.wait_for(lambda r: r.activity is activity, after=after)


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[GrblSimulator]:
    with GrblSimulator(link=tmp_path / "ttyGRBL") as simulator:
        yield simulator


@pytest.fixture
def reports() -> Reports:
    return Reports()


@pytest.fixture
def driver(sim: GrblSimulator, reports: Reports) -> Iterator[GrblController]:
    controller = GrblController(sim.port, poll_interval=0.2, answer_timeout=0.8)
    controller.RECONNECT_MIN = 0.2
    controller.subscribe(reports)
    controller.start()
    try:
        yield controller
    finally:
        controller.close()


def test_idle_machine_reports_idle_with_position(
    driver: GrblController, reports: Reports, sim: GrblSimulator
) -> None:
    report = reports.wait_activity(Activity.IDLE)
    assert report.detail == "Idle"
    assert report.data["state"] == "Idle"
    assert report.data["mpos"] == [0.0, 0.0, 0.0]
    assert report.data["job"] is False
    assert report.progress is None and report.job_name is None
    assert sim.received.count(b"?") >= 1
    assert driver.last_report.activity is Activity.IDLE


def test_job_start_is_busy_and_job_end_is_idle(
    driver: GrblController, reports: Reports, sim: GrblSimulator
) -> None:
    reports.wait_activity(Activity.IDLE)
    start = reports.mark()
    sim.run_job(lines=6, seconds=0.9)
    busy = reports.wait_activity(Activity.BUSY, after=start)
    assert busy.data["state"] == "Run" and busy.data["job"] is True
    busy_at = reports.items.index(busy)
    done = reports.wait_activity(Activity.IDLE, after=busy_at)
    assert done.data["job"] is False
    assert done.data["mpos"] == [6.0, 0.0, 0.0]  # every line ran before the job ended


def test_feed_hold_at_the_machine_is_paused_and_cycle_start_resumes(
    driver: GrblController, reports: Reports, sim: GrblSimulator
) -> None:
    sim.run_job(lines=20, seconds=10)
    reports.wait_activity(Activity.BUSY)
    mark = reports.mark()
    sim.press_feed_hold()
    paused = reports.wait_for(lambda r: r.data.get("state") == "Hold:0", after=mark)
    assert paused.activity is Activity.PAUSED
    assert paused.detail == "Hold:0 hold complete"
    assert paused.data["job"] is True  # held, not finished
    mark = reports.mark()
    sim.press_cycle_start()
    resumed = reports.wait_activity(Activity.BUSY, after=mark)
    assert resumed.data["job"] is True


def test_alarm_is_reported_with_its_meaning(
    driver: GrblController, reports: Reports, sim: GrblSimulator
) -> None:
    reports.wait_activity(Activity.IDLE)
    mark = reports.mark()
    sim.inject_alarm(2)
    alarm = reports.wait_activity(Activity.ALARM, after=mark)
    assert alarm.detail == "ALARM:2 soft limit"
    # The next status report says only "Alarm"; the code must not be forgotten.
    polled = reports.wait_for(
        lambda r: r.activity is Activity.ALARM and "state" in r.data and r is not alarm, after=mark
    )
    assert polled.detail == alarm_detail(2)


def test_garbage_on_the_line_is_skipped_and_reports_go_on(
    driver: GrblController, reports: Reports, sim: GrblSimulator
) -> None:
    reports.wait_activity(Activity.IDLE)
    sim.send_garbage(b"\xff\xfe\x00\x80 noise \xc3(\r\n")  # not UTF-8, control bytes
    sim.send_garbage(b"<Idle|MPos:1.0,zz>\r\n")  # a mangled status report
    sim.send_garbage(b"\x9c\x01 half a line without end")  # glued to the next report
    after = reports.wait_for(lambda r: r.activity is Activity.IDLE and r.data["garbage_lines"] >= 3)
    assert after.data["mpos"] == [0.0, 0.0, 0.0]  # the mangled report was not believed
    assert driver.running


def test_silent_controller_is_unknown_then_recovers(
    driver: GrblController, reports: Reports, sim: GrblSimulator
) -> None:
    reports.wait_activity(Activity.IDLE)
    mark = reports.mark()
    sim.go_silent()
    silent = reports.wait_activity(Activity.UNKNOWN, after=mark)
    assert silent.detail == "no answer"
    mark = reports.mark()
    sim.resume()
    reports.wait_activity(Activity.IDLE, after=mark)
    # Silence is not a dead link: reopening would reset the board, so the port stays open.
    assert sim.received.count(b"\x18") == 0
    assert not any(r.detail == "link lost" for r in reports.items)


def test_unplugged_mid_job_is_link_lost_then_reconnects(
    driver: GrblController, reports: Reports, sim: GrblSimulator
) -> None:
    sim.run_job(lines=50, seconds=20)
    reports.wait_activity(Activity.BUSY)
    mark = reports.mark()
    sim.unplug()
    lost = reports.wait_activity(Activity.UNKNOWN, after=mark)
    assert lost.detail == "link lost"
    assert driver.running
    mark = reports.mark()
    sim.replug()  # a new pty behind the same stable name, and a freshly booted board
    back = reports.wait_activity(Activity.IDLE, after=mark)
    assert back.data["job"] is False
    assert driver.running


def test_safe_stop_holds_then_resets_once_stopped(
    driver: GrblController, reports: Reports, sim: GrblSimulator
) -> None:
    sim.run_job(lines=50, seconds=20)
    reports.wait_activity(Activity.BUSY)
    driver.safe_stop()
    assert sim.wait_received(b"\x18")
    sent = sim.received.replace(b"?", b"")
    assert sent == b"!\x18"  # hold first, then reset, nothing else
    # The reset came after deceleration ended, so the position was kept (no ALARM:3).
    assert sim.resets == ["Hold:0"]
    mark = reports.mark()
    done = reports.wait_activity(Activity.IDLE, after=mark)
    assert done.data["job"] is False


def test_safe_stop_with_link_down_does_not_raise(sim: GrblSimulator) -> None:
    controller = GrblController(sim.port, poll_interval=0.2, answer_timeout=0.8)
    controller.safe_stop()  # never started: nothing to send, nothing to raise
    controller.close()
    controller.close()  # idempotent
    assert controller.last_report.detail == "closed"


def test_missing_port_reports_link_lost_and_keeps_trying(tmp_path: Path, reports: Reports) -> None:
    controller = GrblController(str(tmp_path / "nothing"), poll_interval=0.2, answer_timeout=0.8)
    controller.subscribe(reports)
    controller.start()
    try:
        assert reports.wait_activity(Activity.UNKNOWN).detail == "link lost"
        assert controller.running
    finally:
        controller.close()


def test_polling_faster_than_five_hertz_is_refused() -> None:
    with pytest.raises(ValueError):
        GrblController("/dev/null", poll_interval=0.05)


@pytest.mark.parametrize(
    ("line", "state", "activity"),
    [
        ("<Idle|MPos:0.000,0.000,0.000|FS:0,0>", "Idle", Activity.IDLE),
        ("<Run|MPos:1.000,2.000,0.000|Bf:3,100|FS:500,1000>", "Run", Activity.BUSY),
        ("<Jog|WPos:1.000,2.000,0.000|FS:500,0>", "Jog", Activity.BUSY),
        ("<Home|MPos:0.000,0.000,0.000|FS:0,0>", "Home", Activity.BUSY),
        ("<Hold:1|MPos:0.000,0.000,0.000|FS:0,0>", "Hold:1", Activity.PAUSED),
        ("<Door:2|MPos:0.000,0.000,0.000|FS:0,0>", "Door:2", Activity.PAUSED),
        ("<Alarm|MPos:0.000,0.000,0.000|FS:0,0>", "Alarm", Activity.ALARM),
        ("<Check|MPos:0.000,0.000,0.000|FS:0,0>", "Check", Activity.IDLE),
        ("<Sleep|MPos:0.000,0.000,0.000|FS:0,0>", "Sleep", Activity.IDLE),
    ],
)
def test_every_state_maps_to_an_activity(line: str, state: str, activity: Activity) -> None:
    from gateway.drivers.machines.grbl import STATE_ACTIVITY

    status = parse_status(line)
    assert status is not None and status.state == state
    assert STATE_ACTIVITY[status.base_state] is activity


@pytest.mark.parametrize(
    "line",
    [
        "<Idle|MPos:0.000,0.0",
        "<Bogus|MPos:0,0,0>",
        "<Idle|Bf:x,1>",
        "ok",
        "<Idle|MPos:1,2,3> ok",
    ],
)
def test_mangled_status_reports_are_rejected(line: str) -> None:
    assert parse_status(line) is None


def test_job_ends_only_on_idle_with_an_empty_planner() -> None:
    def status(state: str, bf: str | None = "15,128") -> Status:
        return Status(state, {} if bf is None else {"Bf": bf})

    jobs = GrblJobDetector()
    assert jobs.update(status("Idle")) is False
    assert jobs.update(status("Run", "2,128")) is True
    assert jobs.update(status("Hold:0", "2,128")) is True
    assert jobs.update(status("Idle", "9,128")) is True  # blocks wait for cycle start
    assert jobs.update(status("Idle", "15,60")) is True  # the sender's bytes still queued
    assert jobs.update(status("Idle")) is False
    assert jobs.update(status("Jog", None)) is False  # jogging is not a job
    assert jobs.update(status("Run", None)) is True
    assert jobs.update(status("Alarm", None)) is False  # an alarm aborts the job
