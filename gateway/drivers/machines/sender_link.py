"""The sender's end of the GRBL relay: a raw TCP port and/or a pty, one sender at a time.

Only bytes move here; what they mean is ``gateway/policies/grbl_relay.py``. Two doors,
because senders differ in what they can open:

* **Raw TCP** (``tcp``): what LightBurn ("Ethernet/TCP" GRBL device), UGS (TCP driver),
  bCNC (``socket://host:port``) and LaserGRBL ("Telnet") open for a "network GRBL", the
  telnet-style port of ESP32 and FluidNC boards (usually 23). Plain bytes both ways, no
  telnet negotiation, ``TCP_NODELAY`` so each ``ok`` leaves at once (send-response
  streaming waits on every one). A second connection while one is open is told so in a
  ``[MSG:...]`` line and closed: two senders on one machine is the very problem the
  relay exists to solve.
* **A pty** (``pty``): for a sender running on the node's own computer, which opens a
  serial device; the node keeps a symlink at the configured path pointing at the pty's
  slave (``/dev/pts/N``, which changes at each start). The node holds only the master:
  Linux then reports a hang-up on it while no one has the slave open, which is how a
  connection and a disconnection are seen (checked every ``PTY_CHECK`` seconds while
  nobody is there, since a hang-up cannot be waited on without spinning).

There is no authentication on either door: whoever can reach the TCP port (see
``sender.bind``) or open the pty talks to the controller, within what the relay's
interlock allows.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import pty
import select
import selectors
import socket
import termios
import threading
import tty
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

BUSY = b"[MSG:fabgate: another sender is connected to this machine]\r\n"
SEND_TIMEOUT = 2.0  # a sender that reads nothing for this long is dropped
PTY_CHECK = 0.2


class SenderLink:
    """Accepts one sender on TCP and/or a pty and moves its bytes.

    ``on_data(bytes)``, ``on_connect()`` and ``on_disconnect()`` run on the link's own
    thread; :meth:`send` may be called from any thread and keeps the order of its calls.
    """

    def __init__(
        self,
        *,
        on_data: Callable[[bytes], None],
        on_connect: Callable[[], None],
        on_disconnect: Callable[[], None],
        tcp: tuple[str, int] | None = None,
        pty_link: str | Path | None = None,
    ) -> None:
        if tcp is None and pty_link is None:
            raise ValueError("a sender link needs a TCP address, a pty path, or both")
        self._on_data = on_data
        self._on_connect = on_connect
        self._on_disconnect = on_disconnect
        self._tcp = tcp
        self.pty_link = Path(pty_link) if pty_link is not None else None
        self._send_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe()
        self._listener: socket.socket | None = None
        self._client: socket.socket | None = None
        self._master: int | None = None
        self._pty_name = ""
        self._pty_open = False  # a sender holds the pty's slave
        self._active: str | None = None  # "tcp" or "pty": who the relay talks to
        self.connections = 0

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        """Bind and open now (so a bad address fails at start), then serve in a thread."""
        if self._tcp is not None:
            family = socket.AF_INET6 if ":" in self._tcp[0] else socket.AF_INET
            listener = socket.create_server(self._tcp, family=family)
            listener.setblocking(False)
            self._listener = listener
            self._selector.register(listener, selectors.EVENT_READ, "accept")
            log.info("sender link listening on %s:%d", *self.tcp_address)
        if self.pty_link is not None:
            self._open_pty()
        self._selector.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._thread = threading.Thread(target=self._run, name="sender-link", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        self._drop_client()
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        if self._master is not None:
            with contextlib.suppress(OSError):
                os.close(self._master)
            self._master = None
        if self.pty_link is not None and self.pty_link.is_symlink():
            with contextlib.suppress(OSError):
                if os.readlink(self.pty_link) == self._pty_name:
                    self.pty_link.unlink()
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._selector.close()

    @property
    def tcp_address(self) -> tuple[str, int]:
        assert self._listener is not None
        host, port = self._listener.getsockname()[:2]
        return str(host), int(port)

    @property
    def connected(self) -> bool:
        return self._active is not None

    # -- to the sender ---------------------------------------------------------------

    def send(self, data: bytes) -> None:
        """Bytes for the connected sender; dropped when none is connected.

        Never calls back into the relay (callers hold its lock): a TCP sender that stops
        reading is shut down here and the link's thread then reports the disconnection.
        """
        if not data:
            return
        with self._send_lock:
            if self._active == "tcp" and self._client is not None:
                try:
                    self._client.sendall(data)
                except OSError as exc:
                    log.info("sender on TCP stopped reading (%s): dropped", exc)
                    self._shutdown_client()
            elif self._active == "pty" and self._master is not None:
                self._write_pty(data)

    def hang_up(self, last_words: bytes = b"") -> None:
        """Tell the sender something and end a TCP sender's connection (controller gone)."""
        self.send(last_words)
        with self._send_lock:
            if self._active == "tcp":
                self._shutdown_client()

    def _shutdown_client(self) -> None:
        if self._client is not None:
            with contextlib.suppress(OSError):
                self._client.shutdown(socket.SHUT_RDWR)

    # -- the thread ------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            timeout = PTY_CHECK if self._master is not None and not self._pty_open else None
            try:
                events = self._selector.select(timeout)
            except (OSError, ValueError):
                if self._stop.is_set():
                    return
                raise
            for key, _ in events:
                what = key.data
                if what == "wake":
                    with contextlib.suppress(OSError):
                        os.read(self._wake_r, 64)
                elif what == "accept":
                    self._accept()
                elif what == "client":
                    self._read_client()
                elif what == "pty":
                    self._read_pty()
            if self._master is not None and not self._pty_open:
                self._check_pty_open()

    def _accept(self) -> None:
        assert self._listener is not None
        try:
            conn, peer = self._listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        if self._active is not None:
            log.warning("sender link: refused %s, a sender is already connected", peer)
            with contextlib.suppress(OSError):
                conn.settimeout(1.0)
                conn.sendall(BUSY)
            conn.close()
            return
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.settimeout(SEND_TIMEOUT)
        self._selector.register(conn, selectors.EVENT_READ, "client")
        log.info("sender connected from %s:%d", *peer[:2])
        with self._send_lock:
            self._client = conn
            self._active = "tcp"
        self.connections += 1
        self._on_connect()

    def _read_client(self) -> None:
        client = self._client
        if client is None:
            return
        try:
            data = client.recv(4096)
        except (BlockingIOError, InterruptedError, TimeoutError):
            return
        except OSError:
            data = b""
        if data:
            self._on_data(data)
            return
        log.info("sender on TCP disconnected")
        with self._send_lock:
            self._drop_client()
            self._active = None
        self._on_disconnect()

    def _drop_client(self) -> None:
        """Under _send_lock (or at close): forget and close the TCP client."""
        client, self._client = self._client, None
        if client is None:
            return
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(client)
        with contextlib.suppress(OSError):
            client.close()

    # -- the pty ---------------------------------------------------------------------

    def _open_pty(self) -> None:
        assert self.pty_link is not None
        master, slave = pty.openpty()
        tty.setraw(slave)  # before anyone writes, or the line discipline rewrites bytes
        self._pty_name = os.ttyname(slave)
        os.close(slave)  # held by senders only, so the master shows who is there
        os.set_blocking(master, False)
        self._master = master
        link = self.pty_link
        if link.exists() and not link.is_symlink():
            os.close(master)
            self._master = None
            raise FileExistsError(f"{link} exists and is not a symlink: not replacing it")
        tmp = link.with_name(link.name + ".tmp")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        os.symlink(self._pty_name, tmp)
        os.replace(tmp, link)
        log.info("sender link on pty %s (%s)", link, self._pty_name)

    def _check_pty_open(self) -> None:
        assert self._master is not None
        poller = select.poll()
        poller.register(self._master, select.POLLIN)
        events = poller.poll(0)
        hung_up = any(ev & select.POLLHUP for _, ev in events)
        if hung_up:
            return
        self._pty_open = True
        self._selector.register(self._master, selectors.EVENT_READ, "pty")
        if self._active is None:
            log.info("sender opened the pty %s", self.pty_link)
            with self._send_lock:
                self._active = "pty"
            self.connections += 1
            self._on_connect()
        else:
            self._write_pty(BUSY)

    def _read_pty(self) -> None:
        assert self._master is not None
        try:
            data = os.read(self._master, 4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            if exc.errno != errno.EIO:
                raise
            data = b""  # EIO: the last holder of the slave closed it
        if data:
            if self._active == "pty":
                self._on_data(data)
            return
        self._pty_open = False
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(self._master)
        self._flush_pty()
        if self._active == "pty":
            log.info("sender closed the pty %s", self.pty_link)
            with self._send_lock:
                self._active = None
            self._on_disconnect()

    def _flush_pty(self) -> None:
        """Drop what the last sender left unread, so the next one does not read it."""
        with contextlib.suppress(OSError):
            fd = os.open(self._pty_name, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
            try:
                termios.tcflush(fd, termios.TCIOFLUSH)
            finally:
                os.close(fd)

    def _write_pty(self, data: bytes) -> None:
        assert self._master is not None
        view = memoryview(data)
        while view:
            try:
                n = os.write(self._master, view)
            except BlockingIOError:
                _, ready, _ = select.select([], [self._master], [], SEND_TIMEOUT)
                if not ready:
                    log.info("sender on the pty reads nothing: %d bytes dropped", len(view))
                    return
                continue
            except OSError:
                return  # EIO: the sender just closed the pty
            view = view[n:]
