"""The broker files of `fabgate deploy mosquitto` on a real Mosquitto.

Each node writes only its own topics, no one can take over another client's connection
by borrowing its client id, and packets are bounded but a big site's snapshot fits. The
settings, ACL and password file are the command's output for the shipped
``config/hub.yaml`` (plus a machine whose node id is not its own id), with only the
listener and the install directory chosen for this machine (tests/support/deployed.py),
so a change to the generator that lets one node speak for another, read another
machine's snapshot or kick the hub off fails here.
"""

from __future__ import annotations

import threading
from pathlib import Path

import paho.mqtt.client as paho
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from gateway.hub.catalogue import sync_catalogue
from gateway.hub.seed import import_seed
from gateway.hub.snapshots import build_snapshot
from tests.support.deployed import DeployedBroker, deploy_broker

ROOT = Path(__file__).resolve().parent.parent
PREFIX = "fablab/fablab-demo/"
# A machine served by a node of another id: its account is not its machine's name.
LATHE = {"id": "lathe-1", "name": "Tour", "kind": "other", "group": "cnc", "node": "tour-pi"}

pytestmark = pytest.mark.integration


class Client:
    def __init__(
        self, port: int, user: str | None, client_id: str | None = None, password: str = ""
    ) -> None:
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
            self.c.username_pw_set(user, password)
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


def setting(deployed: DeployedBroker, key: str) -> str:
    """The value of a setting of the generated fabgate.conf (its first line)."""
    for line in (deployed.directory / "fabgate.conf").read_text().splitlines():
        if line.split()[:1] == [key]:
            return line.split()[1]
    raise AssertionError(f"fabgate.conf has no {key}")


class Broker:
    """The deployed broker and the clients a test opens on it (closed at the end)."""

    def __init__(self, deployed: DeployedBroker) -> None:
        self.deployed = deployed
        self.port = deployed.port
        self.clients: list[Client] = []

    def client(self, user: str | None, client_id: str | None = None) -> Client:
        password = self.deployed.passwords.get(user or "", "")
        c = Client(self.port, user, client_id, password)
        self.clients.append(c)
        return c


def site_config(tmp_path: Path) -> Path:
    """The shipped hub configuration, plus the lathe whose node is tour-pi."""
    doc = yaml.safe_load((ROOT / "config" / "hub.yaml").read_text())
    doc["machines"].append(LATHE)
    path = tmp_path / "hub.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False))
    return path


@pytest.fixture
def broker(tmp_path: Path):
    deployed = deploy_broker(tmp_path, site_config(tmp_path))
    b = Broker(deployed)
    try:
        yield b
    finally:
        for c in b.clients:
            c.close()
        deployed.stop()


def test_nodes_write_only_their_own_topics_and_read_only_their_snapshot(broker) -> None:
    hub = broker.client("fabgate-hub")
    laser = broker.client("laser-1")
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

    # A node speaking for another node, forging a snapshot, an acknowledgement of its own
    # events, the enrolment window or a simulated tap: dropped.
    laser.publish(PREFIX + "node/cnc-1/event")
    laser.publish(PREFIX + "machine/laser-1/snapshot")
    laser.publish(PREFIX + "node/laser-1/ack")
    laser.publish(PREFIX + "node/laser-1/other")
    laser.publish(PREFIX + "hub/enrolment")
    laser.publish(PREFIX + "sim/laser-1/tap")
    laser.publish(PREFIX + "node/laser-1/status")  # allowed...
    laser.publish(PREFIX + "node/laser-1/event")  # ...and after the others
    hub.wait(PREFIX + "node/laser-1/event")
    assert PREFIX + "node/laser-1/status" in hub.messages
    for forged in ("node/cnc-1/event", "sim/laser-1/tap", "node/laser-1/other"):
        assert PREFIX + forged not in hub.messages
    for own in ("machine/laser-1/snapshot", "node/laser-1/ack", "hub/enrolment"):
        assert hub.messages.count(PREFIX + own) == 1  # the hub's own only


def test_a_node_whose_id_is_not_its_machines_reads_that_machines_snapshot(broker) -> None:
    acl = (broker.deployed.directory / "fabgate.acl").read_text()
    assert f"user tour-pi\ntopic read {PREFIX}machine/lathe-1/snapshot\n" in acl
    hub = broker.client("fabgate-hub")
    tour = broker.client("tour-pi")
    hub.subscribe(PREFIX + "#")
    tour.subscribe(PREFIX + "machine/+/snapshot")
    tour.subscribe(PREFIX + "node/+/ack")
    for machine in ("lathe-1", "laser-1", "tour-pi"):
        hub.publish(PREFIX + f"machine/{machine}/snapshot", retain=True)
    hub.publish(PREFIX + "node/lathe-1/ack")  # the machine's name is not its account
    hub.publish(PREFIX + "node/tour-pi/ack")
    tour.wait(PREFIX + "node/tour-pi/ack")
    tour.wait(PREFIX + "machine/lathe-1/snapshot")
    assert PREFIX + "machine/laser-1/snapshot" not in tour.messages
    assert PREFIX + "node/lathe-1/ack" not in tour.messages

    # It speaks under its node id, not under its machine's id.
    tour.publish(PREFIX + "node/lathe-1/event")
    tour.publish(PREFIX + "machine/lathe-1/snapshot")
    tour.publish(PREFIX + "node/tour-pi/event")
    hub.wait(PREFIX + "node/tour-pi/event")
    assert PREFIX + "node/lathe-1/event" not in hub.messages
    assert hub.messages.count(PREFIX + "machine/lathe-1/snapshot") == 1


def test_anonymous_clients_and_wrong_passwords_are_refused(broker) -> None:
    anonymous = broker.client(None)
    impostor = Client(broker.port, "laser-1", password="not-its-password")
    broker.clients.append(impostor)
    for refused in (anonymous, impostor):
        assert refused.ready.wait(10)
        assert refused.refused is not None
    assert broker.client("laser-1").connected.wait(10)  # the generated password works


def _round_trip(hub: Client, node: Client, node_id: str) -> None:
    """The hub acknowledges to the node and the node publishes an event to the hub."""
    hub.publish(PREFIX + f"node/{node_id}/ack")
    node.wait(PREFIX + f"node/{node_id}/ack")
    node.publish(PREFIX + f"node/{node_id}/event")
    hub.wait(PREFIX + f"node/{node_id}/event")


@pytest.mark.parametrize("stolen_id", ["fabgate-node-cnc-1", "fabgate-hub", "cnc-1"])
def test_borrowing_a_client_id_kicks_no_one_off(broker, stolen_id: str) -> None:
    assert setting(broker.deployed, "use_username_as_clientid") == "true"
    # The real clients, with the client ids fabgate gives them.
    hub = broker.client("fabgate-hub", client_id="fabgate-hub")
    cnc = broker.client("cnc-1", client_id="fabgate-node-cnc-1")
    hub.subscribe(PREFIX + "#")
    cnc.subscribe(PREFIX + "node/cnc-1/ack")

    # laser-1's account, connecting with the id of the hub or of another node.
    intruder = broker.client("laser-1", client_id=stolen_id)
    assert intruder.connected.wait(10)  # the broker took it (as "laser-1")...
    _round_trip(hub, cnc, "cnc-1")  # ...and the real ones still talk, never dropped
    assert (hub.disconnects, cnc.disconnects) == (0, 0)
    assert hub.c.is_connected() and cnc.c.is_connected()


def test_a_second_connection_of_one_account_replaces_the_first(broker) -> None:
    """A restarted node takes over its own stale connection, whatever id it uses."""
    hub = broker.client("fabgate-hub", client_id="fabgate-hub")
    old = broker.client("cnc-1", client_id="fabgate-node-cnc-1")
    assert old.connected.wait(10)
    old.c.reconnect_delay_set(60, 120)  # the old process is gone: it must not come back
    hub.subscribe(PREFIX + "#")
    new = broker.client("cnc-1", client_id="fabgate-node-cnc-1-restarted")
    new.subscribe(PREFIX + "node/cnc-1/ack")
    with old.cond:
        assert old.cond.wait_for(lambda: old.disconnects >= 1, 10)
    _round_trip(hub, new, "cnc-1")


def test_packets_are_bounded_but_a_big_sites_snapshot_fits(broker, tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from gateway.config import GroupConfig, MachineConfig, Seed, SeedCertification, SeedMember
    from gateway.contract.signing import generate_key, sign_snapshot
    from gateway.hub.db import HubStore

    limit = int(setting(broker.deployed, "max_packet_size"))
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

    hub = broker.client("fabgate-hub", client_id="fabgate-hub")
    laser = broker.client("laser-1", client_id="fabgate-node-laser-1")
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


def test_fabgate_itself_under_the_generated_files(tmp_path: Path) -> None:
    """The real hub and node log in, a node restarts, and a second hub is refused."""
    import signal

    from gateway.demo.broker import free_port
    from gateway.drivers.readers.simulated import send_tap
    from tests.support.harness import BADGE, Proc, Site, http_request, poll_until

    port = free_port("127.0.0.1")
    site = Site(tmp_path, f"mqtt://127.0.0.1:{port}")
    deployed = deploy_broker(tmp_path, site.files.hub_config, port=port)
    second: Proc | None = None
    try:
        for path, user in [
            (site.files.hub_config, "fabgate-hub"),
            (site.files.node_configs["laser-1"], "laser-1"),
        ]:
            cfg = yaml.safe_load(path.read_text())
            cfg["mqtt"].update(username=user, password=deployed.passwords[user])
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
        deployed.stop()
