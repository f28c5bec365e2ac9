"""Helpers for the integration tests: real processes, a real broker, real HTTP.

The hub and each node run as ``python -m gateway`` subprocesses, exactly as a user starts
them; the tests observe them only from the outside (MQTT, HTTP, their journal files).
Every wait is on an event (a message arriving, a line printed), with a timeout.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from gateway.contract import ContractError, Envelope, Topics
from gateway.demo.site import BADGE, DemoFiles, write_demo_files

__all__ = ["BADGE", "Observer", "Proc", "Site", "api_get", "http_request", "poll_until"]


# The reconnect back-off of the test site's hub and nodes (mqtt.reconnect_min/max): after
# a broker restart both are back within SITE_RECONNECT_MAX_S, so a test's wait is that
# plus the usual time for a message to go through. The observer, a clean session, may
# come back later than them and miss what they exchange meanwhile: after a broker
# restart, judge by the hub and the node's journal, not by the observer.
SITE_RECONNECT = ("0.1s", "0.5s")
SITE_RECONNECT_MAX_S = 0.5
OBSERVER_RECONNECT_MAX_S = 2
EVENT_TIMEOUT_S = 15.0
BACK_AFTER_BROKER_RESTART_S = SITE_RECONNECT_MAX_S + EVENT_TIMEOUT_S


# Karim's password where a test gives him a fabmanager log-in (conftest's hub_service).
FABMANAGER_PASSWORD = "fabmanager password 1"


class Observer:
    """Subscribes to everything under the site prefix and remembers it."""

    def __init__(
        self, url: str, prefix: str, *, username: str | None = None, password: str | None = None
    ) -> None:
        self.topics = Topics(prefix)
        self.events: list[Envelope] = []
        self.raw_events: list[tuple[str, bytes]] = []
        self.bad_events: list[bytes] = []
        self.bad_status: list[bytes] = []
        self.status: dict[str, dict[str, Any]] = {}
        self.acks: list[str] = []
        self.snapshots: dict[str, bytes] = {}
        self.enrolment: dict[str, Any] | None = None
        self.cond = threading.Condition()
        host, port = url.removeprefix("mqtt://").split(":")
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=f"observer-{os.getpid()}", protocol=paho.MQTTv311
        )
        if username:
            self.client.username_pw_set(username, password)
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, *_: c.subscribe(prefix + "#", 1)
        self.client.reconnect_delay_set(1, OBSERVER_RECONNECT_MAX_S)
        self.client.connect(host, int(port))
        self.client.loop_start()

    def _on_message(self, _c: paho.Client, _u: object, msg: paho.MQTTMessage) -> None:
        with self.cond:
            if msg.topic.endswith("/event"):
                try:
                    env = Envelope.decode(msg.payload)
                except ContractError:
                    self.bad_events.append(msg.payload)  # a test's own garbage
                else:
                    self.raw_events.append((msg.topic, msg.payload))
                    self.events.append(env)
            elif msg.topic.endswith("/status") and "/node/" in msg.topic:
                try:
                    st = json.loads(msg.payload)
                    self.status[st["node"]] = st
                except (ValueError, KeyError, TypeError, RecursionError):
                    self.bad_status.append(msg.payload)  # a test's own garbage
            elif msg.topic.endswith("/ack"):
                self.acks.extend(json.loads(msg.payload)["ids"])
            elif msg.topic.endswith("/hub/enrolment"):
                self.enrolment = json.loads(msg.payload)
            elif msg.topic.endswith("/snapshot"):
                self.snapshots[msg.topic] = msg.payload
            self.cond.notify_all()

    def wait_for(
        self,
        predicate: Callable[[], Any],
        timeout: float = EVENT_TIMEOUT_S,
        what: str = "condition",
    ) -> Any:
        with self.cond:
            result = self.cond.wait_for(predicate, timeout)
        if not result:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        return result

    def event(self, type_: str, **match: Any) -> Envelope | None:
        for e in self.events:
            if e.type == type_ and all(e.data.get(k) == v for k, v in match.items()):
                return e
        return None

    def wait_event(self, type_: str, timeout: float = EVENT_TIMEOUT_S, **match: Any) -> Envelope:
        return self.wait_for(lambda: self.event(type_, **match), timeout, f"event {type_} {match}")

    def wait_acked(self, env: Envelope, timeout: float = EVENT_TIMEOUT_S) -> None:
        self.wait_for(lambda: env.id in self.acks, timeout, f"ack of {env.type}")

    def publish(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(5)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


class Proc:
    """A ``python -m gateway ...`` subprocess with its output in a log file."""

    def __init__(self, args: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.log = log
        self._fh = open(log, "ab")  # noqa: SIM115 - closed in stop()
        self.p = subprocess.Popen(
            [sys.executable, "-m", "gateway", *args],
            stdout=self._fh,
            stderr=subprocess.STDOUT,
            env=dict(os.environ, PYTHONUNBUFFERED="1", **(env or {})),
        )

    def wait_line(self, pattern: str, timeout: float = 20.0) -> re.Match[str]:
        """Wait for a line in the log, following it as the process writes."""
        rx = re.compile(pattern)
        with open(self.log, encoding="utf-8", errors="replace") as fh:
            deadline = _deadline(timeout)
            buf = ""
            while True:
                chunk = fh.read()
                if chunk:
                    buf += chunk
                    m = rx.search(buf)
                    if m:
                        return m
                    continue
                if self.p.poll() is not None:
                    raise AssertionError(
                        f"process exited ({self.p.returncode}) before "
                        f"printing {pattern!r}:\n{buf[-3000:]}"
                    )
                if _expired(deadline):
                    raise AssertionError(f"no {pattern!r} in {self.log}:\n{buf[-3000:]}")
                _pause()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        if self.p.poll() is None:
            self.p.send_signal(sig)
        try:
            rc = self.p.wait(timeout)
        finally:
            self._fh.close()
        return rc

    def kill(self) -> None:
        self.p.kill()
        self.p.wait(10)
        self._fh.close()


def poll_until(predicate: Callable[[], Any], timeout: float = 15.0, what: str = "condition") -> Any:
    """For state only visible over HTTP (the hub's API has no push): poll at 10 Hz."""
    deadline = _deadline(timeout)
    while True:
        result = predicate()
        if result:
            return result
        if _expired(deadline):
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


def _deadline(timeout: float) -> float:
    return time.monotonic() + timeout


def _expired(deadline: float) -> bool:
    return time.monotonic() > deadline


def _pause() -> None:
    # Following a log file has no event to wait on; poll it at 20 Hz.
    time.sleep(0.05)


class Site:
    """A demo-shaped site in a temporary directory: configuration, hub and nodes."""

    def __init__(self, tmp: Path, broker_url: str) -> None:
        self.tmp = tmp
        self.broker_url = broker_url
        self.files: DemoFiles = write_demo_files(
            tmp / "site",
            broker_url,
            0,
            hold_off="0.05s",
            tap_sockets=True,
            reconnect=SITE_RECONNECT,
        )
        self.token = self.files.token
        self.hub: Proc | None = None
        self.hub_url = ""
        self.nodes: dict[str, Proc] = {}

    def start_hub(self, env: dict[str, str] | None = None) -> str:
        # A restarted hub logs to a new file, so wait_line() sees only this start.
        starts = len(list(self.tmp.glob("hub*.log")))
        log = self.tmp / ("hub.log" if not starts else f"hub-{starts + 1}.log")
        self.hub = Proc(["hub", "--config", str(self.files.hub_config)], log, env=env)
        m = self.hub.wait_line(r"serving (http://\S+/)")
        self.hub_url = m.group(1)
        return self.hub_url

    def start_node(self, node: str, env: dict[str, str] | None = None) -> Proc:
        starts = len(list(self.tmp.glob(f"{node}*.log")))
        log = self.tmp / (f"{node}.log" if not starts else f"{node}-{starts + 1}.log")
        proc = Proc(
            ["node", "--config", str(self.files.node_configs[node])],
            log,
            env={"GPIOZERO_PIN_FACTORY": "mock", **(env or {})},
        )
        self.nodes[node] = proc
        return proc

    def tap_socket(self, node: str) -> Path:
        return self.files.data / "journals" / f"{node}.tap"

    def journal(self, node: str) -> Path:
        return self.files.data / "journals" / f"{node}.db"

    def api(self, path: str, token: str | None = None) -> Any:
        return api_get(self.hub_url + path.lstrip("/"), token or self.token)

    def stop(self) -> None:
        for proc in self.nodes.values():
            if proc.p.poll() is None:
                proc.stop()
        if self.hub and self.hub.p.poll() is None:
            self.hub.stop()


def http_request(
    url: str,
    *,
    method: str = "GET",
    body: dict[str, Any] | None = None,
    token: str | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """One real HTTP request: status, headers and body, error statuses included."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def api_get(url: str, token: str | None) -> Any:
    req = urllib.request.Request(url)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=10) as resp:
        body = resp.read()
        if resp.headers.get_content_type() == "application/json":
            return json.loads(body)
        return body.decode()
