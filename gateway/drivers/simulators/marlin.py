"""A Marlin printer behind a pseudo-terminal, for tests and the demo.

The Marlin driver must be exercised through a real serial device: pyserial's termios
set-up, partial reads, a cable that disappears under an open file descriptor and bytes
that are not text all happen below any mock. A pty pair gives all of that without
hardware. The simulator owns the master side; ``.port`` names the slave side (or a
symlink to it, the way udev's ``/dev/serial/by-id`` names point at a tty), which the
driver opens like any USB printer.

Only the behaviour the driver relies on is modelled, from the protocol as seen on the
wire: ``ok`` after every command, ``Resend:`` for a bad line number or checksum (followed
by ``ok``, as Marlin does), ``echo:busy: processing`` while a slow command runs, the
``M105``/``M27``/``M27 C`` reports, host action lines, and a ``kill()`` that leaves the
firmware deaf until the board is reset. Test hooks play the parts of the member at the
printer's screen (start, pause, cancel a print) and of the world (noise, a stalled
board, an unplugged cable).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import pty
import random
import re
import select
import threading
import time
import tty
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

AMBIENT_C = 21.3
FIRMWARE_NAME = "Marlin 2.1.2.1 (simulated)"

_NUMBERED = re.compile(r"N(-?\d+)\s*(.*)")
_TICK_S = 0.02


@dataclass
class _SdPrint:
    name: str
    size: int
    seconds: float
    filament_mm: float = 0.0  # what the whole print extrudes
    elapsed: float = 0.0
    paused: bool = False

    @property
    def extruded_mm(self) -> float:
        if self.seconds <= 0:
            return self.filament_mm
        return self.filament_mm * min(1.0, self.elapsed / self.seconds)

    @property
    def position(self) -> int:
        if self.seconds <= 0:
            return self.size
        return min(self.size, int(self.size * self.elapsed / self.seconds))

    @property
    def short_name(self) -> str:
        """The 8.3 name FAT gives a long file name, which Marlin reports first."""
        stem, dot, ext = self.name.rpartition(".")
        if not dot:
            stem, ext = self.name, "GCO"
        stem = re.sub(r"[^A-Z0-9]", "", stem.upper())[:6] or "FILE"
        ext = re.sub(r"[^A-Z0-9]", "", ext.upper())[:3] or "GCO"
        return f"{stem}~1.{ext}"


@dataclass
class _Pending:
    """A command whose ``ok`` is still owed; Marlin prints busy lines meanwhile."""

    done: Callable[[], bool]
    answer: Callable[[], list[str]]
    next_busy: float


class MarlinSimulator:
    """A Marlin-like printer printing from SD, answering on a pty.

    ``busy_probability`` makes any command slow now and then (the demo uses it so that
    busy handling runs outside the tests too); ``file_name_query=False`` behaves like
    firmware built without long file name reporting, which treats ``M27 C`` as ``M27``.
    """

    def __init__(
        self,
        *,
        link: str | os.PathLike[str] | None = None,
        busy_probability: float = 0.0,
        busy_interval: float = 0.25,
        file_name_query: bool = True,
        print_counter: bool = True,
        heat_time_constant: float = 1.0,
        seed: int | None = None,
    ) -> None:
        self._link = Path(link) if link is not None else None
        self.busy_probability = busy_probability
        self.busy_interval = busy_interval
        self.file_name_query = file_name_query
        # PRINTCOUNTER: M78's lifetime statistics, filament included (off: "Unknown command").
        self.print_counter = print_counter
        self.heat_time_constant = heat_time_constant
        self._random = random.Random(seed)

        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._master: int | None = None
        self._slave: int | None = None
        self._slave_name = ""
        self._inbox: deque[str] = deque()
        self._partial = b""
        self._pending: _Pending | None = None
        self._delays: list[tuple[str, float]] = []
        self._rejects: list[str] = []

        self._last_line = 0
        self._hotend = AMBIENT_C
        self._bed = AMBIENT_C
        self._hotend_target = 0.0
        self._bed_target = 0.0
        self._print: _SdPrint | None = None
        self._filament_done_mm = 0.0  # extruded by the prints already over
        self._prints = 0
        self._halted = False
        self._silent = False

        self.received: list[str] = []  # commands accepted, without line number/checksum
        self.resend_requests = 0
        self.dropped_lines = 0  # lines ignored while silent or halted

        self._stop = threading.Event()
        self._open_pty()
        self._thread = threading.Thread(target=self._run, name="marlin-sim", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ pty plumbing

    @property
    def port(self) -> str:
        """What a driver opens: the symlink when one was asked for, else the pty slave."""
        return os.fspath(self._link) if self._link is not None else self._slave_name

    def _open_pty(self) -> None:
        master, slave = pty.openpty()
        # Raw before anything is written: the line discipline would otherwise echo what
        # the driver sends back to it and turn "\n" into "\r\n".
        tty.setraw(slave)
        os.set_blocking(master, False)  # never stall the simulator on a reader that left
        self._master, self._slave = master, slave
        self._slave_name = os.ttyname(slave)
        self._partial = b""
        if self._link is not None:
            with contextlib.suppress(FileNotFoundError):
                self._link.unlink()
            self._link.symlink_to(self._slave_name)

    def _close_pty(self) -> None:
        for fd in (self._master, self._slave):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._master = self._slave = None
        if self._link is not None:
            with contextlib.suppress(FileNotFoundError):
                self._link.unlink()

    def _write(self, *lines: str) -> None:
        self._write_bytes("".join(f"{line}\n" for line in lines).encode())

    def _write_bytes(self, data: bytes) -> None:
        with self._lock:
            if self._master is None:
                return
            # Bytes nobody reads are lost, as on a real UART.
            with contextlib.suppress(OSError):
                os.write(self._master, data)

    # ------------------------------------------------------------------ main loop

    def _run(self) -> None:
        last = time.monotonic()
        while not self._stop.is_set():
            master = self._master
            data = b""
            if master is not None:
                try:
                    ready, _, _ = select.select([master], [], [], _TICK_S)
                    if ready:
                        data = os.read(master, 4096)
                except (OSError, ValueError):
                    data = b""  # unplugged under us, or nobody holds the slave open
            else:
                self._stop.wait(_TICK_S)
            now = time.monotonic()
            with self._lock:
                self._advance(now - last)
                last = now
                if data:
                    self._partial += data
                    *lines, self._partial = self._partial.split(b"\n")
                    for raw in lines:
                        self._inbox.append(raw.decode("ascii", "replace").strip())
                self._serve(now)

    def _advance(self, dt: float) -> None:
        """Heaters drift toward their targets; an SD print moves on unless paused."""
        k = 1.0 - math.exp(-dt / self.heat_time_constant) if self.heat_time_constant > 0 else 1.0
        self._hotend += ((self._hotend_target or AMBIENT_C) - self._hotend) * k
        self._bed += ((self._bed_target or AMBIENT_C) - self._bed) * k
        job = self._print
        if job is not None and not job.paused and not self._halted:
            job.elapsed += dt
            if job.elapsed >= job.seconds:
                self._filament_done_mm += job.filament_mm
                self._print = None
                self._write("Done printing file")
                self._changed.notify_all()

    def _serve(self, now: float) -> None:
        while True:
            if self._pending is not None:
                if self._pending.done():
                    answer = self._pending.answer()
                    self._pending = None
                    self._write(*answer)
                elif now >= self._pending.next_busy:
                    self._write("echo:busy: processing")
                    self._pending.next_busy = now + self.busy_interval
                    return
                else:
                    return
            if not self._inbox:
                return
            self._receive(self._inbox.popleft(), now)

    # ------------------------------------------------------------------ protocol

    def _receive(self, line: str, now: float) -> None:
        if not line:
            return
        if self._halted or self._silent:
            self.dropped_lines += 1
            return
        body = line
        numbered = _NUMBERED.fullmatch(line)
        if numbered is not None:
            number = int(numbered.group(1))
            payload, star, checksum = line.partition("*")
            body = numbered.group(2).partition("*")[0].strip()
            is_m110 = "M110" in body
            if number != self._last_line + 1 and not is_m110:
                self._request_resend("Line Number is not Last Line Number+1")
                return
            if not star:
                self._request_resend("No Checksum with line number")
                return
            if self._take(self._rejects, body) or not _checksum_ok(payload, checksum):
                self._request_resend("checksum mismatch")
                return
            self._last_line = number
        elif "*" in line:
            self._write(f"Error:No Line Number with checksum, Last Line: {self._last_line}")
            self._write("ok")
            return
        command = body.partition(";")[0].strip()
        if not command:
            self._write("ok")
            return
        self.received.append(command)
        self._changed.notify_all()
        self._execute(command, now)

    def _request_resend(self, why: str) -> None:
        self.resend_requests += 1
        self._write(
            f"Error:{why}, Last Line: {self._last_line}", f"Resend: {self._last_line + 1}", "ok"
        )

    @staticmethod
    def _take(armed: list[str], command: str) -> bool:
        for i, prefix in enumerate(armed):
            if command.upper().startswith(prefix.upper()):
                del armed[i]
                return True
        return False

    def _execute(self, command: str, now: float) -> None:
        words = command.upper().split()
        code, args = words[0], _params(words[1:])
        answer: Callable[[], list[str]] = lambda: ["ok"]  # noqa: E731
        done: Callable[[], bool] | None = None

        if code == "M112":
            self.halt()
            return
        if code == "M110":
            self._last_line = int(args.get("N", self._last_line))
        elif code == "M105":
            answer = lambda: [f"ok {self._temperatures()}"]  # noqa: E731
        elif code == "M27" and "C" in words[1:] and self.file_name_query:
            answer = lambda: [self._current_file(), "ok"]  # noqa: E731
        elif code == "M27":
            answer = lambda: [self._sd_status(), "ok"]  # noqa: E731
        elif code == "M25":
            if self._print is not None:
                self._print.paused = True
        elif code == "M24":
            if self._print is not None:
                self._print.paused = False
        elif code == "M524":
            self._end_print()
        elif code == "M78" and self.print_counter:
            answer = self._statistics
        elif code == "M78":
            answer = lambda: ['echo:Unknown command: "M78"', "ok"]  # noqa: E731
        elif code == "M115":
            answer = lambda: [  # noqa: E731
                f"FIRMWARE_NAME:{FIRMWARE_NAME} SOURCE_CODE_URL:https://example.invalid "
                "PROTOCOL_VERSION:1.0 MACHINE_TYPE:Simulated EXTRUDER_COUNT:1",
                "Cap:SDCARD:1",
                f"Cap:LONG_FILENAME:{int(self.file_name_query)}",
                "ok",
            ]
        elif code in ("M104", "M109"):
            self._hotend_target = float(args.get("S", 0.0))
            if code == "M109":
                done = lambda: abs(self._hotend - self._hotend_target) < 1.0  # noqa: E731
        elif code in ("M140", "M190"):
            self._bed_target = float(args.get("S", 0.0))
            if code == "M190":
                done = lambda: abs(self._bed - self._bed_target) < 1.0  # noqa: E731
        elif code in ("G28", "G29"):
            deadline = now + 0.5
            done = lambda: time.monotonic() >= deadline  # noqa: E731

        delay = self._delay_for(command)
        if delay is None and self._random.random() < self.busy_probability:
            delay = self._random.uniform(1.0, 3.0) * self.busy_interval
        if delay is not None:
            deadline = now + delay
            done = lambda: time.monotonic() >= deadline  # noqa: E731
        if done is None:
            self._write(*answer())
        else:
            self._pending = _Pending(done, answer, next_busy=now)

    def _delay_for(self, command: str) -> float | None:
        for i, (prefix, seconds) in enumerate(self._delays):
            if command.upper().startswith(prefix.upper()):
                del self._delays[i]
                return seconds
        return None

    def _temperatures(self) -> str:
        return (
            f"T:{self._hotend:.2f} /{self._hotend_target:.2f} "
            f"B:{self._bed:.2f} /{self._bed_target:.2f} @:0 B@:0"
        )

    def _end_print(self) -> None:
        """A print stopped before its end: what it extruded stays counted."""
        if self._print is not None:
            self._filament_done_mm += self._print.extruded_mm
        self._print = None

    def filament_used_mm(self) -> float:
        """The printer's lifetime filament counter, as M78 reports it (before rounding)."""
        with self._lock:
            running = self._print.extruded_mm if self._print is not None else 0.0
            return self._filament_done_mm + running

    def _statistics(self) -> list[str]:
        # Marlin's PrintCounter::showStats(): three "Stats:" lines, filament in metres
        # with two decimals.
        finished = self._prints - (1 if self._print is not None else 0)
        return [
            f"Stats: Prints: {self._prints}, Finished: {finished}, Failed: 0",
            "Stats: Total time: 1h 2m 3s, Longest job: 0h 45m 0s",
            f"Stats: Filament used: {self.filament_used_mm() / 1000:.2f}m",
            "ok",
        ]

    def _sd_status(self) -> str:
        if self._print is None:
            return "Not SD printing"
        # Marlin reports a paused print exactly like a running one.
        return f"SD printing byte {self._print.position}/{self._print.size}"

    def _current_file(self) -> str:
        if self._print is None:
            return "Current file: (no file)"
        return f"Current file: {self._print.short_name} {self._print.name}"

    # ------------------------------------------------------------------ test hooks

    def start_sd_print(
        self, name: str, seconds: float, *, size: int = 1_000_000, filament_mm: float = 0.0
    ) -> None:
        """Start a print from the screen: progress runs from 0 to 100 % over ``seconds``,
        extruding ``filament_mm`` evenly."""
        with self._lock:
            self._end_print()
            self._print = _SdPrint(name=name, size=size, seconds=seconds, filament_mm=filament_mm)
            self._prints += 1

    def set_targets(self, hotend: float | None = None, bed: float | None = None) -> None:
        """Set heater targets as the screen or the print file would."""
        with self._lock:
            if hotend is not None:
                self._hotend_target = hotend
            if bed is not None:
                self._bed_target = bed

    def action(self, name: str, *, apply: bool = True) -> None:
        """Print ``//action:<name>``; with ``apply`` also do it (pause, resume, cancel).

        ``apply=False`` sends the announcement alone, which tells a test whether the
        driver listens to it or merely infers the state from later polls.
        """
        with self._lock:
            self._write(f"//action:{name}")
            if not apply or self._print is None:
                return
            if name in ("pause", "paused"):
                self._print.paused = True
            elif name in ("resume", "resumed"):
                self._print.paused = False
            elif name == "cancel":
                self._end_print()

    def pause_print(self, paused: bool = True) -> None:
        """Pause or resume without any announcement, like firmware without host actions."""
        with self._lock:
            if self._print is not None:
                self._print.paused = paused

    def halt(self) -> None:
        """``kill()``: one error line, then nothing is answered until :meth:`reset`."""
        with self._lock:
            self._write("Error:Printer halted. kill() called!")
            self._halted = True
            self._pending = None

    def reset(self) -> None:
        """The reset button: print and targets gone, line numbers from zero, ``start``."""
        with self._lock:
            self._halted = False
            self._silent = False
            self._end_print()
            self._pending = None
            self._inbox.clear()
            self._hotend_target = self._bed_target = 0.0
            self._last_line = 0
            self._write("start", f"echo:{FIRMWARE_NAME}")

    def send_garbage(self, data: bytes) -> None:
        """Raw bytes on the line, exactly as given (no newline added)."""
        self._write_bytes(data)

    def go_silent(self) -> None:
        """A wedged board: commands are read and dropped, nothing is answered."""
        with self._lock:
            self._silent = True

    def resume(self) -> None:
        """End :meth:`go_silent`; commands dropped meanwhile stay unanswered."""
        with self._lock:
            self._silent = False

    def delay_next(self, prefix: str, seconds: float) -> None:
        """Answer the next command starting with ``prefix`` late, busy lines meanwhile."""
        with self._lock:
            self._delays.append((prefix, seconds))

    def reject_next(self, prefix: str) -> None:
        """Treat the next numbered command starting with ``prefix`` as a checksum error."""
        with self._lock:
            self._rejects.append(prefix)

    def unplug(self) -> None:
        """Pull the cable: the pty goes away under the driver; the print goes on."""
        with self._lock:
            self._close_pty()

    def replug(self) -> None:
        """Plug a cable back in: a new pty, reachable through ``link`` if one was given."""
        with self._lock:
            if self._master is None:
                self._open_pty()

    # ------------------------------------------------------------------ inspection

    @property
    def printing(self) -> bool:
        with self._lock:
            return self._print is not None

    @property
    def paused(self) -> bool:
        with self._lock:
            return self._print is not None and self._print.paused

    def commands(self) -> list[str]:
        with self._lock:
            return list(self.received)

    def wait_for_command(self, prefix: str, timeout: float = 5.0) -> bool:
        """Block until a command starting with ``prefix`` has been accepted."""

        def seen() -> bool:
            return any(c.upper().startswith(prefix.upper()) for c in self.received)

        with self._changed:
            return self._changed.wait_for(seen, timeout)

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=2)
        with self._lock:
            self._close_pty()

    def __enter__(self) -> MarlinSimulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _checksum_ok(payload: str, checksum: str) -> bool:
    try:
        expected = int(checksum.strip())
    except ValueError:
        return False
    value = 0
    for byte in payload.encode("ascii", "replace"):
        value ^= byte
    return value == expected


def _params(words: list[str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for word in words:
        with contextlib.suppress(ValueError):
            out[word[0]] = float(word[1:]) if len(word) > 1 else 0.0
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m gateway.drivers.simulators.marlin",
        description="Run a simulated Marlin printer on a pseudo-terminal until interrupted.",
    )
    parser.add_argument("--link", help="also reach the printer through this symlink")
    parser.add_argument("--print", dest="print_name", metavar="NAME", help="start an SD print")
    parser.add_argument("--seconds", type=float, default=120.0, help="print duration")
    parser.add_argument("--busy-probability", type=float, default=0.1)
    args = parser.parse_args(argv)
    with MarlinSimulator(link=args.link, busy_probability=args.busy_probability) as sim:
        if args.print_name:
            sim.start_sd_print(args.print_name, args.seconds)
        print(sim.port, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
