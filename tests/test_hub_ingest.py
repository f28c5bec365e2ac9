"""No message stops the hub's ingest: each is handled alone, on a real SQLite file.

Bad data is recorded and acknowledged; an unexpected error (a real write lock held by
another connection, or a store method that fails once) rolls back that message only,
which is not acknowledged, and is stored exactly once when it comes again. The last
test runs the hub service itself against a real Mosquitto.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from gateway.config import GroupConfig, MachineConfig, load_hub_config
from gateway.contract import Envelope, Topics, encode_status
from gateway.core.clock import iso
from gateway.hub import sessions
from gateway.hub.catalogue import sync_catalogue
from gateway.hub.db import HubStore
from gateway.hub.events.ingest import ingest_messages
from gateway.hub.machine_state import machines_live
from gateway.hub.seed import import_seed
from gateway.hub.service import HubService
from gateway.hub.sessions import recent_sessions
from tests.support.builders import NOW, T0, ended, env, seed, started
from tests.support.harness import Site
from tests.support.mosquitto import MosquittoProcess

TOPICS = Topics("fablab/t/")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[HubStore]:
    s = HubStore(tmp_path / "hub.db")
    sync_catalogue(
        s,
        [GroupConfig("laser", "Laser"), GroupConfig("cnc", "CNC")],
        [
            MachineConfig("laser1", "Laser 1", "laser", "laser"),
            MachineConfig("cnc1", "CNC", "cnc", "cnc"),
        ],
    )
    import_seed(s, seed())
    yield s
    s.close()


def tap(node: str = "cnc1", seq: int = 1) -> Envelope:
    return env(
        "tap",
        {
            "uid": "AA0101AA",
            "member_id": "m1",
            "action": "deny",
            "reason": "in_use",
            "tap_id": None,
        },
        node=node,
        seq=seq,
    )


def as_event(e: Envelope) -> tuple[str, bytes]:
    return TOPICS.node_events(e.node), e.encode()


def stored(store: HubStore) -> dict[str, str | None]:
    return {r[0]: r[1] for r in store.conn.execute("SELECT event_id, error FROM events")}


def refusals(store: HubStore) -> list[dict]:
    return [
        dict(r)
        for r in store.conn.execute(
            "SELECT node, event_id, kind, error, topic FROM rejected_messages ORDER BY id"
        )
    ]


def _with(e: Envelope, **changes) -> dict:
    return {**e.to_dict(), **changes}


def _raw(obj: dict) -> bytes:
    return json.dumps(obj).encode()


GOOD = ended("G", 60, machine="laser1")
POISON_EVENTS = {
    "seq 2**70": (_raw(_with(GOOD, seq=2**70)), True),
    "duration 1e300": (_raw(_with(GOOD, data={**GOOD.data, "duration_s": 1e300})), True),
    "NaN literal": (_raw(_with(GOOD)).replace(b'"duration_s": 60', b'"duration_s": NaN'), True),
    "Infinity literal": (_raw(_with(GOOD, seq=1)).replace(b'"seq": 1', b'"seq": Infinity'), True),
    "invalid UTF-8": (_raw(_with(GOOD)).replace(b'"p1"', b'"\xff\xfe"'), True),
    "lone surrogate": (_raw(_with(GOOD, data={**GOOD.data, "member_id": "\ud800"})), True),
    "wrong type": (_raw(_with(GOOD, data={**GOOD.data, "started_at": 12})), True),
    "an object for an id": (_raw(_with(GOOD, data={**GOOD.data, "machine": {"a": 1}})), True),
    "too deep in data": (_raw(_with(GOOD, data={**GOOD.data, "machine": {"a": [1]}})), True),
    "100,000 [": (b"[" * 100_000, False),
    "60,000 [": (b"[" * 60_000, False),
    "10 MB": (b'{"v":1,"id":"big","pad":"' + b"x" * 10_000_000 + b'"}', False),
}


@pytest.mark.parametrize("name", sorted(POISON_EVENTS))
def test_a_poison_event_is_recorded_and_the_next_one_stored(store: HubStore, name: str) -> None:
    payload, ackable = POISON_EVENTS[name]
    after = tap("cnc1")
    result = ingest_messages(
        store, TOPICS, [(TOPICS.node_events("laser1"), payload), as_event(after)], NOW
    )
    assert result.failed == 0
    assert result.acks["cnc1"] == [after.id]
    assert result.acks.get("laser1", []) == ([GOOD.id] if ackable else [])
    assert stored(store).get(after.id, "missing") is None
    (refused,) = refusals(store)
    assert refused["node"] == "laser1" and refused["kind"] == "invalid"
    assert recent_sessions(store) == []  # nothing applied
    # The size bound keeps the hub's copy small.
    kept = store.conn.execute("SELECT length(payload) FROM rejected_messages").fetchone()[0]
    assert kept is None or kept <= 64 * 1024


POISON_STATUS = {
    "deep": b"[" * 100_000,
    "NaN": b'{"node":"laser1","online":true,"backlog":NaN}',
    "big number": _raw({"node": "laser1", "online": True, "snapshot_version": 2**70}),
    "wrong type": _raw({"node": "laser1", "online": "yes"}),
    "invalid UTF-8": b'{"node":"laser1","online":true,"detail":"\xff"}',
    "session not an object": _raw({"node": "laser1", "online": True, "session": [1]}),
    "bad session time": _raw(
        {
            "node": "laser1",
            "online": True,
            "session": {
                "session_id": "s",
                "member_id": None,
                "started_at": "0001-01-01T00:00:00+05:00",
            },
        }
    ),
}


@pytest.mark.parametrize("name", sorted(POISON_STATUS))
def test_a_poison_status_is_recorded_at_each_arrival(store: HubStore, name: str) -> None:
    topic = TOPICS.node_status("laser1")
    for i in range(2):  # a retained status comes again at every hub restart
        after = tap("cnc1", seq=i + 1)
        result = ingest_messages(
            store, TOPICS, [(topic, POISON_STATUS[name]), as_event(after)], NOW
        )
        assert result.acks["cnc1"] == [after.id] and result.failed == 0
        assert len(refusals(store)) == i + 1
    live = {m["machine_id"]: m for m in machines_live(store, now=NOW)}
    assert live["laser1"]["state"] == "offline"


def test_a_write_lock_held_elsewhere_acknowledges_nothing_then_stores_once(store: HubStore) -> None:
    store.conn.execute("PRAGMA busy_timeout = 50")
    other = sqlite3.connect(store.path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    other.execute("UPDATE meta SET value = value WHERE key = 'data_version'")
    batch = [as_event(started("S1", machine="laser1")), as_event(tap("cnc1"))]
    try:
        locked = ingest_messages(store, TOPICS, batch, NOW)
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert locked.failed == 2 and not locked.acks
    assert stored(store) == {}
    again = ingest_messages(store, TOPICS, batch, NOW)  # the nodes send them again
    assert again.failed == 0 and sum(len(v) for v in again.acks.values()) == 2
    again2 = ingest_messages(store, TOPICS, batch, NOW)
    assert sum(len(v) for v in again2.acks.values()) == 2
    assert len(stored(store)) == 2 and [s["session_id"] for s in recent_sessions(store)] == ["S1"]


def test_a_store_method_failing_once_rolls_back_that_event_only(store: HubStore, mocker) -> None:
    real = sessions.session_started
    calls = []

    def flaky(store_: HubStore, env_: Envelope, ev: object) -> None:
        calls.append(env_.id)
        if len(calls) == 1:
            raise sqlite3.OperationalError("database is locked")
        real(store_, env_, ev)

    mocker.patch.object(sessions, "session_started", flaky)
    before, start, after = (
        tap("laser1", 1),
        started("S1", machine="laser1", seq=2),
        tap("laser1", 3),
    )
    batch = [as_event(before), as_event(start), as_event(after)]
    first = ingest_messages(store, TOPICS, batch, NOW)
    assert first.acks["laser1"] == [before.id, after.id] and first.failed == 1
    assert start.id not in stored(store) and recent_sessions(store) == []
    second = ingest_messages(store, TOPICS, batch, NOW)
    assert second.acks["laser1"] == [before.id, start.id, after.id]
    assert [s["session_id"] for s in recent_sessions(store)] == ["S1"]
    assert len(calls) == 2  # applied once when it came again, not once more for duplicates


def test_an_error_that_takes_the_transaction_with_it(store: HubStore, mocker) -> None:
    """SQLite rolls back the whole transaction on some I/O errors: nothing it held is
    acknowledged, and the rest of the batch still goes through in a new one."""
    real = sessions.session_started

    def destroys(store_: HubStore, env_: Envelope, ev: object) -> None:
        if env_.data["session_id"] == "BAD":
            store_.conn.execute("ROLLBACK")
            raise sqlite3.OperationalError("disk I/O error")
        real(store_, env_, ev)

    mocker.patch.object(sessions, "session_started", destroys)
    one, bad, two = (
        started("S1", machine="laser1", seq=1),
        started("BAD", machine="laser1", seq=2),
        started("S2", machine="laser1", seq=3),
    )
    result = ingest_messages(store, TOPICS, [as_event(one), as_event(bad), as_event(two)], NOW)
    assert result.acks["laser1"] == [two.id]
    assert [s["session_id"] for s in recent_sessions(store)] == ["S2"]
    mocker.stopall()
    again = ingest_messages(store, TOPICS, [as_event(one), as_event(bad), as_event(two)], NOW)
    assert again.acks["laser1"] == [one.id, bad.id, two.id]
    assert sorted(s["session_id"] for s in recent_sessions(store)) == ["BAD", "S1", "S2"]


def test_statuses_and_events_share_the_batch_transaction(store: HubStore) -> None:
    status = encode_status(
        node="laser1",
        machine="laser1",
        online=True,
        relay=True,
        session={"session_id": "S1", "member_id": "m1", "started_at": iso(T0)},
        time=T0,
    )
    result = ingest_messages(
        store,
        TOPICS,
        [(TOPICS.node_status("laser1"), status), as_event(started("S1", machine="laser1"))],
        NOW,
    )
    assert result.statuses == 1 and result.events == 1
    live = {m["machine_id"]: m for m in machines_live(store, now=NOW)}
    assert live["laser1"]["state"] == "in_use"


# -- the hub service itself, on a real broker ------------------------------------------


class Node:
    """A raw MQTT client publishing as one node and collecting its acknowledgements."""

    def __init__(self, url: str, topics: Topics, node: str) -> None:
        self.topics, self.node = topics, node
        self.acks: list[str] = []
        self.cond = threading.Condition()
        self.subscribed = threading.Event()
        host, port = url.removeprefix("mqtt://").split(":")
        self.c = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=f"raw-{node}", protocol=paho.MQTTv311
        )
        self.c.on_message = self._on_message
        self.c.on_subscribe = lambda *_a: self.subscribed.set()
        self.c.connect(host, int(port))
        self.c.loop_start()
        self.c.subscribe(topics.node_ack(node), 1)
        assert self.subscribed.wait(10)

    def _on_message(self, _c: paho.Client, _u: object, msg: paho.MQTTMessage) -> None:
        with self.cond:
            self.acks.extend(json.loads(msg.payload)["ids"])
            self.cond.notify_all()

    def send(self, *events: Envelope) -> None:
        for e in events:
            self.c.publish(self.topics.node_events(self.node), e.encode(), qos=1).wait_for_publish(
                5
            )

    def wait_acked(self, event_id: str) -> None:
        with self.cond:
            assert self.cond.wait_for(lambda: event_id in self.acks, 15), event_id

    def close(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()


def test_the_hub_service_does_not_acknowledge_a_failed_event_and_stores_it_once_resent(
    tmp_path: Path, mosquitto: MosquittoProcess, mocker
) -> None:
    site = Site(tmp_path, mosquitto.url)
    cfg = load_hub_config(site.files.hub_config)
    real = sessions.session_started
    failures = []

    def flaky(store_: HubStore, env_: Envelope, ev: object) -> None:
        if not failures:
            failures.append(env_.id)
            raise sqlite3.OperationalError("database is locked")
        real(store_, env_, ev)

    mocker.patch.object(sessions, "session_started", flaky)
    service = HubService(cfg)
    service.start()
    node = Node(mosquitto.url, Topics(cfg.mqtt.prefix), "laser-1")
    try:
        assert service.link.connected.wait(10)
        start = started("S1", machine="laser-1", seq=1)
        follow = env(
            "tap",
            {
                "uid": "04A1CE01",
                "member_id": "m-alice",
                "action": "deny",
                "reason": "in_use",
                "tap_id": None,
            },
            node="laser-1",
            seq=2,
        )
        node.send(start, follow)
        node.wait_acked(follow.id)  # the ingest went on after the failure...
        assert failures == [start.id] and start.id not in node.acks  # ...without this one
        ingest = service.supervisor.health()["ingest"]
        assert ingest.alive and ingest.restarts == 0  # handled, not a crash of the loop
        node.send(start)  # what the node does after RESEND_AFTER_S
        node.wait_acked(start.id)
        node.send(start)
        with node.cond:
            assert node.cond.wait_for(lambda: node.acks.count(start.id) == 2, 15)
    finally:
        node.close()
        service.stop()
    with HubStore(cfg.database) as s:
        assert [r["session_id"] for r in recent_sessions(s)] == ["S1"]
        assert (
            s.conn.execute(
                "SELECT count(*) FROM events WHERE event_id = ?", (start.id,)
            ).fetchone()[0]
            == 1
        )
