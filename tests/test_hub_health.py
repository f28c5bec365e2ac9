"""The supervised hub: /healthz, the systemd notify protocol, and loops that survive.

The notify test runs a real hub process with a real Unix datagram socket as
``NOTIFY_SOCKET``, against a real Mosquitto that it then kills; the in-process tests
drive the hub service's own loops (a crash, a stuck ingest) with an injected clock.
"""

from __future__ import annotations

import json
import socket
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.config import load_hub_config
from gateway.contract import Envelope, Topics
from gateway.core.sdnotify import Watchdog
from gateway.core.supervise import Supervisor
from gateway.hub import service as service_mod
from gateway.hub.db import HubStore
from gateway.hub.service import HubService
from gateway.web import hub_web_app
from tests.support.clock import AheadMono
from tests.support.harness import Observer, Site, http_request, poll_until
from tests.support.mosquitto import MosquittoProcess

pytestmark = pytest.mark.integration


class NotifySocket:
    """What systemd would listen on: every datagram the service sends, in order."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="fgn-"))  # short: sun_path is ~100 bytes
        self.path = str(self.dir / "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.messages: list[str] = []
        self.cond = threading.Condition()
        self._stop = False
        self.sock.settimeout(0.2)
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop:
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            with self.cond:
                self.messages.append(data.decode())
                self.cond.notify_all()

    def wait_for(self, predicate, timeout: float = 20.0, what: str = "message") -> None:
        with self.cond:
            if not self.cond.wait_for(lambda: predicate(self.messages), timeout):
                raise AssertionError(f"no {what} in {self.messages[-20:]}")

    def count(self, text: str) -> int:
        with self.cond:
            return sum(1 for m in self.messages if text in m.splitlines())

    def close(self) -> None:
        self._stop = True
        self._thread.join(5)
        self.sock.close()
        Path(self.path).unlink(missing_ok=True)
        self.dir.rmdir()


@pytest.fixture
def notify_socket() -> Iterator[NotifySocket]:
    ns = NotifySocket()
    try:
        yield ns
    finally:
        ns.close()


def _health(url: str) -> tuple[int, dict]:
    status, _, body = http_request(url + "healthz")
    return status, json.loads(body)


def test_hub_notifies_systemd_and_stops_the_watchdog_without_its_broker(
    site: Site, mosquitto: MosquittoProcess, notify_socket: NotifySocket
) -> None:
    url = site.start_hub(
        env={"NOTIFY_SOCKET": notify_socket.path, "WATCHDOG_USEC": "1500000"}
    )  # a ping at most every 0.5 s
    notify_socket.wait_for(lambda ms: any("READY=1" in m.splitlines() for m in ms), what="READY=1")
    notify_socket.wait_for(lambda ms: any(m == "WATCHDOG=1" for m in ms), what="WATCHDOG=1")
    status, body = poll_until(
        lambda: (
            (r := _health(url))[0] == 200
            and all(r[1]["loops"][n]["since_ok"] is not None for n in ("ingest", "snapshots"))
            and r
        ),
        what="a healthy /healthz, each loop with a success",
    )
    assert body["status"] == "ok" and body["broker"]["connected"] is True
    assert set(body["loops"]) == {"ingest", "snapshots", "web", "watch", "retention", "alerts"}
    for name in ("ingest", "snapshots"):
        loop = body["loops"][name]
        assert loop["alive"] and not loop["stale"] and loop["since_ok"] is not None

    mosquitto.stop()
    # The hub says so: an unhealthy status, /healthz 503 naming the broker, then a loud
    # ERROR after the grace period; between the status and the ERROR, no watchdog ping.
    notify_socket.wait_for(
        lambda ms: any("broker unreachable" in m for m in ms), what="an unhealthy STATUS"
    )
    with notify_socket.cond:
        at_unhealthy = len(notify_socket.messages)
    status, body = _health(url)
    assert status == 503 and body["status"] == "error"
    assert body["broker"]["connected"] is False and body["broker"]["down_for_s"] >= 0
    assert body["loops"]["ingest"]["alive"]  # the loops themselves are fine
    site.hub.wait_line(r"ERROR .*cannot reach the MQTT broker", timeout=30)
    with notify_socket.cond:
        during = notify_socket.messages[at_unhealthy:]
    assert "WATCHDOG=1" not in during

    mosquitto.start()  # same port: the hub reconnects and pings again
    notify_socket.wait_for(
        lambda ms: "WATCHDOG=1" in ms[at_unhealthy:],
        timeout=30,
        what="WATCHDOG=1 after the broker came back",
    )
    poll_until(lambda: _health(url)[0] == 200, timeout=30, what="healthy again")
    site.hub.wait_line(r"reachable again after")


def test_node_process_says_ready(site: Site, notify_socket: NotifySocket) -> None:
    from tests.support.harness import Proc

    site.start_hub()  # it makes the signing key the node needs
    proc = Proc(
        ["node", "--config", str(site.files.node_configs["laser-1"])],
        site.tmp / "laser-1-notify.log",
        env={"GPIOZERO_PIN_FACTORY": "mock", "NOTIFY_SOCKET": notify_socket.path},
    )
    try:
        notify_socket.wait_for(
            lambda ms: any(m.startswith("READY=1") for m in ms), what="READY=1 from the node"
        )
        (ready,) = [m for m in notify_socket.messages if m.startswith("READY=1")]
        assert "relay off" in ready
    finally:
        proc.stop()


# -- in-process: the hub's loops under the supervisor -------------------------------------


@pytest.fixture
def hub(tmp_path: Path, mosquitto: MosquittoProcess):
    site = Site(tmp_path, mosquitto.url)
    cfg = load_hub_config(site.files.hub_config)
    clock = AheadMono()
    svc = HubService(
        cfg,
        web_app=hub_web_app,
        mono=clock,
        watchdog=Watchdog(env={}),
        supervisor=Supervisor(mono=clock, backoff_min=0.05),
    )
    try:
        yield svc, clock, cfg
    finally:
        svc.stop()


def _event(node: str, seq: int) -> bytes:
    return Envelope.new(
        node=node,
        seq=seq,
        boot="b1",
        type="node.boot",
        data={"version": "t", "recovered_session_id": None, "relay": False},
    ).encode()


def _stored(cfg, event_id: str) -> bool:  # noqa: ANN001
    with HubStore(cfg.database) as store:
        return (
            store.conn.execute("SELECT 1 FROM events WHERE event_id = ?", (event_id,)).fetchone()
            is not None
        )


def test_a_crashed_ingest_loop_is_restarted_and_keeps_ingesting(hub, mosquitto) -> None:
    svc, _clock, cfg = hub
    original = svc._ingest_batch
    crashes = []

    def flaky(store, batch):  # noqa: ANN001
        if not crashes:
            crashes.append(batch)
            raise RuntimeError("database is locked")
        return original(store, batch)

    svc._ingest_batch = flaky
    svc.start()
    assert svc.link.wait_connected(10)
    obs = Observer(mosquitto.url, cfg.mqtt.prefix)
    try:
        topics = Topics(cfg.mqtt.prefix)
        first, second = _event("laser-1", 1), _event("laser-1", 2)
        obs.publish(topics.node_events("laser-1"), first)
        poll_until(
            lambda: svc.supervisor.health()["ingest"].restarts == 1,
            what="the ingest loop restarted",
        )
        assert "database is locked" in svc.supervisor.health()["ingest"].last_error
        obs.publish(topics.node_events("laser-1"), second)
        second_id = Envelope.decode(second).id
        obs.wait_for(lambda: second_id in obs.acks, what="the second event acknowledged")
        assert _stored(cfg, second_id)
        poll_until(lambda: svc.health()["healthy"], what="healthy after the restart")
    finally:
        obs.close()


def test_a_stuck_ingest_loop_makes_the_hub_unhealthy(hub, mosquitto) -> None:
    svc, clock, cfg = hub
    stuck, release = threading.Event(), threading.Event()

    def blocking(store, batch):  # noqa: ANN001
        stuck.set()
        release.wait(30)

    svc._ingest_batch = blocking
    svc.start()
    assert svc.link.wait_connected(10)
    poll_until(lambda: svc.health()["healthy"], what="healthy at first")
    obs = Observer(mosquitto.url, cfg.mqtt.prefix)
    try:
        obs.publish(Topics(cfg.mqtt.prefix).node_events("laser-1"), _event("laser-1", 1))
        assert stuck.wait(10)
        clock.advance(service_mod.STALE_AFTER_S + 1)
        # The other loops beat again at once; the stuck one cannot.
        poll_until(
            lambda: svc.supervisor.health()["snapshots"].since_beat < 5,
            what="the snapshot loop beating",
        )
        h = svc.health()
        assert not h["healthy"]
        assert h["loops"]["ingest"]["stale"] and h["loops"]["ingest"]["alive"]
        assert h["loops"]["snapshots"]["healthy"]
        release.set()
        poll_until(lambda: svc.health()["healthy"], what="healthy once unstuck")
    finally:
        release.set()
        obs.close()


def test_the_shipped_units_are_watched_by_systemd() -> None:
    import configparser

    root = Path(__file__).resolve().parent.parent / "deploy" / "systemd"
    for unit in ("fabgate-hub.service", "fabgate-node.service"):
        cp = configparser.ConfigParser(strict=False, interpolation=None)
        cp.read(root / unit)
        service = cp["Service"]
        assert service["Type"] == "notify", unit
        assert int(service["WatchdogSec"]) > 0, unit
        assert service["Restart"] == "always", unit


def test_one_hub_per_database(tmp_path: Path) -> None:
    import os

    from gateway.hub.lock import HubAlreadyRunning, HubLock

    first, second = HubLock(tmp_path / "hub.db"), HubLock(tmp_path / "hub.db")
    first.acquire()
    with pytest.raises(HubAlreadyRunning, match=f"pid {os.getpid()}"):
        second.acquire()
    assert not second.held
    first.release()
    second.acquire()  # released (as by the death of its process): free again
    second.release()


def test_an_unreachable_broker_is_an_error_at_a_bounded_rate(tmp_path: Path, caplog) -> None:
    import logging

    from gateway.demo.site import write_demo_files

    files = write_demo_files(tmp_path / "site", "mqtt://127.0.0.1:1", 0)
    t = [100.0]
    svc = HubService(
        load_hub_config(files.hub_config),
        mono=lambda: t[0],
        watchdog=Watchdog(env={}),
    )
    caplog.set_level(logging.INFO, logger="gateway.hub.service")

    def errors() -> int:
        return sum(
            1
            for r in caplog.records
            if r.levelno == logging.ERROR and "cannot reach the MQTT broker" in r.getMessage()
        )

    for at, expected in [(100, 0), (104.9, 0), (105, 1), (120, 1), (134.9, 1), (135, 2), (500, 3)]:
        t[0] = at
        svc._check_broker()  # never connected: the link was not even started
        assert errors() == expected, at
    assert "never connected since start" in caplog.text
    svc.link.connected.set()  # as paho's thread does on CONNACK
    t[0] = 501
    svc._check_broker()
    assert "reachable again after 401 s" in caplog.text
    assert svc.health()["broker"] == {
        "url": "mqtt://127.0.0.1:1",
        "connected": True,
        "down_for_s": None,
    }
