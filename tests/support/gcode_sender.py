"""A G-code sender for tests: it streams like UGS or LightBurn and counts every reply.

Two streaming protocols, both from GRBL's interface notes: *send-response* (send a line,
wait for its ``ok``/``error``; a lost ``ok`` stalls it, which is the failure the relay
must never cause) and *character counting* (keep as many lines in flight as fit GRBL's
128-byte receive buffer, freeing a line's bytes at its reply). While streaming it polls
``?`` like a real sender. It talks over a TCP socket or a pty path, the two doors of the
node's sender link.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import termios
import threading
import time
import tty
from collections import deque
from dataclasses import dataclass, field

RX_BUFFER = 128


@dataclass
class Heard:
    """Everything the sender received, by kind, in arrival order."""

    replies: list[str] = field(default_factory=list)  # ok, error:N
    statuses: list[str] = field(default_factory=list)  # <...>
    pushes: list[str] = field(default_factory=list)  # [MSG:..], ALARM:n, banner, $n=...


class GcodeSender:
    """One sender connection; reader thread splits what arrives into lines."""

    def __init__(self, *, tcp: tuple[str, int] | None = None, pty: str | None = None) -> None:
        self._sock: socket.socket | None = None
        self._fd: int | None = None
        if tcp is not None:
            self._sock = socket.create_connection(tcp, timeout=5)
            self._sock.settimeout(None)
        elif pty is not None:
            self._fd = os.open(pty, os.O_RDWR | os.O_NOCTTY)
            tty.setraw(self._fd)
            termios.tcflush(self._fd, termios.TCIOFLUSH)
        else:
            raise ValueError("tcp or pty")
        self.heard = Heard()
        self.raw = bytearray()
        self._cond = threading.Condition()
        self._closed = False
        self._closing = threading.Event()
        self._polling = threading.Event()
        self.queries_sent = 0
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    # -- bytes -----------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        if self._sock is not None:
            self._sock.sendall(data)
        else:
            assert self._fd is not None
            os.write(self._fd, data)

    def query(self) -> None:
        self.queries_sent += 1
        self.write(b"?")

    def _recv(self) -> bytes:
        if self._sock is not None:
            return self._sock.recv(4096)
        while not self._closing.is_set():
            fd = self._fd
            assert fd is not None
            try:
                ready, _, _ = select.select([fd], [], [], 0.1)
                if ready:
                    return os.read(fd, 4096)
            except (OSError, ValueError):
                return b""
        return b""

    def _read(self) -> None:
        buf = bytearray()
        while True:
            try:
                data = self._recv()
            except OSError:
                data = b""
            if not data:
                with self._cond:
                    self._closed = True
                    self._cond.notify_all()
                return
            buf += data
            *lines, rest = buf.split(b"\n")
            buf = bytearray(rest)
            with self._cond:
                self.raw += data
                for raw in lines:
                    line = raw.decode("ascii", "replace").strip()
                    if not line:
                        continue
                    if line == "ok" or line.startswith("error:"):
                        self.heard.replies.append(line)
                    elif line.startswith("<"):
                        self.heard.statuses.append(line)
                    else:
                        self.heard.pushes.append(line)
                self._cond.notify_all()

    def wait_for(self, pred: object, timeout: float = 5.0, what: str = "condition") -> None:
        with self._cond:
            ok = self._cond.wait_for(pred, timeout)  # type: ignore[arg-type]
        if not ok:
            raise AssertionError(f"sender: no {what} within {timeout}s; heard {self.heard}")

    @property
    def closed(self) -> bool:
        with self._cond:
            return self._closed

    # -- streaming ---------------------------------------------------------------------

    def send_line(self, line: str, timeout: float = 5.0) -> str:
        """Send-response: one line, then its reply (a lost reply fails here, as it stalls)."""
        with self._cond:
            before = len(self.heard.replies)
        self.write(line.encode() + b"\n")
        self.wait_for(lambda: len(self.heard.replies) > before, timeout, f"reply to {line!r}")
        with self._cond:
            return self.heard.replies[before]

    def stream(
        self, lines: list[str], *, poll: float | None = 0.2, timeout: float = 5.0
    ) -> list[str]:
        """Send-response streaming of a whole job, polling ``?`` every ``poll`` seconds."""
        with self._polling_every(poll):
            return [self.send_line(line, timeout) for line in lines]

    def stream_counting(
        self, lines: list[str], *, poll: float | None = 0.2, timeout: float = 10.0
    ) -> list[str]:
        """Character counting: lines in flight up to GRBL's 128-byte receive buffer."""
        with self._cond:
            first = len(self.heard.replies)
        in_flight: deque[int] = deque()
        acked = 0
        deadline = time.monotonic() + timeout

        def one_reply() -> None:
            nonlocal acked
            self.wait_for(
                lambda: len(self.heard.replies) - first > acked,
                max(0.0, deadline - time.monotonic()),
                "reply (character counting)",
            )
            in_flight.popleft()
            acked += 1

        with self._polling_every(poll):
            for line in lines:
                data = line.encode() + b"\n"
                while in_flight and sum(in_flight) + len(data) > RX_BUFFER:
                    one_reply()
                self.write(data)
                in_flight.append(len(data))
            while in_flight:
                one_reply()
        with self._cond:
            return self.heard.replies[first:]

    @contextlib.contextmanager
    def _polling_every(self, poll: float | None):  # type: ignore[no-untyped-def]
        if poll is None:
            yield
            return
        stop = threading.Event()

        def loop() -> None:
            while not stop.wait(poll):
                with contextlib.suppress(OSError):
                    self.query()

        thread = threading.Thread(target=loop, daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def close(self) -> None:
        self._closing.set()
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)
            self._sock.close()
        self._reader.join(timeout=2)
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
