"""A bench site: demo-shaped configuration, many members, a broker and the hub process.

The hub and nodes run as ``python -m gateway`` processes, as an operator starts them,
so their figures include their own interpreter, threads and logging. Mosquitto gets the
queue limit of the production configuration (``deploy/mosquitto``): with the default
limit of 1,000 a burst would be dropped by the broker and read as a hub loss.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from gateway.demo.site import DemoFiles, write_demo_files
from gateway.hub.db import HubStore
from tests.support.mosquitto import MosquittoProcess

PRODUCTION_BROKER = "max_queued_messages 10000"


def broker(work: Path, *, unbounded_queues: bool = False) -> MosquittoProcess:
    """``unbounded_queues`` lifts the per-client queue limit: for a burst benchmark whose
    publishers, unlike real nodes, do not wait for the hub's acknowledgements."""
    extra = "max_queued_messages 0" if unbounded_queues else PRODUCTION_BROKER
    return MosquittoProcess(
        workdir=work / "mosquitto", autosave_interval=60, extra_config=extra
    ).start()


def badge(i: int) -> str:
    return f"{0xB0000000 + i:08X}"


def write_site(work: Path, broker_url: str, *, members: int = 0) -> DemoFiles:
    """The demo's files with plain nodes (no machine controller) and ``members`` extra
    members certified on the laser, so snapshots have a realistic size."""
    files = write_demo_files(work / "site", broker_url, 0, hold_off="0.05s", tap_sockets=True)
    for path in files.node_configs.values():
        cfg = yaml.safe_load(path.read_text())
        cfg["controller"] = {"driver": "none"}
        path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    if members:
        add_members(files.data / "hub.db", members)
    return files


def add_members(db: Path, n: int) -> None:
    """Active members, each with a badge and a live laser certification, in one commit."""
    store = HubStore(db)
    try:
        certified = datetime(2025, 1, 1, tzinfo=UTC).isoformat().replace("+00:00", "Z")
        with store.atomic():
            store.conn.execute("INSERT OR IGNORE INTO groups (id, name) VALUES ('laser', 'Laser')")
            store.conn.executemany(
                "INSERT INTO members (id, name, category, status, membership_end, staff) "
                "VALUES (?, ?, 'adherent', 'active', '2099-12-31', 0)",
                [(f"m-bench-{i:05d}", f"Bench Member {i}") for i in range(n)],
            )
            store.conn.executemany(
                "INSERT INTO badges (uid, member_id, status) VALUES (?, ?, 'active')",
                [(badge(i), f"m-bench-{i:05d}") for i in range(n)],
            )
            store.conn.executemany(
                "INSERT INTO certifications (member_id, group_id, level, certified_at) "
                "VALUES (?, 'laser', 2, ?)",
                [(f"m-bench-{i:05d}", certified) for i in range(n)],
            )
    finally:
        store.close()


class GatewayProcess:
    """``python -m gateway <args>`` with its output in a log file."""

    def __init__(self, args: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.log = log
        self._fh = open(log, "wb")  # noqa: SIM115 - closed in stop()
        self.p = subprocess.Popen(
            [sys.executable, "-m", "gateway", *args],
            stdout=self._fh,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=dict(os.environ, PYTHONUNBUFFERED="1", **(env or {})),
        )

    @property
    def pid(self) -> int:
        return self.p.pid

    def wait_line(self, pattern: str, timeout: float = 30.0) -> re.Match[str]:
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            text = self.log.read_text(encoding="utf-8", errors="replace")
            m = rx.search(text)
            if m:
                return m
            if self.p.poll() is not None:
                raise RuntimeError(
                    f"{self.log.name}: exited ({self.p.returncode}):\n{text[-2000:]}"
                )
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"no {pattern!r} in {self.log} after {timeout:.0f} s:\n{text[-2000:]}"
                )
            time.sleep(0.05)

    def stop(self, timeout: float = 15.0) -> None:
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(5)
        self._fh.close()


def start_hub(config: Path, log: Path) -> tuple[GatewayProcess, str]:
    """The hub process and its web URL, once it says it is serving."""
    hub = GatewayProcess(["hub", "--config", str(config)], log)
    url = hub.wait_line(r"serving (http://\S+/)").group(1)
    return hub, url


def start_node(files: DemoFiles, node: str, log: Path) -> GatewayProcess:
    return GatewayProcess(
        ["node", "--config", str(files.node_configs[node])],
        log,
        env={"GPIOZERO_PIN_FACTORY": "mock"},
    )


def tap_socket(files: DemoFiles, node: str) -> Path:
    return files.data / "journals" / f"{node}.tap"


def mqtt_host_port(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("mqtt://").split(":")
    return host, int(port)


def json_line(text: str) -> dict[str, Any]:
    """The last JSON object printed by a helper process."""
    for line in reversed(text.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise ValueError(f"no JSON result in:\n{text[-2000:]}")


class NodeWatch:
    """Follows one node's retained status and its events, from the broker's side."""

    def __init__(self, url: str, node: str, prefix: str = "fablab/demo/") -> None:
        self.status: dict[str, Any] = {}
        self.events: list[dict[str, Any]] = []
        self.cond = threading.Condition()
        host, port = mqtt_host_port(url)
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=f"bench-watch-{node}", protocol=paho.MQTTv311
        )
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, *_: c.subscribe(
            [(f"{prefix}node/{node}/status", 1), (f"{prefix}node/{node}/event", 1)]
        )
        self.client.connect(host, port)
        self.client.loop_start()

    def _on_message(self, _c: paho.Client, _u: object, msg: paho.MQTTMessage) -> None:
        with self.cond:
            if msg.topic.endswith("/status"):
                self.status = json.loads(msg.payload)
            else:
                self.events.append(json.loads(msg.payload))
            self.cond.notify_all()

    def wait(self, predicate: Callable[[], Any], timeout: float, what: str) -> Any:
        with self.cond:
            result = self.cond.wait_for(predicate, timeout)
        if not result:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        return result

    def snapshot_version(self) -> int:
        return int(self.status.get("snapshot_version") or 0)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class LiveSite:
    """Broker, hub process and one node process, each stopped in reverse order."""

    def __init__(self, work: Path, node: str, *, members: int) -> None:
        if work.exists():
            shutil.rmtree(work)
        work.mkdir(parents=True)
        self.work = work
        self.node_id = node
        self.mosq = broker(work)
        self.hub: GatewayProcess | None = None
        self.node: GatewayProcess | None = None
        self.watch: NodeWatch | None = None
        try:
            self.files = write_site(work, self.mosq.url, members=members)
            self.watch = NodeWatch(self.mosq.url, node)
            self.hub, self.hub_url = start_hub(self.files.hub_config, work / "hub.log")
            self.node = start_node(self.files, node, work / f"{node}.log")
            self.watch.wait(
                lambda: self.watch.status.get("online") and self.watch.snapshot_version(),
                60,
                f"{node} online with a snapshot",
            )
        except BaseException:
            self.close()
            raise

    @property
    def db(self) -> Path:
        return self.files.data / "hub.db"

    def close(self) -> None:
        if self.node:
            self.node.stop()
        if self.hub:
            self.hub.stop()
        if self.watch:
            self.watch.close()
        self.mosq.stop()
