"""Simulated current clamps, for the demo and the tests.

:class:`SimulatedCurrent` is a :class:`~gateway.drivers.current.CurrentSensor` whose
current is set by a script. :class:`SenseBoardSimulator` goes one step further and plays
the sense board on a pseudo-terminal, so :class:`~gateway.drivers.current.SerialSenseBoard`
runs unchanged against it: the real pyserial, the real line parsing, the real hang-up
when the board is "unplugged". Neither needs pytest.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import random
import threading
import time
import tty
from collections.abc import Sequence
from types import TracebackType

from gateway.core.clock import MonoClock
from gateway.drivers.machines import sense_protocol
from gateway.drivers.machines.current import CurrentSensor, SensorError

__all__ = ["SenseBoardSimulator", "SimulatedCurrent"]


class SimulatedCurrent(CurrentSensor):
    """A conductor whose current a script sets; thread-safe.

    ``set_amps`` sets the standing draw (e.g. a laser's standby with pump and chiller);
    ``blip`` and ``run_job`` lay a different current over it for a while, by the
    injected clock, so a test with a fake clock decides exactly when a job ends. The two
    are the same mechanism under two names because the scenario reads better that way:
    whether a draw is a blip or a job is the detector's call, not the simulator's.
    """

    def __init__(
        self,
        amps: float = 0.0,
        *,
        clock: MonoClock = time.monotonic,
        noise_a: float = 0.0,
        seed: int | None = None,
    ) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._base = amps
        self._overlay: tuple[float, float] | None = None  # (amps, until)
        self._error: str | None = None
        self._noise_a = noise_a
        self._random = random.Random(seed)

    def set_amps(self, amps: float) -> None:
        """Set the standing current and cancel any blip or job in progress."""
        with self._lock:
            self._base = amps
            self._overlay = None

    def blip(self, amps: float, seconds: float) -> None:
        """Draw ``amps`` for ``seconds`` (a pump start, an air-assist burst), then go back."""
        with self._lock:
            self._overlay = (amps, self._clock() + seconds)

    def run_job(self, amps: float, seconds: float) -> None:
        """Draw ``amps`` for ``seconds`` as a job would, then go back to the standing draw."""
        self.blip(amps, seconds)

    def fail(self, detail: str | None) -> None:
        """Make reads raise ``SensorError(detail)`` until called with None."""
        with self._lock:
            self._error = detail

    @property
    def amps(self) -> float:
        """The current now, without noise and without failing."""
        with self._lock:
            return self._amps_locked()

    def _amps_locked(self) -> float:
        if self._overlay is not None:
            amps, until = self._overlay
            if self._clock() < until:
                return amps
            self._overlay = None
        return self._base

    def read_amps(self) -> float:
        with self._lock:
            if self._error is not None:
                raise SensorError(self._error)
            amps = self._amps_locked()
            if self._noise_a:
                amps = max(0.0, amps + self._random.uniform(-self._noise_a, self._noise_a))
            return amps


#: What a flaky USB cable and a rebooting board put on the wire, as lines a host must skip:
#: noise, values without a checksum or with a wrong one, a half line glued to the next.
GARBAGE = (
    b"\x00\xff\xfe\x80garbage\n"
    b"I 0 77.00\n"  # a protocol-1 line: no checksum
    + sense_protocol.format_current(0, 7700)[:-4]
    + b"*00\n"  # a wrong checksum
    + sense_protocol.format_current(0, 7700).replace(b"77.00", b"77.01")  # a flipped digit
    + sense_protocol.format_permissive(0, False).replace(b"P 0 0", b"P 0 1")
    + b"I 0 banana\n"
    + b"HELLO someone-else 9.9\n"
    + b"\xc3\x28 I 0 77.0\n"
    + b"I 0 1"  # a half line, then a new line starts: its checksum cannot match
)


class SenseBoardSimulator:
    """Plays a sense board on a pty: ``.port`` is the path a driver opens.

    Protocol 2 (``firmware/sense-board/PROTOCOL.md``), formatted by the same module the
    driver parses with (:mod:`gateway.drivers.machines.sense_protocol`, which the test
    suite checks against the firmware's C code). Every ``interval`` it prints
    ``I <channel> <amps>`` for each of its :class:`SimulatedCurrent` (``.currents``);
    a ``HELLO`` line at "boot" and again every ``hello_every`` windows; each permissive
    input (``.permissive_states``; None leaves an input out, as a board without it)
    at once when it changes and every ``permissive_every`` windows; and it answers the
    host's ``PING`` and ``VERSION?`` (``.commands`` keeps what the host sent). With a
    ``version`` of major 1 it plays an old protocol-1 board instead: no checksums, no
    permissives, commands ignored.

    The pty is raw (``tty.setraw``) so the line discipline neither echoes nor rewrites
    newlines, and the master is non-blocking: a host that stops reading makes a real
    board drop output, not hang, and so does this one.
    """

    def __init__(
        self,
        currents: Sequence[SimulatedCurrent] | None = None,
        *,
        interval: float = 0.2,
        version: str = sense_protocol.PROTOCOL_VERSION,
        hello_every: int = 50,
        firmware: str = "2.0.0",
        board_id: str = "sim-0001",
        permissives: Sequence[bool | None] = (True, True),
        permissive_every: int = 5,
    ) -> None:
        self.currents: list[SimulatedCurrent] = (
            list(currents) if currents is not None else [SimulatedCurrent()]
        )
        self.interval = interval
        self.version = version
        self.hello_every = hello_every
        self.firmware = firmware
        self.board_id = board_id
        self.permissive_states: list[bool | None] = list(permissives)
        self.permissive_every = permissive_every
        self.commands: list[bytes] = []
        self._legacy = sense_protocol.major_of(version) == 1
        self._rx = sense_protocol.CommandReader()
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        flags = fcntl.fcntl(self._master, fcntl.F_GETFL)
        fcntl.fcntl(self._master, fcntl.F_SETFL, flags | os.O_NONBLOCK)
        self.port = os.ttyname(self._slave)
        self._write_lock = threading.Lock()
        self._stop = threading.Event()
        self._silent = threading.Event()
        self._plugged = True
        self._hello()
        self._thread = threading.Thread(target=self._run, name="sense-board-sim", daemon=True)
        self._thread.start()

    def set_amps(self, amps: float, channel: int = 0) -> None:
        self.currents[channel].set_amps(amps)

    def set_permissive(self, index: int, closed: bool | None) -> None:
        """Open or close a permissive input (None: stop reporting it); printed at once
        when it changes, as the firmware does once its debounce has settled."""
        changed = self.permissive_states[index] != closed
        self.permissive_states[index] = closed
        if changed and closed is not None and not self._legacy and not self._silent.is_set():
            self._write(sense_protocol.format_permissive(index, closed))

    def send_garbage(self, data: bytes = GARBAGE) -> None:
        """Write noise now, between two regular lines."""
        self._write(data)

    def go_silent(self) -> None:
        """Stay connected but stop printing (a hung sketch, a board stuck in its loader)."""
        self._silent.set()

    def resume(self) -> None:
        self._silent.clear()

    def reboot(self) -> None:
        """Print the boot banner again, as a board reset by its watchdog would."""
        self._hello()

    def _hello(self) -> None:
        if self._legacy:
            self._write(f"HELLO {sense_protocol.BANNER} {self.version}\n".encode())
        else:
            self._write(sense_protocol.format_hello(self.version))

    def unplug(self) -> None:
        """Pull the USB cable: the host's next read fails as a hung-up device."""
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=5.0)
        with self._write_lock:
            if not self._plugged:
                return
            self._plugged = False
            for fd in (self._master, self._slave):
                with contextlib.suppress(OSError):
                    os.close(fd)

    close = unplug

    def __enter__(self) -> SenseBoardSimulator:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _write(self, data: bytes) -> None:
        with self._write_lock:
            if not self._plugged:
                return
            # A full buffer (nobody reading) loses the output, as on a real board.
            with contextlib.suppress(BlockingIOError):
                os.write(self._master, data)

    def _run(self) -> None:
        windows = 0
        while not self._stop.wait(self.interval):
            self._serve_input()
            if self._silent.is_set():
                continue
            windows += 1
            if self.hello_every and windows % self.hello_every == 0:
                self._hello()  # repeated, as the firmware does every 10 s
            self._write(b"".join(self._window_lines(windows)))

    def _window_lines(self, windows: int) -> list[bytes]:
        if self._legacy:
            return [f"I {ch} {c.amps:.2f}\n".encode() for ch, c in enumerate(self.currents)]
        lines = [
            sense_protocol.format_current(ch, sense_protocol.centiamps(c.amps))
            for ch, c in enumerate(self.currents)
        ]
        if self.permissive_every and windows % self.permissive_every == 0:
            lines += [
                sense_protocol.format_permissive(n, closed)
                for n, closed in enumerate(self.permissive_states)
                if closed is not None
            ]
        return lines

    def _serve_input(self) -> None:
        """Answer the host's commands, as the firmware does between two windows."""
        with self._write_lock:
            if not self._plugged:
                return
            try:
                data = os.read(self._master, 4096)
            except (BlockingIOError, OSError):
                data = b""
        if not data or self._legacy:
            return  # a protocol-1 board reads nothing
        for line in self._rx.feed(data):
            self.commands.append(line)
            answer = sense_protocol.reply(
                sense_protocol.parse_command(line),
                firmware=self.firmware,
                board_id=self.board_id,
                protocol=self.version,
            )
            if answer and not self._silent.is_set():
                self._write(answer)
