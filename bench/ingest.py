"""Hub ingest: 50 nodes' events through a real Mosquitto into the hub process.

The load generator (``bench.loadgen``, its own process) plays 50 nodes with the node's
flow control, and the hub stores and acknowledges. Beside them, in this process, a bare
paho subscriber counts the same stream: it is the rate the broker and a Python MQTT
client reach with no work at all, so ``bare time / hub time`` says how much of the
pipe the hub's ingest uses. Zero loss is checked twice: every distinct event is a row
in the hub's ``events`` table and every one was acknowledged back to its node.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from bench.common import Bar, Figure, wait_until
from bench.site import broker, json_line, mqtt_host_port, start_hub, write_site

NAME = "ingest"
PREFIX = "fablab/demo/"


class BareCounter:
    """Counts event messages and remembers when the last one arrived; nothing else."""

    def __init__(self, url: str) -> None:
        self.count = 0
        self.last = 0.0
        self.hub_online = threading.Event()
        host, port = mqtt_host_port(url)
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id="bench-bare", protocol=paho.MQTTv311
        )
        self.client.message_callback_add(PREFIX + "node/+/event", self._on_event)
        self.client.message_callback_add(PREFIX + "hub/status", self._on_hub)
        self.client.on_connect = lambda c, *_: c.subscribe(
            [(PREFIX + "node/+/event", 1), (PREFIX + "hub/status", 1)]
        )
        self.client.connect(host, port)
        self.client.loop_start()

    def _on_event(self, _c: paho.Client, _u: object, _msg: paho.MQTTMessage) -> None:
        self.count += 1
        self.last = time.monotonic()

    def _on_hub(self, _c: paho.Client, _u: object, msg: paho.MQTTMessage) -> None:
        if b'"online":true' in msg.payload:
            self.hub_online.set()

    def close(self) -> None:
        self.client.disconnect()  # wakes the network thread, so loop_stop() is quick
        self.client.loop_stop()


def stored(db: Path) -> int:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        return con.execute("SELECT count(*) FROM events WHERE node LIKE 'bench-%'").fetchone()[0]
    finally:
        con.close()


def one_run(work: Path, nodes: int, per_node: int) -> dict[str, float]:
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    mosq = broker(work, unbounded_queues=True)
    hub = bare = None
    try:
        files = write_site(work, mosq.url)
        hub, _url = start_hub(files.hub_config, work / "hub.log")
        bare = BareCounter(mosq.url)
        if not bare.hub_online.wait(20):
            raise TimeoutError("the hub did not come online on the broker")
        host, port = mqtt_host_port(mosq.url)
        gen = subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.loadgen",
                "--host",
                host,
                "--port",
                str(port),
                "--prefix",
                PREFIX,
                "--nodes",
                str(nodes),
                "--events",
                str(per_node),
                "--timeout",
                "120",
            ],
            capture_output=True,
            text=True,
            timeout=180,
        )
        if gen.returncode:
            raise RuntimeError(f"load generator failed:\n{gen.stderr[-2000:]}")
        res = json_line(gen.stdout)
        db = files.data / "hub.db"
        distinct = int(res["distinct"])
        # Every event was acknowledged, so it is committed; this only confirms the count.
        rows = (
            wait_until(
                lambda: stored(db) if stored(db) >= distinct else 0,
                10,
                "rows in the hub",
                period=0.1,
            )
            if not res["timed_out"]
            else stored(db)
        )
        wait_until(lambda: bare.count >= res["published"], 10, "the bare subscriber")
        hub_s = res["t_last_ack"] - res["t_start"]
        bare_s = bare.last - res["t_start"]
        return {
            "hub_rate": distinct / hub_s,
            "bare_rate": res["published"] / bare_s,
            "ratio": bare_s / hub_s,
            "lost": distinct - rows,
            "unacked": distinct - res["acked"],
            "published": res["published"],
            "distinct": distinct,
        }
    finally:
        if bare:
            bare.close()
        if hub:
            hub.stop()
        mosq.stop()


def run(work: Path, quick: bool) -> list[Figure]:
    nodes, per_node, runs = (50, 40, 1) if quick else (50, 600, 3)
    note = (
        f"{nodes} nodes × {per_node} events (+1 resend in 20) per run, QoS 1, "
        "published as fast as the broker acknowledges them"
    )
    f = {
        "hub_rate": Figure(
            NAME,
            "events stored and acknowledged per second",
            "ev/s",
            bar=Bar(">=", 3000),
            note=note,
        ),
        "bare_rate": Figure(NAME, "bare paho subscriber, same stream", "msg/s"),
        "ratio": Figure(
            NAME, "hub rate / bare subscriber rate (same stream)", "×", bar=Bar(">=", 0.5)
        ),
        "lost": Figure(
            NAME, "events missing from the hub's events table", "events", bar=Bar("<", 1)
        ),
        "unacked": Figure(NAME, "events never acknowledged", "events", bar=Bar("<", 1)),
    }
    for i in range(runs):
        res = one_run(work / f"run{i}", nodes, per_node)
        for k in f:
            f[k].values.append(round(res[k], 3))
    return list(f.values())
