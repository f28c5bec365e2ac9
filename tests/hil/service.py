"""Run the node the way systemd runs ``deploy/systemd/fabgate-node.service``.

The product's supervision is systemd's: ``Type=notify`` (the node sends ``READY=1``),
``WatchdogSec`` (the node's loop sends ``WATCHDOG=1``; silence that long and systemd
sends ``WatchdogSignal``, then - as systemd always does after a kill signal - SIGCONT,
and SIGKILL after ``TimeoutStopSec``), ``Restart=always`` after ``RestartSec``. The suite
cannot ask CI's (or a bench's) systemd to run a unit, so :class:`NodeService` plays that
part with the same protocol: a notify socket in ``$NOTIFY_SOCKET`` with the sender's
credentials checked (``NotifyAccess=main``), ``$WATCHDOG_USEC``, and the unit file's
signals and timings, read from the unit file itself so they cannot drift from it (the
timings may be shortened for a quick run, never the signals).
"""

from __future__ import annotations

import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from gateway.config import parse_duration

UNIT = Path(__file__).resolve().parents[2] / "deploy" / "systemd" / "fabgate-node.service"


@dataclass(frozen=True)
class Unit:
    """The settings of the unit's ``[Service]`` section the suite plays."""

    type: str
    notify_access: str
    watchdog_s: float
    watchdog_signal: signal.Signals
    kill_signal: signal.Signals
    stop_timeout_s: float
    restart: str
    restart_s: float


def read_unit(path: Path = UNIT) -> Unit:
    keys: dict[str, str] = {}
    section = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line
            continue
        if section == "[Service]" and "=" in line:
            key, value = line.split("=", 1)
            keys[key.strip()] = value.strip()

    def seconds(key: str, default: str) -> float:
        return parse_duration(keys.get(key, default)).total_seconds()

    return Unit(
        type=keys.get("Type", "simple"),
        notify_access=keys.get("NotifyAccess", "none"),
        watchdog_s=seconds("WatchdogSec", "0"),
        watchdog_signal=signal.Signals[keys.get("WatchdogSignal", "SIGABRT")],
        kill_signal=signal.Signals[keys.get("KillSignal", "SIGTERM")],
        stop_timeout_s=seconds("TimeoutStopSec", "90s"),
        restart=keys.get("Restart", "no"),
        restart_s=seconds("RestartSec", "0.1s"),
    )


@dataclass(frozen=True)
class ServiceEvent:
    t: float  # monotonic
    kind: str  # started, ready, watchdog, exited, killed
    pid: int
    detail: str = ""


class NodeService:
    """One ``fabgate node`` supervised like the unit says; every run logs to its own file."""

    def __init__(
        self,
        config: Path,
        logdir: Path,
        env: dict[str, str],
        *,
        watchdog_s: float | None = None,
        stop_timeout_s: float | None = None,
        restart_s: float | None = None,
    ) -> None:
        unit = read_unit()
        self.unit = unit
        self.watchdog_s = watchdog_s if watchdog_s is not None else unit.watchdog_s
        self.stop_timeout_s = stop_timeout_s if stop_timeout_s is not None else unit.stop_timeout_s
        self.restart_s = restart_s if restart_s is not None else unit.restart_s
        self.config = config
        self.logdir = logdir
        self.env = env
        self.events: list[ServiceEvent] = []
        self.cond = threading.Condition()
        self.proc: subprocess.Popen[bytes] | None = None
        self.runs = 0
        self._last_ping = 0.0
        self._ready = False
        self._stopping = False
        self._sockdir = Path(tempfile.mkdtemp(prefix="fgnotify-"))  # short: sun_path limit
        self.socket_path = self._sockdir / "notify"
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(str(self.socket_path))
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self._sock.settimeout(0.1)
        self._threads = [
            threading.Thread(target=self._listen, name="notify", daemon=True),
            threading.Thread(target=self._supervise, name="supervise", daemon=True),
        ]

    # -- the manager's side ------------------------------------------------------------

    def start(self) -> None:
        self._spawn()
        for t in self._threads:
            t.start()

    def _record(self, kind: str, pid: int, detail: str = "") -> None:
        with self.cond:
            self.events.append(ServiceEvent(time.monotonic(), kind, pid, detail))
            self.cond.notify_all()

    def _spawn(self) -> None:
        self.runs += 1
        log = self.logdir / f"node-run{self.runs}.log"
        env = dict(os.environ, PYTHONUNBUFFERED="1", **self.env)
        env["NOTIFY_SOCKET"] = str(self.socket_path)
        if self.watchdog_s:
            env["WATCHDOG_USEC"] = str(int(self.watchdog_s * 1e6))
        with open(log, "ab") as fh:
            proc = subprocess.Popen(
                [sys.executable, "-m", "gateway", "node", "--config", str(self.config)],
                stdout=fh,
                stderr=subprocess.STDOUT,
                env=env,
            )
        with self.cond:
            self.proc = proc
            self._ready = False
            self._last_ping = time.monotonic()
        self._record("started", proc.pid, str(log))

    def _listen(self) -> None:
        size = socket.CMSG_SPACE(struct.calcsize("3i"))
        while not self._stopping:
            try:
                data, anc, _flags, _addr = self._sock.recvmsg(4096, size)
            except TimeoutError:
                continue
            except OSError:
                return
            pid = 0
            for level, kind, cdata in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    pid = struct.unpack("3i", cdata[: struct.calcsize("3i")])[0]
            with self.cond:
                main = self.proc.pid if self.proc else -1
            if self.unit.notify_access == "main" and pid != main:
                continue  # systemd ignores a child's or a stranger's datagram
            for line in data.decode(errors="replace").splitlines():
                if line == "READY=1":
                    with self.cond:
                        self._ready = True
                    self._record("ready", pid)
                elif line == "WATCHDOG=1":
                    with self.cond:
                        self._last_ping = time.monotonic()
                        self.cond.notify_all()

    def _supervise(self) -> None:
        while not self._stopping:
            with self.cond:
                proc = self.proc
                silent = time.monotonic() - self._last_ping
                watch = self._ready and self.watchdog_s and silent > self.watchdog_s
            if proc is None:
                return
            rc = proc.poll()
            if rc is not None:
                if self._stopping:
                    return
                self._record("exited", proc.pid, f"status {rc}")
                if self.unit.restart == "always":
                    self._pause(self.restart_s)
                    if not self._stopping:
                        self._spawn()
                continue
            if watch:
                self._record("watchdog", proc.pid, f"no WATCHDOG=1 for {silent:.1f} s")
                self._kill(proc, self.unit.watchdog_signal)
                continue
            self._pause(0.02)

    def _pause(self, seconds: float) -> None:
        with self.cond:
            self.cond.wait_for(lambda: self._stopping, seconds)

    def _kill(self, proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
        """The signal, SIGCONT (so a stopped process can act on it), SIGKILL if it stays."""
        proc.send_signal(sig)
        proc.send_signal(signal.SIGCONT)
        try:
            proc.wait(self.stop_timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
            self._record(
                "killed", proc.pid, f"still running {self.stop_timeout_s:.1f} s after {sig.name}"
            )

    # -- what the checks use -------------------------------------------------------------

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def wait_event(
        self, kind: str, *, after: float = 0.0, timeout: float = 30.0, pid: int | None = None
    ) -> ServiceEvent:
        def found() -> ServiceEvent | None:
            for e in self.events:
                if e.kind == kind and e.t >= after and (pid is None or e.pid == pid):
                    return e
            return None

        with self.cond:
            event = self.cond.wait_for(found, timeout)
        if event is None:
            raise AssertionError(f"the node service did not report {kind!r} within {timeout} s")
        return event

    def wait_ready(self, timeout: float = 30.0, after: float = 0.0) -> ServiceEvent:
        return self.wait_event("ready", after=after, timeout=timeout)

    def signal(self, sig: signal.Signals) -> int:
        """Send ``sig`` to the node's main process (as a person or a fault would)."""
        pid = self.pid
        os.kill(pid, sig)
        return pid

    def stop(self) -> None:
        """``systemctl stop``: KillSignal, SIGCONT, SIGKILL after TimeoutStopSec; no restart."""
        with self.cond:
            self._stopping = True
            self.cond.notify_all()
            proc = self.proc
        for t in self._threads:
            if t.is_alive():
                t.join(5)
        if proc is not None and proc.poll() is None:
            self._kill(proc, self.unit.kill_signal)
        self._sock.close()
        self.socket_path.unlink(missing_ok=True)
        self._sockdir.rmdir()
