"""A GRBL 1.1 controller simulated behind a pseudo-terminal, for tests and the demo.

The driver must be exercised through a real serial device, not a fake object, because
the traps are in the byte stream: realtime bytes arriving mid-line, noise, a controller
that stops answering, a cable pulled out mid-job. A pty pair gives the driver a real
``/dev/pts/N`` to open with pyserial while this module plays the controller on the
master side.

Only the behaviour a machine-control gateway depends on is modelled: the state machine
(Idle, Run, Hold, Jog, Home, Alarm, Check, Sleep), status reports with the planner
buffer field, ``ok``/``error:N``/``ALARM:N`` answers, the welcome banner after a reset
and the alarm lock-out. Motion is a queue of timed blocks, not kinematics. Written from
the published GRBL 1.1 interface description, not from GRBL's source.

Every fd is touched by the simulator's own thread only: the test hooks queue their work
to that thread, so closing the master on ``unplug()`` can never race a ``select`` or a
``read`` on the same descriptor number.

Run ``python -m gateway.drivers.simulators.grbl`` to get a simulated machine to point a driver
or a G-code sender at; it prints the port path.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import logging
import os
import pty
import queue
import re
import select
import signal
import threading
import time
import tty
from collections import deque
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

log = logging.getLogger(__name__)

BANNER = b"\r\nGrbl 1.1h ['$' for help]\r\n"
UNLOCK_HINT = b"[MSG:'$H'|'$X' to unlock]\r\n"

PLANNER_BLOCKS = 15  # an ATmega328p build; the driver must not assume it
RX_BUFFER = 128

STATUS = ord("?")
FEED_HOLD = ord("!")
CYCLE_START = ord("~")
SOFT_RESET = 0x18
JOG_CANCEL = 0x85

# States in which a soft reset loses the machine position (GRBL then raises ALARM:3).
_MOVING = {"Run", "Hold:1", "Jog", "Home"}
_MOTION_WORD = re.compile(r"(^|[^A-Z])(G0*[0-3](?!\d)|[XYZ][-+.\d])")
_COMMENT = re.compile(r"\([^)]*\)?|;.*")


class GrblSimulator:
    """A simulated GRBL 1.1 board on a pty; ``port`` is what the driver opens.

    ``link``: optional path of a symlink kept pointing at the current pty, like the
    stable ``/dev/serial/by-id/...`` name of a USB board. Only through it can a driver
    find the machine again after ``replug()``, which (like a real replug) gets a new
    device node.
    ``homing_required``: the machine starts (and comes back from a reset) in Alarm
    until ``$H`` homes it or ``$X`` unlocks it, as with GRBL's homing lock.
    ``line_time``: seconds one streamed motion line takes to execute.
    ``hold_decel``: seconds from ``!`` to ``Hold:0``, the deceleration a safe stop must
    wait for before a reset, or the position is lost.
    ``report_buffer``: include ``Bf:`` in status reports (GRBL's ``$10`` mask).
    """

    def __init__(
        self,
        *,
        link: str | Path | None = None,
        homing_required: bool = False,
        line_time: float = 0.05,
        hold_decel: float = 0.3,
        homing_time: float = 0.3,
        report_buffer: bool = True,
    ) -> None:
        self.link = Path(link) if link is not None else None
        self.homing_required = homing_required
        self.line_time = line_time
        self.hold_decel = hold_decel
        self.homing_time = homing_time
        self.report_buffer = report_buffer

        # Observations for tests; guarded by _seen.
        self._seen = threading.Condition()
        self._received = bytearray()
        self._resets: list[str] = []
        self._runs: list[tuple[float, float]] = []  # (start, end) of each Run..Idle span
        self._run_since: float | None = None

        self._commands: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._wake_r, self._wake_w = os.pipe()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

        # Machine state: only the simulator thread changes it once started.
        self._master: int | None = None
        self._slave: int | None = None
        self._slave_path = ""
        self._state = "Idle"
        self._homed = False
        self._silent = False
        self._blocks: deque[float] = deque()  # remaining seconds of each planned block
        # Lines read but not yet executed: the first waits for planner room, the others
        # wait behind it (GRBL reads its input in order, one line at a time).
        self._waiting_lines: deque[str] = deque()
        self._line = bytearray()
        self._x = 0.0
        self._until = 0.0  # end of a timed state (Hold:1, Home, Jog)
        self._last_tick = time.monotonic()
        self._open_pty()
        self._power_on()

    # -- lifecycle -------------------------------------------------------------------

    @property
    def port(self) -> str:
        """The path a driver opens: the symlink if one was asked for, else the pty."""
        return str(self.link) if self.link is not None else self._slave_path

    @property
    def pty_path(self) -> str:
        return self._slave_path

    def start(self) -> GrblSimulator:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="grbl-sim", daemon=True)
            self._thread.start()
        return self

    def close(self) -> None:
        """Stop the thread and release the pty; safe to call more than once."""
        self._stop.set()
        self._wake()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        self._close_pty()
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._wake_r = self._wake_w = -1
        if self.link is not None:
            with contextlib.suppress(OSError):
                self.link.unlink()

    def __enter__(self) -> GrblSimulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- test and demo hooks -----------------------------------------------------------

    def run_job(self, lines: int, seconds: float) -> None:
        """Make the machine busy as if a sender (LightBurn, UGS) streamed ``lines`` lines."""
        per_line = seconds / max(1, lines)

        def job() -> None:
            self._blocks.extend([per_line] * lines)

        self._call(job)

    def inject_alarm(self, code: int) -> None:
        """Raise ``ALARM:code`` (hard limit, probe failure…): motion stops, queue lost."""

        def alarm() -> None:
            self._blocks.clear()
            self._waiting_lines.clear()
            self._set_state("Alarm")
            self._send(f"ALARM:{code}\r\n".encode())

        self._call(alarm)

    def send_garbage(self, data: bytes) -> None:
        """Put raw bytes on the line: electrical noise, a baud mismatch, a half line."""
        self._call(lambda: self._send(data))

    def go_silent(self) -> None:
        """Stop answering anything (a hung controller); bytes sent to it are still recorded."""

        def silent() -> None:
            self._silent = True

        self._call(silent)

    def resume(self) -> None:
        def speak() -> None:
            self._silent = False

        self._call(speak)

    def press_feed_hold(self) -> None:
        """The machine's own feed-hold button, not a byte from the driver."""
        self._call(self._feed_hold)

    def press_cycle_start(self) -> None:
        self._call(self._cycle_start)

    def unplug(self) -> None:
        """Pull the cable: the pty goes away and the driver's reads fail."""
        self._call(self._close_pty)

    def replug(self) -> None:
        """Plug the cable back in: a new pty (see ``link``) and a freshly booted board."""

        def plug() -> None:
            if self._master is None:
                self._open_pty()
                self._power_on()

        self._call(plug)

    @property
    def state(self) -> str:
        return self._state

    @property
    def received(self) -> bytes:
        """Every byte the driver (or a sender) wrote to the machine, in order."""
        with self._seen:
            return bytes(self._received)

    @property
    def resets(self) -> list[str]:
        """The state the machine was in at each soft reset (``Hold:0`` keeps position)."""
        with self._seen:
            return list(self._resets)

    @property
    def runs(self) -> list[tuple[float, float]]:
        """Monotonic (start, end) of each stretch from Run to Idle: the busy time to meter."""
        with self._seen:
            return list(self._runs)

    def wait_received(self, needle: bytes, timeout: float = 5.0) -> bool:
        with self._seen:
            return self._seen.wait_for(lambda: needle in self._received, timeout)

    def wait_count(self, needle: bytes, count: int, timeout: float = 5.0) -> bool:
        """Wait until ``needle`` was received at least ``count`` times (``?`` polls)."""
        with self._seen:
            return self._seen.wait_for(lambda: self._received.count(needle) >= count, timeout)

    def wait_state(self, state: str, timeout: float = 5.0) -> bool:
        with self._seen:
            return self._seen.wait_for(lambda: self._state == state, timeout)

    # -- plumbing ----------------------------------------------------------------------

    def _call(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the simulator thread and wait, so hooks take effect in order."""
        thread = self._thread
        if thread is None or not thread.is_alive() or thread is threading.current_thread():
            fn()
            return
        done = threading.Event()

        def wrapped() -> None:
            try:
                fn()
            finally:
                done.set()

        self._commands.put(wrapped)
        self._wake()
        done.wait(timeout=5)

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")

    def _open_pty(self) -> None:
        master, slave = pty.openpty()
        # Raw before anything is written, or the line discipline echoes and maps newlines.
        tty.setraw(slave)
        os.set_blocking(master, False)
        self._master, self._slave = master, slave
        self._slave_path = os.ttyname(slave)
        if self.link is not None:
            tmp = self.link.with_name(self.link.name + ".tmp")
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            os.symlink(self._slave_path, tmp)
            os.replace(tmp, self.link)

    def _close_pty(self) -> None:
        for fd in (self._master, self._slave):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._master = self._slave = None

    def _power_on(self) -> None:
        self._blocks.clear()
        self._waiting_lines.clear()
        self._line.clear()
        self._homed = False
        self._set_state("Alarm" if self.homing_required else "Idle")
        self._send(BANNER)
        if self._state == "Alarm":
            self._send(UNLOCK_HINT)

    def _set_state(self, state: str) -> None:
        now = time.monotonic()
        with self._seen:
            if state == "Run" and self._run_since is None:
                self._run_since = now
            elif state in ("Idle", "Alarm") and self._run_since is not None:
                self._runs.append((self._run_since, now))
                self._run_since = None
            self._state = state
            self._seen.notify_all()

    def _send(self, data: bytes) -> None:
        """Write to the driver; bytes nobody reads are lost, as on a real serial line."""
        if self._silent or self._master is None:
            return
        with contextlib.suppress(BlockingIOError):
            try:
                os.write(self._master, data)
            except OSError as exc:
                if exc.errno != errno.EIO:  # EIO: no one has the slave open
                    raise

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._step()
            except Exception:  # a simulator bug must not look like a driver hang
                log.exception("GRBL simulator step failed")
                self._stop.wait(0.05)

    def _step(self) -> None:
        fds = [self._wake_r] + ([self._master] if self._master is not None else [])
        readable, _, _ = select.select(fds, [], [], 0.01)
        if self._wake_r in readable:
            with contextlib.suppress(BlockingIOError):
                os.read(self._wake_r, 4096)
        while True:
            try:
                command = self._commands.get_nowait()
            except queue.Empty:
                break
            command()
        if self._master is not None and self._master in readable:
            try:
                data = os.read(self._master, 4096)
            except (BlockingIOError, InterruptedError):
                data = b""
            except OSError:  # EIO when no one holds the slave: nothing to read
                data = b""
            if data:
                with self._seen:
                    self._received += data
                    self._seen.notify_all()
                if not self._silent:
                    for byte in data:
                        self._on_byte(byte)
        self._tick()

    # -- the machine -------------------------------------------------------------------

    def _on_byte(self, byte: int) -> None:
        # Realtime bytes act at once, even in the middle of a line, and never reach it.
        if byte == STATUS:
            self._send(self._status())
        elif byte == FEED_HOLD:
            self._feed_hold()
        elif byte == CYCLE_START:
            self._cycle_start()
        elif byte == SOFT_RESET:
            self._soft_reset()
        elif byte == JOG_CANCEL:
            if self._state == "Jog":
                self._set_state("Idle")
        elif byte >= 0x80:
            pass  # overrides and other realtime commands: not modelled
        elif byte in (0x0A, 0x0D):
            # Like GRBL 1.1, each CR or LF ends a line, and an empty line is answered ok:
            # a sender ending lines with CRLF gets two answers per line.
            line = _COMMENT.sub("", self._line.decode("ascii", "replace")).strip()
            self._line.clear()
            if line:
                self._on_line(line)
            else:
                self._send(b"ok\r\n")
        elif len(self._line) < 255:
            self._line.append(byte)

    def _status(self) -> bytes:
        fields = [self._state, f"MPos:{self._x:.3f},0.000,0.000"]
        if self.report_buffer:
            queued = len(self._blocks) + len(self._waiting_lines)
            free_blocks = PLANNER_BLOCKS - min(PLANNER_BLOCKS, queued)
            free_rx = RX_BUFFER if queued <= PLANNER_BLOCKS else RX_BUFFER - 40
            fields.append(f"Bf:{free_blocks},{free_rx}")
        moving = self._state in ("Run", "Jog", "Home")
        fields.append(f"FS:{1000 if moving else 0},0")
        return ("<" + "|".join(fields) + ">\r\n").encode()

    def _feed_hold(self) -> None:
        if self._state == "Run":
            self._set_state("Hold:1")
            self._until = time.monotonic() + self.hold_decel
        elif self._state == "Jog":
            self._set_state("Idle")  # a hold cancels a jog

    def _cycle_start(self) -> None:
        if self._state.startswith("Hold"):
            self._set_state("Run" if self._blocks else "Idle")
            self._last_tick = time.monotonic()

    def _soft_reset(self) -> None:
        before = self._state
        with self._seen:
            self._resets.append(before)
        self._blocks.clear()
        self._waiting_lines.clear()
        self._line.clear()
        if before in _MOVING:
            self._homed = False
            self._send(b"ALARM:3\r\n")
            self._set_state("Alarm")
        elif before == "Alarm" or (self.homing_required and not self._homed):
            self._set_state("Alarm")
        else:
            self._set_state("Idle")
        self._send(BANNER)
        if self._state == "Alarm":
            self._send(UNLOCK_HINT)

    def _on_line(self, line: str) -> None:
        if self._waiting_lines:  # an earlier line still waits for the planner
            self._waiting_lines.append(line)
            return
        self._execute_line(line)

    def _execute_line(self, line: str) -> None:
        upper = line.upper().replace(" ", "")
        if upper.startswith("$"):
            self._on_system_command(upper)
            return
        if self._state == "Alarm":
            self._send(b"error:9\r\n")
            return
        if self._state == "Sleep":
            return
        if self._state == "Check" or not _MOTION_WORD.search(upper):
            self._send(b"ok\r\n")
            return
        if len(self._blocks) < PLANNER_BLOCKS:
            self._blocks.append(self.line_time)
            self._send(b"ok\r\n")
        else:  # GRBL withholds the ok until the planner has room: senders wait for it
            self._waiting_lines.append(line)

    def _on_system_command(self, cmd: str) -> None:
        if cmd == "$X":
            if self._state == "Alarm":
                self._send(b"[MSG:Caution: Unlocked]\r\n")
                self._set_state("Idle")
            self._send(b"ok\r\n")
        elif cmd == "$H":
            if self._state not in ("Idle", "Alarm"):
                self._send(b"error:8\r\n")
                return
            self._set_state("Home")
            self._until = time.monotonic() + self.homing_time
        elif cmd.startswith("$J="):
            if self._state == "Alarm":
                self._send(b"error:9\r\n")
            elif self._state != "Idle":
                self._send(b"error:8\r\n")
            else:
                self._set_state("Jog")
                self._until = time.monotonic() + self.line_time
                self._send(b"ok\r\n")
        elif cmd == "$C":
            self._set_state("Idle" if self._state == "Check" else "Check")
            enabled = self._state == "Check"
            self._send(b"[MSG:Enabled]\r\n" if enabled else b"[MSG:Disabled]\r\n")
            self._send(b"ok\r\n")
        elif cmd == "$SLP":
            self._blocks.clear()
            self._set_state("Sleep")
            self._send(b"[MSG:Sleeping]\r\nok\r\n")
        elif cmd == "$I":
            self._send(
                f"[VER:1.1h.sim:]\r\n[OPT:V,{PLANNER_BLOCKS},{RX_BUFFER}]\r\nok\r\n".encode()
            )
        elif cmd in ("$", "$$", "$#", "$G", "$N"):
            self._send(b"ok\r\n")
        else:
            self._send(b"error:3\r\n")

    def _tick(self) -> None:
        now = time.monotonic()
        elapsed, self._last_tick = now - self._last_tick, now
        if self._state == "Hold:1" and now >= self._until:
            self._set_state("Hold:0")
        elif self._state == "Home" and now >= self._until:
            self._homed = True
            self._set_state("Idle")
            self._send(b"ok\r\n")
        elif self._state == "Jog" and now >= self._until:
            self._set_state("Idle")
        if self._state == "Idle" and self._blocks:
            self._set_state("Run")  # GRBL starts the cycle by itself once blocks are planned
        if self._state == "Run":
            while elapsed > 0 and self._blocks:
                if self._blocks[0] <= elapsed:
                    elapsed -= self._blocks.popleft()
                    self._x += 1.0
                else:
                    self._blocks[0] -= elapsed
                    elapsed = 0.0
            while self._waiting_lines and len(self._blocks) < PLANNER_BLOCKS:
                self._execute_line(self._waiting_lines.popleft())
            if not self._blocks:
                self._set_state("Idle")


def main(argv: list[str] | None = None) -> None:
    """Serve a simulated machine until interrupted, for the demo or a G-code sender."""
    parser = argparse.ArgumentParser(
        prog="python -m gateway.drivers.simulators.grbl", description=main.__doc__
    )
    parser.add_argument("--link", help="keep a symlink with this path pointing at the pty")
    parser.add_argument(
        "--homing-required",
        action="store_true",
        help="start in Alarm until $H or $X, as with GRBL's homing lock",
    )
    parser.add_argument(
        "--line-time",
        type=float,
        default=0.05,
        help="seconds one streamed motion line takes (default 0.05)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with GrblSimulator(
        link=args.link, homing_required=args.homing_required, line_time=args.line_time
    ) as sim:
        print(sim.port, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()


if __name__ == "__main__":
    main()
