"""Following a machine that has no data link by the current it draws.

Embroidery machines and CO2 lasers on Ruida controllers cannot be asked what they are
doing, so the node clamps a current transformer (e.g. an SCT-013) around one conductor of
the machine's supply and reads it in one of two ways:

- :class:`Mcp3008Sensor`: an MCP3008 ADC on the Pi's SPI bus, read through gpiozero, which
  samples a burst covering whole mains cycles and computes the RMS on the Pi;
- :class:`SerialSenseBoard`: a small microcontroller ("sense board", see
  ``firmware/sense-board``) that does the sampling itself and prints one RMS value per
  window over USB serial. It keeps a Pi's SPI pins free and samples evenly, which
  Python on a busy Pi does not.

:class:`CurrentController` turns either into :class:`~gateway.core.activity.MachineReport`
snapshots through the pure :class:`~gateway.policies.current.BusyDetector`.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

import serial
from gpiozero import MCP3008

from gateway.core.activity import EDGE_AGE, PERMISSIVES, Activity, MachineReport
from gateway.core.clock import MonoClock
from gateway.drivers.machines import sense_protocol
from gateway.drivers.machines.base import MachineController
from gateway.policies.current import BusyDetector, rms_amps

__all__ = [
    "PROTOCOL_MAJOR",
    "CurrentController",
    "CurrentSensor",
    "Mcp3008Sensor",
    "SensorError",
    "SerialSenseBoard",
    "parse_line",
]

log = logging.getLogger(__name__)


#: Sense-board protocol major version this driver speaks (``HELLO fabgate-sense 2.x``).
PROTOCOL_MAJOR = sense_protocol.PROTOCOL_MAJOR
parse_line = sense_protocol.parse_line
LINK_LOST = "link lost"


class SensorError(Exception):
    """The sensor cannot tell the current now; ``str()`` is shown to people as is."""


class CurrentSensor(ABC):
    """Something that measures the RMS current of one conductor."""

    @abstractmethod
    def read_amps(self) -> float:
        """Current RMS amps; may block for about one measuring window.

        Raises :class:`SensorError` when there is no trustworthy value, rather than
        returning 0: "no current" and "no idea" must not look alike, or a broken clamp
        would end every job it was supposed to meter.
        """

    def permissives(self) -> dict[int, bool]:
        """Permissive inputs the sensor reads (input -> closed), read after ``read_amps``.

        Only the sense board has them; an input missing from the answer is unknown, which
        a node configured to need it treats as off.
        """
        return {}

    def close(self) -> None:  # noqa: B027 - sensors without resources need nothing
        """Release the hardware; idempotent."""


class Mcp3008Sensor(CurrentSensor):
    """One MCP3008 channel, sampled in bursts long enough to span whole mains cycles.

    Each :meth:`read_amps` samples as fast as the SPI bus allows for ``window_s`` (by the
    injected clock) and returns the RMS. A time window rather than a sample count keeps
    the window an integer number of cycles whatever the sampling rate, which varies with
    the Pi model and its load; 0.2 s is 10 cycles at 50 Hz and 12 at 60 Hz.
    ``max_samples`` bounds a read on a pathologically fast or stuck clock.
    """

    def __init__(
        self,
        channel: int,
        *,
        scale: float,
        offset: float | None = None,
        window_s: float = 0.2,
        max_samples: int = 20_000,
        min_samples: int = 20,
        clock: MonoClock = time.monotonic,
        pin_factory: Any = None,
        **spi_args: Any,
    ) -> None:
        if window_s <= 0 or max_samples < min_samples or min_samples < 1:
            raise ValueError("window_s must be positive and min_samples <= max_samples")
        self.channel = channel
        self.scale = scale
        self.offset = offset
        self.window_s = window_s
        self.max_samples = max_samples
        self.min_samples = min_samples
        self._clock = clock
        self._adc: MCP3008 | None = MCP3008(channel=channel, pin_factory=pin_factory, **spi_args)

    def read_amps(self) -> float:
        adc = self._adc
        if adc is None:
            raise SensorError("ADC closed")
        samples: list[int] = []
        try:
            start = self._clock()
            while len(samples) < self.max_samples:
                samples.append(adc.raw_value)
                if self._clock() - start >= self.window_s:
                    break
        except Exception as exc:  # gpiozero/spidev raise assorted types on a bad bus
            raise SensorError(f"ADC read failed: {exc}") from exc
        if len(samples) < self.min_samples:
            # Too few points per cycle and the RMS depends on where they fell.
            raise SensorError(f"ADC too slow: {len(samples)} samples in {self.window_s} s")
        return rms_amps(samples, offset=self.offset, scale=self.scale)

    def close(self) -> None:
        adc, self._adc = self._adc, None
        if adc is not None:
            adc.close()


class SerialSenseBoard(CurrentSensor):
    """A sense board on a USB serial port, one of its channels (protocol 2, PROTOCOL.md).

    No reader thread: :meth:`read_amps` drains what has arrived and keeps the newest value
    for our channel, so a reader slower than the board never falls behind on stale
    lines. A value counts for ``silence_s`` after it arrived (the board repeats it every
    200 ms); after that the board is "silent". Just after (re)opening, the board gets
    ``open_grace_s`` instead: opening the port resets an Arduino (DTR), whose
    bootloader then waits about two seconds.

    At every (re)open the driver asks ``VERSION?`` (again every second until answered)
    and takes no value before the board has said which protocol it speaks: a board of
    another major version (a protocol-1 board prints an unchecked banner) is refused
    with an error that says so, never half read. Every board line carries a CRC-8; a
    line whose checksum is missing or wrong is dropped and counted in ``bad_checksums``.

    The board's permissive inputs (``P <n> 0|1``, printed on change and every second)
    are in :meth:`permissives`; an input not heard from for ``permissive_valid_s`` is
    left out, i.e. unknown.

    A read or open error means "link lost"; the port is dropped and reopened on the next
    read, so a board unplugged and plugged back in (same device path) recovers alone.
    """

    def __init__(
        self,
        port: str,
        *,
        channel: int = 0,
        baudrate: int = 115200,
        silence_s: float = 1.0,
        open_grace_s: float = 3.0,
        permissive_valid_s: float = 3.0,
        clock: MonoClock = time.monotonic,
        serial_factory: Callable[..., serial.Serial] = serial.Serial,
    ) -> None:
        self.port = port
        self.channel = channel
        self.baudrate = baudrate
        self.silence_s = silence_s
        self.open_grace_s = open_grace_s
        self.permissive_valid_s = permissive_valid_s
        self.firmware_version: str | None = None  # the firmware's, from VERSION
        self.protocol_version: str | None = None  # from VERSION or HELLO
        self.board_id: str | None = None
        self.bad_checksums = 0
        self.incompatible: str | None = None  # why the board is refused, while it is
        self._clock = clock
        self._factory = serial_factory
        self._ser: serial.Serial | None = None
        self._buf = b""
        self._amps: float | None = None
        self._valid_until = 0.0
        self._identified = False
        self._next_query = 0.0
        self._permissives: dict[int, tuple[bool, float]] = {}  # input -> (closed, valid until)
        self._pong = False
        self._closed = threading.Event()
        self._io = threading.Lock()  # close() waits for a read in progress to let go

    _STEP_S = 0.05  # longest single blocking read: bounds how late close() is noticed
    _MAX_LINE = 256  # a "line" longer than this is noise; drop it instead of growing
    _MAX_DRAIN = 16384  # bytes per drain, so a babbling device cannot hold the reader
    _QUERY_EVERY_S = 1.0  # VERSION? again while the board has not answered

    def read_amps(self) -> float:
        with self._io:
            if self._closed.is_set():
                raise SensorError("sensor closed")
            ser = self._open()
            try:
                fresh = self._drain(ser)
                while not fresh and self._amps is None and self._clock() < self._valid_until:
                    if self._closed.is_set():
                        raise SensorError("sensor closed")
                    fresh = self._drain(ser)
            except (serial.SerialException, OSError) as exc:
                log.warning("sense board on %s: %s", self.port, exc)
                self._drop()
                raise SensorError(LINK_LOST) from exc
            if self.incompatible is not None:
                raise SensorError(self.incompatible)
            if not self._identified and self._clock() >= self._valid_until:
                raise SensorError(
                    "sense board did not say which protocol it speaks (no VERSION or "
                    f"HELLO line; {self.bad_checksums} lines with a bad or missing "
                    f"checksum): flash protocol-{PROTOCOL_MAJOR} firmware (firmware/README.md)"
                )
            if self._amps is None or self._clock() >= self._valid_until:
                self._amps = None
                raise SensorError("sense board silent")
            return self._amps

    def permissives(self) -> dict[int, bool]:
        """The permissive inputs heard from recently: input -> closed (True is OK)."""
        with self._io:
            now = self._clock()
            if self.incompatible is not None or not self._identified:
                return {}
            return {n: closed for n, (closed, until) in self._permissives.items() if now < until}

    def ping(self, timeout: float = 1.0) -> float:
        """Send ``PING`` and wait for ``PONG``: the round trip in seconds (clock's units).

        For diagnostics (``fabgate``-side tools, the bench rig): the value stream already
        shows that the board is alive, this shows that it hears the host too.
        """
        with self._io:
            if self._closed.is_set():
                raise SensorError("sensor closed")
            ser = self._open()
            start = self._clock()
            try:
                self._pong = False
                ser.write(sense_protocol.seal("PING"))
                while not self._pong:
                    if self._clock() - start >= timeout or self._closed.is_set():
                        raise SensorError(f"sense board did not answer PING within {timeout:g} s")
                    self._drain(ser)
            except (serial.SerialException, OSError) as exc:
                self._drop()
                raise SensorError(LINK_LOST) from exc
            return self._clock() - start

    def _open(self) -> serial.Serial:
        if self._ser is not None:
            return self._ser
        try:
            self._ser = self._factory(self.port, baudrate=self.baudrate, timeout=self._STEP_S)
        except (serial.SerialException, OSError) as exc:
            log.debug("cannot open sense board port %s: %s", self.port, exc)
            raise SensorError(LINK_LOST) from exc
        self._buf = b""
        self._amps = None
        self._permissives.clear()
        # Another board may be behind the same path now: it has to say who it is again.
        self._identified = False
        self.incompatible = None
        self._valid_until = self._clock() + self.open_grace_s
        self._next_query = 0.0
        return self._ser

    def _query(self, ser: serial.Serial) -> None:
        """Ask ``VERSION?`` while the board has not identified itself (a resetting board
        misses what was sent during its boot)."""
        if self._identified or self.incompatible is not None:
            return
        now = self._clock()
        if now < self._next_query:
            return
        self._next_query = now + self._QUERY_EVERY_S
        ser.write(sense_protocol.seal("VERSION?"))

    def _drain(self, ser: serial.Serial) -> bool:
        """Read what is there (waiting at most one step); True if a new value came."""
        self._query(ser)
        fresh = False
        budget = self._MAX_DRAIN
        # Always one read(), not just in_waiting: only a read notices a hung-up device.
        # After that, only what has already arrived, or a board printing every few ms
        # would keep us here for good.
        data = ser.read(max(1, ser.in_waiting))
        while data:
            budget -= len(data)
            self._buf += data
            *lines, self._buf = self._buf.split(b"\n")
            if len(self._buf) > self._MAX_LINE:
                self._buf = b""
            for line in lines:
                fresh = self._take(line) or fresh
            waiting = ser.in_waiting if budget > 0 else 0
            data = ser.read(waiting) if waiting else b""
        return fresh

    def _take(self, line: bytes) -> bool:
        parsed = parse_line(line)
        if parsed is None:
            if line.strip():
                log.debug("sense board: skipped %r", line[:80])
            return False
        kind, value = parsed
        if kind == "BAD":
            self.bad_checksums += 1
            log.debug("sense board: bad or missing checksum, dropped %r", line[:80])
            return False
        if kind == "LEGACY":
            self._version(None, value, None)
            return False
        if kind == "HELLO":
            self._version(None, value, None)
            return False
        if kind == "VERSION":
            self._version(*value)
            return False
        if kind == "PONG":
            self._pong = True
            return False
        if not self._identified:
            return False  # a value from a board that has not said what it speaks
        if kind == "P":
            index, closed = value
            self._permissives[index] = (closed, self._clock() + self.permissive_valid_s)
            return False
        if kind != "I":
            return False
        channel, amps = value
        if channel != self.channel:
            return False
        self._amps = amps
        self._valid_until = self._clock() + self.silence_s
        return True

    def _version(self, firmware: str | None, protocol: str, board_id: str | None) -> None:
        if sense_protocol.major_of(protocol) != PROTOCOL_MAJOR:
            reason = (
                f"incompatible sense board on {self.port}: it speaks protocol {protocol}, "
                f"this gateway protocol {PROTOCOL_MAJOR}; flash the firmware in "
                "firmware/sense-board (firmware/README.md)"
            )
            if reason != self.incompatible:
                log.error("%s", reason)
            self.incompatible = reason
            self._identified = False
            self._amps = None
            self._permissives.clear()
            return
        self.incompatible = None
        self.protocol_version = protocol
        if firmware is not None:
            self.firmware_version, self.board_id = firmware, board_id
        if not self._identified:
            self._identified = True
            log.info(
                "sense board on %s: protocol %s, firmware %s, board %s",
                self.port,
                protocol,
                self.firmware_version or "?",
                self.board_id or "?",
            )

    def _drop(self) -> None:
        ser, self._ser = self._ser, None
        self._amps = None
        self._permissives.clear()
        if ser is not None:
            with contextlib.suppress(serial.SerialException, OSError):
                ser.close()

    def close(self) -> None:
        self._closed.set()
        with self._io:
            self._drop()


class CurrentController(MachineController):
    """A :class:`MachineController` for machines followed only by their current draw.

    Every sample becomes a report: IDLE or BUSY (the detector's debounced state) with
    ``data={"amps": ...}``, or UNKNOWN with the sensor's reason when it cannot be read.
    The report of the sample that confirmed a change also carries ``edge_age_s``, how
    long before it the change really began (the debounce's delay), and every report the
    permissive inputs the sensor heard (``permissives``).
    The controller owns the sensor and closes it.

    There is no data link, so :meth:`safe_stop` cannot stop a job: the only way to stop
    such a machine is its power, and the relay belongs to the node, not to drivers.
    """

    def __init__(
        self,
        sensor: CurrentSensor,
        detector: BusyDetector,
        *,
        sample_interval: float = 0.5,
        clock: MonoClock = time.monotonic,
    ) -> None:
        super().__init__()
        self.sensor = sensor
        self.detector = detector
        self.sample_interval = sample_interval
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._state_lock = threading.Lock()
        self._failing = False

    def start(self) -> None:
        with self._state_lock:
            if self._closed:
                raise RuntimeError("controller closed")
            if self._thread is not None:
                return
            self._thread = threading.Thread(
                target=self._run, name="current-controller", daemon=True
            )
            self._thread.start()

    def safe_stop(self) -> None:
        """Do nothing: a machine without a data link can only be stopped by its power."""
        log.info("safe_stop on a current-followed machine: no data link, nothing to ask")

    def close(self) -> None:
        with self._state_lock:
            if self._closed:
                return
            self._closed = True
            thread = self._thread
        self._stop.set()
        if thread is threading.current_thread():
            thread = None  # closed from a subscriber: the loop ends after this sample
        if thread is not None:
            # Let a read in progress finish (an ADC burst is 0.2 s) rather than pull the
            # bus from under it; a sensor still blocked after that (a serial board that
            # has not spoken since it was opened) is woken by its close().
            thread.join(timeout=1.0)
        self.sensor.close()
        if thread is not None:
            thread.join(timeout=5.0)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.sample_once()
            except Exception:  # the loop must outlive any bug in a sensor or callback
                log.exception("current controller: sample failed")
            self._stop.wait(self.sample_interval)

    def sample_once(self) -> None:
        """Read the sensor once and report: what the thread does every ``sample_interval``.

        Public for tests and benches that drive time themselves (an injected clock and
        no ``start()``), so a 25 s job takes no 25 s.
        """
        try:
            amps = self.sensor.read_amps()
            if not math.isfinite(amps):
                raise SensorError(f"sensor returned {amps!r}")
        except Exception as exc:
            if self._stop.is_set():
                return  # closing: the error is ours, not the machine's
            self._fail(exc)
            return
        if self._failing:
            log.info("current sensor back: %.2f A", amps)
            self._failing = False
        now = self._clock()
        data: dict[str, object] = {"amps": amps}
        if self.detector.feed(now, amps) is not None:
            # The debounce decided only now, but the change began at the run's first
            # sample: the node meters busy time from there (docs/design.md, "Metering,
            # holds and permissives").
            data[EDGE_AGE] = max(0.0, now - self.detector.edge)
        permissives = self.sensor.permissives()
        if permissives:
            data[PERMISSIVES] = permissives
        self._emit(MachineReport(self.detector.state, detail=f"{amps:.2f} A", data=data))

    def _fail(self, exc: Exception) -> None:
        detail = str(exc) if isinstance(exc, SensorError) else f"sensor error: {exc}"
        if not self._failing:
            log.warning("current sensor: %s", detail)
            self._failing = True
        self.detector.gap()
        self._emit(MachineReport(Activity.UNKNOWN, detail=detail))
