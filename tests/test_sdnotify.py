"""The systemd notify protocol against a real Unix datagram socket."""

from __future__ import annotations

import os
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.core import sdnotify
from gateway.core.sdnotify import Watchdog, notify, watchdog_interval


@pytest.fixture
def notify_socket() -> Iterator[tuple[str, socket.socket]]:
    # A short directory: Unix socket paths are limited to about 100 bytes.
    d = Path(tempfile.mkdtemp(prefix="fgsd-"))
    path = d / "notify"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(str(path))
    s.settimeout(5)
    try:
        yield str(path), s
    finally:
        s.close()
        path.unlink(missing_ok=True)
        d.rmdir()


def test_notify_sends_one_datagram(notify_socket):
    path, s = notify_socket
    assert notify("READY=1\nSTATUS=serving", env={"NOTIFY_SOCKET": path})
    assert s.recv(4096) == b"READY=1\nSTATUS=serving"


def test_notify_reaches_an_abstract_socket():
    name = f"fabgate-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.bind("\0" + name)
        s.settimeout(5)
        assert notify("WATCHDOG=1", env={"NOTIFY_SOCKET": "@" + name})
        assert s.recv(100) == b"WATCHDOG=1"


def test_without_systemd_or_with_a_dead_socket_nothing_is_raised(tmp_path, caplog):
    assert not notify("READY=1", env={})
    assert not notify("READY=1", env={"NOTIFY_SOCKET": str(tmp_path / "gone")})
    assert "could not notify systemd" in caplog.text


def test_the_watchdog_interval_is_for_this_process_only(notify_socket):
    path, _ = notify_socket
    base = {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "30000000"}
    assert watchdog_interval(base) == 30.0
    assert watchdog_interval({**base, "WATCHDOG_PID": str(os.getpid())}) == 30.0
    assert watchdog_interval({**base, "WATCHDOG_PID": str(os.getpid() + 1)}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "30000000"}) is None  # no socket
    assert watchdog_interval({**base, "WATCHDOG_USEC": "soon"}) is None


def test_watchdog_pings_at_most_every_third_of_the_timeout(notify_socket):
    path, s = notify_socket
    t = [100.0]
    wd = Watchdog(env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "3000000"}, mono=lambda: t[0])
    assert wd.enabled and wd.period == pytest.approx(1.0)
    assert wd.ping()
    assert s.recv(100) == b"WATCHDOG=1"
    t[0] += 0.9
    assert not wd.ping()  # too soon: nothing sent
    t[0] += 0.1
    assert wd.ping()
    assert s.recv(100) == b"WATCHDOG=1"
    assert wd.ready("up")
    assert s.recv(100) == b"READY=1\nSTATUS=up"


def test_no_watchdog_configured_means_no_pings(notify_socket):
    path, s = notify_socket
    wd = Watchdog(env={"NOTIFY_SOCKET": path})
    assert not wd.enabled and not wd.ping()
    assert wd.status("idle")  # status and ready still go out
    assert s.recv(100) == b"STATUS=idle"


def test_ping_watchdog_uses_the_process_environment(notify_socket, monkeypatch):
    path, s = notify_socket
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    monkeypatch.setenv("WATCHDOG_USEC", "60000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    monkeypatch.setattr(sdnotify, "_default", None)
    assert sdnotify.ping_watchdog()
    assert s.recv(100) == b"WATCHDOG=1"
    assert not sdnotify.ping_watchdog()  # rate-limited
