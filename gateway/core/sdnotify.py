"""systemd's notify protocol (READY=1, WATCHDOG=1, STATUS=...) in a few lines, no dependency.

Under ``Type=notify`` systemd passes a Unix datagram socket in ``$NOTIFY_SOCKET``; one
datagram of ``KEY=value`` lines tells it the service is ready, alive, or what it is
doing. With ``WatchdogSec=`` it also sets ``$WATCHDOG_USEC``: a service that sends no
``WATCHDOG=1`` for that long is killed and (with ``Restart=always``) started again. That
is what turns a *stuck* process, which no exit code reports, into a restart.

Outside systemd (no ``NOTIFY_SOCKET``) every call is a cheap no-op, and a broken socket
is logged, never raised: the notify channel must not become a way to crash the service.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping

from gateway.core.clock import MonoClock

__all__ = ["Watchdog", "notify", "ping_watchdog", "watchdog_interval"]

log = logging.getLogger(__name__)


def notify(message: str, *, env: Mapping[str, str] | None = None) -> bool:
    """Send one datagram to ``$NOTIFY_SOCKET``; True if it was sent."""
    path = (os.environ if env is None else env).get("NOTIFY_SOCKET")
    if not path:
        return False
    if path.startswith("@"):  # abstract socket namespace
        path = "\0" + path[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
            s.connect(path)
            s.sendall(message.encode())
    except OSError as exc:
        log.warning("could not notify systemd through %r: %s", path, exc)
        return False
    return True


def watchdog_interval(env: Mapping[str, str] | None = None) -> float | None:
    """systemd's watchdog timeout for this process in seconds, or None when there is none."""
    env = os.environ if env is None else env
    usec = env.get("WATCHDOG_USEC")
    pid = env.get("WATCHDOG_PID")
    if not usec or not env.get("NOTIFY_SOCKET"):
        return None
    if pid and pid.strip() != str(os.getpid()):
        return None  # the variable was meant for a parent process
    try:
        value = int(usec) / 1e6
    except ValueError:
        return None
    return value if value > 0 else None


class Watchdog:
    """Rate-limited ``WATCHDOG=1``: call ``ping()`` as often as you like from a loop that
    is only alive when it runs; a datagram goes out at most every third of the timeout."""

    def __init__(
        self,
        *,
        env: Mapping[str, str] | None = None,
        mono: MonoClock = time.monotonic,
        send: Callable[[str], bool] | None = None,
    ) -> None:
        self._env = os.environ if env is None else env
        self._mono = mono
        self._send = send or (lambda msg: notify(msg, env=self._env))
        timeout = watchdog_interval(self._env)
        self.period: float | None = None if timeout is None else timeout / 3
        self._last: float | None = None
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.period is not None

    def ping(self) -> bool:
        """Send WATCHDOG=1 if one is due; True when a datagram was sent."""
        if self.period is None:
            return False
        now = self._mono()
        with self._lock:
            if self._last is not None and now - self._last < self.period:
                return False
            self._last = now
        return self._send("WATCHDOG=1")

    def ready(self, status: str | None = None) -> bool:
        """READY=1 (and a status line for ``systemctl status``)."""
        msg = "READY=1" if status is None else f"READY=1\nSTATUS={status}"
        if not self._env.get("NOTIFY_SOCKET"):
            return False
        return self._send(msg)

    def status(self, text: str) -> bool:
        if not self._env.get("NOTIFY_SOCKET"):
            return False
        return self._send(f"STATUS={text}")


_default: Watchdog | None = None
_default_lock = threading.Lock()


def ping_watchdog() -> bool:
    """The node loop's watchdog ping: call it once per loop iteration (it rate-limits)."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = Watchdog()
    return _default.ping()
