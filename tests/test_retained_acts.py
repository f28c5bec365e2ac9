"""A retained copy of a one-time message is never acted on, however it got to the broker.

Mosquitto's ACL cannot forbid the retain flag on a topic a client may write, so a node
(or anyone with write access there) could leave an event or a simulated tap retained; the
broker would then hand it out again at every reconnection. The hub ignores retained
events and clears them at the broker; a node drops a retained simulated tap.
"""

from __future__ import annotations

import sqlite3
import threading
import uuid
from datetime import UTC, datetime

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from gateway.contract import Topics, encode_sim_tap
from gateway.drivers.readers.simulated import send_tap
from tests.support.builders import session_events
from tests.support.harness import BADGE, Observer, Site
from tests.support.mosquitto import MosquittoProcess

pytestmark = pytest.mark.integration
TOPICS = Topics("fablab/demo/")


class Raw:
    """A bare client: publishes what it is told, and reports retained copies it gets."""

    def __init__(self, port: int) -> None:
        self.got: list[tuple[str, bytes, bool]] = []
        self.cond = threading.Condition()
        self.subscribed = threading.Event()
        self.c = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=f"raw-{uuid.uuid4()}", protocol=paho.MQTTv311
        )
        self.c.on_message = self._on_message
        self.c.on_subscribe = lambda *_a: self.subscribed.set()
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()

    def _on_message(self, _c: paho.Client, _u: object, msg: paho.MQTTMessage) -> None:
        with self.cond:
            self.got.append((msg.topic, bytes(msg.payload), bool(msg.retain)))
            self.cond.notify_all()

    def publish(self, topic: str, payload: bytes, *, retain: bool) -> None:
        self.c.publish(topic, payload, qos=1, retain=retain).wait_for_publish(10)

    def retained_on(self, topic: str) -> list[bytes]:
        """What the broker still keeps retained on ``topic``: subscribe, then send a probe
        on a topic of our own. The broker sends a subscription's retained copies right
        after acknowledging it, on this one connection, so they come before the probe."""
        probe_topic = f"test/probe/{uuid.uuid4()}"
        for t in (topic, probe_topic):
            self.subscribed.clear()
            self.c.subscribe(t, 1)
            assert self.subscribed.wait(10)
        self.publish(probe_topic, b"probe", retain=False)
        with self.cond:
            assert self.cond.wait_for(lambda: any(t == probe_topic for t, _p, _r in self.got), 10)
            return [p for t, p, r in self.got if t == topic and r and p]

    def close(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()


def test_the_hub_ignores_a_retained_event_and_clears_it(
    site: Site, observer: Observer, mosquitto: MosquittoProcess
) -> None:
    start = datetime(2026, 3, 2, 18, 0, tzinfo=UTC)
    retained, _ = session_events("s-retained", start, 60, "m-alice", "laser-1")
    live = session_events("s-live", start, 90, "m-alice", "laser-1", seq=10)
    raw = Raw(mosquitto.port)
    try:
        # Left retained before the hub starts: the hub gets it as a retained copy.
        raw.publish(TOPICS.node_events("laser-1"), retained.encode(), retain=True)
        site.start_hub()
        site.hub.wait_line(
            r"ignoring a retained message on fablab/demo/node/laser-1/event and clearing it"
        )
        assert raw.retained_on(TOPICS.node_events("laser-1")) == []  # cleared

        # A node's own events (not retained) go through; once they are acknowledged, the
        # hub has handled everything before them too (one ingest queue, in order).
        for env in live:
            raw.publish(TOPICS.node_events("laser-1"), env.encode(), retain=False)
        for env in live:
            observer.wait_acked(env)
        sessions = {s["session_id"] for s in site.api("/api/v1/sessions")["sessions"]}
        assert sessions == {"s-live"}
        db = sqlite3.connect(site.files.data / "hub.db")
        try:
            events = {row[0] for row in db.execute("SELECT event_id FROM events")}
            refused = db.execute("SELECT topic, error FROM rejected_messages").fetchall()
        finally:
            db.close()
        assert events == {env.id for env in live}
        assert refused == []  # the clearing (an empty message) was not taken for an event
    finally:
        raw.close()


def test_a_node_drops_a_retained_simulated_tap(
    site: Site, observer: Observer, mosquitto: MosquittoProcess
) -> None:
    raw = Raw(mosquitto.port)
    tap_id = str(uuid.uuid4())
    try:
        raw.publish(TOPICS.sim_tap("laser-1"), encode_sim_tap(BADGE["alice"], tap_id), retain=True)
        site.start_hub()
        node = site.start_node("laser-1")
        node.wait_line(r"ignoring a retained message on fablab/demo/sim/laser-1/tap")
        # A real tap afterwards is the first one the node acts on.
        send_tap(site.tap_socket("laser-1"), BADGE["alice"])
        observer.wait_event("session.started", member_id="m-alice")
        taps = [e for e in observer.events if e.type == "tap"]
        assert len(taps) == 1 and taps[0].data["tap_id"] is None
    finally:
        raw.close()
