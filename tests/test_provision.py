"""The install scripts, run for real into a throwaway root.

``deploy/provision-node.sh`` and ``deploy/provision-hub.sh`` take ``--root DIR``: every
file goes under DIR, the virtualenv is really built there from the wheel (so the wheel
really installs and its ``fabgate`` really runs), and the commands that would change
the machine itself (apt-get, useradd, chown, systemctl) are listed instead of run. Each
script is run twice: the second run must change nothing and restart nothing.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from gateway.demo.site import init_site

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel as an operator builds it (scripts/bootstrap.py wheel runs the same pip)."""
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--wheel-dir",
            str(out),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (built,) = out.glob("fablab_gateway-*.whl")
    return built


def provision(script: str, root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run(
        ["bash", str(DEPLOY / script), "--root", str(root), *args],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )


def changes(output: str) -> list[str]:
    return [
        line.strip()
        for line in output.splitlines()
        if line.strip().startswith(("created ", "updated ", "installed "))
    ]


def commands(root: Path) -> list[str]:
    return (root / "var/log/fabgate-provision.log").read_text().splitlines()


def test_the_wheel_holds_the_whole_package_and_its_data(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    sources = {p.relative_to(ROOT).as_posix() for p in (ROOT / "gateway").rglob("*.py")}
    assert sources <= names, sorted(sources - names)[:5]
    for data in (
        "gateway/web/templates/base.html",
        "gateway/web/static/style.css",
        "gateway/data/demo-seed.yaml",
    ):
        assert data in names
    entry = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "fabgate = gateway.cli:main" in zipfile.ZipFile(wheel).read(entry).decode()


def test_a_node_provisioned_twice_from_the_wheel(wheel: Path, tmp_path: Path) -> None:
    site = init_site(tmp_path / "site")
    root = tmp_path / "root"
    node_yaml = ROOT / "config" / "nodes" / "laser-1.yaml"
    args = ("--from", f"wheel:{wheel}", "--extras", "node", str(node_yaml), str(site.public_key))
    first = provision("provision-node.sh", root, *args)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "node configuration for node 'laser-1'" in first.stdout  # check-config ran on it
    made = changes(first.stdout)
    assert "created /etc/fabgate/node.yaml" in made
    assert "created /etc/systemd/system/fabgate-node.service" in made
    assert (root / "etc/fabgate/node.yaml").read_bytes() == node_yaml.read_bytes()
    assert (root / "etc/fabgate/node.yaml").stat().st_mode & 0o777 == 0o640  # holds a password
    assert (root / "etc/fabgate/hub-signing.pub").read_bytes() == site.public_key.read_bytes()
    log = commands(root)
    assert any(c.startswith("useradd --system") and c.endswith(" fabgate") for c in log)
    assert "systemctl enable fabgate-node.service" in log
    assert "systemctl restart fabgate-node.service" in log
    version = subprocess.run(
        [str(root / "opt/fabgate/venv/bin/fabgate"), "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert version.stdout.startswith("fabgate ")

    again = provision("provision-node.sh", root, *args)
    assert again.returncode == 0, again.stdout + again.stderr
    assert changes(again.stdout) == []
    assert "systemctl restart fabgate-node.service" not in commands(root)

    # An edited configuration is installed and the node restarted, nothing else.
    edited = tmp_path / "laser-1.yaml"
    edited.write_text(node_yaml.read_text().replace("heartbeat: 15s", "heartbeat: 20s"))
    third = provision("provision-node.sh", root, *args[:4], str(edited), str(site.public_key))
    assert third.returncode == 0, third.stderr
    assert changes(third.stdout) == ["updated /etc/fabgate/node.yaml"]
    assert "systemctl restart fabgate-node.service" in commands(root)


def test_provisioning_refuses_bad_input_before_touching_anything(tmp_path: Path) -> None:
    site = init_site(tmp_path / "site")
    root = tmp_path / "root"
    node_yaml = ROOT / "config" / "nodes" / "laser-1.yaml"
    r = provision(
        "provision-node.sh",
        root,
        "--from",
        "wheel:/nonexistent.whl",
        str(node_yaml),
        str(site.public_key),
    )
    assert r.returncode == 1 and "no such wheel file" in r.stderr
    r = provision(
        "provision-node.sh", root, "--from", "ftp:x", str(node_yaml), str(site.public_key)
    )
    assert r.returncode == 1 and "expected wheel:PATH, checkout:PATH or index" in r.stderr
    r = provision("provision-node.sh", root, str(node_yaml), str(site.signing_key))
    assert r.returncode == 1 and "not a PEM public key" in r.stderr
    assert not (root / "etc").exists() and not (root / "opt").exists()


def test_a_hub_provisioned_twice_keeps_its_key_and_broker_passwords(
    wheel: Path, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    hub_yaml = ROOT / "config" / "hub.yaml"
    args = ("--from", f"wheel:{wheel}", "--domain", "fablab.example.fr", str(hub_yaml))
    first = provision("provision-hub.sh", root, *args)
    assert first.returncode == 0, first.stdout + first.stderr
    key = root / "etc/fabgate/keys/hub-signing.pem"
    pub = root / "etc/fabgate/keys/hub-signing.pub"
    assert key.stat().st_mode & 0o777 == 0o600 and b"PRIVATE KEY" in key.read_bytes()
    assert b"PUBLIC KEY" in pub.read_bytes()
    conf = root / "etc/mosquitto/conf.d/fabgate.conf"
    acl = root / "etc/mosquitto/fabgate.acl"
    passwd = root / "etc/mosquitto/fabgate.passwd"
    assert "use_username_as_clientid true" in conf.read_text()
    assert "fablab/fablab-demo/" in acl.read_text()
    users = {line.split(":", 1)[0] for line in passwd.read_text().splitlines() if line}
    assert users == {"fabgate-hub", "laser-1", "cnc-1", "printer-1", "embroidery-1"}
    for unit in ("fabgate-hub.service", "fabgate-backup.service", "fabgate-backup.timer"):
        assert (root / "etc/systemd/system" / unit).read_bytes() == (
            DEPLOY / "systemd" / unit
        ).read_bytes()
    caddy = (root / "etc/fabgate/examples/Caddyfile").read_text()
    assert "fablab.example.fr {" in caddy and "example.org" not in caddy
    log = commands(root)
    assert "apt-get install -y python3-venv mosquitto mosquitto-clients" in log
    assert "systemctl enable --now fabgate-backup.timer" in log
    assert "systemctl restart mosquitto.service" in log

    secrets = (key.read_bytes(), passwd.read_bytes())
    again = provision("provision-hub.sh", root, *args)
    assert again.returncode == 0, again.stdout + again.stderr
    assert changes(again.stdout) == []
    assert (key.read_bytes(), passwd.read_bytes()) == secrets  # made once, never replaced
    assert "systemctl restart mosquitto.service" not in commands(root)
    assert "systemctl restart fabgate-hub.service" not in commands(root)
