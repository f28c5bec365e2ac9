"""The brokers we start must provide what the node/hub contract relies on.

Events go out at QoS 1, permission snapshots are retained, and a node's offline status is
its last will. Each is checked against both the embedded amqtt broker (demo) and a real
Mosquitto (production), with real paho-mqtt clients speaking MQTT 3.1.1 as our nodes do.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from gateway.demo.broker import BrokerStartError, EmbeddedBroker, free_port
from tests.support.mosquitto import MosquittoProcess, find_mosquitto

TIMEOUT = 10.0


class Probe:
    """A paho client that records what it receives, so tests can wait on events."""

    def __init__(
        self,
        port: int,
        *,
        client_id: str | None = None,
        clean_session: bool = True,
        will: tuple[str, bytes, int, bool] | None = None,
    ) -> None:
        self.port = port
        self.client_id = client_id or f"probe-{uuid.uuid4().hex[:8]}"
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self.published = threading.Event()
        self.session_present: bool | None = None
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            clean_session=clean_session,
            protocol=mqtt.MQTTv311,
        )
        if will is not None:
            topic, payload, qos, retain = will
            self.client.will_set(topic, payload, qos=qos, retain=retain)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *_args: self.subscribed.set()
        self.client.on_publish = lambda *_args: self.published.set()
        self.client.on_message = lambda _c, _u, msg: self.messages.put(msg)

    def _on_connect(
        self,
        _client: mqtt.Client,
        _userdata: object,
        flags: mqtt.ConnectFlags,
        reason_code: object,
        _properties: object,
    ) -> None:
        self.session_present = flags.session_present
        if not getattr(reason_code, "is_failure", False):
            self.connected.set()

    def connect(self, *, background: bool = True) -> Probe:
        """Connect; with ``background=False`` the network loop is driven by hand, so
        :meth:`drop` can cut the socket without a loop thread reconnecting behind it."""
        self.client.connect("127.0.0.1", self.port, keepalive=30)
        if background:
            self.client.loop_start()
        else:
            deadline = time.monotonic() + TIMEOUT
            while not self.connected.is_set() and time.monotonic() < deadline:
                self.client.loop(timeout=0.05)
        assert self.connected.wait(TIMEOUT), f"{self.client_id} did not connect"
        return self

    def subscribe(self, topic: str, qos: int = 1) -> None:
        self.subscribed.clear()
        self.client.subscribe(topic, qos=qos)
        assert self.subscribed.wait(TIMEOUT), f"no SUBACK for {topic}"

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> None:
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        info.wait_for_publish(TIMEOUT)
        assert info.is_published(), f"{topic} was not acknowledged"

    def expect(self, topic: str) -> mqtt.MQTTMessage:
        while True:
            try:
                msg = self.messages.get(timeout=TIMEOUT)
            except queue.Empty:
                pytest.fail(f"{self.client_id} received nothing on {topic} within {TIMEOUT}s")
            if msg.topic == topic:
                return msg

    def disconnect(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def drop(self) -> None:
        """Close the socket without DISCONNECT, as a node losing power would."""
        sock = self.client.socket()
        assert sock is not None
        sock.close()


@pytest.fixture
def probes() -> Iterator[Callable[..., Probe]]:
    made: list[Probe] = []

    def make(port: int, **kwargs: object) -> Probe:
        probe = Probe(port, **kwargs)  # type: ignore[arg-type]
        made.append(probe)
        return probe

    yield make
    for probe in made:
        # DISCONNECT first: it ends the loop thread at once, loop_stop() alone waits
        # for the loop's one-second select timeout.
        with contextlib.suppress(Exception):  # already dropped or never connected
            probe.client.disconnect()
        probe.client.loop_stop()


@pytest.fixture
def embedded() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker() as broker:
        yield broker


@pytest.fixture(params=["embedded", "mosquitto"])
def broker_port(request: pytest.FixtureRequest) -> int:
    """Run a contract check against each broker we ship."""
    broker = request.getfixturevalue(request.param)
    return int(broker.port)


def test_qos1_message_is_delivered(broker_port: int, probes: Callable[..., Probe]) -> None:
    sub = probes(broker_port).connect()
    sub.subscribe("fablab/test/events", qos=1)
    pub = probes(broker_port).connect()
    pub.publish("fablab/test/events", b"event-1", qos=1)
    msg = sub.expect("fablab/test/events")
    assert msg.payload == b"event-1"
    assert msg.qos == 1


def test_retained_message_reaches_late_subscriber(
    broker_port: int, probes: Callable[..., Probe]
) -> None:
    pub = probes(broker_port).connect()
    pub.publish("fablab/test/snapshot", b"snapshot-v1", qos=1, retain=True)
    pub.disconnect()
    late = probes(broker_port).connect()
    late.subscribe("fablab/test/snapshot", qos=1)
    msg = late.expect("fablab/test/snapshot")
    assert msg.payload == b"snapshot-v1"
    assert msg.retain


def test_last_will_on_dropped_connection(broker_port: int, probes: Callable[..., Probe]) -> None:
    watcher = probes(broker_port).connect()
    watcher.subscribe("fablab/test/status", qos=1)
    node = probes(broker_port, will=("fablab/test/status", b"offline", 1, False))
    node.connect(background=False).drop()
    msg = watcher.expect("fablab/test/status")
    assert msg.payload == b"offline"


def test_clean_disconnect_sends_no_will(
    embedded: EmbeddedBroker, probes: Callable[..., Probe]
) -> None:
    watcher = probes(embedded.port).connect()
    watcher.subscribe("fablab/test/#", qos=1)
    node = probes(embedded.port, will=("fablab/test/status", b"offline", 1, False)).connect()
    node.disconnect()
    # A marker published after the disconnect arrives after any will would have.
    watcher.publish("fablab/test/marker", b"after")
    assert watcher.expect("fablab/test/marker").payload == b"after"
    assert all(m.topic != "fablab/test/status" for m in list(watcher.messages.queue))


def test_persistent_session_survives_mosquitto_restart(
    mosquitto: MosquittoProcess, probes: Callable[..., Probe]
) -> None:
    sub = probes(mosquitto.port, client_id="hub-ingest", clean_session=False).connect()
    sub.subscribe("fablab/test/queued", qos=1)
    sub.disconnect()

    pub = probes(mosquitto.port).connect()
    pub.publish("fablab/test/queued", b"while-away", qos=1)
    pub.disconnect()

    mosquitto.restart()

    back = probes(mosquitto.port, client_id="hub-ingest", clean_session=False).connect()
    assert back.session_present
    msg = back.expect("fablab/test/queued")
    assert msg.payload == b"while-away"
    assert msg.qos == 1


def test_mosquitto_restart_keeps_port_and_retained(
    mosquitto: MosquittoProcess, probes: Callable[..., Probe]
) -> None:
    port = mosquitto.port
    pub = probes(port).connect()
    pub.publish("fablab/test/snapshot", b"kept", qos=1, retain=True)
    pub.disconnect()
    mosquitto.restart()
    assert mosquitto.port == port
    assert mosquitto.url == f"mqtt://127.0.0.1:{port}"
    late = probes(port).connect()
    late.subscribe("fablab/test/snapshot")
    assert late.expect("fablab/test/snapshot").payload == b"kept"


def test_mosquitto_start_failure_names_log(tmp_path: Path) -> None:
    if find_mosquitto() is None:
        pytest.fail("mosquitto is not installed; run `python3 scripts/bootstrap.py test`")
    broker = MosquittoProcess(workdir=tmp_path, extra_config="no_such_option 1")
    with pytest.raises(BrokerStartError, match="mosquitto.log"):
        broker.start()
    assert not broker.running


def test_embedded_broker_url_and_restartable() -> None:
    port = free_port()
    broker = EmbeddedBroker(port=port)
    with broker:
        assert broker.url == f"mqtt://127.0.0.1:{port}"
    with broker:  # stop() released the port
        assert broker.port == port


def test_embedded_broker_reports_busy_port() -> None:
    with EmbeddedBroker() as first, pytest.raises(BrokerStartError, match=str(first.port)):
        EmbeddedBroker(port=first.port).start()
