"""Fifty simulated nodes publishing their journals at once (run as its own process).

Each simulated node publishes its whole journal as QoS 1 events on its event topic as
fast as the broker takes them: the only limit is paho's window of 200 messages awaiting
the broker's PUBACK (a real node would also wait for the hub's acknowledgements, which
would tie the offered load to the hub and hide how far behind the broker it falls). One
event in twenty is sent a second time, as a node does when an acknowledgement was lost,
so deduplication is on the measured path. Events follow the contract (taps and whole
sessions), so ingest applies them as it would real ones.

Prints one JSON line: when publishing started and ended and when the last
acknowledgement arrived, on ``time.monotonic()`` (system-wide on Linux, so the parent
process can compare it with its own readings).
"""

from __future__ import annotations

import argparse
import json
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from gateway.contract import Envelope, Topics, decode_ack
from gateway.core.clock import iso

WINDOW = 200  # messages awaiting the broker's PUBACK, per node
DUP_EVERY = 20


def node_events(node: str, count: int) -> list[Envelope]:
    """A node's journal: tap, session.started, tap (badge-out), session.ended, ..."""
    boot = str(uuid.uuid4())
    t0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    out: list[Envelope] = []
    seq = 0
    while len(out) < count:
        k = len(out) // 4
        start = t0 + timedelta(minutes=30 * k)
        end = start + timedelta(minutes=25, seconds=7)
        sid = str(uuid.uuid4())
        member = f"m-bench-{k % 500:05d}"
        uid = f"{0xB0000000 + k % 500:08X}"
        common = {
            "session_id": sid,
            "machine": node,
            "member_id": member,
            "badge_uid": uid,
            "project_id": None,
            "started_at": iso(start),
        }
        for when, type_, data in (
            (
                start,
                "tap",
                {
                    "uid": uid,
                    "member_id": member,
                    "action": "start",
                    "reason": "allowed",
                    "tap_id": None,
                },
            ),
            (start, "session.started", {**common, "staff_present": False}),
            (
                end,
                "tap",
                {
                    "uid": uid,
                    "member_id": member,
                    "action": "end",
                    "reason": "badge_out",
                    "tap_id": None,
                },
            ),
            (
                end,
                "session.ended",
                {
                    **common,
                    "ended_at": iso(end),
                    "duration_s": 1507.0,
                    "billable_minutes": 26,
                    "end_reason": "badge_out",
                    "busy_s": 1200.0,
                    "idle_s": 307.0,
                    "busy_minutes": 20,
                    "idle_minutes": 6,
                    "jobs": 1,
                },
            ),
        ):
            seq += 1
            out.append(
                Envelope.new(node=node, seq=seq, boot=boot, type=type_, data=data, time=when)
            )
    return out[:count]


class SimNode:
    """One node's connection, window and acknowledgements."""

    def __init__(self, host: str, port: int, topics: Topics, node: str, count: int) -> None:
        self.node = node
        self.topic = topics.node_events(node)
        self.events = [(e.id, e.encode()) for e in node_events(node, count)]
        self.acked: set[str] = set()
        self.published = 0
        self.last_ack = 0.0
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.subscribed = threading.Event()
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=f"bench-{node}", protocol=paho.MQTTv311
        )
        self.client.max_inflight_messages_set(WINDOW)
        self.client.on_connect = lambda c, *_: c.subscribe(topics.node_ack(node), 1)
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.on_message = self._on_ack
        self.client.connect(host, port, keepalive=30)
        self.client.loop_start()

    def pump(self) -> None:
        """Hand every event to paho at once; its network thread sends them as the
        broker's PUBACKs free the window."""
        for i, (_event_id, payload) in enumerate(self.events, start=1):
            self.client.publish(self.topic, payload, qos=1)
            self.published += 1
            if i % DUP_EVERY == 0:
                self.client.publish(self.topic, payload, qos=1)
                self.published += 1

    def _on_ack(self, _c: paho.Client, _u: object, msg: paho.MQTTMessage) -> None:
        ids = decode_ack(msg.payload)
        with self.lock:
            before = len(self.acked)
            self.acked.update(ids)
            if len(self.acked) > before:
                self.last_ack = time.monotonic()
            if len(self.acked) >= len(self.events):
                self.done.set()

    def close(self) -> None:
        self.client.disconnect()  # wakes the network thread, so loop_stop() is quick
        self.client.loop_stop()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--prefix", default="fablab/demo/")
    p.add_argument("--nodes", type=int, default=50)
    p.add_argument("--events", type=int, default=600, help="distinct events per node")
    p.add_argument("--timeout", type=float, default=120.0)
    args = p.parse_args()
    topics = Topics(args.prefix)
    nodes = [
        SimNode(args.host, args.port, topics, f"bench-{i:02d}", args.events)
        for i in range(args.nodes)
    ]
    for n in nodes:
        if not n.subscribed.wait(15):
            raise SystemExit(f"{n.node} could not subscribe to its acknowledgements")
    t_start = time.monotonic()
    for n in nodes:
        n.pump()
    deadline = t_start + args.timeout
    for n in nodes:
        n.done.wait(max(0.0, deadline - time.monotonic()))
    t_end = time.monotonic()
    result = {
        "t_start": t_start,
        "t_last_ack": max((n.last_ack for n in nodes), default=t_end),
        "distinct": sum(len(n.events) for n in nodes),
        "published": sum(n.published for n in nodes),
        "acked": sum(len(n.acked) for n in nodes),
        "timed_out": not all(n.done.is_set() for n in nodes),
    }
    for n in nodes:
        n.close()
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
