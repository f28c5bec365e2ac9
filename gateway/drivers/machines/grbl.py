"""GRBL 1.1 controllers (CNC routers, laser cutters) followed over their serial link.

The node only needs to know whether the machine is working, so this driver listens more
than it talks: it polls with the realtime ``?`` byte, which GRBL answers even while a
sender such as LightBurn streams a job, and it never sends G-code of its own. The only
other bytes it ever writes are the feed hold and soft reset of :meth:`safe_stop`.

Why the connection is handled the way it is:

* Opening the port resets most GRBL boards (an Arduino's DTR line is wired to reset),
  even in the middle of a job. So the driver keeps one connection for its whole life and
  reopens only after a *read* has proved the link dead (cable pulled: EIO or a hang-up).
  Silence, write errors and garbage never trigger a reopen: they are reported as
  UNKNOWN and the driver keeps listening.
* GRBL has no notion of a job. :class:`GrblJobDetector` infers one from the state sequence
  (see there); progress and time left are therefore always None.
* A controller that has just been reset, is electrically noisy or runs at another baud
  rate sends bytes that are not GRBL lines. They are counted, logged at a limited rate
  and skipped; nothing read from the wire may stop the reader thread.
* A G-code sender (LightBurn, UGS, bCNC) never opens the port beside the node: two
  readers split the replies. With ``sender_tcp``/``sender_pty`` the driver offers it a
  link of its own (``sender_link.py``) and relays every byte both ways
  (``gateway/policies/grbl_relay.py``: one reply per line, in order; status reports
  shared, so the node's polls steal nothing; no motion without a session). The lines
  the sender streams and their replies then give the job's progress and name.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import serial

from gateway.core.activity import Activity, MachineReport
from gateway.drivers.machines.base import MachineController
from gateway.drivers.machines.sender_link import SenderLink
from gateway.policies.grbl_relay import GrblRelay, StreamCount

log = logging.getLogger(__name__)

STATUS_QUERY = b"?"
FEED_HOLD = b"!"
CYCLE_START = b"~"
SOFT_RESET = b"\x18"

# GRBL 1.1 alarm codes, in our own short words; the number is what manuals index by.
ALARM_MEANINGS: dict[int, str] = {
    1: "hard limit (position lost, re-home)",
    2: "soft limit",
    3: "reset while in motion (position lost, re-home)",
    4: "probe fail: probe not in expected initial state",
    5: "probe fail: no contact",
    6: "homing fail: reset during homing",
    7: "homing fail: safety door opened",
    8: "homing fail: pull-off did not clear limit switch",
    9: "homing fail: limit switch not found",
    10: "homing fail: second limit switch not found",
}

# GRBL 1.1 error codes (answers to a line), in our own short words.
ERROR_MEANINGS: dict[int, str] = {
    1: "expected command letter",
    2: "bad number format",
    3: "invalid $ statement",
    4: "negative value",
    5: "homing not enabled",
    6: "step pulse too short",
    7: "EEPROM read failed, defaults used",
    8: "$ command only valid when idle",
    9: "locked out: alarm or jog state",
    10: "soft limits need homing enabled",
    11: "line too long",
    12: "step rate too high",
    13: "safety door open",
    14: "build info or startup line too long",
    15: "jog target beyond travel",
    16: "invalid jog command",
    17: "laser mode needs PWM output",
    20: "unsupported G-code command",
    21: "two commands of one modal group",
    22: "feed rate not set",
    23: "integer value required",
    24: "two commands needing axis words",
    25: "repeated G-code word",
    26: "axis words missing",
    27: "invalid line number",
    28: "value word missing",
    29: "work coordinate system not supported",
    30: "G53 only with G0 or G1",
    31: "unused axis words",
    32: "arc needs an in-plane axis word",
    33: "invalid motion target",
    34: "invalid arc radius",
    35: "arc needs an in-plane offset word",
    36: "unused value words",
    37: "tool length offset not on the tool length axis",
    38: "tool number too high",
}

STATE_ACTIVITY: dict[str, Activity] = {
    "Idle": Activity.IDLE,
    "Run": Activity.BUSY,
    "Jog": Activity.BUSY,
    "Home": Activity.BUSY,
    "Hold": Activity.PAUSED,
    "Door": Activity.PAUSED,
    "Alarm": Activity.ALARM,
    "Check": Activity.IDLE,  # G-code is only parsed, nothing moves
    "Sleep": Activity.IDLE,
}

SUBSTATE_MEANINGS: dict[str, str] = {
    "Hold:0": "hold complete",
    "Hold:1": "hold in progress",
    "Door:0": "door closed, ready to resume",
    "Door:1": "machine stopped, door ajar",
    "Door:2": "door opened, parking",
    "Door:3": "door closed, restoring",
}

# States in which the spindle or laser no longer moves, so a soft reset keeps position.
STOPPED_STATES = frozenset({"Idle", "Hold:0", "Alarm", "Check", "Sleep", "Door:0", "Door:1"})

_STATUS = re.compile(r"<([A-Za-z]+(?::\d)?)((?:\|[A-Za-z]+:[^|<>]*)*)>")
_WELCOME = re.compile(r"Grbl (\S+) \[.*\]")
_ALARM = re.compile(r"ALARM:(\d+)")
_ERROR = re.compile(r"error:(\d+)")
# Lines GRBL sends that say nothing about activity: feedback messages, settings, echoes.
_IGNORED = re.compile(r"ok|\[.*\]|\$\d+=.*|>.*")
_MAX_PARTIAL = 512  # a "line" longer than any GRBL line is noise with no newline


def alarm_detail(code: int) -> str:
    meaning = ALARM_MEANINGS.get(code, "unknown alarm")
    return f"ALARM:{code} {meaning}"


def error_detail(code: int) -> str:
    meaning = ERROR_MEANINGS.get(code, "unknown error")
    return f"error:{code} {meaning}"


@dataclass(frozen=True)
class Status:
    """One parsed ``<...>`` status report."""

    state: str  # as sent: "Idle", "Hold:0", "Door:2"
    fields: dict[str, str]

    @property
    def base_state(self) -> str:
        return self.state.split(":", 1)[0]

    @property
    def buffer(self) -> tuple[int, int] | None:
        """``Bf:`` planner blocks and serial rx bytes free, when the $10 mask enables it."""
        bf = self.fields.get("Bf")
        if bf is None:
            return None
        blocks, rx = bf.split(",")
        return int(blocks), int(rx)

    def numbers(self, name: str) -> list[float] | None:
        value = self.fields.get(name)
        return None if value is None else [float(v) for v in value.split(",")]


def parse_status(line: str) -> Status | None:
    """A GRBL 1.1 status report, or None when the line is not one (or is mangled).

    Noise in front of a report on the same line is tolerated: the last ``<...>`` that
    ends the line is taken, so a burst of garbage costs one line, not the next report.
    """
    matches = list(_STATUS.finditer(line))
    if not matches or matches[-1].end() != len(line.rstrip()):
        return None
    match = matches[-1]
    state = match.group(1)
    if state.split(":", 1)[0] not in STATE_ACTIVITY:
        return None
    fields: dict[str, str] = {}
    for part in match.group(2).split("|")[1:]:
        name, _, value = part.partition(":")
        fields[name] = value
    status = Status(state, fields)
    try:  # validate the numeric fields we use, so a mangled report is not half-believed
        status.buffer  # noqa: B018
        for name in ("MPos", "WPos", "FS", "F"):
            status.numbers(name)
    except ValueError:
        return None
    return status


class GrblJobDetector:
    """Infers whether a job runs from GRBL states, because GRBL itself has no such notion.

    (Turning reports into job *events* is the job policy's ``JobTracker``.)

    Rules, kept deliberately simple:

    * a job starts at the first ``Run`` (after Idle, or when the driver first connects to
      a machine already running: it joins the job in progress); ``Jog`` and ``Home`` are
      busy but are not jobs;
    * ``Hold`` and ``Door`` keep the job open (paused);
    * it ends at ``Idle`` with an empty planner: every ``Bf:`` planner block and rx byte
      free. GRBL can show Idle for a moment while blocks wait for the automatic cycle
      start; the buffer check keeps that from splitting a job. The buffer sizes are
      learnt as the largest free counts seen (they differ between builds). Without
      ``Bf:`` in the reports, Idle alone ends the job;
    * an alarm or a reset (welcome banner) aborts the job: GRBL flushed its planner.

    A sender that starves the planner for longer than a poll still splits its job in two;
    merging short gaps is the job policy's business, not the driver's.
    """

    def __init__(self) -> None:
        self.active = False
        self._max_blocks = 0
        self._max_rx = 0

    def update(self, status: Status) -> bool:
        buffer = status.buffer
        if buffer is not None:
            self._max_blocks = max(self._max_blocks, buffer[0])
            self._max_rx = max(self._max_rx, buffer[1])
        base = status.base_state
        if base == "Run":
            self.active = True
        elif base == "Alarm":
            self.active = False
        elif base == "Idle" and self.active:
            empty = buffer is None or (buffer[0] >= self._max_blocks and buffer[1] >= self._max_rx)
            if empty:
                self.active = False
        return self.active

    def reset(self) -> None:
        self.active = False


class _RateLimitedWarning:
    """One warning per ``interval`` with a count of what was suppressed in between.

    Noise can arrive at thousands of lines a second; logging each would fill a Pi's SD
    card faster than the noise itself does harm.
    """

    def __init__(self, logger: logging.Logger, interval: float = 30.0) -> None:
        self._log = logger
        self._interval = interval
        self._last = float("-inf")
        self._suppressed = 0

    def __call__(self, msg: str, *args: object) -> None:
        now = time.monotonic()
        if now - self._last < self._interval:
            self._suppressed += 1
            return
        if self._suppressed:
            msg += " (%d similar messages suppressed)"
            args = (*args, self._suppressed)
        self._log.warning(msg, *args)
        self._last, self._suppressed = now, 0


class GrblController(MachineController):
    """Follows one GRBL 1.1 board over a long-lived serial link.

    ``port``: device path or pyserial URL. ``poll_interval``: seconds between ``?``
    polls; GRBL's own guidance is 5 Hz at most, so shorter is refused. ``answer_timeout``:
    silence after which the machine is reported UNKNOWN "no answer". ``serial_factory``
    opens the port (pyserial's ``serial_for_url`` signature), for tests and URL schemes.
    ``sender_tcp`` (host, port) and ``sender_pty`` (symlink path): the sender link, off
    when both are None. ``mono``: the clock of the relay's poll sharing.

    Callbacks run on the reader or poller thread and must not block, and must not call
    :meth:`safe_stop` (it waits for reports those threads deliver).
    """

    MIN_POLL_INTERVAL = 0.2
    RECONNECT_MIN = 0.5  # back-off between reopen attempts after the link died
    RECONNECT_MAX = 10.0
    HOLD_TIMEOUT = 10.0  # how long safe_stop waits for the deceleration to end
    READ_TIMEOUT = 0.1
    WRITE_TIMEOUT = 1.0

    def __init__(
        self,
        port: str,
        *,
        baudrate: int = 115200,
        poll_interval: float = 0.25,
        answer_timeout: float = 2.0,
        serial_factory: Callable[..., Any] = serial.serial_for_url,
        sender_tcp: tuple[str, int] | None = None,
        sender_pty: str | None = None,
        mono: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        if poll_interval < self.MIN_POLL_INTERVAL:
            raise ValueError(
                f"poll_interval {poll_interval}s is faster than GRBL's 5 Hz status guidance"
            )
        if answer_timeout <= poll_interval:
            raise ValueError("answer_timeout must be longer than poll_interval")
        self.port = port
        self.baudrate = baudrate
        self.poll_interval = poll_interval
        self.answer_timeout = answer_timeout
        self._serial_factory = serial_factory

        self._stop = threading.Event()
        self._started = False
        self._closed = False
        self._reader: threading.Thread | None = None
        self._poller: threading.Thread | None = None

        # The link: replaced by the reader thread only; writers borrow it under _io_lock.
        self._io_lock = threading.Lock()
        self._serial: Any = None
        self._connected_at = 0.0

        # What the reader has learnt; _status_cond guards it and wakes safe_stop.
        self._status_cond = threading.Condition()
        self._status_seq = 0
        self._last_state: str | None = None
        self._last_status_at = 0.0
        self._silent = False
        self._link_lost_reported = False

        # Only the reader thread touches these.
        self._jobs = GrblJobDetector()
        self._alarm_code: int | None = None
        self._last_error: str | None = None
        self._version: str | None = None
        self._partial = bytearray()
        self.garbage_lines = 0

        self._report_lock = threading.Lock()  # one report decision at a time, in order
        self._warn_garbage = _RateLimitedWarning(log)
        self._warn_link = _RateLimitedWarning(log)
        self.opens = 0  # serial opens since start: one, unless the cable went away

        # The sender link: the relay's state under _relay_lock, which also orders every
        # byte written for the sender and every relayed byte written to the controller.
        self._mono = mono
        self._relay_lock = threading.Lock()
        self.relay: GrblRelay | None = None
        self.link: SenderLink | None = None
        if sender_tcp is not None or sender_pty is not None:
            self.relay = GrblRelay(poll_interval=poll_interval, answer_timeout=answer_timeout)
            self.link = SenderLink(
                on_data=self._from_sender,
                on_connect=self._sender_connected,
                on_disconnect=self._sender_disconnected,
                tcp=sender_tcp,
                pty_link=sender_pty,
            )

    # -- MachineController -------------------------------------------------------------

    def start(self) -> None:
        if self._closed:
            raise RuntimeError("GrblController cannot be restarted after close()")
        if self._started:
            return
        self._started = True
        self._reader = threading.Thread(
            target=self._guarded,
            args=(self._read_loop,),
            name=f"grbl-read {self.port}",
            daemon=True,
        )
        self._poller = threading.Thread(
            target=self._guarded,
            args=(self._poll_loop,),
            name=f"grbl-poll {self.port}",
            daemon=True,
        )
        if self.link is not None:
            self.link.start()
        self._reader.start()
        self._poller.start()

    def safe_stop(self) -> None:
        """Feed hold, wait until the machine has stopped moving, then soft reset.

        A reset alone while moving would lose the machine position (ALARM:3) and may stop
        a spindle mid-cut; a hold alone leaves the job resumable at the machine. Hold
        first, reset once ``Hold:0`` (or another stopped state) is reported, so the job
        is cancelled with the position kept. Blocks for at most ``HOLD_TIMEOUT`` seconds;
        after that the reset is sent anyway, because stopping matters more than position.
        """
        with self._status_cond:
            seq = self._status_seq
        if not self._write(FEED_HOLD):
            log.warning("safe stop on %s: link down, nothing sent", self.port)
            return
        log.info("safe stop on %s: feed hold sent", self.port)
        with self._status_cond:
            stopped = self._status_cond.wait_for(
                lambda: self._status_seq > seq and self._last_state in STOPPED_STATES,
                timeout=self.HOLD_TIMEOUT,
            )
            state = self._last_state
        if not stopped:
            log.warning(
                "safe stop on %s: no stopped state within %.0fs (last %s); resetting",
                self.port,
                self.HOLD_TIMEOUT,
                state,
            )
        self._write(SOFT_RESET)
        log.info("safe stop on %s: soft reset sent (state was %s)", self.port, state)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        with self._status_cond:
            self._status_cond.notify_all()
        for thread in (self._poller, self._reader):
            if thread is not None and thread is not threading.current_thread():
                thread.join(timeout=2 * self.READ_TIMEOUT + self.WRITE_TIMEOUT + 1)
        if self.link is not None:
            self.link.close()
        self._drop_link()
        self._emit(MachineReport(Activity.UNKNOWN, detail="closed"))

    def set_session_open(self, session_open: bool) -> None:
        """The relay's interlock: without a session, a sender's motion lines are refused."""
        if self.relay is not None:
            with self._relay_lock:
                self.relay.session_open = session_open

    @property
    def running(self) -> bool:
        """True while the reader thread lives: it must survive anything on the wire."""
        return self._reader is not None and self._reader.is_alive()

    # -- threads -----------------------------------------------------------------------

    def _guarded(self, loop: Callable[[], None]) -> None:
        """Last line of defence: a bug must cost a log line and a retry, not the thread."""
        while not self._stop.is_set():
            try:
                loop()
            except Exception:
                log.exception("GRBL driver for %s: unexpected error; carrying on", self.port)
                self._stop.wait(1.0)

    def _read_loop(self) -> None:
        backoff = self.RECONNECT_MIN
        while not self._stop.is_set():
            if self._serial is None:
                if self._open():
                    backoff = self.RECONNECT_MIN
                else:
                    self._stop.wait(backoff)
                    backoff = min(backoff * 2, self.RECONNECT_MAX)
                continue
            try:
                data = self._serial.read(self._serial.in_waiting or 1)
            except (serial.SerialException, OSError, TypeError, AttributeError) as exc:
                # TypeError/AttributeError: pyserial's fd vanished under a concurrent close
                if self._stop.is_set():
                    return
                self._warn_link("GRBL link on %s lost: %s", self.port, exc)
                self._drop_link()
                self._report_link_lost()
                self._tell_sender_link_lost()
                continue
            if data:
                self._feed(data)

    def _poll_loop(self) -> None:
        # With a sender link, the node polls only when no `?` (the sender's included)
        # went out for a poll interval: it checks four times as often to fill the gap.
        tick = self.poll_interval if self.relay is None else self.poll_interval / 4
        while not self._stop.wait(tick):
            if self._serial is None:
                continue
            if self.relay is None:
                self._write(STATUS_QUERY)
            else:
                with self._relay_lock:
                    if self.relay.poll_due(self._mono()):
                        self._write(STATUS_QUERY)
            with self._status_cond:
                heard = max(self._last_status_at, self._connected_at)
                silent = time.monotonic() - heard > self.answer_timeout and not self._silent
                if silent:
                    self._silent = True
            if silent:
                log.warning("GRBL on %s: no answer for %.1fs", self.port, self.answer_timeout)
                self._report(MachineReport(Activity.UNKNOWN, detail="no answer"))

    # -- link --------------------------------------------------------------------------

    def _open(self) -> bool:
        try:
            link = self._serial_factory(
                self.port,
                baudrate=self.baudrate,
                timeout=self.READ_TIMEOUT,
                write_timeout=self.WRITE_TIMEOUT,
                exclusive=True,
            )
        except (serial.SerialException, OSError, ValueError) as exc:
            self._warn_link("cannot open GRBL port %s: %s", self.port, exc)
            self._report_link_lost()
            return False
        log.info("GRBL port %s open", self.port)
        self.opens += 1
        self._partial.clear()
        self._jobs.reset()  # opening may have reset the board; a new job needs a new Run
        self._alarm_code = None
        with self._io_lock:
            self._serial = link
        with self._status_cond:
            self._connected_at = time.monotonic()
            self._silent = False
            self._link_lost_reported = False
        return True

    def _drop_link(self) -> None:
        with self._io_lock:
            link, self._serial = self._serial, None
        if link is not None:
            try:
                link.close()
            except Exception as exc:  # closing a dead port may fail in many ways
                log.debug("closing GRBL port %s: %s", self.port, exc)

    def _write(self, data: bytes) -> bool:
        """Send bytes if the link is up; a failure is logged, never a reason to reopen."""
        with self._io_lock:
            link = self._serial
            if link is None:
                return False
            try:
                link.write(data)
                return True
            except (serial.SerialException, OSError, TypeError, AttributeError) as exc:
                log.debug("write to GRBL on %s failed: %s", self.port, exc)
                return False

    def _report_link_lost(self) -> None:
        with self._status_cond:
            if self._link_lost_reported:
                return
            self._link_lost_reported = True
            self._last_state = None
        self._report(MachineReport(Activity.UNKNOWN, detail="link lost"))

    def _report(self, report: MachineReport) -> None:
        with self._report_lock:
            self._emit(report)

    # -- parsing -----------------------------------------------------------------------

    def _feed(self, data: bytes) -> None:
        self._partial += data
        *lines, rest = self._partial.split(b"\n")
        self._partial = bytearray(rest)
        if len(self._partial) > _MAX_PARTIAL:
            self._garbage("no line end in %d bytes", len(self._partial))
            self._to_sender(bytes(self._partial))
            self._partial.clear()
        for raw in lines:
            self._to_sender(bytes(raw) + b"\n")
            self._on_raw_line(bytes(raw.rstrip(b"\r")))

    def _garbage(self, why: str, *args: object) -> None:
        self.garbage_lines += 1
        self._warn_garbage("GRBL on %s: skipped garbage: " + why, self.port, *args)

    def _on_raw_line(self, raw: bytes) -> None:
        text = raw.decode("ascii", errors="replace")
        clean = text.isprintable() and "\ufffd" not in text
        if not clean:
            self._garbage("%r", raw[:60])
        line = text.strip()
        if not line:
            return
        status = parse_status(line)
        if status is not None:
            self._on_status(status)
            return
        if not clean:
            return
        if match := _ALARM.fullmatch(line):
            self._alarm_code = int(match.group(1))
            self._jobs.reset()
            self._stream_count(ended=True)
            log.warning("GRBL on %s: %s", self.port, alarm_detail(self._alarm_code))
            self._report(
                MachineReport(
                    Activity.ALARM,
                    detail=alarm_detail(self._alarm_code),
                    data=self._data(state="Alarm"),
                )
            )
        elif match := _ERROR.fullmatch(line):
            self._last_error = error_detail(int(match.group(1)))
            log.info("GRBL on %s answered %s", self.port, self._last_error)
        elif match := _WELCOME.fullmatch(line):
            self._version = match.group(1)
            self._jobs.reset()  # a reset flushed the planner: whatever ran is gone
            self._stream_count(ended=True)
            log.info("GRBL %s on %s (re)started", self._version, self.port)
        elif _IGNORED.fullmatch(line):
            log.debug("GRBL on %s: %s", self.port, line)
        else:
            self._garbage("%r", line[:60])

    def _on_status(self, status: Status) -> None:
        now = time.monotonic()
        was_job = self._jobs.active
        job = self._jobs.update(status)
        base = status.base_state
        if base != "Alarm":
            self._alarm_code = None
        activity = STATE_ACTIVITY[base]
        if base == "Alarm" and self._alarm_code is not None:
            detail = alarm_detail(self._alarm_code)
        elif status.state in SUBSTATE_MEANINGS:
            detail = f"{status.state} {SUBSTATE_MEANINGS[status.state]}"
        else:
            detail = status.state
        data = self._data(state=status.state, job=job)
        for name, key in (("MPos", "mpos"), ("WPos", "wpos")):
            if (values := status.numbers(name)) is not None:
                data[key] = values
        if (fs := status.numbers("FS")) is not None:
            data["feed"], data["spindle"] = fs[0], fs[1] if len(fs) > 1 else 0.0
        elif (feed := status.numbers("F")) is not None:
            data["feed"] = feed[0]
        if (buffer := status.buffer) is not None:
            data["buffer"] = list(buffer)
        count = self._stream_count(ended=was_job and not job)
        job_name: str | None = None
        progress: float | None = None
        lines_done: int | None = None
        if count is not None and count.sent and (job or was_job):
            job_name, progress, lines_done = count.name, count.percent, count.acked
            data["lines"] = {"sent": count.sent, "acked": count.acked, "total": count.total}
            detail = f"{detail}, {_lines_text(count)}"
        with self._status_cond:
            self._status_seq += 1
            self._last_state = status.state
            self._last_status_at = now
            recovered = self._silent
            self._silent = False
            self._status_cond.notify_all()
        if recovered:
            log.info("GRBL on %s answers again", self.port)
        self._report(
            MachineReport(
                activity,
                job_name=job_name,
                progress=progress,
                lines_done=lines_done,
                detail=detail,
                data=data,
            )
        )

    def _data(self, **extra: object) -> dict[str, object]:
        data: dict[str, object] = {"garbage_lines": self.garbage_lines}
        if self._version:
            data["version"] = self._version
        if self._last_error:
            data["last_error"] = self._last_error
        data.update(extra)
        return data

    # -- the sender link (see gateway/policies/grbl_relay.py) ---------------------------

    def _from_sender(self, data: bytes) -> None:
        """The link's thread: the sender's bytes, judged, to the controller and back."""
        assert self.relay is not None and self.link is not None
        with self._relay_lock:
            relayed = self.relay.from_sender(data, self._mono())
            if relayed.to_controller and not self._write(relayed.to_controller):
                log.info("GRBL on %s: link down, sender bytes dropped", self.port)
            self.link.send(relayed.to_sender)

    def _to_sender(self, raw: bytes) -> None:
        """The reader thread: one raw line from the controller, for the sender if it is its."""
        if self.relay is None or self.link is None:
            return
        with self._relay_lock:
            self.link.send(self.relay.from_controller(raw, self._mono()))

    def _sender_connected(self) -> None:
        assert self.relay is not None
        with self._relay_lock:
            self.relay.connect()
        log.info("GRBL on %s: a sender is connected through the node", self.port)

    def _sender_disconnected(self) -> None:
        assert self.relay is not None
        with self._relay_lock:
            self.relay.disconnect()
        log.info("GRBL on %s: the sender disconnected", self.port)

    def _tell_sender_link_lost(self) -> None:
        """The cable went: what was in flight is lost; a TCP sender is disconnected."""
        if self.relay is None or self.link is None:
            return
        with self._relay_lock:
            self.relay.controller_reset()
            self.link.hang_up(b"[MSG:fabgate: the controller's USB link was lost]\r\n")

    def _stream_count(self, *, ended: bool) -> StreamCount | None:
        """The sender's count for the current job; a job that ended starts a new one."""
        if self.relay is None:
            return None
        with self._relay_lock:
            count = self.relay.count
            if ended:
                self.relay.new_stream()
        return count


def _lines_text(count: StreamCount) -> str:
    if count.total:
        return f"{count.acked} of {count.total} lines"
    return f"{count.acked}/{count.sent} lines acknowledged"
