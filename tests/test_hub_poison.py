"""Poison messages against the real hub process: none of them stops its ingest.

After each poison message (as an event and as a status), a valid event from another
node is stored and acknowledged at once. A poison status published *retained* on a
node's status topic is redelivered by the broker at every hub restart: it is recorded at
each arrival and the restarted hub still stores what comes next.
"""

from __future__ import annotations

import json
import sqlite3

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from gateway.contract import Envelope
from gateway.core.clock import iso, utcnow
from tests.support.harness import Observer, Site, poll_until
from tests.support.mosquitto import MosquittoProcess

pytestmark = pytest.mark.integration

PREFIX = "fablab/demo/"


def _envelope(node: str, seq: int, type_: str = "tap", **data: object) -> dict:
    base = {
        "uid": "04A1CE01",
        "member_id": "m-alice",
        "action": "deny",
        "reason": "in_use",
        "tap_id": None,
    }
    return Envelope.new(node=node, seq=seq, boot="b", type=type_, data={**base, **data}).to_dict()


def _session_end(seq: int, **changes: object) -> dict:
    now = iso(utcnow())
    data = {
        "session_id": f"s-{seq}",
        "machine": "laser-1",
        "member_id": "m-alice",
        "badge_uid": "04A1CE01",
        "project_id": None,
        "started_at": now,
        "ended_at": now,
        "duration_s": 60,
        "billable_minutes": 1,
        "end_reason": "badge_out",
        "jobs": 0,
        **changes,
    }
    return Envelope.new(
        node="laser-1", seq=seq, boot="b", type="session.ended", data=data
    ).to_dict()


def _raw(obj: object) -> bytes:
    return json.dumps(obj).encode()


POISON = [
    ("over-size", b'{"v":1,"id":"big","pad":"' + b"x" * 1_000_000 + b'"}'),
    ("100,000 [", b"[" * 100_000),
    ("seq 2**70", _raw({**_envelope("laser-1", 1), "seq": 2**70})),
    ("duration 1e300", _raw(_session_end(2, duration_s=1e300))),
    ("NaN", _raw(_session_end(3)).replace(b'"duration_s": 60', b'"duration_s": NaN')),
    ("Infinity", _raw(_session_end(4)).replace(b'"duration_s": 60', b'"duration_s": Infinity')),
    ("invalid UTF-8", _raw(_envelope("laser-1", 5)).replace(b"m-alice", b"m-\xff\xfe")),
    ("lone surrogate", _raw(_envelope("laser-1", 6, member_id="\ud800"))),
    ("wrong types", _raw(_session_end(7, started_at=12, jobs="many"))),
    ("date out of range", _raw(_session_end(8, started_at="0001-01-01T00:00:00+01:00"))),
]
POISON_STATUS = [
    (name, payload)
    for name, payload in POISON
    if name in ("over-size", "100,000 [", "invalid UTF-8")
] + [
    ("status NaN", b'{"node":"laser-1","online":true,"backlog":NaN}'),
    ("status number", _raw({"node": "laser-1", "online": True, "snapshot_version": 2**70})),
    ("status wrong types", _raw({"node": "laser-1", "online": "yes", "session": [1]})),
    ("status nested", _raw({"node": "laser-1", "online": True, "job": {"a": {"b": [1]}}})),
]


class Vandal:
    def __init__(self, url: str) -> None:
        host, port = url.removeprefix("mqtt://").split(":")
        self.c = paho.Client(
            CallbackAPIVersion.VERSION2, client_id="vandal", protocol=paho.MQTTv311
        )
        self.c.connect(host, int(port))
        self.c.loop_start()

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        self.c.publish(topic, payload, qos=1, retain=retain).wait_for_publish(10)

    def close(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()


def _refusals(site: Site, topic_end: str) -> int:
    db = sqlite3.connect(site.files.data / "hub.db")
    try:
        return db.execute(
            "SELECT count(*) FROM rejected_messages WHERE topic LIKE ?", (f"%{topic_end}",)
        ).fetchone()[0]
    finally:
        db.close()


def _valid_from_cnc(vandal: Vandal, observer: Observer, seq: int) -> None:
    """A valid event from another node right after: stored and acknowledged."""
    env = _envelope("cnc-1", seq)
    vandal.publish(PREFIX + "node/cnc-1/event", _raw(env))
    observer.wait_for(lambda: env["id"] in observer.acks, what=f"ack of valid event {seq}")


def test_no_poison_message_stops_the_hub(
    site: Site, observer: Observer, mosquitto: MosquittoProcess
) -> None:
    site.start_hub()
    vandal = Vandal(mosquitto.url)
    try:
        seq = 0
        for i, (name, payload) in enumerate(POISON):
            vandal.publish(PREFIX + "node/laser-1/event", payload)
            seq += 1
            _valid_from_cnc(vandal, observer, seq)
            poll_until(
                lambda n=i + 1: _refusals(site, "laser-1/event") == n, what=f"{name} recorded"
            )
        for i, (name, payload) in enumerate(POISON_STATUS):
            vandal.publish(PREFIX + "node/laser-1/status", payload)
            seq += 1
            _valid_from_cnc(vandal, observer, seq)
            poll_until(
                lambda n=i + 1: _refusals(site, "laser-1/status") == n, what=f"{name} recorded"
            )

        # Retained: the broker gives it to the hub again at every (re)connection.
        before = _refusals(site, "laser-1/status")
        vandal.publish(PREFIX + "node/laser-1/status", b"[" * 100_000, retain=True)
        poll_until(lambda: _refusals(site, "laser-1/status") == before + 1, what="recorded")
        assert site.hub is not None
        site.hub.stop()
        site.start_hub()
        poll_until(
            lambda: _refusals(site, "laser-1/status") == before + 2,
            what="recorded again after the restart",
        )
        seq += 1
        _valid_from_cnc(vandal, observer, seq)
        site.hub.stop()
        site.start_hub()
        poll_until(
            lambda: _refusals(site, "laser-1/status") == before + 3,
            what="recorded once per arrival",
        )
        seq += 1
        _valid_from_cnc(vandal, observer, seq)
        # Poison events that carried a readable id were acknowledged (resending them
        # could never help); their node would stop sending them.
        for name in ("seq 2**70", "duration 1e300", "NaN", "wrong types"):
            payload = dict(POISON)[name]
            poison_id = json.loads(payload.replace(b"NaN", b"0"))["id"]
            assert poison_id in observer.acks, name
    finally:
        vandal.publish(PREFIX + "node/laser-1/status", b"", retain=True)  # clear it
        vandal.close()
    db = sqlite3.connect(site.files.data / "hub.db")
    stored = db.execute("SELECT count(*) FROM events WHERE node = 'cnc-1'").fetchone()[0]
    db.close()
    assert stored == seq
