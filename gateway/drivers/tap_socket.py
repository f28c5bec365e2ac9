"""A local control socket for simulated readers: taps that do not need the broker.

``fabgate sim tap`` travels over MQTT, which is what a remote demo wants, but a test that
kills the broker mid-session still has to badge out. A simulated reader can therefore
also listen on a Unix datagram socket next to the node's files; each datagram is one UID.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from pathlib import Path

from gateway.drivers.readers import SimulatedReader

log = logging.getLogger(__name__)


class TapSocket:
    """Receives UIDs on a Unix datagram socket and presents them to a simulated reader."""

    def __init__(self, path: Path | str, reader: SimulatedReader) -> None:
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
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.sendto(uid.encode("ascii"), os.fspath(path))
