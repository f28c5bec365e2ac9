"""Each role runs with only its own extra installed (pyproject.toml: node, hub, demo).

A node is installed with ``pip install fablab-gateway[node]``: no Flask, no amqtt, no
sqlite-utils, no Argon2. A hub has no gpiozero and no pyserial. Rather than build
virtual environments, each process here runs with the other role's libraries made
unimportable by a meta-path finder, and must still start and do its job.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.contract.signing import write_keypair
from gateway.demo.site import BADGE, write_demo_files
from gateway.drivers.readers.simulated import send_tap
from gateway.node import Journal
from tests.support.harness import poll_until
from tests.support.mosquitto import MosquittoProcess

# What only the hub (web, accounts, database helpers) and the demo (embedded broker) use.
HUB_ONLY = ("flask", "werkzeug", "jinja2", "amqtt", "sqlite_utils", "argon2", "prometheus_client")
# What only a node (GPIO, serial machines, the RC522 reader) uses.
NODE_ONLY = ("gpiozero", "serial", "mfrc522", "lgpio", "spidev", "RPi")

BLOCKER = """
import importlib.abc, runpy, sys
BLOCKED = {blocked!r}
class Blocked(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"{{name}} is not installed for this role", name=name)
        return None
sys.meta_path.insert(0, Blocked())
runpy.run_module("gateway", run_name="__main__", alter_sys=True)
"""


def without(blocked: tuple[str, ...], *args: str) -> list[str]:
    """``fabgate ARGS`` in a Python where the ``blocked`` libraries cannot be imported."""
    return [sys.executable, "-c", BLOCKER.format(blocked=blocked), *args]


def started(cmd: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    with open(log, "ab") as out:
        return subprocess.Popen(
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=dict(os.environ, PYTHONUNBUFFERED="1", **(env or {})),
        )


def logged(proc: subprocess.Popen, log: Path, text: str) -> bool:
    if proc.poll() is not None:
        raise AssertionError(f"exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
    return text in log.read_text()


def stop(proc: subprocess.Popen) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    return proc.wait(15)


def test_a_node_runs_without_the_hub_libraries(tmp_path: Path) -> None:
    # Nothing listens on port 1: the node works offline, as it must when the hub is away.
    files = write_demo_files(
        tmp_path / "site", "mqtt://127.0.0.1:1", 0, hold_off="0.05s", tap_sockets=True
    )
    write_keypair(files.signing_key, files.public_key)
    log = tmp_path / "node.log"
    # laser-1: a simulated GRBL controller behind the real serial driver.
    node = started(
        without(HUB_ONLY, "node", "--config", str(files.node_configs["laser-1"])),
        log,
        env={"GPIOZERO_PIN_FACTORY": "mock"},
    )
    try:
        poll_until(lambda: logged(node, log, "started; relay off"), 30, "the node to start")
        send_tap(files.data / "journals" / "laser-1.tap", BADGE["alice"])

        def denied_tap() -> list[dict]:
            journal = Journal(files.data / "journals" / "laser-1.db")
            try:
                events = [json.loads(p) for p in journal.all_payloads()]
            finally:
                journal.close()
            return [e for e in events if e["type"] == "tap"]

        (tap,) = poll_until(denied_tap, 15, "the tap in the journal")
        assert tap["data"]["reason"] == "no_snapshot"  # no hub yet: the relay stays off
        assert stop(node) == 0
    finally:
        stop(node)
    assert "Traceback" not in log.read_text()


@pytest.mark.parametrize(
    "argv", [["--help"], ["check-config", "CONFIG"], ["node", "--help"], ["sim", "grbl", "--help"]]
)
def test_node_side_commands_need_no_hub_library(argv: list[str]) -> None:
    config = str(Path(__file__).resolve().parent.parent / "config" / "nodes" / "laser-1.yaml")
    r = subprocess.run(
        without(HUB_ONLY, *(config if a == "CONFIG" else a for a in argv)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.integration
def test_a_hub_runs_without_the_node_libraries(tmp_path: Path, mosquitto: MosquittoProcess) -> None:
    files = write_demo_files(tmp_path / "site", mosquitto.url, 0)
    log = tmp_path / "hub.log"
    hub = started(without(NODE_ONLY, "hub", "--config", str(files.hub_config)), log)
    try:
        poll_until(lambda: logged(hub, log, "serving http://"), 30, "the hub to serve")
        assert stop(hub) == 0
    finally:
        stop(hub)
    assert "Traceback" not in log.read_text()
