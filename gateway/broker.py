"""MQTT brokers we start ourselves: the embedded amqtt broker and a Mosquitto launcher.

``fabgate demo`` must run on a laptop with nothing but ``pip install``, so it embeds
amqtt (pure Python, MQTT 3.1.1) in a background thread. Production sites run Mosquitto,
and the integration tests want the real thing too, including its persistence across a
restart, so :class:`MosquittoProcess` starts the system binary on a private port with a
private configuration and never touches a system-wide service.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Self

__all__ = [
    "BrokerStartError",
    "EmbeddedBroker",
    "MosquittoProcess",
    "find_mosquitto",
    "free_port",
    "wait_for_port",
]

log = logging.getLogger(__name__)

# amqtt logs every connection and packet at INFO, and the `transitions` state machine it
# uses logs every state change: in the demo's console that drowns the scenario output.
_NOISY_LOGGERS = ("amqtt", "transitions")


class BrokerStartError(RuntimeError):
    """A broker did not come up; the message says where to look."""


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that was free a moment ago.

    Tests run in parallel and next to a possible system broker on 1883, so every broker we
    start gets its own port. The port is released before returning, so a caller that
    loses the race must be prepared to retry (:class:`EmbeddedBroker` does).
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


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


class _DropReportedStartupFailure(logging.Filter):
    """amqtt logs a full traceback when it cannot bind; we raise a clearer error ourselves."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Broker startup failed")


_STARTUP_FILTER = _DropReportedStartupFailure()


def _quieten(loggers: tuple[str, ...]) -> None:
    """Raise noisy third-party loggers to WARNING unless someone configured them already."""
    for name in loggers:
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.WARNING)
    logging.getLogger("amqtt.broker").addFilter(_STARTUP_FILTER)  # idempotent


class _CopyOnIterDict(dict):  # type: ignore[type-arg]
    """A dict whose iteration views are snapshots, safe to mutate while iterating."""

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(list(super().keys()))

    def keys(self):  # type: ignore[no-untyped-def]
        return list(super().keys())

    def items(self):  # type: ignore[no-untyped-def]
        return list(super().items())


class EmbeddedBroker:
    """amqtt running in its own thread and event loop, for the demo and fast tests.

    Our code is threaded (paho, Flask), so the broker gets a private asyncio loop in a
    daemon thread instead of imposing asyncio on its callers. Retained messages, QoS 1
    and last wills work; state lives in memory only and is lost at :meth:`stop`.
    """

    _BIND_ATTEMPTS = 5

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        quiet: bool = True,
        start_timeout: float = 10.0,
    ) -> None:
        self.host = host
        self._requested_port = port
        self.port = port
        self.start_timeout = start_timeout
        self._quiet = quiet
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_requested: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _config(self, port: int) -> dict[str, Any]:
        # Only anonymous auth: the default plugin set also publishes $SYS statistics
        # (needs psutil, wakes up every few seconds) and logs every packet.
        return {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{port}"}},
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {
                "allow_anonymous": True}},
        }

    async def _serve(self) -> None:
        from amqtt.broker import Broker

        self._stop_requested = asyncio.Event()
        broker = None
        last_error: BaseException | None = None
        # With port 0 we pick a port ourselves; another process may grab it between
        # free_port() and bind, so try a few before giving up.
        attempts = 1 if self._requested_port else self._BIND_ATTEMPTS
        for _ in range(attempts):
            port = self._requested_port or free_port(self.host)
            candidate = Broker(self._config(port), loop=asyncio.get_running_loop())
            # amqtt 0.12 iterates its subscription table across awaits while other
            # clients subscribe, and the connection handler of the client that connected
            # dies with "dictionary changed size during iteration" (seen when the demo's
            # nodes connect together). Iterating over a copy makes that safe.
            candidate._subscriptions = _CopyOnIterDict(candidate._subscriptions)
            try:
                await candidate.start()
            except Exception as exc:  # amqtt wraps OSError in BrokerError
                last_error = exc
                continue
            broker, self.port = candidate, port
            break
        if broker is None:
            self._error = last_error or BrokerStartError("amqtt did not start")
            self._ready.set()
            return
        self._ready.set()
        try:
            await self._stop_requested.wait()
        finally:
            await broker.shutdown()

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:  # surfaced to start() instead of dying silently
            self._error = exc
            self._ready.set()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def start(self) -> Self:
        """Start the broker and return once it accepts TCP connections."""
        if self.running:
            return self
        if self._quiet:
            _quieten(_NOISY_LOGGERS)
        self._ready.clear()
        self._error = None
        self._thread = threading.Thread(target=self._run, name="embedded-mqtt-broker",
                                        daemon=True)
        self._thread.start()
        if not self._ready.wait(self.start_timeout):
            raise BrokerStartError(
                f"embedded MQTT broker did not start within {self.start_timeout:.0f}s")
        if self._error is not None:
            self._thread.join(timeout=5)
            raise BrokerStartError(
                f"embedded MQTT broker could not listen on {self.host}:"
                f"{self._requested_port or 'a free port'}: {self._error}") from self._error
        # No extra connect probe: amqtt's start() returns after the listening socket is
        # bound, and a bare TCP probe makes amqtt log an error about a half-open client.
        log.debug("embedded MQTT broker listening on %s", self.url)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Shut the broker down: clients are disconnected and the port is released."""
        thread, loop, stop_requested = self._thread, self._loop, self._stop_requested
        if thread is None:
            return
        if loop is not None and stop_requested is not None and thread.is_alive():
            with contextlib.suppress(RuntimeError):  # the loop closed in the meantime
                loop.call_soon_threadsafe(stop_requested.set)
        thread.join(timeout)
        if thread.is_alive():
            log.warning("embedded MQTT broker did not stop within %.0fs", timeout)
        self._thread = None
        self._loop = None
        self._stop_requested = None
        self.port = self._requested_port

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


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
    ) -> None:
        self.host = "127.0.0.1"
        self.port = port or free_port(self.host)
        self.workdir = Path(workdir).resolve()
        self.binary = binary
        self.start_timeout = start_timeout
        self.autosave_interval = autosave_interval
        self.extra_config = extra_config
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
        lines = [
            f"listener {self.port} {self.host}",
            "allow_anonymous true",
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
                "`python3 scripts/bootstrap.py test` installs it")
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
                f"{self._log_tail()}")
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
