"""Clocks a test moves by hand, for code that takes its clocks as parameters.

Production code is given ``wall`` (a ``datetime`` in UTC) and ``mono`` (seconds) as
callables; these stand in for them, so a test decides exactly when time passes and
never sleeps to make it pass.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta


class FakeClock:
    """Wall and monotonic time that only move when a test says so.

    ``wall_now`` and ``mono_now`` may also be set directly: a wall clock set back, or a
    monotonic clock starting again after a reboot, while the other one goes on.
    """

    def __init__(self, wall: datetime, mono: float = 1000.0) -> None:
        self.wall_now = wall
        self.mono_now = mono

    def advance(self, seconds: float) -> None:
        self.wall_now += timedelta(seconds=seconds)
        self.mono_now += seconds

    def wall(self) -> datetime:
        return self.wall_now

    def mono(self) -> float:
        return self.mono_now


class FakeMono:
    """A monotonic clock (``clock()`` reads it) the test moves; thread-safe, because the
    code under test often reads it from its own thread."""

    def __init__(self, start: float = 1000.0) -> None:
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    @property
    def now(self) -> float:
        return self()

    @now.setter
    def now(self, value: float) -> None:
        with self._lock:
            self._now = value

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds


class StepMono:
    """Advances by ``dt`` each time it is read: a fixed sampling rate without real time."""

    def __init__(self, dt: float) -> None:
        self.now = 0.0
        self.dt = dt

    def __call__(self) -> float:
        self.now += self.dt
        return self.now


class AheadMono:
    """The real monotonic clock plus what the test added: for code whose waits must still
    end in real time (a supervisor's back-off, a broker's reconnect) while the test
    jumps over a staleness limit."""

    def __init__(self) -> None:
        self._ahead = 0.0
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._ahead + time.monotonic()

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._ahead += seconds
