"""The Mosquitto ACL and settings in deploy/ on a real Mosquitto.

Each node writes only its own topics, no one can take over another client's connection
by borrowing its client id, and packets are bounded but a big site's snapshot fits. The
ACL file is used as shipped, and so are the settings of ``fabgate.conf`` (only the
listener, the password file and the file paths are made here), so a change to either
that lets one node speak for another, read another machine's snapshot or kick the hub
off fails here.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from gateway.hub.catalogue import sync_catalogue
from gateway.hub.seed import import_seed
from gateway.hub.snapshots import build_snapshot
from tests.support.mosquitto import MosquittoProcess

ROOT = Path(__file__).resolve().parent.parent
PREFIX = "fablab/fablab-demo/"
PASSWORD = "secret-for-tests"

pytestmark = pytest.mark.integration


class Client:
    def __init__(self, port: int, user: str | None, client_id: str | None = None) -> None:
        self.messages: list[str] = []
        self.cond = threading.Condition()
        self.refused: int | None = None
        self.ready = threading.Event()
        self.connected = threading.Event()
        self.disconnects = 0
        self.c = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or f"acl-{user}",
            protocol=paho.MQTTv311,
        )
        if user:
            self.c.username_pw_set(user, PASSWORD)
        self.c.on_connect = self._on_connect
        self.c.on_disconnect = self._on_disconnect
        self.c.on_message = self._on_message
        self.c.on_subscribe = lambda *_a: self.ready.set()
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()

    def _on_connect(
        self, _c: paho.Client, _u: object, _f: object, reason: paho.ReasonCode, _p: object
    ) -> None:
        if reason.is_failure:
            self.refused = reason.value
            self.ready.set()
        else:
            self.connected.set()

    def _on_disconnect(self, *_a: object) -> None:
        with self.cond:
            self.disconnects += 1
            self.connected.clear()
            self.cond.notify_all()

    def _on_message(self, _c: paho.Client, _u: object, msg: paho.MQTTMessage) -> None:
        with self.cond:
            self.messages.append(msg.topic)
            self.cond.notify_all()

    def subscribe(self, topic: str) -> None:
        self.ready.clear()
        self.c.subscribe(topic, 1)
        assert self.ready.wait(10)

    def publish(self, topic: str, retain: bool = False, payload: bytes = b"x") -> None:
        self.c.publish(topic, payload, qos=1, retain=retain).wait_for_publish(10)

    def wait(self, topic: str) -> None:
        with self.cond:
            assert self.cond.wait_for(lambda: topic in self.messages, 10), topic

    def close(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()


# Lines of fabgate.conf that name this machine's files or ports; the test makes its own.
LOCAL_KEYS = ("listener", "password_file", "acl_file", "persistence", "autosave_interval")


def shipped_settings() -> str:
    """fabgate.conf as shipped, minus its listener and file paths."""
    keep = []
    for line in (ROOT / "deploy" / "mosquitto" / "fabgate.conf").read_text().splitlines():
        words = line.split()
        if words and not line.startswith("#") and words[0] not in LOCAL_KEYS:
            keep.append(line)
    return "\n".join(keep) + "\n"


def shipped_value(key: str) -> str:
    (value,) = [
        line.split()[1] for line in shipped_settings().splitlines() if line.split()[0] == key
    ]
    return value


@pytest.fixture
def broker(tmp_path: Path):
    if shutil.which("mosquitto_passwd") is None:
        pytest.fail("mosquitto_passwd is missing: run the README test command")
    passwords = tmp_path / "passwd"
    for i, user in enumerate(("laser-1", "cnc-1", "fabgate-hub")):
        subprocess.run(
            ["mosquitto_passwd", "-b", *(["-c"] if i == 0 else []), str(passwords), user, PASSWORD],
            check=True,
        )
    acl = ROOT / "deploy" / "mosquitto" / "acl"
    mosq = MosquittoProcess(
        workdir=tmp_path / "mosquitto",
        extra_config=(shipped_settings() + f"password_file {passwords}\nacl_file {acl}\n"),
    )
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


def _round_trip(hub: Client, node: Client, node_id: str) -> None:
    """The hub acknowledges to the node and the node publishes an event to the hub."""
    hub.publish(PREFIX + f"node/{node_id}/ack")
    node.wait(PREFIX + f"node/{node_id}/ack")
    node.publish(PREFIX + f"node/{node_id}/event")
    hub.wait(PREFIX + f"node/{node_id}/event")


@pytest.mark.parametrize("stolen_id", ["fabgate-node-cnc-1", "fabgate-hub", "cnc-1"])
def test_borrowing_a_client_id_kicks_no_one_off(broker, stolen_id: str) -> None:
    mosq, clients = broker
    assert shipped_value("use_username_as_clientid") == "true"
    # The real clients, with the client ids fabgate gives them.
    hub = Client(mosq.port, "fabgate-hub", client_id="fabgate-hub")
    cnc = Client(mosq.port, "cnc-1", client_id="fabgate-node-cnc-1")
    clients += [hub, cnc]
    hub.subscribe(PREFIX + "#")
    cnc.subscribe(PREFIX + "node/cnc-1/ack")

    # laser-1's account, connecting with the id of the hub or of another node.
    intruder = Client(mosq.port, "laser-1", client_id=stolen_id)
    clients.append(intruder)
    assert intruder.connected.wait(10)  # the broker took it (as "laser-1")...
    _round_trip(hub, cnc, "cnc-1")  # ...and the real ones still talk, never dropped
    assert (hub.disconnects, cnc.disconnects) == (0, 0)
    assert hub.c.is_connected() and cnc.c.is_connected()


def test_a_second_connection_of_one_account_replaces_the_first(broker) -> None:
    """A restarted node takes over its own stale connection, whatever id it uses."""
    mosq, clients = broker
    hub = Client(mosq.port, "fabgate-hub", client_id="fabgate-hub")
    old = Client(mosq.port, "cnc-1", client_id="fabgate-node-cnc-1")
    clients += [hub, old]
    assert old.connected.wait(10)
    old.c.reconnect_delay_set(60, 120)  # the old process is gone: it must not come back
    hub.subscribe(PREFIX + "#")
    new = Client(mosq.port, "cnc-1", client_id="fabgate-node-cnc-1-restarted")
    clients.append(new)
    new.subscribe(PREFIX + "node/cnc-1/ack")
    with old.cond:
        assert old.cond.wait_for(lambda: old.disconnects >= 1, 10)
    _round_trip(hub, new, "cnc-1")


def test_packets_are_bounded_but_a_big_sites_snapshot_fits(broker, tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from gateway.config import GroupConfig, MachineConfig, Seed, SeedCertification, SeedMember
    from gateway.contract.signing import generate_key, sign_snapshot
    from gateway.hub.db import HubStore

    mosq, clients = broker
    limit = int(shipped_value("max_packet_size"))
    # The hub's biggest message: one machine's signed snapshot of a 2,000-member site.
    now = datetime.now(UTC)
    with HubStore(tmp_path / "big.db") as store:
        sync_catalogue(
            store,
            [GroupConfig("laser", "Laser")],
            [MachineConfig("laser-1", "Laser", "laser", "laser")],
        )
        members = tuple(
            SeedMember(
                id=f"m-{i:05d}-firstname-lastname",
                name=f"Prénom-Composé Nom-Double {i:05d}",
                category="professionnel",
                badges=(f"04{i:08X}AB", f"04{i:08X}CD"),
            )
            for i in range(2000)
        )
        import_seed(
            store,
            Seed(
                file=tmp_path / "s.yaml",
                members=members,
                certifications=tuple(
                    SeedCertification(
                        m.id, "laser", 2, None, now - timedelta(days=1), now + timedelta(days=700)
                    )
                    for m in members
                ),
            ),
        )
        snap = build_snapshot(
            store,
            "laser-1",
            now=now,
            version=10**9,
            epoch=10**10,
            validity=timedelta(days=7),
            timezone="Europe/Paris",
            opening_hours={},
            staff_present_until=None,
            site="fablab-demo",
        )
    big = sign_snapshot(snap, generate_key())
    assert len(snap.members) == 2000 and len(big) < limit

    hub = Client(mosq.port, "fabgate-hub", client_id="fabgate-hub")
    laser = Client(mosq.port, "laser-1", client_id="fabgate-node-laser-1")
    clients += [hub, laser]
    hub.subscribe(PREFIX + "#")
    laser.subscribe(PREFIX + "machine/laser-1/snapshot")
    hub.publish(PREFIX + "machine/laser-1/snapshot", payload=big)
    laser.wait(PREFIX + "machine/laser-1/snapshot")

    # A node sending more than the limit is cut off and its message never delivered.
    laser.c.reconnect_delay_set(60, 120)
    laser.c.publish(PREFIX + "node/laser-1/event", b"x" * limit, qos=1)
    with laser.cond:
        assert laser.cond.wait_for(lambda: laser.disconnects >= 1, 10)
    hub.publish(PREFIX + "node/laser-1/ack")  # a marker after the over-size publish
    hub.wait(PREFIX + "node/laser-1/ack")
    assert PREFIX + "node/laser-1/event" not in hub.messages


def test_fabgate_itself_under_the_shipped_settings(tmp_path: Path) -> None:
    """The real hub and node log in, a node restarts, and a second hub is refused."""
    import signal

    import yaml

    from gateway.drivers.readers.simulated import send_tap
    from tests.support.harness import BADGE, Proc, Site, http_request, poll_until

    passwords = tmp_path / "passwd"
    for i, user in enumerate(("fabgate-hub", "laser-1")):
        subprocess.run(
            ["mosquitto_passwd", "-b", *(["-c"] if i == 0 else []), str(passwords), user, PASSWORD],
            check=True,
        )
    # The ACL as the deployment guide says: the site's name in place of fablab-demo.
    acl = tmp_path / "acl"
    acl.write_text(
        (ROOT / "deploy" / "mosquitto" / "acl")
        .read_text()
        .replace("fablab/fablab-demo/", "fablab/demo/")
    )
    mosq = MosquittoProcess(
        workdir=tmp_path / "mosquitto",
        extra_config=(shipped_settings() + f"password_file {passwords}\nacl_file {acl}\n"),
    )
    mosq.start()
    site = Site(tmp_path, mosq.url)
    second: Proc | None = None
    try:
        for path, user in [
            (site.files.hub_config, "fabgate-hub"),
            (site.files.node_configs["laser-1"], "laser-1"),
        ]:
            cfg = yaml.safe_load(path.read_text())
            cfg["mqtt"].update(username=user, password=PASSWORD)
            path.write_text(yaml.safe_dump(cfg, allow_unicode=True))
        url = site.start_hub()

        def laser() -> dict:
            return {m["machine_id"]: m for m in site.api("/api/v1/machines")["machines"]}["laser-1"]

        node = site.start_node("laser-1")
        node.wait_line(r"snapshot version \d+ accepted")
        poll_until(lambda: laser()["online"], what="laser-1 online")

        # The node dies and comes back: same account, it takes its place again.
        node.p.send_signal(signal.SIGKILL)
        node.p.wait(10)
        node = site.start_node("laser-1")
        node.wait_line(r"started; relay off")  # its tap socket listens from here
        poll_until(lambda: laser()["online"], what="laser-1 online again")
        send_tap(site.tap_socket("laser-1"), BADGE["alice"])
        poll_until(lambda: laser()["state"] == "in_use", what="Alice's session after restart")

        # A second hub on the same database refuses to start; the first keeps its link.
        second = Proc(["hub", "--config", str(site.files.hub_config)], tmp_path / "hub2.log")
        assert second.p.wait(30) == 1
        assert "another hub" in (tmp_path / "hub2.log").read_text()
        status, _, body = http_request(url + "healthz")
        assert status == 200, body
        assert "lost the broker connection" not in site.hub.log.read_text()
    finally:
        if second is not None:
            second.stop()
        site.stop()
        mosq.stop()
