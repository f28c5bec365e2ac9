"""A private Mosquitto for tests and benchmarks: never a system-wide service.

Production sites run Mosquitto and the integration tests want the real thing, including
its persistence across a restart, so :class:`MosquittoProcess` starts the system binary
on a private port with a private configuration, database and log. It is test support
and is not shipped in the package (``bench/`` uses it too); the broker ``fabgate demo``
embeds is ``gateway.demo.broker``, whose :class:`BrokerStartError` and ``free_port`` this
shares, so a test expects one error whichever broker failed.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from gateway.demo.broker import BrokerStartError, free_port

__all__ = ["MosquittoProcess", "find_mosquitto", "wait_for_port"]

log = logging.getLogger(__name__)


def _accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_for_port(
    host: str,
    port: int,
    timeout: float,
    *,
    alive: Any = None,
) -> bool:
    """Poll until ``host:port`` accepts a TCP connection or ``timeout`` expires.

    A fixed sleep is either too short on a loaded Raspberry Pi or wastes time everywhere
    else; polling a connect is the only readiness signal both brokers share. ``alive`` is
    an optional callable: when it returns False (the process died) we give up at once
    instead of waiting out the whole timeout.
    """
    deadline = time.monotonic() + timeout
    delay = 0.01
    while True:
        if _accepts(host, port):
            return True
        if alive is not None and not alive():
            return False
        if time.monotonic() >= deadline:
            return False
        time.sleep(delay)
        delay = min(delay * 2, 0.2)


def find_mosquitto() -> str | None:
    """Path of the mosquitto binary, or None.

    Debian installs it in /usr/sbin, which is not on a normal user's PATH.
    """
    found = shutil.which("mosquitto")
    if found:
        return found
    fallback = Path("/usr/sbin/mosquitto")
    if fallback.is_file() and os.access(fallback, os.X_OK):
        return str(fallback)
    return None


class MosquittoProcess:
    """A private Mosquitto instance on 127.0.0.1, with its config, database and log in ``workdir``.

    The port is fixed at the first start so that :meth:`restart` comes back where the
    clients expect it, with persistent sessions, queued QoS 1 messages and retained
    messages restored from the database Mosquitto writes on SIGTERM. After :meth:`kill`,
    only what the last autosave wrote survives, which is what a power cut does too.
    """

    def __init__(
        self,
        port: int = 0,
        workdir: Path | str = ".",
        *,
        binary: str | None = None,
        start_timeout: float = 10.0,
        autosave_interval: int = 1,
        extra_config: str = "",
        site_config: str | None = None,
    ) -> None:
        self.host = "127.0.0.1"
        self.port = port or free_port(self.host)
        self.workdir = Path(workdir).resolve()
        self.binary = binary
        self.start_timeout = start_timeout
        self.autosave_interval = autosave_interval
        self.extra_config = extra_config
        # A site's own settings (`fabgate deploy mosquitto`): its listeners, accounts and
        # ACL are used as they are; only the database and the log stay private.
        self.site_config = site_config
        self.config_path = self.workdir / "mosquitto.conf"
        self.log_path = self.workdir / "mosquitto.log"
        self.persistence_dir = self.workdir / "mosquitto-data"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _write_config(self) -> None:
        self.persistence_dir.mkdir(parents=True, exist_ok=True)
        if self.site_config is not None:
            lines = [self.site_config.rstrip("\n")]
        else:
            lines = [f"listener {self.port} {self.host}", "allow_anonymous true"]
        lines += [
            "persistence true",
            f"persistence_location {self.persistence_dir}/",
            "persistence_file mosquitto.db",
            f"autosave_interval {self.autosave_interval}",
            f"log_dest file {self.log_path}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "connection_messages true",
            "log_timestamp_format %Y-%m-%dT%H:%M:%S",
        ]
        if os.geteuid() == 0:
            # As root Mosquitto drops to user "mosquitto", which cannot write our workdir.
            lines.append("user root")
        if self.extra_config:
            lines.append(self.extra_config.rstrip("\n"))
        self.config_path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    def _log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log written)"
        return "\n".join(text.splitlines()[-lines:]) or "(log is empty)"

    def start(self) -> Self:
        """Start Mosquitto and return once the port accepts connections."""
        if self.running:
            return self
        binary = self.binary or find_mosquitto()
        if binary is None:
            raise BrokerStartError(
                "mosquitto is not installed (apt-get install mosquitto); "
                "`python3 scripts/bootstrap.py test` installs it"
            )
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._write_config()
        # stdout/stderr go to the log file too: before the config is parsed Mosquitto
        # can only complain on stderr (bad option, port in use).
        with self.log_path.open("ab") as console:
            self._proc = subprocess.Popen(
                [binary, "-c", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=console,
                stderr=console,
                cwd=self.workdir,
                start_new_session=True,  # a Ctrl-C in the terminal is ours to handle
            )
        if not wait_for_port(self.host, self.port, self.start_timeout, alive=lambda: self.running):
            code = self._proc.poll()
            if code is None:
                self.kill()
                what = f"did not accept connections within {self.start_timeout:.0f}s"
            else:
                what = f"exited with status {code}"
            self._proc = None
            raise BrokerStartError(
                f"mosquitto on {self.host}:{self.port} {what}; see {self.log_path}:\n"
                f"{self._log_tail()}"
            )
        log.debug("mosquitto listening on %s (pid %d)", self.url, self._proc.pid)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM and wait, so Mosquitto saves its database for the next start."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("mosquitto ignored SIGTERM for %.0fs, killing it", timeout)
                proc.kill()
                proc.wait()
        self._proc = None

    def kill(self) -> None:
        """SIGKILL: a crash or power cut, nothing is saved beyond the last autosave."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        self._proc = None

    def restart(self) -> Self:
        """Stop cleanly and start again on the same port with the same database."""
        self.stop()
        return self.start()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
