"""A small thread supervisor: restart crashed loops, and tell a dead loop from a stuck one.

A long-running process (hub, node) is only as alive as its loops. A loop that raises is
logged with its traceback and started again after an exponential back-off, so one bad
message or a database hiccup costs a restart, not the process; a loop that is stuck (a
deadlock, a call that never returns) stops calling ``beat()`` and reads as *stale*.
``health()`` reports both, so a health page and the systemd watchdog can act on them.

Clocks are injected: ``mono`` drives staleness and the back-off reset, ``wait`` the
back-off itself, so tests run without sleeping.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Protocol

from gateway.core.clock import MonoClock

__all__ = ["Beat", "Loop", "LoopHealth", "Supervisor"]


class Beat(Protocol):
    def __call__(self, ok: bool = False) -> None: ...


@dataclass(frozen=True)
class LoopHealth:
    """One loop's health at one instant (seconds on the supervisor's monotonic clock)."""

    name: str
    alive: bool  # its target is running (not crashed, not waiting to restart)
    stale: bool  # no beat for more than ``stale_after``
    since_beat: float | None  # seconds since the last beat
    since_ok: float | None  # seconds since the last beat(ok=True); None: never
    restarts: int
    last_error: str | None  # "ExcType: message" of the last crash
    stale_after: float

    @property
    def healthy(self) -> bool:
        return self.alive and not self.stale

    def as_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["healthy"] = self.healthy
        for key in ("since_beat", "since_ok"):
            if d[key] is not None:
                d[key] = round(d[key], 3)
        return d


class Loop:
    """The supervisor's record of one loop; ``beat`` is what the target calls."""

    def __init__(
        self, sup: Supervisor, name: str, target: Callable[[Beat], None], stale_after: float
    ) -> None:
        self._sup = sup
        self.name = name
        self.target = target
        self.stale_after = stale_after
        self.thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._running = False
        self._last_beat: float | None = None
        self._last_ok: float | None = None
        self.restarts = 0
        self.last_error: str | None = None
        self.runs = 0  # target invocations, for tests and logs

    def beat(self, ok: bool = False) -> None:
        now = self._sup.mono()
        with self._lock:
            self._last_beat = now
            if ok:
                self._last_ok = now

    def health(self, now: float | None = None) -> LoopHealth:
        now = self._sup.mono() if now is None else now
        with self._lock:
            since_beat = None if self._last_beat is None else max(0.0, now - self._last_beat)
            since_ok = None if self._last_ok is None else max(0.0, now - self._last_ok)
            alive = self._running and self.thread is not None and self.thread.is_alive()
            return LoopHealth(
                name=self.name,
                alive=alive,
                stale=since_beat is None or since_beat > self.stale_after,
                since_beat=since_beat,
                since_ok=since_ok,
                restarts=self.restarts,
                last_error=self.last_error,
                stale_after=self.stale_after,
            )

    # -- the supervising thread -------------------------------------------------------

    def _run(self) -> None:
        sup = self._sup
        delay = sup.backoff_min
        while not sup.stopping.is_set():
            started = sup.mono()
            with self._lock:
                self._running = True
                self._last_beat = started  # a fresh start is not stale
                self.runs += 1
            error: str | None = None
            try:
                self.target(self.beat)
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
                sup.log.exception("loop %s crashed", self.name)
            finally:
                with self._lock:
                    self._running = False
            if sup.stopping.is_set():
                break
            if error is None:
                error = "returned before the supervisor stopped"
                sup.log.error("loop %s %s", self.name, error)
            if sup.mono() - started >= sup.reset_after:
                delay = sup.backoff_min
            with self._lock:
                self.restarts += 1
                self.last_error = error
            sup.log.error(
                "restarting loop %s in %.1f s (restart %d)", self.name, delay, self.restarts
            )
            if sup.wait(delay):
                break
            delay = min(delay * 2, sup.backoff_max)


class Supervisor:
    """Runs named loops in daemon threads and restarts them when they fail."""

    def __init__(
        self,
        *,
        mono: MonoClock = time.monotonic,
        backoff_min: float = 0.5,
        backoff_max: float = 30.0,
        reset_after: float = 60.0,
        wait: Callable[[float], bool] | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        """``wait(seconds)`` sleeps the back-off and returns True when stopping (default:
        ``stopping.wait``); a run lasting ``reset_after`` seconds resets the back-off."""
        self.mono = mono
        self.backoff_min = backoff_min
        self.backoff_max = backoff_max
        self.reset_after = reset_after
        self.stopping = threading.Event()
        self.wait = wait or self.stopping.wait
        self.log = logger or logging.getLogger(__name__)
        self._loops: dict[str, Loop] = {}

    def spawn(self, name: str, target: Callable[[Beat], None], *, stale_after: float) -> Loop:
        """Run ``target(beat)`` in a daemon thread, restarting it after a crash.

        The target loops until ``stopping`` is set and calls ``beat()`` every iteration
        (``beat(ok=True)`` after a success); returning early counts as a failure.
        """
        if name in self._loops:
            raise ValueError(f"a loop named {name!r} is already supervised")
        loop = Loop(self, name, target, stale_after)
        loop.thread = threading.Thread(target=loop._run, name=name, daemon=True)
        self._loops[name] = loop
        loop.thread.start()
        return loop

    def stop(self, timeout: float = 5.0) -> None:
        """Ask every loop to stop and wait for them (bounded: a stuck one is left behind)."""
        self.stopping.set()
        deadline = time.monotonic() + timeout
        for loop in self._loops.values():
            if loop.thread is not None:
                loop.thread.join(max(0.0, deadline - time.monotonic()))
                if loop.thread.is_alive():
                    self.log.error("loop %s did not stop within %.1f s", loop.name, timeout)

    def health(self) -> dict[str, LoopHealth]:
        now = self.mono()
        return {name: loop.health(now) for name, loop in self._loops.items()}

    def healthy(self) -> bool:
        return all(h.healthy for h in self.health().values())
