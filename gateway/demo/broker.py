"""The demo's embedded MQTT broker: amqtt in a background thread.

``fabgate demo`` must run on a laptop with nothing but ``pip install``, so it embeds
amqtt (pure Python, MQTT 3.1.1). Production sites run Mosquitto; the tests' Mosquitto
launcher is ``tests/support/mosquitto.py`` (it is not shipped). amqtt is imported when
the broker starts, so importing this module costs nothing on an install without it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
from collections.abc import Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar

if TYPE_CHECKING:
    from _collections_abc import dict_items, dict_keys

_K = TypeVar("_K")
_V = TypeVar("_V")

__all__ = ["BrokerStartError", "EmbeddedBroker", "free_port"]

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


class _CopyOnIterDict(dict[_K, _V]):
    """A dict whose iteration views are snapshots, safe to mutate while iterating."""

    def __iter__(self) -> Iterator[_K]:
        return iter(list(super().keys()))

    def keys(self) -> dict_keys[_K, _V]:
        return dict(super().items()).keys()

    def items(self) -> dict_items[_K, _V]:
        return dict(super().items()).items()


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
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}
            },
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
        self._thread = threading.Thread(target=self._run, name="embedded-mqtt-broker", daemon=True)
        self._thread.start()
        if not self._ready.wait(self.start_timeout):
            raise BrokerStartError(
                f"embedded MQTT broker did not start within {self.start_timeout:.0f}s"
            )
        if self._error is not None:
            self._thread.join(timeout=5)
            raise BrokerStartError(
                f"embedded MQTT broker could not listen on {self.host}:"
                f"{self._requested_port or 'a free port'}: {self._error}"
            ) from self._error
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
