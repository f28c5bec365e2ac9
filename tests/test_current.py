"""Machines followed by their current draw: detector, RMS, sensors and the controller.

Threads are synchronised on reports, never on sleeps: a helper waits until the
controller has emitted a report that was sampled entirely after the change under test.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from gpiozero.pins.mock import MockFactory, MockSPIDevice
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.core.activity import Activity, MachineReport
from gateway.drivers.machines.current import (
    CurrentController,
    CurrentSensor,
    Mcp3008Sensor,
    SensorError,
    SerialSenseBoard,
    parse_line,
)
from gateway.drivers.machines.sense_protocol import BAD_CHECKSUM, seal
from gateway.drivers.simulators.current import SenseBoardSimulator, SimulatedCurrent
from gateway.policies.current import (
    BusyDetector,
    burden_scale,
    calibrated_scale,
    rms_amps,
    voltage_output_scale,
)
from tests.support.clock import FakeMono, StepMono

WAIT_S = 10.0


class Recorder:
    """Collects reports from the controller thread and lets the test wait on them."""

    def __init__(self) -> None:
        self.reports: list[MachineReport] = []
        self._cond = threading.Condition()

    def __call__(self, report: MachineReport) -> None:
        with self._cond:
            self.reports.append(report)
            self._cond.notify_all()

    def mark(self) -> int:
        with self._cond:
            return len(self.reports)

    def wait_for(
        self, pred: Callable[[MachineReport], bool], *, since: int = 0, what: str = ""
    ) -> MachineReport:
        with self._cond:
            found: list[MachineReport] = []

            def ready() -> bool:
                found[:] = [r for r in self.reports[since:] if pred(r)]
                return bool(found)

            if not self._cond.wait_for(ready, timeout=WAIT_S):
                tail = self.reports[-5:]
                pytest.fail(f"no report {what or 'matching'} within {WAIT_S} s; last: {tail}")
            return found[0]

    def fresh(self) -> MachineReport:
        """A report whose sample started after this call (the second one from now).

        The first report after a change may have read the sensor before it; the loop is
        sequential, so the second one cannot have.
        """
        start = self.mark()
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.reports) >= start + 2, timeout=WAIT_S):
                pytest.fail("the controller stopped reporting")
            return self.reports[start + 1]

    def since(self, start: int) -> list[MachineReport]:
        with self._cond:
            return list(self.reports[start:])


def amps_of(report: MachineReport) -> float | None:
    value = report.data.get("amps")
    return float(value) if isinstance(value, (int, float)) else None


# --------------------------------------------------------------------------- detector

ON_A, OFF_A = 2.0, 1.0

thresholds = st.tuples(
    st.floats(0.05, 50.0), st.floats(0.0, 0.95), st.floats(0.0, 30.0), st.floats(0.0, 60.0)
).map(
    lambda v: BusyDetector(
        threshold_on_a=v[0], threshold_off_a=v[0] * v[1], on_after_s=v[2], off_after_s=v[3]
    )
)


def make_busy(det: BusyDetector, t: float) -> float:
    """Drive ``det`` to BUSY by a sustained current; return the time it got there."""
    amps = det.threshold_on_a + 1.0
    det.feed(t, amps)
    t += det.on_after_s
    det.feed(t, amps)
    assert det.state is Activity.BUSY
    return t


@settings(max_examples=200)
@given(
    on_after=st.floats(0.5, 30.0),
    fraction=st.floats(0.0, 0.999),
    n_samples=st.integers(1, 40),
    over=st.floats(0.0, 100.0),
    low=st.floats(0.0, 1.999),
    repeats=st.integers(1, 5),
)
def test_a_blip_shorter_than_on_after_never_makes_busy(
    on_after: float, fraction: float, n_samples: int, over: float, low: float, repeats: int
) -> None:
    det = BusyDetector(ON_A, OFF_A, on_after_s=on_after, off_after_s=5.0)
    span = on_after * fraction  # first to last sample of the blip: shorter than on_after
    t = 0.0
    for _ in range(repeats):
        for i in range(n_samples):
            ti = t + span * i / max(1, n_samples - 1)
            assert det.feed(ti, ON_A + over) is None
        t += span + 0.01
        assert det.feed(t, low) is None  # one sample below threshold_on ends the blip
        t += 0.01
    assert det.state is Activity.IDLE


@settings(max_examples=200)
@given(det=thresholds, dt=st.floats(0.01, 5.0), over=st.floats(0.0, 100.0))
def test_sustained_current_always_makes_busy_exactly_after_on_after(
    det: BusyDetector, dt: float, over: float
) -> None:
    t0 = 50.0
    t = t0
    while True:
        change = det.feed(t, det.threshold_on_a + over)
        if t - t0 >= det.on_after_s:
            assert change is Activity.BUSY and det.state is Activity.BUSY
            break
        assert change is None and det.state is Activity.IDLE
        t += dt
    # ...and a sustained drop below threshold_off always ends it, after off_after.
    t1 = t + dt
    t = t1
    while True:
        change = det.feed(t, det.threshold_off_a * 0.5 if det.threshold_off_a else 0.0)
        if det.threshold_off_a == 0.0:
            assert change is None  # nothing is below 0 A: a zero off-threshold never ends
            break
        if t - t1 >= det.off_after_s:
            assert change is Activity.IDLE and det.state is Activity.IDLE
            break
        assert change is None and det.state is Activity.BUSY
        t += dt


@settings(max_examples=200)
@given(
    det=thresholds,
    start_busy=st.booleans(),
    noise=st.lists(
        st.tuples(st.floats(0.0, 0.999), st.floats(0.0, 100.0)), min_size=1, max_size=80
    ),
)
def test_noise_between_the_thresholds_never_toggles(
    det: BusyDetector, start_busy: bool, noise: list[tuple[float, float]]
) -> None:
    t = make_busy(det, 0.0) if start_busy else 0.0
    state = det.state
    lo, hi = det.threshold_off_a, det.threshold_on_a
    for position, dt in noise:
        t += dt  # steps up to 100 s: far longer than either delay
        amps = lo + (hi - lo) * position
        assert det.feed(t, amps) is None
        assert det.state is state


def test_a_dip_shorter_than_off_after_does_not_end_the_job() -> None:
    det = BusyDetector(ON_A, OFF_A, on_after_s=2.0, off_after_s=10.0)
    t = make_busy(det, 0.0)
    for dt in (1.0, 5.0, 9.9):  # laser between two passes
        assert det.feed(t + dt, 0.1) is None
    assert det.feed(t + 10.0, 5.0) is None  # back up before off_after: still the same job
    assert det.feed(t + 19.0, 0.1) is None
    assert det.state is Activity.BUSY
    assert det.feed(t + 29.0, 0.1) is Activity.IDLE


def test_gap_forgets_the_run_in_progress_but_keeps_the_state() -> None:
    det = BusyDetector(ON_A, OFF_A, on_after_s=2.0, off_after_s=2.0)
    det.feed(0.0, 5.0)
    det.gap()
    assert det.feed(2.0, 5.0) is None  # 0 -> 2 s was not observed continuously
    assert det.feed(4.0, 5.0) is Activity.BUSY
    det.gap()
    assert det.state is Activity.BUSY


def test_detector_rejects_inconsistent_settings_and_bad_samples() -> None:
    with pytest.raises(ValueError, match="threshold_off_a"):
        BusyDetector(1.0, 2.0, 1.0, 1.0)
    with pytest.raises(ValueError):
        BusyDetector(2.0, 1.0, -1.0, 1.0)
    det = BusyDetector(2.0, 1.0, 1.0, 1.0)
    det.feed(10.0, 0.0)
    with pytest.raises(ValueError, match="backwards"):
        det.feed(9.0, 0.0)
    with pytest.raises(ValueError):
        det.feed(11.0, math.nan)


# --------------------------------------------------------------------------- RMS


def sine(amplitude: float, offset: float, per_cycle: int, cycles: int, phase: float) -> list[float]:
    n = per_cycle * cycles
    return [offset + amplitude * math.sin(2 * math.pi * i / per_cycle + phase) for i in range(n)]


@settings(max_examples=200)
@given(
    amplitude=st.floats(0.0, 500.0),
    offset=st.floats(200.0, 800.0),
    per_cycle=st.integers(3, 200),
    cycles=st.integers(1, 12),
    phase=st.floats(0.0, 2 * math.pi),
    scale=st.floats(0.001, 1.0),
)
def test_rms_of_a_sine_over_whole_cycles_is_amplitude_over_root_two(
    amplitude: float, offset: float, per_cycle: int, cycles: int, phase: float, scale: float
) -> None:
    samples = sine(amplitude, offset, per_cycle, cycles, phase)
    expected = amplitude / math.sqrt(2) * scale
    assert rms_amps(samples, offset=offset, scale=scale) == pytest.approx(expected, abs=1e-6)
    # The mean of whole cycles is the bias itself, so the automatic offset agrees.
    assert rms_amps(samples, offset=None, scale=scale) == pytest.approx(expected, abs=1e-6)


def test_rms_of_quantised_ten_bit_samples_and_of_a_bias_alone() -> None:
    scale = burden_scale(vref=3.3, adc_bits=10, turns=2000, burden_ohms=68.0)
    amplitude_a = 10.0 * math.sqrt(2)  # a 10 A RMS load
    counts = [round(512 + amplitude_a / scale * math.sin(2 * math.pi * i / 40)) for i in range(400)]
    assert rms_amps(counts, offset=None, scale=scale) == pytest.approx(10.0, rel=0.01)
    # A bias that has drifted to 530 is no current with the automatic offset...
    assert rms_amps([530] * 100, offset=None, scale=scale) == 0.0
    # ...but reads as current against a fixed one: why None is the default.
    assert rms_amps([530] * 100, offset=512, scale=scale) == pytest.approx(18 * scale)
    with pytest.raises(ValueError):
        rms_amps([], offset=None, scale=scale)
    with pytest.raises(ValueError):
        rms_amps([1, 2], offset=None, scale=0.0)


def test_calibration_helpers() -> None:
    assert burden_scale(vref=3.3, adc_bits=10, turns=2000, burden_ohms=33.0) == pytest.approx(
        3.3 / 1024 / 33.0 * 2000
    )
    assert voltage_output_scale(vref=3.3, adc_bits=10, amps_per_volt=30.0) == pytest.approx(
        3.3 / 1024 * 30.0
    )
    assert calibrated_scale(0.1, measured_amps=9.0, reference_amps=9.9) == pytest.approx(0.11)


# --------------------------------------------------------------------------- controller


@pytest.fixture
def clock() -> FakeMono:
    return FakeMono()


@pytest.fixture
def rig(clock: FakeMono) -> Iterator[tuple[SimulatedCurrent, CurrentController, Recorder]]:
    sensor = SimulatedCurrent(clock=clock)
    detector = BusyDetector(ON_A, OFF_A, on_after_s=5.0, off_after_s=10.0)
    ctl = CurrentController(sensor, detector, sample_interval=0.002, clock=clock)
    rec = Recorder()
    ctl.subscribe(rec)
    ctl.start()
    try:
        yield sensor, ctl, rec
    finally:
        ctl.close()


def test_controller_reports_a_job_from_start_to_end_with_amps(
    rig: tuple[SimulatedCurrent, CurrentController, Recorder], clock: FakeMono
) -> None:
    sensor, ctl, rec = rig
    first = rec.wait_for(lambda r: True)
    assert first.activity is Activity.IDLE and amps_of(first) == 0.0
    sensor.run_job(6.5, 60.0)
    assert rec.fresh().activity is Activity.IDLE  # the job's first sample, at t0
    clock.advance(4.9)
    assert rec.fresh().activity is Activity.IDLE
    clock.advance(0.2)
    busy = rec.fresh()
    assert busy.activity is Activity.BUSY and amps_of(busy) == 6.5
    assert busy.detail == "6.50 A"
    clock.advance(60.0)  # job over, but a laser pauses between passes: not yet idle
    report = rec.fresh()
    assert report.activity is Activity.BUSY and amps_of(report) == 0.0
    clock.advance(10.1)
    assert rec.fresh().activity is Activity.IDLE
    assert ctl.last_report.activity is Activity.IDLE


def test_controller_never_reports_busy_for_a_blip(
    rig: tuple[SimulatedCurrent, CurrentController, Recorder], clock: FakeMono
) -> None:
    sensor, _, rec = rig
    for _ in range(3):  # the air assist, three times
        sensor.blip(8.0, 3.0)
        assert amps_of(rec.fresh()) == 8.0
        clock.advance(2.9)
        assert amps_of(rec.fresh()) == 8.0
        clock.advance(0.2)
        assert amps_of(rec.fresh()) == 0.0
    clock.advance(100.0)
    rec.fresh()
    assert all(r.activity is Activity.IDLE for r in rec.reports)


def test_sensor_errors_report_unknown_never_crash_and_break_the_debounce(
    rig: tuple[SimulatedCurrent, CurrentController, Recorder], clock: FakeMono
) -> None:
    sensor, ctl, rec = rig
    sensor.set_amps(6.0)
    assert rec.fresh().activity is Activity.IDLE  # run starts at t0
    clock.advance(3.0)
    sensor.fail("clamp disconnected")
    down = rec.fresh()
    assert down == MachineReport(Activity.UNKNOWN, detail="clamp disconnected")
    clock.advance(1.0)
    sensor.fail(None)
    assert rec.fresh().activity is Activity.IDLE  # t0+4, but the run restarted after the gap
    clock.advance(2.0)  # t0+6: would be BUSY had the run survived the outage
    assert rec.fresh().activity is Activity.IDLE
    clock.advance(3.1)
    assert rec.fresh().activity is Activity.BUSY
    assert ctl._thread is not None and ctl._thread.is_alive()


class ExplodingSensor(CurrentSensor):
    """A sensor with a bug: raises something that is not a SensorError, or returns NaN."""

    def __init__(self) -> None:
        self.mode = "boom"

    def read_amps(self) -> float:
        if self.mode == "boom":
            raise RuntimeError("bus on fire")
        if self.mode == "nan":
            return math.nan
        return 0.5


def test_unexpected_sensor_failures_are_unknown_too(clock: FakeMono) -> None:
    sensor = ExplodingSensor()
    ctl = CurrentController(
        sensor, BusyDetector(ON_A, OFF_A, 1.0, 1.0), sample_interval=0.002, clock=clock
    )
    rec = Recorder()
    ctl.subscribe(rec)
    ctl.start()
    try:
        report = rec.wait_for(lambda r: True)
        assert report.activity is Activity.UNKNOWN and "bus on fire" in report.detail
        sensor.mode = "nan"
        rec.wait_for(lambda r: "nan" in r.detail, since=rec.mark(), what="about NaN")
        sensor.mode = "ok"
        report = rec.wait_for(lambda r: r.activity is Activity.IDLE, since=rec.mark())
        assert amps_of(report) == 0.5
    finally:
        ctl.close()


def test_a_failing_subscriber_does_not_stop_the_controller(clock: FakeMono) -> None:
    sensor = SimulatedCurrent(clock=clock)
    ctl = CurrentController(
        sensor, BusyDetector(ON_A, OFF_A, 1.0, 1.0), sample_interval=0.002, clock=clock
    )
    calls: list[MachineReport] = []

    def broken(report: MachineReport) -> None:  # breaks the "must not raise" contract
        calls.append(report)
        if len(calls) == 1:
            raise RuntimeError("subscriber bug")

    ctl.subscribe(broken)
    rec = Recorder()
    ctl.subscribe(rec)
    ctl.start()
    try:
        sensor.set_amps(0.7)
        report = rec.wait_for(lambda r: amps_of(r) == 0.7)
        assert report.activity is Activity.IDLE and len(calls) > 1
    finally:
        ctl.close()


class ClosingSensor(SimulatedCurrent):
    def __init__(self) -> None:
        super().__init__()
        self.closes = 0

    def close(self) -> None:
        self.closes += 1


def test_safe_stop_leaves_the_job_alone_and_close_is_idempotent(clock: FakeMono) -> None:
    sensor = ClosingSensor()
    ctl = CurrentController(
        sensor, BusyDetector(ON_A, OFF_A, 0.0, 0.0), sample_interval=0.002, clock=clock
    )
    rec = Recorder()
    ctl.subscribe(rec)
    ctl.start()
    ctl.start()  # a second start does not start a second thread
    sensor.set_amps(5.0)
    assert rec.fresh().activity is Activity.BUSY
    ctl.safe_stop()  # no data link: nothing to ask, and the job keeps being followed
    assert rec.fresh().activity is Activity.BUSY
    thread = ctl._thread
    ctl.close()
    ctl.close()
    assert thread is not None and not thread.is_alive()
    assert sensor.closes == 1
    count = rec.mark()
    with pytest.raises(RuntimeError):
        ctl.start()
    assert rec.mark() == count


# --------------------------------------------------------------------------- serial board


def test_parse_line() -> None:
    assert parse_line(seal("I 0 3.25")) == ("I", (0, 3.25))
    assert parse_line(seal("I 1 0.00")[:-1] + b"\r\n") == ("I", (1, 0.0))
    assert parse_line(seal("P 1 0")) == ("P", (1, False))
    assert parse_line(seal("P 0 1")) == ("P", (0, True))
    assert parse_line(seal("HELLO fabgate-sense 2.0")) == ("HELLO", "2.0")
    assert parse_line(seal("VERSION 2.1.0 2.0 lab-7")) == ("VERSION", ("2.1.0", "2.0", "lab-7"))
    assert parse_line(seal("PONG")) == ("PONG", None)
    # A protocol-1 banner has no checksum: recognised, so the host can name the old board.
    assert parse_line(b"HELLO fabgate-sense 1.0\n") == ("LEGACY", "1.0")
    # Missing, wrong or non-hex checksums, and bytes that are not ASCII: rejected, counted.
    for bad in (
        b"I 0 3.25",
        b"I 0 3.25*00",
        seal("I 0 3.25").replace(b"3.25", b"3.26"),
        b"I 0 3.25*G1",
        b"\xff\xfe",
    ):
        assert parse_line(bad) == BAD_CHECKSUM, bad
    # Well sealed but not something this host knows: skipped (a later minor version).
    for junk in ("I", "I 0", "I 0 x", "I -1 2", "I 0 -2", "I 0 inf", "HELLO other 1.0", "W 0 1"):
        assert parse_line(seal(junk)) is None, junk
    assert parse_line(seal("P 0 2")) is None
    assert parse_line(b"# clipped 0") is None
    assert parse_line(b"") is None


@pytest.fixture
def board() -> Iterator[SenseBoardSimulator]:
    sim = SenseBoardSimulator(interval=0.02)
    try:
        yield sim
    finally:
        sim.close()


def serial_rig(
    port: str, silence_s: float = 0.3
) -> tuple[SerialSenseBoard, CurrentController, Recorder]:
    sensor = SerialSenseBoard(port, silence_s=silence_s, open_grace_s=2.0)
    ctl = CurrentController(sensor, BusyDetector(ON_A, OFF_A, 0.0, 0.0), sample_interval=0.01)
    rec = Recorder()
    ctl.subscribe(rec)
    return sensor, ctl, rec


def test_serial_board_reads_its_channel_and_skips_garbage(board: SenseBoardSimulator) -> None:
    board.currents.append(SimulatedCurrent(99.0))  # channel 1: another machine's clamp
    board.set_amps(3.5)
    # A generous silence_s: this test asserts that no UNKNOWN appears, even on a slow CI.
    sensor, ctl, rec = serial_rig(board.port, silence_s=3.0)
    ctl.start()
    try:
        rec.wait_for(lambda r: amps_of(r) == 3.5, what="at 3.5 A")
        board.reboot()
        start = rec.mark()
        board.send_garbage()
        board.set_amps(0.25)
        rec.wait_for(lambda r: amps_of(r) == 0.25, since=start, what="after the garbage")
        seen = rec.since(start)
        assert all(r.activity is not Activity.UNKNOWN for r in seen), seen
        assert {amps_of(r) for r in seen} <= {3.5, 0.25}
        assert sensor.firmware_version == "2.0.0" and sensor.protocol_version == "2.0"
        assert sensor.board_id == "sim-0001"
        assert sensor.bad_checksums >= 5  # the garbage's unsealed and mis-sealed lines
    finally:
        ctl.close()


def test_serial_board_silence_is_unknown_until_it_speaks_again(
    board: SenseBoardSimulator,
) -> None:
    board.set_amps(4.0)
    _, ctl, rec = serial_rig(board.port)
    ctl.start()
    try:
        rec.wait_for(lambda r: r.activity is Activity.BUSY)
        board.go_silent()
        silent = rec.wait_for(lambda r: r.activity is Activity.UNKNOWN, what="UNKNOWN")
        assert silent.detail == "sense board silent"
        board.resume()
        rec.wait_for(lambda r: r.activity is Activity.BUSY, since=rec.mark(), what="back")
    finally:
        ctl.close()


def test_serial_board_unplugged_is_link_lost_without_crash_and_recovers(
    board: SenseBoardSimulator,
) -> None:
    board.set_amps(4.0)
    sensor, ctl, rec = serial_rig(board.port)
    ctl.start()
    replacement = SenseBoardSimulator(interval=0.02)
    try:
        rec.wait_for(lambda r: r.activity is Activity.BUSY)
        board.unplug()
        lost = rec.wait_for(lambda r: r.activity is Activity.UNKNOWN, what="UNKNOWN")
        assert lost.detail == "link lost"
        # The thread survives and keeps trying to reopen the port, still "link lost".
        again = rec.fresh()
        assert again == MachineReport(Activity.UNKNOWN, detail="link lost")
        # Plugged back in (here: a new board at a new path), reading resumes by itself.
        replacement.set_amps(1.5)
        sensor.port = replacement.port
        back = rec.wait_for(lambda r: amps_of(r) == 1.5, since=rec.mark(), what="back")
        assert back.activity is Activity.BUSY  # debounced state kept across the outage
    finally:
        ctl.close()
        replacement.close()


def test_serial_board_close_is_idempotent_and_final(board: SenseBoardSimulator) -> None:
    board.set_amps(2.0)
    sensor = SerialSenseBoard(board.port, silence_s=0.3, open_grace_s=2.0)
    assert sensor.read_amps() == 2.0
    sensor.close()
    sensor.close()
    with pytest.raises(SensorError, match="closed"):
        sensor.read_amps()


# --------------------------------------------------------------------------- MCP3008


class FakeMcp3008(MockSPIDevice):
    """The slave side of an MCP3008 on gpiozero's mock SPI pins (hardware SPI0, CE0).

    It decodes the start bit, single-ended flag and channel as the chip does, then
    shifts out the sample-and-hold bit, the null bit and ten result bits MSB first.
    """

    def __init__(self, signal: Callable[[int, int], int], factory: MockFactory) -> None:
        super().__init__(clock_pin=11, mosi_pin=10, miso_pin=9, select_pin=8, pin_factory=factory)
        self.signal = signal  # (channel, conversion number) -> counts
        self.conversions: list[int] = []
        self._start: int | None = None

    def on_start(self) -> None:
        super().on_start()
        self._start = None

    def on_bit(self) -> None:
        if self._start is None:
            if self.rx_buf[-1]:
                self._start = len(self.rx_buf) - 1
            return
        if len(self.rx_buf) - self._start == 5:
            single, *chan = self.rx_buf[self._start + 1 :]
            assert single, "the sensor must read single-ended"
            channel = chan[0] << 2 | chan[1] << 1 | chan[2]
            value = self.signal(channel, len(self.conversions))
            self.conversions.append(channel)
            self.tx_word(max(0, min(1023, value)), 12)


def test_mcp3008_sensor_computes_rms_of_its_channel_over_the_window(
    mock_pins: MockFactory,
) -> None:
    amplitude = {3: 300, 5: 40}

    def signal(channel: int, n: int) -> int:
        return round(512 + amplitude.get(channel, 0) * math.sin(2 * math.pi * n / 40))

    adc = FakeMcp3008(signal, mock_pins)
    scale = burden_scale(vref=3.3, adc_bits=10, turns=2000, burden_ohms=68.0)
    # 0.5 ms per clock read: 2 kS/s, 40 samples per 50 Hz cycle; 0.04 s = 2 cycles.
    sensor = Mcp3008Sensor(3, scale=scale, window_s=0.04, clock=StepMono(0.0005))
    try:
        amps = sensor.read_amps()
        assert set(adc.conversions) == {3}
        assert 75 <= len(adc.conversions) <= 85
        assert amps == pytest.approx(300 / math.sqrt(2) * scale, rel=0.01)
        other = Mcp3008Sensor(5, scale=scale, window_s=0.04, clock=StepMono(0.0005))
        assert other.read_amps() == pytest.approx(40 / math.sqrt(2) * scale, rel=0.02)
        other.close()
    finally:
        sensor.close()
        adc.close()


def test_mcp3008_sensor_refuses_too_few_samples_and_reads_after_close(
    mock_pins: MockFactory,
) -> None:
    adc = FakeMcp3008(lambda channel, n: 512, mock_pins)
    slow = Mcp3008Sensor(0, scale=0.1, window_s=0.2, clock=StepMono(0.1))
    try:
        with pytest.raises(SensorError, match="too slow"):
            slow.read_amps()
    finally:
        slow.close()
    slow.close()
    with pytest.raises(SensorError, match="closed"):
        slow.read_amps()
    adc.close()


# --------------------------------------------------------------------------- protocol 2


def test_an_old_protocol_1_board_is_refused_with_a_clear_error() -> None:
    old = SenseBoardSimulator(interval=0.02, version="1.0")
    try:
        old.set_amps(4.0)
        sensor = SerialSenseBoard(old.port, silence_s=0.3, open_grace_s=2.0)
        with pytest.raises(SensorError, match=r"incompatible sense board.*protocol 1\.0.*flash"):
            sensor.read_amps()
        assert sensor.incompatible is not None
        assert old.commands == []  # a protocol-1 board hears nothing
        # Its unsealed value lines are never taken for a current.
        with pytest.raises(SensorError, match="incompatible"):
            sensor.read_amps()
        sensor.close()
    finally:
        old.close()


def test_a_board_of_a_newer_major_is_refused_too() -> None:
    new = SenseBoardSimulator(interval=0.02, version="3.0")
    try:
        sensor = SerialSenseBoard(new.port, silence_s=0.3, open_grace_s=2.0)
        with pytest.raises(SensorError, match=r"protocol 3\.0, this gateway protocol 2"):
            sensor.read_amps()
        sensor.close()
    finally:
        new.close()


def test_the_driver_asks_the_version_and_reads_permissives_and_pings(
    board: SenseBoardSimulator,
) -> None:
    board.set_amps(2.5)
    board.set_permissive(1, False)
    sensor = SerialSenseBoard(board.port, silence_s=0.3, open_grace_s=2.0)
    try:
        assert sensor.read_amps() == 2.5
        assert board.commands[0] == seal("VERSION?")[:-1]
        assert (sensor.firmware_version, sensor.board_id) == ("2.0.0", "sim-0001")
        deadline = time.monotonic() + WAIT_S
        while sensor.permissives() != {0: True, 1: False} and time.monotonic() < deadline:
            sensor.read_amps()
        assert sensor.permissives() == {0: True, 1: False}
        board.set_permissive(1, True)
        while sensor.permissives() != {0: True, 1: True} and time.monotonic() < deadline:
            sensor.read_amps()
        assert sensor.permissives() == {0: True, 1: True}
        rtt = sensor.ping(timeout=2.0)
        assert 0 <= rtt < 2.0 and board.commands[-1] == seal("PING")[:-1]
        # An input the board stops reporting becomes unknown after permissive_valid_s.
        board.set_permissive(0, None)
        sensor.permissive_valid_s = 0.1
        while 0 in sensor.permissives() and time.monotonic() < deadline:
            sensor.read_amps()
        assert 0 not in sensor.permissives()
    finally:
        sensor.close()


def test_bad_checksums_are_counted_and_never_read_as_values(board: SenseBoardSimulator) -> None:
    board.set_amps(1.25)
    sensor = SerialSenseBoard(board.port, silence_s=0.3, open_grace_s=2.0)
    try:
        assert sensor.read_amps() == 1.25
        before = sensor.bad_checksums
        for _ in range(3):
            board.send_garbage()
        deadline = time.monotonic() + WAIT_S
        while sensor.bad_checksums < before + 15 and time.monotonic() < deadline:
            assert sensor.read_amps() == 1.25  # 77 A never appears
        assert sensor.bad_checksums >= before + 15
        assert sensor.permissives().get(0) is not False  # the forged "P 0" line was dropped
    finally:
        sensor.close()


def test_the_report_of_a_change_says_how_far_back_the_real_edge_was(clock: FakeMono) -> None:
    sensor = SimulatedCurrent(clock=clock)
    ctl = CurrentController(sensor, BusyDetector(ON_A, OFF_A, 3.0, 20.0), clock=clock)
    rec = Recorder()
    ctl.subscribe(rec)
    sensor.set_amps(5.0)
    for _ in range(8):  # 0.5 s apart: busy is confirmed at the 7th sample, 3 s after the 1st
        ctl.sample_once()
        clock.advance(0.5)
    busy = [r for r in rec.reports if "edge_age_s" in r.data]
    assert len(busy) == 1 and busy[0].activity is Activity.BUSY
    assert busy[0].data["edge_age_s"] == pytest.approx(3.0)
    sensor.set_amps(0.0)
    for _ in range(42):
        ctl.sample_once()
        clock.advance(0.5)
    idle = [r for r in rec.reports if "edge_age_s" in r.data][1:]
    assert len(idle) == 1 and idle[0].activity is Activity.IDLE
    assert idle[0].data["edge_age_s"] == pytest.approx(20.0)


@settings(max_examples=200)
@given(det=thresholds, on_s=st.floats(0.0, 200.0), step=st.floats(0.05, 1.0))
def test_the_detector_edges_are_the_first_samples_over_and_under(
    det: BusyDetector, on_s: float, step: float
) -> None:
    """Whatever the debounce delays, a run that makes a change has its first sample as
    the edge: busy time between edges is the current's time, not the debounce's."""
    t, first_over, first_under = 0.0, None, None
    high, low = det.threshold_on_a + 0.5, 0.0
    while t <= on_s + det.on_after_s + step:
        first_over = t if first_over is None else first_over
        if det.feed(t, high) is Activity.BUSY:
            assert det.edge == first_over
        t += step
    if det.state is not Activity.BUSY or det.threshold_off_a == 0:
        return  # (nothing is below a threshold of 0 A: such a detector never goes idle)
    end = t
    while det.state is Activity.BUSY:
        first_under = t if first_under is None else first_under
        det.feed(t, low)
        t += step
    assert det.edge == first_under == end
