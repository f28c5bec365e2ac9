"""Deciding from a current clamp whether a machine without a data link is running a job.

An embroidery machine or a Ruida-controlled CO2 laser tells us nothing over a wire, but
the current it draws does: the spindle, tube or needle motor pulls amps while a job runs.
Raw current is a poor signal on its own, though. The laser's water pump and air assist,
a stepper homing, or the inrush when the machine is switched on all make short spikes,
and a laser between two passes (or an embroidery machine during a thread change) drops
to standby for a few seconds in the middle of a job. Billing those as job starts and
ends would be wrong both ways, so :class:`BusyDetector` adds two things:

- *hysteresis*: a current must reach ``threshold_on_a`` to count towards a job and fall
  below ``threshold_off_a`` to count towards its end. Anything in between (a noisy
  standby draw, a slow ramp) keeps the current state and restarts both debounce timers,
  so noise straddling one threshold cannot toggle the state.
- *debounce*: BUSY only once the current has stayed at or above ``threshold_on_a`` for
  ``on_after_s`` seconds without interruption; IDLE only once it has stayed below
  ``threshold_off_a`` for ``off_after_s`` seconds.

The detector starts IDLE: it answers "has a job been seen?", and at start none has. A
node powers its machine through the relay only after a badge tap, so at boot the machine
draws nothing anyway; if it does (a machine on a permanent supply), the BUSY rule
applies as for any other start.

Everything here is pure: the caller passes the time (a monotonic clock in the driver, a
number in tests) and the amps.

Calibration (:func:`rms_amps`)
------------------------------
A clamp gives an alternating current; what matters is its RMS over whole mains cycles.
Samples are raw ADC counts around a mid-rail bias, and two numbers turn them into amps:

- ``offset``: the count that means 0 A. ``None`` takes the mean of the window, which is
  what to use when the window spans whole mains cycles (200 ms is 10 cycles at 50 Hz and
  12 at 60 Hz): it follows the bias as resistors drift with temperature, where a fixed
  512 would read a few tenths of an amp at rest.
- ``scale``: amps per count. For a current-output clamp (SCT-013-000, 100 A : 50 mA,
  i.e. 2000 turns) across a burden resistor, see :func:`burden_scale`; for a
  voltage-output clamp (SCT-013-030: 30 A per volt), see :func:`voltage_output_scale`.
  Then refine it against a trusted clamp meter on a resistive load (a kettle or a heat
  gun) with :func:`calibrated_scale`: component tolerances easily make 5-10 %.

With no current flowing the result is not 0: ADC noise gives a floor of a few tenths of a
count. Set ``threshold_off_a`` well above that floor times ``scale``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from gateway.core.activity import Activity

__all__ = [
    "BusyDetector",
    "burden_scale",
    "calibrated_scale",
    "rms_amps",
    "voltage_output_scale",
]


def rms_amps(samples: Sequence[float], *, offset: float | None, scale: float) -> float:
    """RMS current of one window of raw ADC samples, in amps.

    The mean is removed with the exact two-pass formula rather than ``E[x²] - E[x]²``:
    with a bias of ~512 counts and a signal of a few counts the one-pass form cancels
    away most of the precision of the small current we most need to see (the idle draw).
    """
    if not samples:
        raise ValueError("no samples: an empty window has no current")
    if not math.isfinite(scale) or scale <= 0:
        raise ValueError(f"scale must be a positive number of amps per count, got {scale!r}")
    centre = math.fsum(samples) / len(samples) if offset is None else offset
    mean_square = math.fsum((s - centre) ** 2 for s in samples) / len(samples)
    return math.sqrt(mean_square) * scale


def burden_scale(*, vref: float, adc_bits: int, turns: float, burden_ohms: float) -> float:
    """Amps per count for a current-output clamp across a burden resistor.

    One count is ``vref / 2**adc_bits`` volts across the burden, i.e. that divided by
    ``burden_ohms`` in the secondary, i.e. ``turns`` times more in the conductor.
    """
    if vref <= 0 or adc_bits <= 0 or turns <= 0 or burden_ohms <= 0:
        raise ValueError("vref, adc_bits, turns and burden_ohms must all be positive")
    return vref / 2**adc_bits / burden_ohms * turns


def voltage_output_scale(*, vref: float, adc_bits: int, amps_per_volt: float) -> float:
    """Amps per count for a clamp with a built-in burden (rated e.g. "30A/1V")."""
    if vref <= 0 or adc_bits <= 0 or amps_per_volt <= 0:
        raise ValueError("vref, adc_bits and amps_per_volt must all be positive")
    return vref / 2**adc_bits * amps_per_volt


def calibrated_scale(scale: float, *, measured_amps: float, reference_amps: float) -> float:
    """Correct ``scale`` so that a load we read as ``measured_amps`` reads ``reference_amps``.

    RMS is linear in the scale, so one reference point on a steady resistive load fixes
    the whole range; a reactive load (a motor) would make a clamp meter and our RMS
    disagree for reasons unrelated to the scale.
    """
    if measured_amps <= 0 or reference_amps <= 0:
        raise ValueError("calibrate on a load that draws current")
    return scale * reference_amps / measured_amps


@dataclass
class BusyDetector:
    """Hysteresis plus debounce over a stream of ``(time, amps)`` samples.

    ``feed`` returns the new :class:`Activity` when the state changes and ``None``
    otherwise. Times must not go backwards: the debounce measures durations, and a wall
    clock stepped by NTP would stretch or cut them.
    """

    threshold_on_a: float
    threshold_off_a: float
    on_after_s: float
    off_after_s: float

    def __post_init__(self) -> None:
        values = (self.threshold_on_a, self.threshold_off_a, self.on_after_s, self.off_after_s)
        if not all(math.isfinite(v) and v >= 0 for v in values):
            raise ValueError("thresholds and delays must be finite and not negative")
        if self.threshold_off_a > self.threshold_on_a:
            raise ValueError(
                f"threshold_off_a ({self.threshold_off_a} A) above threshold_on_a "
                f"({self.threshold_on_a} A) would let one current be both busy and idle"
            )
        self._state = Activity.IDLE
        self._pending_since: float | None = None  # start of the run that may flip the state
        self._last_t: float | None = None
        self._edge: float | None = None

    @property
    def edge(self) -> float:
        """When the run that made the last change began: the *real* edge.

        The debounce confirms a change ``on_after_s`` or ``off_after_s`` after it began;
        busy time must run between the real edges (the first sample at or above
        ``threshold_on_a``, the first below ``threshold_off_a`` that led to idle), or
        every job would be metered longer by ``off_after_s - on_after_s``. Before any
        change: the last sample's time.
        """
        if self._edge is not None:
            return self._edge
        return self._last_t if self._last_t is not None else 0.0

    @property
    def state(self) -> Activity:
        """IDLE or BUSY: the debounced state after the last sample."""
        return self._state

    def feed(self, t: float, amps: float) -> Activity | None:
        if not math.isfinite(amps) or not math.isfinite(t):
            raise ValueError(f"not a measurement: t={t!r}, amps={amps!r}")
        if self._last_t is not None and t < self._last_t:
            raise ValueError(f"time went backwards: {t} after {self._last_t}")
        self._last_t = t
        if self._state is Activity.IDLE:
            towards_other, delay = amps >= self.threshold_on_a, self.on_after_s
            other = Activity.BUSY
        else:
            towards_other, delay = amps < self.threshold_off_a, self.off_after_s
            other = Activity.IDLE
        if not towards_other:
            self._pending_since = None
            return None
        if self._pending_since is None:
            self._pending_since = t
        if t - self._pending_since >= delay:
            self._state = other
            self._edge = self._pending_since
            self._pending_since = None
            return other
        return None

    def gap(self) -> None:
        """Forget the run in progress: samples on both sides of a gap are not continuous.

        Called when the sensor could not be read. Without it, a current seen before a
        link outage and again after it would count as having stayed up the whole time.
        The debounced state is kept: the job did not end because we looked away.
        """
        self._pending_since = None
