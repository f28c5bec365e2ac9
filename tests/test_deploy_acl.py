"""The Mosquitto ACL in deploy/ on a real Mosquitto: each node writes only its own topics.

The file is used as shipped (only the password file is made here), so a change to it
that lets one node speak for another, or read another machine's snapshot, fails here.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from gateway.broker import MosquittoProcess

ROOT = Path(__file__).resolve().parent.parent
PREFIX = "fablab/fablab-demo/"
PASSWORD = "secret-for-tests"

pytestmark = pytest.mark.integration


class Client:
    def __init__(self, port: int, user: str | None) -> None:
        self.messages: list[str] = []
        self.cond = threading.Condition()
        self.refused: int | None = None
        self.ready = threading.Event()
        self.c = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"acl-{user}",
                             protocol=paho.MQTTv311)
        if user:
            self.c.username_pw_set(user, PASSWORD)
        self.c.on_connect = self._on_connect
        self.c.on_message = self._on_message
        self.c.on_subscribe = lambda *_a: self.ready.set()
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()

    def _on_connect(self, _c: paho.Client, _u: object, _f: object, reason: paho.ReasonCode,
                    _p: object) -> None:
        if reason.is_failure:
            self.refused = reason.value
            self.ready.set()

    def _on_message(self, _c: paho.Client, _u: object, msg: paho.MQTTMessage) -> None:
        with self.cond:
            self.messages.append(msg.topic)
            self.cond.notify_all()

    def subscribe(self, topic: str) -> None:
        self.ready.clear()
        self.c.subscribe(topic, 1)
        assert self.ready.wait(10)

    def publish(self, topic: str, retain: bool = False) -> None:
        self.c.publish(topic, b"x", qos=1, retain=retain).wait_for_publish(10)

    def wait(self, topic: str) -> None:
        with self.cond:
            assert self.cond.wait_for(lambda: topic in self.messages, 10), topic

    def close(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()


@pytest.fixture
def broker(tmp_path: Path):
    if shutil.which("mosquitto_passwd") is None:
        pytest.fail("mosquitto_passwd is missing: run the README test command")
    passwords = tmp_path / "passwd"
    for i, user in enumerate(("laser-1", "cnc-1", "fabgate-hub")):
        subprocess.run(["mosquitto_passwd", "-b", *(["-c"] if i == 0 else []),
                        str(passwords), user, PASSWORD], check=True)
    acl = ROOT / "deploy" / "mosquitto" / "acl"
    mosq = MosquittoProcess(workdir=tmp_path / "mosquitto", extra_config=(
        f"allow_anonymous false\npassword_file {passwords}\nacl_file {acl}\n"))
    mosq.start()
    clients: list[Client] = []
    try:
        yield mosq, clients
    finally:
        for c in clients:
            c.close()
        mosq.stop()


def test_nodes_write_only_their_own_topics_and_read_only_their_snapshot(broker) -> None:
    mosq, clients = broker
    hub = Client(mosq.port, "fabgate-hub")
    laser = Client(mosq.port, "laser-1")
    clients += [hub, laser]
    hub.subscribe(PREFIX + "#")
    laser.subscribe(PREFIX + "machine/+/snapshot")
    laser.subscribe(PREFIX + "hub/enrolment")
    laser.subscribe(PREFIX + "node/laser-1/ack")

    # The hub publishes both machines' snapshots and the enrolment window (retained).
    hub.publish(PREFIX + "machine/cnc-1/snapshot", retain=True)
    hub.publish(PREFIX + "machine/laser-1/snapshot", retain=True)
    hub.publish(PREFIX + "hub/enrolment", retain=True)
    hub.publish(PREFIX + "node/laser-1/ack")
    laser.wait(PREFIX + "node/laser-1/ack")
    laser.wait(PREFIX + "machine/laser-1/snapshot")
    laser.wait(PREFIX + "hub/enrolment")
    assert PREFIX + "machine/cnc-1/snapshot" not in laser.messages

    # A node speaking for another node, forging a snapshot or a simulated tap: dropped.
    laser.publish(PREFIX + "node/cnc-1/event")
    laser.publish(PREFIX + "machine/laser-1/snapshot")
    laser.publish(PREFIX + "sim/laser-1/tap")
    laser.publish(PREFIX + "node/laser-1/event")  # allowed, and after the others
    hub.wait(PREFIX + "node/laser-1/event")
    assert PREFIX + "node/cnc-1/event" not in hub.messages
    assert PREFIX + "sim/laser-1/tap" not in hub.messages
    assert hub.messages.count(PREFIX + "machine/laser-1/snapshot") == 1  # its own only


def test_anonymous_clients_are_refused(broker) -> None:
    mosq, clients = broker
    anonymous = Client(mosq.port, None)
    clients.append(anonymous)
    assert anonymous.ready.wait(10)
    assert anonymous.refused is not None
