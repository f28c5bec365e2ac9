"""A reader fed by software, and its local control socket.

Simulated readers serve the demo, tests and bench rigs: taps arrive from the sim-tap
MQTT topic (``fabgate sim tap``) through :attr:`SimulatedReader.injector`, or from a
Unix datagram socket next to the node's files. The socket exists because a test that
kills the broker mid-session still has to badge out; each datagram is one UID.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections import deque
from pathlib import Path

from gateway.core.ids import normalise_uid
from gateway.drivers.readers.base import BadgeReader, TapInjector

log = logging.getLogger(__name__)


class SimulatedReader(BadgeReader):
    """A reader fed by software (demo, tests, the sim-tap MQTT topic, a tap socket).

    Each presented card is on the reader for exactly one poll and then taken away: the
    poll after a read always returns None, even when more cards are queued, so a
    debouncer sees presence then absence as it would with a real tap. Two taps of the same
    badge still count as two only if the node's clock moves ``hold_off`` on between
    them, exactly as with a real card.

    With ``socket``, the reader also listens on that Unix datagram socket until closed.
    """

    def __init__(self, socket: Path | str | None = None) -> None:
        self._lock = threading.Lock()
        self._queue: deque[str] = deque()
        self._card_on_reader = False
        self._closed = False
        self._socket = TapSocket(socket, self) if socket is not None else None

    @property
    def injector(self) -> TapInjector:
        return self

    def present(self, uid: str) -> None:
        """Queue a tap; callable from any thread (e.g. an MQTT callback)."""
        card = normalise_uid(uid)  # a bad UID fails here, in the caller's hands
        with self._lock:
            if self._closed:
                log.debug("simulated reader closed; dropped tap of %s", card)
                return
            self._queue.append(card)

    def poll(self) -> str | None:
        with self._lock:
            if self._card_on_reader:
                self._card_on_reader = False  # the card is taken away
                return None
            if not self._queue:
                return None
            self._card_on_reader = True
            return self._queue.popleft()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._queue.clear()
            control, self._socket = self._socket, None
        if control is not None:
            control.close()


class TapSocket:
    """Receives UIDs on a Unix datagram socket and presents them to a reader."""

    def __init__(self, path: Path | str, reader: TapInjector) -> None:
        self.path = Path(path)
        self.reader = reader
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            self.path.unlink()
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(os.fspath(self.path))
        self._sock.settimeout(0.5)  # so close() is noticed without a wake-up datagram
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="tap-socket", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._closed.is_set():
            try:
                data = self._sock.recv(256)
            except TimeoutError:
                continue
            except OSError:
                return  # closed
            try:
                self.reader.present(data.decode("ascii").strip())
            except (UnicodeDecodeError, ValueError) as exc:
                log.warning("ignored a datagram on %s that is not a UID: %s", self.path, exc)

    def close(self) -> None:
        self._closed.set()
        self._thread.join(timeout=2)
        self._sock.close()
        self.path.unlink(missing_ok=True)


def send_tap(path: Path | str, uid: str) -> None:
    """Tap ``uid`` on the simulated reader listening at ``path`` (tests, bench)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.sendto(uid.encode("ascii"), os.fspath(path))
