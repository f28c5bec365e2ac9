"""`fabgate sim grbl|marlin|sense-board --link PATH`: a machine on a serial port, no hardware.

Each simulator runs as a real ``python -m gateway`` process; the test opens PATH with
pyserial, as a node's driver or a serial terminal would, and speaks the machine's own
protocol to it. Ctrl-C (SIGINT) must stop it and take the link away.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import serial

from gateway.drivers.machines.sense_protocol import seal

TIMEOUT_S = 10.0


@contextmanager
def simulator(*args: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """The simulator process and the line it printed once its terminal was ready."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway", "sim", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # blocks until it printed (or died: empty line)
        assert "Ctrl-C stops it" in line, (line, proc.stderr.read() if proc.stderr else "")
        yield proc, line
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(TIMEOUT_S)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def read_until(port: serial.Serial, done: Callable[[bytes], bool]) -> bytes:
    """Read what the machine says until ``done(all of it)``, or fail after the timeout."""
    seen = b""
    for _ in range(int(TIMEOUT_S / port.timeout)):
        seen += port.read(256)
        if done(seen):
            return seen
    raise AssertionError(f"the simulator never said what was expected; it said {seen!r}")


def interrupt(proc: subprocess.Popen[str]) -> int:
    proc.send_signal(signal.SIGINT)
    return proc.wait(TIMEOUT_S)


def test_grbl_answers_status_and_commands_through_the_link(tmp_path: Path) -> None:
    link = tmp_path / "ttyGRBL"
    with simulator("grbl", "--link", str(link)) as (proc, line):
        target = os.readlink(link)
        assert target.startswith("/dev/pts/") and str(link) in line and target in line
        with serial.Serial(str(link), 115200, timeout=0.1) as port:
            port.write(b"?")
            status = read_until(port, lambda b: b"<" in b and b">" in b.split(b"<")[-1])
            assert b"<Idle|" in status
            port.write(b"G0 X10\n")
            assert b"ok" in read_until(port, lambda b: b"ok\r\n" in b or b"error" in b)
        assert interrupt(proc) == 0
    assert not os.path.lexists(link)


def test_marlin_reports_temperatures_and_its_sd_print(tmp_path: Path) -> None:
    link = tmp_path / "ttyMarlin"
    with simulator("marlin", "--link", str(link), "--print", "robot.gcode", "--seconds", "600") as (
        proc,
        _,
    ):
        with serial.Serial(str(link), 115200, timeout=0.1) as port:
            port.write(b"M105\n")
            temps = read_until(port, lambda b: re.search(rb"ok T:[^\n]*\n", b) is not None)
            assert re.search(rb"ok T:[\d.]+ /[\d.]+ B:[\d.]+", temps), temps
            port.write(b"M27\n")
            sd = read_until(port, lambda b: b"SD printing byte" in b and b"\nok" in b)
            assert b"SD printing byte" in sd
        assert interrupt(proc) == 0
    assert not os.path.lexists(link)


def test_sense_board_streams_the_current_it_was_given(tmp_path: Path) -> None:
    link = tmp_path / "ttySense"
    with simulator("sense-board", "--link", str(link), "--amps", "3.5", "--interval", "0.05") as (
        proc,
        _,
    ):
        with serial.Serial(str(link), 115200, timeout=0.1) as port:
            line = seal("I 0 3.50")  # protocol 2: every line carries its checksum
            assert line in read_until(port, lambda b: line in b)
            port.write(b"PING\n")  # typed at a serial terminal: no checksum needed
            assert seal("PONG") in read_until(port, lambda b: seal("PONG") in b)
        proc.send_signal(signal.SIGTERM)  # systemd's stop, not only Ctrl-C
        assert proc.wait(TIMEOUT_S) == 0
    assert not os.path.lexists(link)


def test_without_link_it_prints_the_terminal_to_open() -> None:
    with simulator("grbl") as (proc, line):
        pty = line.split(" on ", 1)[1].split(";", 1)[0]
        with serial.Serial(pty, 115200, timeout=0.1) as port:
            port.write(b"?")
            assert b"<Idle|" in read_until(port, lambda b: b"<Idle|" in b)
        assert interrupt(proc) == 0


def test_an_existing_file_at_the_link_path_is_never_replaced(tmp_path: Path) -> None:
    keep = tmp_path / "notes.txt"
    keep.write_text("a technician's notes")
    r = subprocess.run(
        [sys.executable, "-m", "gateway", "sim", "marlin", "--link", str(keep)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2
    assert str(keep) in r.stderr and "not a link" in r.stderr
    assert keep.read_text() == "a technician's notes"


def test_a_link_to_a_real_device_is_left_alone(tmp_path: Path) -> None:
    link = tmp_path / "ttyUSB"
    link.symlink_to("/dev/null")  # stands for /dev/ttyUSB0: exists, not a simulator's pty
    r = subprocess.run(
        [sys.executable, "-m", "gateway", "sim", "grbl", "--link", str(link)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2 and "/dev/null" in r.stderr
    assert os.readlink(link) == "/dev/null"


@pytest.mark.parametrize("stale", ["/dev/pts/999999", "gone"], ids=["old-pty", "dangling"])
def test_a_link_left_by_a_killed_simulator_is_replaced(tmp_path: Path, stale: str) -> None:
    link = tmp_path / "ttyGRBL"
    link.symlink_to(stale)
    with simulator("grbl", "--link", str(link)) as (proc, _):
        assert os.readlink(link).startswith("/dev/pts/") and os.readlink(link) != stale
        assert interrupt(proc) == 0
    assert not os.path.lexists(link)
