"""`fabgate demo --init DIR`: a demo site's files, checked, complete, and startable by role."""

from __future__ import annotations

import hashlib
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.contract.signing import load_private_key, load_public_key
from tests.support.harness import BADGE, Observer, Proc
from tests.support.mosquitto import MosquittoProcess

MACHINES = ("laser-1", "cnc-1", "printer-1", "embroidery-1")


def fabgate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args], capture_output=True, text=True, timeout=60
    )


def digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_init_writes_a_site_that_check_config_accepts(tmp_path: Path) -> None:
    site = tmp_path / "site"
    r = fabgate("demo", "--init", str(site))
    assert r.returncode == 0, r.stderr
    written = [
        site / line.strip()
        for line in r.stdout.splitlines()
        if line.startswith("  ") and not line.strip().startswith(("fabgate", "GPIOZERO"))
    ]
    assert {p.name for p in written} >= {
        "hub.yaml",
        "members.yaml",
        "hub-signing.pem",
        "hub-signing.pub",
        *(f"{m}.yaml" for m in MACHINES),
    }
    assert all(p.is_file() for p in written)
    configs = [
        site / "hub.yaml",
        site / "members.yaml",
        *(site / "nodes" / f"{m}.yaml" for m in MACHINES),
    ]
    checked = fabgate("check-config", *map(str, configs))
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.count(": OK") == 6
    # The nodes' public key is the hub's signing key's, and only its owner reads the key.
    private = site / "keys" / "hub-signing.pem"
    assert private.stat().st_mode & 0o077 == 0
    assert (
        load_public_key(site / "keys" / "hub-signing.pub").public_bytes_raw()
        == load_private_key(private).public_key().public_bytes_raw()
    )
    # Nothing was started: no database, no journal.
    assert not (site / "hub.db").exists() and not (site / "journals").exists()
    assert f"fabgate hub --config {site / 'hub.yaml'}" in r.stdout


def test_init_never_overwrites_a_site(tmp_path: Path) -> None:
    site = tmp_path / "site"
    assert fabgate("demo", "--init", str(site)).returncode == 0
    (site / "hub.yaml").write_text((site / "hub.yaml").read_text() + "# edited by hand\n")
    before = digest(site)
    again = fabgate("demo", "--init", str(site))
    assert again.returncode == 1
    assert "hub.yaml" in again.stderr and "nothing was written" in again.stderr
    assert digest(site) == before


def test_init_refuses_options_of_a_running_demo(tmp_path: Path) -> None:
    r = fabgate("demo", "--init", str(tmp_path / "site"), "--for", "5")
    assert r.returncode == 2 and "--init" in r.stderr
    assert not (tmp_path / "site").exists()


@pytest.mark.integration
def test_the_printed_commands_start_the_site(tmp_path: Path, mosquitto: MosquittoProcess) -> None:
    site = tmp_path / "site"
    r = fabgate("demo", "--init", str(site), "--broker", mosquitto.url, "--port", "0")
    assert r.returncode == 0, r.stderr
    commands = [
        shlex.split(line.split("#", 1)[0])
        for line in r.stdout.splitlines()
        if line.strip().startswith(("fabgate", "GPIOZERO_PIN_FACTORY"))
    ]
    hub_cmd = next(c for c in commands if c[:2] == ["fabgate", "hub"])
    node_cmd = next(c for c in commands if "node" in c[:3])
    tap_cmd = next(c for c in commands if c[:3] == ["fabgate", "sim", "tap"])
    assert node_cmd[0] == "GPIOZERO_PIN_FACTORY=mock"
    observer = Observer(mosquitto.url, "fablab/demo/")
    hub = Proc(hub_cmd[1:], tmp_path / "hub.log")
    node = Proc(node_cmd[2:], tmp_path / "node.log", env={"GPIOZERO_PIN_FACTORY": "mock"})
    try:
        hub.wait_line(r"serving (http://\S+/)")
        machine = tap_cmd[3]
        observer.wait_for(
            lambda: (observer.status.get(machine) or {}).get("snapshot_version"),
            what=f"{machine} online with a snapshot",
        )
        tapped = subprocess.run(
            [sys.executable, "-m", "gateway", *tap_cmd[1:]],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert tapped.returncode == 0, tapped.stderr
        assert tap_cmd[4] == BADGE["alice"]
        assert "allowed for m-alice: relay ON" in tapped.stdout
    finally:
        observer.close()
        node.stop()
        hub.stop()
