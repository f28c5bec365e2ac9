"""Marlin printers that print from their SD card, followed over USB serial.

Why the driver is shaped the way it is:

- **One long-lived connection.** Opening the USB port pulses DTR, and most Marlin boards
  wire DTR to reset: an open in the middle of a print ends the print. The port is opened
  once and reopened only after the link is already lost (read or write failed), with
  back-off. Timeouts and garbage never cause a reopen. Even that reopen can reset a board
  whose cable was pulled and plugged back in; printers that must survive that need
  auto-reset disabled in hardware. DTR is left alone on purpose: native-USB boards only
  talk to a host that asserts it.
- **One command in flight.** Each command waits for its ``ok``; ``echo:busy:`` lines
  push the deadline back, so a long homing or heating is not mistaken for a dead board.
  A silent board yields an UNKNOWN "no answer" report, never a reconnect.
- **Line numbers and checksums.** Noise that corrupts ``M25`` into something else is
  worse than noise that is detected, so every command is sent as ``N<n> <cmd>*<xor>``.
  Marlin answers a bad line with ``Resend: N`` followed by ``ok``; with one command in
  flight the line it wants is always the one we sent, so we resend that command *as*
  line N. Renumbering instead of replaying history also resynchronises after a board
  reset (Marlin then wants line 1) without keeping any history.
- **State from the firmware's own reports.** ``M27`` says whether an SD print runs and
  how far; it reports a paused print like a running one, so pause is learnt from
  ``//action:pause`` (or from our own ``M25``) and undone by ``//action:resume`` or by the
  byte position moving again. ``//action:cancel`` ends the job at once with detail
  "cancelled", which stays until the next job so a consumer that missed one report still
  learns why the last job ended. ``kill()`` (after ``M112`` or a thermal fault) is
  ERROR until the board says ``start`` again.
- **The line is not trusted to carry text.** Bytes that are not UTF-8 or contain control
  characters are logged (at most once a minute, with a count) and skipped; a known
  answer at the end of such a line (noise glued to ``ok``) is still used.
- **Threads never raise.** Every failure ends in a report (UNKNOWN "link lost",
  UNKNOWN "no answer", ERROR) and a retry.

``safe_stop()`` pauses the SD print with ``M25``. A pause keeps the part, the heaters are
left to the firmware's own pause timeout, and staff can resume from the printer's screen.
``M112`` is never sent: it halts the firmware until someone resets the board, which loses
the print and the connection's state, and it is not ours to press.
"""

from __future__ import annotations

import logging
import queue
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum, auto
from typing import Protocol

import serial

from gateway.core.activity import Activity, MachineReport
from gateway.drivers.machines.base import MachineController

log = logging.getLogger(__name__)

_READ_TIMEOUT_S = 0.05  # granularity of every wait: close() is noticed this fast
_MAX_LINE_BYTES = 4096  # a "line" longer than this is noise without a newline
_BACKOFF_MAX_S = 30.0
_GARBAGE_LOG_INTERVAL_S = 60.0
_STOP_ATTEMPTS = 3
_CANCEL_GRACE_POLLS = 3

_TEMP = re.compile(r"(?<![\w@])([TB]):\s*(-?\d+(?:\.\d+)?)\s*(?:/\s*(-?\d+(?:\.\d+)?))?")
_SD_BYTES = re.compile(r"SD printing byte\s+(\d+)\s*/\s*(\d+)", re.IGNORECASE)
_RESEND = re.compile(r"^(?:Resend|rs)\s*:?\s*N?(\d+)", re.IGNORECASE)
_FIRMWARE = re.compile(r"FIRMWARE_NAME:(.*?)(?:\s+[A-Z_]+:|$)")
# M78 (PRINTCOUNTER): "Stats: Filament used: 12.34m", a lifetime counter in metres.
_FILAMENT_USED = re.compile(r"filament used:\s*(\d+(?:\.\d+)?)\s*m\b", re.IGNORECASE)
_HALTED = ("printer halted", "kill() called")
_STOPPED = "printer stopped due to errors"
_KNOWN_PREFIXES = (
    "ok", "resend", "rs ", "echo:", "error:", "//action:", "t:", "sd printing", "not sd printing",
    "current file:", "start", "done printing",
)  # fmt: skip


class SerialPort(Protocol):
    """The slice of ``serial.Serial`` the driver uses, so tests can stand in for it."""

    @property
    def in_waiting(self) -> int: ...  # read-only on serial.Serial

    def read(self, size: int = 1) -> bytes: ...
    def write(self, data: bytes) -> int | None: ...
    def close(self) -> None: ...


class _Line(Enum):
    OTHER = auto()
    OK = auto()
    BUSY = auto()
    RESEND = auto()
    HALTED = auto()
    BOOTED = auto()


class _LinkLost(Exception):
    pass


@dataclass
class _Job:
    size: int
    position: int
    name: str | None = None
    name_asked: bool = False
    filament_start_mm: float | None = None  # the print counter when the job was seen


class _GarbageLog:
    """Noise often comes in bursts (a motor starting next to the cable): one warning a
    minute with a count keeps the journal readable and still says it happens."""

    def __init__(self, interval: float = _GARBAGE_LOG_INTERVAL_S) -> None:
        self.interval = interval
        self._last = -float("inf")
        self._suppressed = 0

    def __call__(self, port: str, raw: bytes) -> None:
        now = time.monotonic()
        if now - self._last < self.interval:
            self._suppressed += 1
            return
        more = f" ({self._suppressed} more since the last warning)" if self._suppressed else ""
        log.warning("%s: skipped garbage on the serial line: %r%s", port, raw[:60], more)
        self._last = now
        self._suppressed = 0


class MarlinController(MachineController):
    """Follows an SD-printing Marlin printer: temperatures, job, progress, pause, errors."""

    def __init__(
        self,
        port: str,
        *,
        baudrate: int = 115200,
        poll_interval: float = 2.0,
        answer_timeout: float = 5.0,
        serial_factory: Callable[..., SerialPort] = serial.serial_for_url,
    ) -> None:
        super().__init__()
        self.port = port
        self.baudrate = baudrate
        self.poll_interval = poll_interval
        self.answer_timeout = answer_timeout
        self._serial_factory = serial_factory

        self._closed = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._requests: queue.SimpleQueue[str] = queue.SimpleQueue()

        # Everything below belongs to the worker thread.
        self._serial: SerialPort | None = None
        self._buffer = b""
        self._lines: list[str] = []
        self._next_line = 1
        self._greeted = False
        self._answering = True
        self._resend_to: int | None = None
        self._garbage = _GarbageLog()
        self._temps: dict[str, float] = {}
        self._firmware: str | None = None
        self._job: _Job | None = None
        self._paused = False
        self._pause_position: int | None = None  # byte position seen while paused
        self._cancelled = False
        self._cancelled_at: tuple[int, int] | None = None  # (size, position) still aborting
        self._cancel_grace = 0  # M27 reports of the cancelled file still to disbelieve
        self._halted: str | None = None
        self._halted_by_kill = True  # kill() never answers again; a "stopped" board does
        self._name_query_supported = True
        self._name_reply: str | None = None
        self._name_reply_seen = False
        # The print counter (M78), when the firmware has one: the filament a job used is
        # the counter's rise while it ran. None until read, or for good without one.
        self._counter_supported = True
        self._filament_total_mm: float | None = None
        self._counter_before: float | None = None  # the reading of the poll before
        self._ended_job: _Job | None = None  # ended, its final counter reading owed
        self._last_job_filament_mm: float | None = None

    # ------------------------------------------------------------------ public API

    def start(self) -> None:
        with self._start_lock:
            if self._thread is not None or self._closed.is_set():
                return
            self._thread = threading.Thread(
                target=self._run, name=f"marlin {self.port}", daemon=True
            )
            self._thread.start()

    def safe_stop(self) -> None:
        """Queue ``M25`` (pause the SD print); the worker sends it before its next poll."""
        self._requests.put("M25")

    def close(self) -> None:
        self._closed.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=self.answer_timeout + 2)
        if thread is None or not thread.is_alive():
            self._drop_link()

    # ------------------------------------------------------------------ worker

    def _run(self) -> None:
        first_backoff = min(max(self.poll_interval, _READ_TIMEOUT_S), 1.0)
        backoff = first_backoff
        while not self._closed.is_set():
            try:
                if self._serial is None:
                    self._connect()
                    backoff = first_backoff
                self._cycle()
                self._idle(self.poll_interval)
            except (_LinkLost, serial.SerialException, OSError, ValueError) as exc:
                if self._serial is not None:
                    log.warning("%s: serial link lost: %s", self.port, exc)
                else:
                    log.debug("%s: cannot open: %s", self.port, exc)
                self._drop_link()
                self._publish(MachineReport(Activity.UNKNOWN, detail="link lost"))
                self._closed.wait(backoff)
                backoff = min(backoff * 2, _BACKOFF_MAX_S)
            except Exception:  # a bug must not silence the machine for good
                log.exception("%s: unexpected error in the Marlin driver", self.port)
                self._closed.wait(self.poll_interval)
        self._drop_link()

    def _connect(self) -> None:
        self._serial = self._serial_factory(
            self.port,
            baudrate=self.baudrate,
            timeout=_READ_TIMEOUT_S,
            write_timeout=self.answer_timeout,
            exclusive=True,
        )
        self._buffer = b""
        self._lines.clear()
        self._greeted = False
        log.info("%s: serial link open", self.port)

    def _drop_link(self) -> None:
        ser, self._serial = self._serial, None
        if ser is not None:
            try:
                ser.close()
            except Exception:  # closing a vanished device may fail any way it likes
                log.debug("%s: error while closing", self.port, exc_info=True)

    def _cycle(self) -> None:
        """One poll: greet after (re)connect, run queued requests, then M105 and M27."""
        if not self._greeted:
            # Line numbering starts afresh; the board may also just have reset.
            if not self._command("M110 N0", line=0):
                self._publish_state()
                return
            self._greeted = True
            self._command("M115")
        self._run_requests()
        # M78 before M27: when M27 says the print is over, the counter just read is its
        # total (to within one poll of extrusion).
        ok = self._command("M105") and self._read_counter() and self._command("M27")
        ended = self._ended_job
        if ok and ended is not None and self._read_counter():
            # The job ended since the last reading: read the counter once more for its
            # total, so its last poll of extrusion is not lost.
            self._ended_job = None
            self._last_job_filament_mm = self._job_filament(ended)
        job = self._job
        if ok and job is not None and not job.name_asked and self._name_query_supported:
            job.name_asked = True
            self._ask_file_name(job)
        self._publish_state()

    def _run_requests(self) -> None:
        while True:
            try:
                command = self._requests.get_nowait()
            except queue.Empty:
                return
            for _ in range(_STOP_ATTEMPTS):
                if self._command(command):
                    if command == "M25" and self._job is not None:
                        self._set_paused()
                    log.info("%s: sent %s", self.port, command)
                    break
            else:
                log.warning("%s: %s was not acknowledged", self.port, command)

    def _read_counter(self) -> bool:
        """Ask M78 for the filament counter; True unless the link failed."""
        if not self._counter_supported:
            return True
        seen = self._filament_total_mm
        self._counter_before = seen
        self._filament_total_mm = None
        ok = self._command("M78")
        if ok and self._filament_total_mm is None:
            # "Unknown command" (firmware without PRINTCOUNTER): never ask again.
            self._counter_supported = False
            log.info("%s: the firmware has no print counter (M78): no filament", self.port)
        elif not ok:
            self._filament_total_mm = seen
        return ok

    def _job_baseline(self) -> float | None:
        """The counter before the job: the previous poll's reading (no job ran then),
        else this poll's, which may already hold a poll's worth of the job."""
        return self._counter_before if self._counter_before is not None else self._filament_total_mm

    def _job_filament(self, job: _Job) -> float | None:
        if self._filament_total_mm is None or job.filament_start_mm is None:
            return None
        return round(max(0.0, self._filament_total_mm - job.filament_start_mm), 1)

    def _ask_file_name(self, job: _Job) -> None:
        self._name_reply = None
        self._name_reply_seen = False
        ok = self._command("M27 C")
        if ok and not self._name_reply_seen:
            # Firmware without long file name reporting answers "M27 C" like "M27" or not
            # at all; asking again every job would only add noise.
            self._name_query_supported = False
            log.info("%s: the firmware does not report file names", self.port)
        if self._job is job:
            job.name = self._name_reply

    def _idle(self, seconds: float) -> None:
        """Wait between polls while still reading: actions and halts arrive unasked."""
        end = time.monotonic() + seconds
        while not self._closed.is_set() and time.monotonic() < end:
            if not self._requests.empty():
                return
            line = self._read_line()
            if line is not None:
                self._handle(line)

    # ------------------------------------------------------------------ one command

    def _command(self, command: str, *, line: int | None = None) -> bool:
        """Send one command and wait for its ``ok``; False when none came in time."""
        number = self._next_line if line is None else line
        self._send(number, command)
        deadline = time.monotonic() + self.answer_timeout
        self._resend_to = None
        while not self._closed.is_set():
            if time.monotonic() >= deadline:
                if self._answering:
                    log.warning("%s: no answer to %s", self.port, command)
                self._answering = False
                return False
            text = self._read_line()
            if text is None:
                continue
            kind = self._handle(text)
            if kind is _Line.BUSY:
                deadline = time.monotonic() + self.answer_timeout
            elif kind is _Line.HALTED:
                return False
            elif kind is _Line.BOOTED:
                # The board reset under us: whatever we sent died with it.
                number = 1
                self._send(number, command)
                deadline = time.monotonic() + self.answer_timeout
            elif kind is _Line.OK:
                if self._resend_to is not None:
                    number, self._resend_to = self._resend_to, None
                    self._send(number, command)
                    deadline = time.monotonic() + self.answer_timeout
                    continue
                self._answering = True
                return True
        return False

    def _send(self, number: int, command: str) -> None:
        self._next_line = number + 1
        payload = f"N{number} {command}"
        checksum = 0
        for byte in payload.encode("ascii"):
            checksum ^= byte
        self._write(f"{payload}*{checksum}\n".encode("ascii"))

    def _write(self, data: bytes) -> None:
        ser = self._serial
        if ser is None:
            raise _LinkLost("not connected")
        try:
            ser.write(data)
        except serial.SerialTimeoutException:
            # The board does not drain its input: a stall, not a lost link. Reopening
            # would reset it, so this is left to the answer timeout.
            log.debug("%s: write timed out", self.port)

    # ------------------------------------------------------------------ reading

    def _read_line(self) -> str | None:
        """The next complete line, waiting at most one read timeout for it."""
        if not self._lines:
            ser = self._serial
            if ser is None:
                raise _LinkLost("not connected")
            data = ser.read(ser.in_waiting or 1)
            if data:
                self._feed(data)
        return self._lines.pop(0) if self._lines else None

    def _feed(self, data: bytes) -> None:
        self._buffer += data
        *complete, self._buffer = self._buffer.split(b"\n")
        for raw in complete:
            self._accept(raw.rstrip(b"\r"))
        if len(self._buffer) > _MAX_LINE_BYTES:
            self._garbage(self.port, self._buffer)
            self._buffer = b""

    def _accept(self, raw: bytes) -> None:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        if text is not None and text.isprintable():
            if text.strip():
                self._lines.append(text.strip())
            return
        self._garbage(self.port, raw)
        tail = _printable_tail(raw)
        if tail.lower().startswith(_KNOWN_PREFIXES):
            self._lines.append(tail)

    # ------------------------------------------------------------------ meaning

    def _handle(self, line: str) -> _Line:
        lower = line.lower()
        if lower.startswith(("ok", "t:", "b:")):  # M105 answers and auto-reports only
            self._parse_temperatures(line)
        if lower == "ok" or lower.startswith("ok "):
            if self._halted is not None and self._halted_by_kill:
                self._halted = None  # a killed firmware cannot answer: it was reset
            return _Line.OK
        if lower.startswith("echo:busy:"):
            return _Line.BUSY
        resend = _RESEND.match(line)
        if resend is not None:
            self._resend_to = int(resend.group(1))
            return _Line.RESEND
        if any(marker in lower for marker in _HALTED) or _STOPPED in lower:
            if self._halted is None:
                log.error("%s: %s", self.port, line)
            self._halted = line.partition(":")[2].strip() if lower.startswith("error:") else line
            self._halted_by_kill = _STOPPED not in lower
            self._publish_state()
            return _Line.HALTED
        if lower == "start":
            log.info("%s: the board (re)started", self.port)
            self._halted = None
            self._job = None
            self._paused = False
            self._greeted = False
            self._publish_state()
            return _Line.BOOTED
        if lower.startswith("//action:"):
            self._on_action(line[len("//action:") :].strip().lower())
            return _Line.OTHER
        sd = _SD_BYTES.search(line)
        if sd is not None:
            self._on_sd_progress(int(sd.group(1)), int(sd.group(2)))
        elif lower.startswith("not sd printing") or lower.startswith("done printing"):
            self._on_sd_idle()
        elif lower.startswith("current file:"):
            self._name_reply_seen = True
            self._name_reply = _file_name(line.partition(":")[2])
        elif (firmware := _FIRMWARE.search(line)) is not None:
            self._firmware = firmware.group(1).strip()
        elif (used := _FILAMENT_USED.search(line)) is not None:
            self._filament_total_mm = float(used.group(1)) * 1000.0
        return _Line.OTHER

    def _parse_temperatures(self, line: str) -> None:
        for sensor, actual, target in _TEMP.findall(line):
            name = "hotend" if sensor == "T" else "bed"
            self._temps[f"{name}_actual"] = float(actual)
            if target:
                self._temps[f"{name}_target"] = float(target)

    def _on_action(self, action: str) -> None:
        if action in ("pause", "paused"):
            if self._job is not None:
                self._set_paused()
        elif action in ("resume", "resumed"):
            self._paused = False
        elif action in ("cancel", "cancelled", "canceled"):
            job = self._job
            if job is not None:
                self._last_job_filament_mm = self._job_filament(job)
                self._ended_job = job
            self._cancelled = True
            self._cancelled_at = (job.size, job.position) if job is not None else None
            self._cancel_grace = _CANCEL_GRACE_POLLS
            self._job = None
            self._paused = False
        else:
            return  # notifications, prompts: nothing the machine state depends on
        log.info("%s: firmware action %s", self.port, action)
        self._publish_state()

    def _set_paused(self) -> None:
        self._paused = True
        self._pause_position = None

    def _on_sd_progress(self, position: int, size: int) -> None:
        if self._cancelled_at is not None:
            cancelled_size, cancelled_position = self._cancelled_at
            if size == cancelled_size and position >= cancelled_position and self._cancel_grace:
                # The firmware is still closing the cancelled file. Not for ever, though:
                # a print that goes on after its cancel announcement is still a print.
                self._cancel_grace -= 1
                return
            self._cancelled_at = None
        job = self._job
        if job is None or size != job.size or position < job.position:
            self._last_job_filament_mm = None
            self._ended_job = None
            self._job = _Job(size=size, position=position, filament_start_mm=self._job_baseline())
            self._cancelled = False
            self._paused = False
            return
        if self._paused:
            if self._pause_position is None:
                self._pause_position = position
            elif position > self._pause_position:
                # Resumed without telling us (screen, firmware without host actions).
                self._paused = False
        job.position = position

    def _on_sd_idle(self) -> None:
        if self._job is not None:
            self._last_job_filament_mm = self._job_filament(self._job)
            self._ended_job = self._job
        self._job = None
        self._paused = False
        self._cancelled_at = None

    # ------------------------------------------------------------------ reports

    def _publish_state(self) -> None:
        self._publish(self._report())

    def _report(self) -> MachineReport:
        data: dict[str, object] = dict(self._temps)
        if self._firmware:
            data["firmware"] = self._firmware
        if self._halted is not None:
            return MachineReport(Activity.ERROR, detail=self._halted, data=data)
        if not self._answering:
            return MachineReport(Activity.UNKNOWN, detail="no answer", data=data)
        job = self._job
        if job is not None:
            progress = 100.0 * job.position / job.size if job.size else 0.0
            data["sd_position"] = job.position
            data["sd_size"] = job.size
            return MachineReport(
                Activity.PAUSED if self._paused else Activity.BUSY,
                job_name=job.name,
                progress=round(progress, 2),
                filament_mm=self._job_filament(job),
                detail="paused" if self._paused else self._temperature_text(),
                data=data,
            )
        detail = "cancelled" if self._cancelled else self._temperature_text()
        return MachineReport(
            Activity.IDLE, detail=detail, data=data, filament_mm=self._last_job_filament_mm
        )

    def _temperature_text(self) -> str:
        parts = []
        for name, label in (("hotend", "T"), ("bed", "B")):
            actual = self._temps.get(f"{name}_actual")
            if actual is not None:
                parts.append(f"{label}:{actual:.1f}/{self._temps.get(f'{name}_target', 0.0):.0f}")
        return " ".join(parts)

    def _publish(self, report: MachineReport) -> None:
        try:
            self._emit(report)
        except Exception:
            log.exception("%s: a report subscriber raised", self.port)


def _printable_tail(raw: bytes) -> str:
    """The run of printable ASCII after the last byte that is not."""
    end = len(raw)
    start = end
    while start > 0 and 0x20 <= raw[start - 1] < 0x7F:
        start -= 1
    return raw[start:end].decode("ascii").strip()


def _file_name(rest: str) -> str | None:
    """``SHORT~1.GCO long name.gcode`` -> the long name; ``(no file)`` -> None."""
    rest = rest.strip()
    if not rest or rest.startswith("(no file)"):
        return None
    short, _, long = rest.partition(" ")
    return long.strip() or short
