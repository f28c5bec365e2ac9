"""The thread supervisor: restarts with back-off, staleness, health; no sleeps."""

from __future__ import annotations

import logging
import threading

import pytest

from gateway.core.supervise import Beat, Supervisor
from tests.support.clock import FakeMono

TIMEOUT = 10.0


class RecordingWait:
    """The back-off wait: records each delay; blocks while ``gate`` is clear."""

    def __init__(self, sup_stopping: threading.Event | None = None) -> None:
        self.delays: list[float] = []
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.stopping = sup_stopping

    def __call__(self, delay: float) -> bool:
        self.delays.append(delay)
        self.entered.set()
        while not self.gate.wait(0.05):
            if self.stopping is not None and self.stopping.is_set():
                return True
        return bool(self.stopping is not None and self.stopping.is_set())


def make(clock: FakeMono, wait: RecordingWait, **kw: float) -> Supervisor:
    sup = Supervisor(mono=clock, wait=wait, logger=logging.getLogger("test.supervise"), **kw)
    wait.stopping = sup.stopping
    return sup


def test_a_crashing_loop_restarts_with_doubling_back_off(caplog: pytest.LogCaptureFixture):
    clock, wait = FakeMono(), RecordingWait()
    sup = make(clock, wait, backoff_min=0.5, backoff_max=3.0)
    settled = threading.Event()
    runs = []

    def target(beat: Beat) -> None:
        runs.append(1)
        beat()
        if len(runs) <= 5:
            raise RuntimeError(f"boom {len(runs)}")
        settled.set()
        sup.stopping.wait()

    with caplog.at_level(logging.ERROR, logger="test.supervise"):
        loop = sup.spawn("work", target, stale_after=5)
        assert settled.wait(TIMEOUT)
    try:
        assert wait.delays == [0.5, 1.0, 2.0, 3.0, 3.0]  # doubling, capped at backoff_max
        h = sup.health()["work"]
        assert h.restarts == 5 and h.last_error == "RuntimeError: boom 5"
        assert h.alive and not h.stale and sup.healthy()
        assert loop.runs == 6
        # each crash is logged with its traceback
        crashes = [r for r in caplog.records if r.getMessage() == "loop work crashed"]
        assert len(crashes) == 5 and all(r.exc_info for r in crashes)
    finally:
        sup.stop()
    assert not loop.thread.is_alive()


def test_the_back_off_resets_after_a_long_enough_run():
    clock, wait = FakeMono(), RecordingWait()
    sup = make(clock, wait, backoff_min=1.0, backoff_max=30.0, reset_after=60.0)
    settled = threading.Event()
    runs = []

    def target(beat: Beat) -> None:
        runs.append(1)
        if len(runs) == 3:
            clock.advance(61)  # this run lasted long enough: the next delay starts over
        if len(runs) <= 4:
            raise OSError("disk")
        settled.set()
        sup.stopping.wait()

    sup.spawn("work", target, stale_after=5)
    try:
        assert settled.wait(TIMEOUT)
        assert wait.delays == [1.0, 2.0, 1.0, 2.0]
    finally:
        sup.stop()


def test_a_loop_waiting_to_restart_is_not_alive():
    clock, wait = FakeMono(), RecordingWait()
    wait.gate.clear()
    sup = make(clock, wait)

    def target(beat: Beat) -> None:
        raise ValueError("bad row")

    sup.spawn("ingest", target, stale_after=5)
    try:
        assert wait.entered.wait(TIMEOUT)
        h = sup.health()["ingest"]
        assert not h.alive and not h.healthy and h.last_error == "ValueError: bad row"
        assert not sup.healthy()
        assert h.as_dict()["healthy"] is False
    finally:
        sup.stop()


def test_a_loop_that_returns_early_is_restarted():
    clock, wait = FakeMono(), RecordingWait()
    sup = make(clock, wait)
    settled = threading.Event()
    runs = []

    def target(beat: Beat) -> None:
        runs.append(1)
        if len(runs) == 1:
            return
        settled.set()
        sup.stopping.wait()

    sup.spawn("web", target, stale_after=5)
    try:
        assert settled.wait(TIMEOUT)
        h = sup.health()["web"]
        assert h.restarts == 1 and "returned" in h.last_error
    finally:
        sup.stop()


def test_a_stuck_loop_reads_stale_until_it_beats_again():
    clock, wait = FakeMono(), RecordingWait()
    sup = make(clock, wait)
    beaten = threading.Event()
    unstick = threading.Event()
    beats: list[Beat] = []

    def target(beat: Beat) -> None:
        beat(ok=True)
        beats.append(beat)
        beaten.set()
        while not sup.stopping.is_set():
            unstick.wait(0.05)  # "stuck": no beat

    sup.spawn("publisher", target, stale_after=10)
    try:
        assert beaten.wait(TIMEOUT)
        clock.advance(10)
        h = sup.health()["publisher"]
        assert h.alive and not h.stale and h.since_beat == pytest.approx(10)
        clock.advance(0.5)
        h = sup.health()["publisher"]
        assert h.alive and h.stale and not sup.healthy()
        assert h.since_ok == pytest.approx(10.5)
        beats[0]()  # a beat without success: fresh again, last success unchanged
        h = sup.health()["publisher"]
        assert not h.stale and sup.healthy()
        assert h.since_beat == 0 and h.since_ok == pytest.approx(10.5)
    finally:
        sup.stop()


def test_a_never_successful_loop_has_no_last_ok():
    clock, wait = FakeMono(), RecordingWait()
    sup = make(clock, wait)
    started = threading.Event()

    def target(beat: Beat) -> None:
        beat()
        started.set()
        sup.stopping.wait()

    sup.spawn("x", target, stale_after=1)
    try:
        assert started.wait(TIMEOUT)
        assert sup.health()["x"].since_ok is None
    finally:
        sup.stop()


def test_stop_ends_every_loop_and_names_must_be_unique():
    sup = Supervisor()
    started = threading.Barrier(3, timeout=TIMEOUT)

    def target(beat: Beat) -> None:
        started.wait()
        while not sup.stopping.wait(0.01):
            beat(ok=True)

    a = sup.spawn("a", target, stale_after=5)
    b = sup.spawn("b", target, stale_after=5)
    with pytest.raises(ValueError, match="already supervised"):
        sup.spawn("a", target, stale_after=5)
    started.wait()
    sup.stop()
    assert not a.thread.is_alive() and not b.thread.is_alive()
    assert all(not h.alive for h in sup.health().values())
    assert all(h.restarts == 0 for h in sup.health().values())
