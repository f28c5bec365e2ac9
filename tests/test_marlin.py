"""The Marlin driver against the simulated printer, over a real pseudo-terminal.

Everything goes through pyserial and a pty so that partial reads, non-text bytes and a
device vanishing under an open descriptor are the real thing. Tests wait on reports
(a condition variable), never on the clock; print durations and timeouts are short.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import serial

from gateway.core.activity import Activity, MachineReport
from gateway.drivers.machines.marlin import MarlinController
from gateway.drivers.simulators.marlin import AMBIENT_C, MarlinSimulator

POLL = 0.05
ANSWER_TIMEOUT = 0.5
WAIT = 10.0


class Reports:
    """Every report the driver emits, with its arrival time, for tests to wait on."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.items: list[tuple[float, MachineReport]] = []

    def __call__(self, report: MachineReport) -> None:
        with self._cond:
            self.items.append((time.monotonic(), report))
            self._cond.notify_all()

    def mark(self) -> int:
        with self._cond:
            return len(self.items)

    def since(self, mark: int) -> list[MachineReport]:
        with self._cond:
            return [r for _, r in self.items[mark:]]

    def wait_for(
        self,
        predicate: Callable[[MachineReport], bool],
        *,
        since: int = 0,
        after: float | None = None,
        timeout: float = WAIT,
    ) -> MachineReport:
        found: list[MachineReport] = []

        def match() -> bool:
            for at, report in self.items[since:]:
                if (after is None or at >= after) and predicate(report):
                    found.append(report)
                    return True
            return False

        with self._cond:
            if not self._cond.wait_for(match, timeout):
                recent = [r for _, r in self.items[-5:]]
                raise AssertionError(f"no matching report within {timeout}s; last: {recent}")
        return found[0]

    def wait_count(self, count: int, *, since: int, timeout: float = WAIT) -> list[MachineReport]:
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.items) - since >= count, timeout):
                raise AssertionError(f"fewer than {count} reports within {timeout}s")
            return [r for _, r in self.items[since : since + count]]


def activity(kind: Activity, **fields: Any) -> Callable[[MachineReport], bool]:
    def predicate(report: MachineReport) -> bool:
        return report.activity is kind and all(getattr(report, k) == v for k, v in fields.items())

    return predicate


@pytest.fixture
def thread_errors() -> Iterator[list[threading.ExceptHookArgs]]:
    """Fails the test if any thread dies of an exception: drivers must never raise."""
    errors: list[threading.ExceptHookArgs] = []
    previous = threading.excepthook
    threading.excepthook = errors.append
    try:
        yield errors
    finally:
        threading.excepthook = previous
    assert not errors, [f"{e.thread}: {e.exc_value!r}" for e in errors]


@pytest.fixture
def sim() -> Iterator[MarlinSimulator]:
    with MarlinSimulator() as simulator:
        yield simulator


@contextmanager
def running(port: str, **kwargs: Any) -> Iterator[tuple[MarlinController, Reports]]:
    kwargs.setdefault("poll_interval", POLL)
    kwargs.setdefault("answer_timeout", ANSWER_TIMEOUT)
    driver = MarlinController(port, **kwargs)
    reports = Reports()
    driver.subscribe(reports)
    driver.start()
    try:
        yield driver, reports
    finally:
        driver.close()


@pytest.fixture
def printer(
    sim: MarlinSimulator, thread_errors: list[threading.ExceptHookArgs]
) -> Iterator[tuple[MarlinController, Reports]]:
    with running(sim.port) as pair:
        pair[1].wait_for(activity(Activity.IDLE))
        yield pair


class CountingFactory:
    """``serial_for_url`` that counts opens: every open resets a real board."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return serial.serial_for_url(*args, **kwargs)


def busy_job(name: str) -> Callable[[MachineReport], bool]:
    return activity(Activity.BUSY, job_name=name)


# --------------------------------------------------------------------------- reporting


def test_idle_reports_temperatures_and_their_targets(
    sim: MarlinSimulator, printer: tuple[MarlinController, Reports]
) -> None:
    _, reports = printer
    idle = reports.wait_for(activity(Activity.IDLE))
    assert idle.data["hotend_actual"] == pytest.approx(AMBIENT_C)
    assert idle.data["bed_actual"] == pytest.approx(AMBIENT_C)
    assert idle.data["hotend_target"] == 0.0 and idle.data["bed_target"] == 0.0
    assert idle.detail == "T:21.3/0 B:21.3/0"
    assert idle.job_name is None and idle.progress is None
    assert "Marlin" in str(idle.data["firmware"])

    sim.set_targets(hotend=210, bed=60)
    heating = reports.wait_for(
        lambda r: (
            r.data.get("hotend_target") == 210.0
            and r.data.get("bed_target") == 60.0
            and float(r.data["hotend_actual"]) > 30
        )  # type: ignore[arg-type]
    )
    assert heating.activity is Activity.IDLE
    assert heating.detail.startswith("T:") and "/210 B:" in heating.detail


def test_sd_print_is_busy_with_rising_progress_and_name_then_idle(
    sim: MarlinSimulator, printer: tuple[MarlinController, Reports]
) -> None:
    _, reports = printer
    mark = reports.mark()
    sim.start_sd_print("benchy.gcode", seconds=1.5)

    first = reports.wait_for(busy_job("benchy.gcode"), since=mark)
    assert first.progress is not None and 0 <= first.progress < 100
    later_mark = reports.mark()
    later = reports.wait_for(
        lambda r: r.activity is Activity.BUSY and (r.progress or 0) > (first.progress or 0) + 5,
        since=later_mark,
    )
    assert later.job_name == "benchy.gcode"
    assert later.data["sd_size"] == 1_000_000

    done = reports.wait_for(activity(Activity.IDLE), since=reports.mark())
    assert done.job_name is None and done.progress is None
    assert done.detail != "cancelled"


def test_file_name_is_none_and_asked_once_when_the_firmware_cannot_tell(
    thread_errors: list[threading.ExceptHookArgs],
) -> None:
    with MarlinSimulator(file_name_query=False) as sim, running(sim.port) as (_, reports):
        reports.wait_for(activity(Activity.IDLE))
        sim.start_sd_print("first.gcode", seconds=30)
        busy = reports.wait_for(activity(Activity.BUSY))
        reports.wait_count(3, since=reports.mark())
        assert busy.job_name is None and busy.progress is not None

        sim.action("cancel")
        reports.wait_for(activity(Activity.IDLE, detail="cancelled"))
        sim.start_sd_print("second.gcode", seconds=30)
        reports.wait_for(activity(Activity.BUSY), since=reports.mark())
        reports.wait_count(3, since=reports.mark())
        assert sim.commands().count("M27 C") == 1


def test_a_print_reports_the_filament_its_job_used_from_the_print_counter(
    sim: MarlinSimulator, printer: tuple[MarlinController, Reports]
) -> None:
    _, reports = printer
    # Filament extruded by earlier prints is on the counter, not this job's.
    sim.start_sd_print("earlier.gcode", seconds=0.2, filament_mm=5000)
    reports.wait_for(activity(Activity.IDLE), since=reports.mark())
    reports.wait_count(2, since=reports.mark())
    mark = reports.mark()
    sim.start_sd_print("benchy.gcode", seconds=1.5, filament_mm=3210)
    rising = reports.wait_for(
        lambda r: r.activity is Activity.BUSY and (r.filament_mm or 0) > 0, since=mark
    )
    assert rising.filament_mm is not None and rising.filament_mm < 3210
    done = reports.wait_for(activity(Activity.IDLE), since=reports.mark())
    # M78 says metres with two decimals: the job's figure is within 10 mm of the truth.
    assert done.filament_mm == pytest.approx(3210, abs=10)
    assert "M78" in sim.commands()


def test_without_a_print_counter_filament_is_unknown_and_m78_asked_once(
    thread_errors: list[threading.ExceptHookArgs],
) -> None:
    with MarlinSimulator(print_counter=False) as sim, running(sim.port) as (_, reports):
        reports.wait_for(activity(Activity.IDLE))
        sim.start_sd_print("x.gcode", seconds=0.6, filament_mm=1000)
        busy = reports.wait_for(activity(Activity.BUSY))
        done = reports.wait_for(activity(Activity.IDLE), since=reports.mark())
        assert busy.filament_mm is None and done.filament_mm is None
        assert sim.commands().count("M78") == 1


# --------------------------------------------------------------------------- actions


def test_pause_action_holds_the_job_and_resume_announcement_releases_it(
    sim: MarlinSimulator, printer: tuple[MarlinController, Reports]
) -> None:
    _, reports = printer
    sim.start_sd_print("vase.gcode", seconds=30)
    reports.wait_for(busy_job("vase.gcode"))

    sim.action("pause")
    paused = reports.wait_for(activity(Activity.PAUSED), since=reports.mark())
    assert paused.job_name == "vase.gcode" and paused.progress is not None
    # M27 reports a paused print like a running one: later polls must not undo the pause.
    assert {r.activity for r in reports.wait_count(4, since=reports.mark())} == {Activity.PAUSED}

    # Only the announcement (the simulated print stays paused): the driver must listen.
    mark = reports.mark()
    sim.action("resume", apply=False)
    assert reports.wait_for(lambda r: r.activity is not Activity.PAUSED, since=mark) == (
        reports.wait_for(busy_job("vase.gcode"), since=mark)
    )


def test_a_pause_undone_at_the_printer_without_announcement_is_noticed(
    sim: MarlinSimulator, printer: tuple[MarlinController, Reports]
) -> None:
    _, reports = printer
    sim.start_sd_print("bracket.gcode", seconds=30)
    reports.wait_for(busy_job("bracket.gcode"))
    sim.action("pause")
    reports.wait_for(activity(Activity.PAUSED), since=reports.mark())

    sim.pause_print(False)
    reports.wait_for(busy_job("bracket.gcode"), since=reports.mark())


def test_cancel_action_ends_the_job_as_cancelled_until_the_next_job(
    sim: MarlinSimulator, printer: tuple[MarlinController, Reports]
) -> None:
    _, reports = printer
    sim.start_sd_print("gear.gcode", seconds=30)
    reports.wait_for(busy_job("gear.gcode"))

    mark = reports.mark()
    sim.action("cancel")
    cancelled = reports.wait_for(lambda r: r.activity is not Activity.BUSY, since=mark)
    assert cancelled.activity is Activity.IDLE
    assert cancelled.detail == "cancelled" and cancelled.job_name is None
    assert {r.detail for r in reports.wait_count(4, since=reports.mark())} == {"cancelled"}

    sim.start_sd_print("gear.gcode", seconds=30)
    busy = reports.wait_for(busy_job("gear.gcode"), since=reports.mark())
    assert busy.detail != "cancelled"


# --------------------------------------------------------------------------- failures


def test_halted_printer_is_an_error_until_it_is_reset(
    sim: MarlinSimulator, printer: tuple[MarlinController, Reports]
) -> None:
    _, reports = printer
    sim.start_sd_print("part.gcode", seconds=30)
    reports.wait_for(activity(Activity.BUSY))

    sim.halt()
    error = reports.wait_for(activity(Activity.ERROR), since=reports.mark())
    assert "kill() called" in error.detail
    # A killed firmware answers nothing; that silence is still the error, not "unknown".
    mark = reports.mark()
    reports.wait_for(lambda r: True, since=mark, after=time.monotonic() + 2 * ANSWER_TIMEOUT)
    assert {r.activity for r in reports.since(mark)} == {Activity.ERROR}

    sim.reset()  # the board restarts: line numbers from zero, "start"
    idle = reports.wait_for(activity(Activity.IDLE), since=reports.mark())
    assert idle.data["hotend_actual"] == pytest.approx(AMBIENT_C, abs=1)


def test_garbage_is_logged_once_skipped_and_reporting_goes_on(
    sim: MarlinSimulator,
    printer: tuple[MarlinController, Reports],
    caplog: pytest.LogCaptureFixture,
) -> None:
    _, reports = printer
    caplog.set_level("WARNING", logger="gateway.drivers.machines.marlin")
    sim.send_garbage(b"\xff\xfe\x00\x81 noise \xc3(\n" * 20 + b"\x1b[2J\x07\n")
    # Noise without a newline glues itself to the next answer; the answer must survive.
    sim.send_garbage(b"\x80\xff")

    mark = reports.mark()
    after_noise = reports.wait_count(4, since=mark)
    assert all(r.activity is Activity.IDLE for r in after_noise), after_noise
    assert all(r.data.get("hotend_actual") for r in after_noise)

    garbage_warnings = [r for r in caplog.records if "garbage" in r.getMessage()]
    assert len(garbage_warnings) == 1


def test_busy_messages_extend_the_wait_for_an_answer(
    sim: MarlinSimulator, printer: tuple[MarlinController, Reports]
) -> None:
    _, reports = printer
    mark = reports.mark()
    slow = 4 * ANSWER_TIMEOUT
    sim.delay_next("M105", slow)
    reports.wait_for(activity(Activity.IDLE), since=mark, after=time.monotonic() + slow)
    assert Activity.UNKNOWN not in {r.activity for r in reports.since(mark)}


def test_silent_printer_is_unknown_then_recovers_without_reopening(
    thread_errors: list[threading.ExceptHookArgs],
) -> None:
    factory = CountingFactory()
    with MarlinSimulator() as sim, running(sim.port, serial_factory=factory) as (_, reports):
        sim.start_sd_print("long.gcode", seconds=30)
        reports.wait_for(busy_job("long.gcode"))

        sim.go_silent()
        reports.wait_for(activity(Activity.UNKNOWN, detail="no answer"), since=reports.mark())
        sim.resume()
        reports.wait_for(busy_job("long.gcode"), since=reports.mark())
        # Reopening the port would have reset a real board and ended the print.
        assert factory.calls == 1


def test_unplugged_mid_print_is_link_lost_then_reconnects(
    tmp_path: Path, thread_errors: list[threading.ExceptHookArgs]
) -> None:
    factory = CountingFactory()
    link = tmp_path / "ttyPRINTER"
    with (
        MarlinSimulator(link=link) as sim,
        running(sim.port, serial_factory=factory) as (driver, reports),
    ):
        sim.start_sd_print("tall.gcode", seconds=30)
        reports.wait_for(busy_job("tall.gcode"))

        sim.unplug()
        lost = reports.wait_for(activity(Activity.UNKNOWN, detail="link lost"))
        assert lost.job_name is None
        # Keeps retrying while the cable is out (each try is an open that fails).
        reports.wait_for(activity(Activity.UNKNOWN, detail="link lost"), since=reports.mark())
        assert driver._thread is not None and driver._thread.is_alive()

        sim.replug()
        reports.wait_for(activity(Activity.BUSY), since=reports.mark())
        assert factory.calls >= 3


def test_a_port_that_cannot_be_opened_is_retried_with_backoff(
    thread_errors: list[threading.ExceptHookArgs],
) -> None:
    calls: list[float] = []

    def refuse(*args: Any, **kwargs: Any) -> Any:
        calls.append(time.monotonic())
        raise serial.SerialException("could not open port")

    with running("/nonexistent/tty", serial_factory=refuse) as (_, reports):
        reports.wait_count(4, since=0)
    assert {r.detail for r in reports.since(0)} == {"link lost"}
    gaps = [b - a for a, b in zip(calls, calls[1:], strict=False)]
    assert gaps[2] > gaps[0] * 1.5  # backing off, not hammering the port


# --------------------------------------------------------------------------- commands


def test_safe_stop_pauses_the_sd_print_with_m25_never_m112(
    sim: MarlinSimulator, printer: tuple[MarlinController, Reports]
) -> None:
    driver, reports = printer
    sim.start_sd_print("big.gcode", seconds=30)
    reports.wait_for(busy_job("big.gcode"))

    driver.safe_stop()
    assert sim.wait_for_command("M25")
    paused = reports.wait_for(activity(Activity.PAUSED), since=reports.mark())
    assert paused.job_name == "big.gcode"
    assert sim.paused
    assert not {"M112", "M524"} & {c.split()[0] for c in sim.commands()}


def test_a_rejected_line_is_resent_until_the_printer_takes_it(
    sim: MarlinSimulator, printer: tuple[MarlinController, Reports]
) -> None:
    driver, reports = printer
    sim.start_sd_print("clip.gcode", seconds=30)
    reports.wait_for(busy_job("clip.gcode"))

    sim.reject_next("M25")
    driver.safe_stop()
    reports.wait_for(activity(Activity.PAUSED), since=reports.mark())
    assert sim.resend_requests >= 1
    assert sim.commands().count("M25") == 1
    assert sim.paused  # the second copy really reached the firmware


def test_close_is_idempotent_and_quick(sim: MarlinSimulator) -> None:
    never_started = MarlinController(sim.port)
    never_started.close()
    never_started.close()

    driver = MarlinController(sim.port, poll_interval=POLL, answer_timeout=ANSWER_TIMEOUT)
    reports = Reports()
    driver.subscribe(reports)
    driver.start()
    reports.wait_for(activity(Activity.IDLE))
    begin = time.monotonic()
    driver.close()
    driver.close()
    assert time.monotonic() - begin < 2
    driver.start()  # closed for good: no new thread
    assert driver._thread is not None and not driver._thread.is_alive()


def test_a_raising_subscriber_does_not_stop_the_driver(
    sim: MarlinSimulator, thread_errors: list[threading.ExceptHookArgs]
) -> None:
    def broken(report: MachineReport) -> None:
        raise RuntimeError("subscriber bug")

    driver = MarlinController(sim.port, poll_interval=POLL, answer_timeout=ANSWER_TIMEOUT)
    reports = Reports()
    driver.subscribe(reports)
    driver.subscribe(broken)  # after: the base class stops at the first raising callback
    driver.start()
    try:
        reports.wait_count(3, since=0)
    finally:
        driver.close()


def test_simulator_runs_as_a_module_and_prints_its_port() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway.drivers.simulators.marlin", "--busy-probability", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        port = proc.stdout.readline().strip()
        assert Path(port).exists()
        with serial.serial_for_url(port, timeout=2) as link:
            link.write(b"M105\n")
            assert link.readline().startswith(b"ok T:")
    finally:
        proc.terminate()
        proc.wait(timeout=5)
