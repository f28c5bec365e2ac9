"""`fabgate deploy mosquitto`: the shipped files are its output, passwords are made once and
hashed the way Mosquitto checks them, and names that would break an ACL are refused.

The ACL itself, on a real broker, is tests/test_deploy_acl.py.
"""

from __future__ import annotations

import base64
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

from gateway.config import load_hub_config
from gateway.deploy.mosquitto import BrokerOptions, write_mosquitto
from gateway.deploy.passwd import hash_password, matches, read_password_file
from tests.support.deployed import read_credentials, run_deploy

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "deploy" / "mosquitto"


def _hub_yaml(tmp_path: Path, **changes: object) -> Path:
    """config/hub.yaml with some top-level keys or mqtt keys (``mqtt_<key>``) changed."""
    doc = yaml.safe_load((ROOT / "config" / "hub.yaml").read_text())
    for key, value in changes.items():
        if key.startswith("mqtt_"):
            doc["mqtt"][key.removeprefix("mqtt_")] = value
        else:
            doc[key] = value
    path = tmp_path / "hub.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False))
    return path


def test_the_shipped_files_are_the_commands_output_for_the_example_hub(tmp_path: Path) -> None:
    status, out, err = run_deploy(
        "--config", str(ROOT / "config" / "hub.yaml"), "--out", str(tmp_path)
    )
    assert status == 0, err
    for name in ("fabgate.conf", "fabgate.acl"):
        assert (SHIPPED / name).read_text() == (tmp_path / name).read_text(), (
            f"deploy/mosquitto/{name} drifted from `fabgate deploy mosquitto --config "
            f"config/hub.yaml`: regenerate it"
        )
    # Secrets are never shipped: the password file and credentials stay out of git.
    ignored = (SHIPPED / ".gitignore").read_text().split()
    assert "fabgate.passwd" in ignored and "credentials/" in ignored
    conf = (tmp_path / "fabgate.conf").read_text()
    assert "password_file /etc/mosquitto/fabgate.passwd\n" in conf
    assert "acl_file /etc/mosquitto/fabgate.acl\n" in conf
    assert "listener 1883\nuse_username_as_clientid true\n" in conf
    assert "certfile" not in conf  # no TLS listener unless asked


def test_the_hash_is_mosquitto_passwds_own(tmp_path: Path) -> None:
    """Same salt and password: byte for byte what mosquitto_passwd writes."""
    if shutil.which("mosquitto_passwd") is None:
        pytest.fail("mosquitto_passwd is missing: run the README test command")
    passwd = tmp_path / "p"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(passwd), "alice", "s3cret"], check=True)
    theirs = read_password_file(passwd)["alice"]
    _, kind, iterations, salt, _ = theirs.split("$")
    assert kind == "7"
    ours = hash_password("s3cret", salt=base64.b64decode(salt), iterations=int(iterations))
    assert ours == theirs
    assert hash_password("s3cret", salt=base64.b64decode(salt)) == theirs  # our defaults
    assert hash_password("other", salt=base64.b64decode(salt)) != theirs


def test_passwords_are_made_once_and_new_nodes_get_theirs(tmp_path: Path) -> None:
    out = tmp_path / "broker"
    hub = _hub_yaml(tmp_path)
    status, printed, _ = run_deploy("--config", str(hub), "--out", str(out))
    assert status == 0
    passwd = (out / "fabgate.passwd").read_text()
    users = list(read_password_file(out / "fabgate.passwd"))
    assert users == ["fabgate-hub", "laser-1", "cnc-1", "printer-1", "embroidery-1"]
    first = read_credentials(out)
    assert set(first) == set(users)
    assert len(set(first.values())) == len(users)  # each its own random password
    for password in first.values():
        assert password not in printed and password not in passwd  # only in 0600 files
    for path in [out / "fabgate.passwd", *(out / "credentials").iterdir()]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE((out / "credentials").stat().st_mode) == 0o700
    laser = yaml.safe_load((out / "credentials" / "laser-1.yaml").read_text())
    assert set(laser) == {"mqtt"} and laser["mqtt"]["username"] == "laser-1"

    # Again: nothing changes.
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    status, printed, _ = run_deploy("--config", str(hub), "--out", str(out))
    assert status == 0
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert [line.split()[0] for line in printed.splitlines()[:3]] == ["unchanged"] * 3

    # A new machine, served by a node of another id: one new account, the others kept.
    doc = yaml.safe_load(hub.read_text())
    doc["machines"].append(
        {"id": "lathe-1", "name": "Tour", "kind": "other", "group": "cnc", "node": "tour-pi"}
    )
    hub.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False))
    (out / "credentials" / "cnc-1.yaml").unlink()  # handed out to its node already
    status, printed, _ = run_deploy("--config", str(hub), "--out", str(out))
    assert status == 0
    assert "new account tour-pi" in printed and "new account cnc-1" not in printed
    after = (out / "fabgate.passwd").read_text()
    assert after.startswith(passwd) and after.count("\n") == passwd.count("\n") + 1
    assert list(read_password_file(out / "fabgate.passwd"))[-1] == "tour-pi"
    assert "user tour-pi\n" in (out / "fabgate.acl").read_text()
    second = read_credentials(out)
    assert {u: p for u, p in second.items() if u != "tour-pi"} == {
        u: p for u, p in first.items() if u != "cnc-1"
    }


def test_a_lost_password_file_is_made_again_from_the_credentials_left(tmp_path: Path) -> None:
    out = tmp_path / "broker"
    hub = _hub_yaml(tmp_path)
    assert run_deploy("--config", str(hub), "--out", str(out))[0] == 0
    credentials = read_credentials(out)
    (out / "fabgate.passwd").unlink()
    assert run_deploy("--config", str(hub), "--out", str(out))[0] == 0
    assert read_credentials(out) == credentials  # the files handed out still say the truth
    entries = read_password_file(out / "fabgate.passwd")
    for user, password in credentials.items():
        salt = base64.b64decode(entries[user].split("$")[3])
        assert hash_password(password, salt=salt) == entries[user]


def test_entries_it_does_not_know_are_kept_and_reported(tmp_path: Path) -> None:
    out = tmp_path / "broker"
    out.mkdir()
    (out / "fabgate.passwd").write_text("old-node:$7$101$AAAA$BBBB\n")
    status, _, err = run_deploy("--config", str(_hub_yaml(tmp_path)), "--out", str(out))
    assert status == 0
    assert "old-node" in err and "mosquitto_passwd -D" in err
    assert read_password_file(out / "fabgate.passwd")["old-node"] == "$7$101$AAAA$BBBB"


@pytest.mark.parametrize(
    ("changes", "key", "got"),
    [
        ({"mqtt_username": "hub/1"}, "mqtt.username", "hub/1"),
        ({"mqtt_username": "fabgate+hub"}, "mqtt.username", "fabgate+hub"),
        ({"mqtt_username": "fabgate hub"}, "mqtt.username", "fabgate hub"),
        ({"mqtt_username": "hub:1"}, "mqtt.username", "hub:1"),
        ({"mqtt_username": "laser-1"}, "machines[0].id", "laser-1"),
        ({"mqtt_prefix": "fablab/mon lab/"}, "mqtt.prefix", "fablab/mon lab/"),
        ({"mqtt_prefix": "fablab/%u/"}, "mqtt.prefix", "fablab/%u/"),
        ({"mqtt_prefix": "fablab/tab\there/"}, "mqtt.prefix", "fablab/tab\there/"),
    ],
)
def test_names_that_would_break_the_acl_are_refused_with_file_line_and_key(
    tmp_path: Path, changes: dict[str, object], key: str, got: str
) -> None:
    hub = _hub_yaml(tmp_path, **changes)
    status, _, err = run_deploy("--config", str(hub), "--out", str(tmp_path / "out"))
    assert status == 2
    assert err.startswith(f"error: {hub}:")  # the file and its line
    assert f": {key}: expected " in err and repr(got) in err
    assert not (tmp_path / "out").exists()  # nothing written


def test_a_node_named_like_another_machine_is_refused(tmp_path: Path) -> None:
    """Its account would read that machine's snapshot through the pattern."""
    doc = yaml.safe_load((ROOT / "config" / "hub.yaml").read_text())
    doc["machines"][0]["node"] = "spare"
    doc["machines"].append(
        {"id": "spare", "name": "S", "kind": "other", "group": "cnc", "node": "x"}
    )
    hub = tmp_path / "hub.yaml"
    hub.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False))
    status, _, err = run_deploy("--config", str(hub), "--out", str(tmp_path / "out"))
    assert status == 2
    assert "machines[0].node: expected a node id that is not another machine's id" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tls-cert", "/etc/c.pem"], "--tls-cert and --tls-key go together"),
        (["--tls-ca", "/etc/ca.pem"], "need --tls-cert and --tls-key"),
        (["--plain-listener", "none"], "leaves no listener"),
        (["--monitor", "a/b"], "--monitor: expected an id"),
        (["--monitor", "laser-1"], "already the hub's or a node's account"),
        (
            ["--tls-cert", "/c", "--tls-key", "/k", "--require-client-cert"],
            "--require-client-cert needs --tls-ca",
        ),
    ],
)
def test_options_that_make_no_working_broker_are_refused(
    tmp_path: Path, args: list[str], message: str
) -> None:
    hub = _hub_yaml(tmp_path)
    status, _, err = run_deploy("--config", str(hub), "--out", str(tmp_path / "out"), *args)
    assert status == 2 and message in err, err


def test_the_tls_listener_and_its_files(tmp_path: Path) -> None:
    status, _, err = run_deploy(
        "--config",
        str(_hub_yaml(tmp_path)),
        "--out",
        str(tmp_path / "out"),
        "--tls-cert",
        "/etc/mosquitto/certs/broker.pem",
        "--tls-key",
        "/etc/mosquitto/certs/broker.key",
        "--tls-ca",
        "/etc/mosquitto/certs/site-ca.pem",
        "--require-client-cert",
    )
    assert status == 0, err
    conf = (tmp_path / "out" / "fabgate.conf").read_text()
    # With TLS the plain listener is the hub's only, on this machine.
    assert "listener 1883 127.0.0.1\nuse_username_as_clientid true\n" in conf
    assert (
        "listener 8883\nuse_username_as_clientid true\n"
        "certfile /etc/mosquitto/certs/broker.pem\nkeyfile /etc/mosquitto/certs/broker.key\n"
    ) in conf
    assert "cafile /etc/mosquitto/certs/site-ca.pem\n" in conf
    assert "require_certificate true\n" in conf


def test_the_hub_account_takes_the_password_its_configuration_gives(tmp_path: Path) -> None:
    """provision-hub.sh needs no edit of the operator's hub.yaml: the broker follows it."""
    text = (ROOT / "config" / "hub.yaml").read_text()
    chosen = tmp_path / "hub.yaml"
    chosen.write_text(text.replace("remplacez-moi-mot-de-passe-du-hub", "mot-de-passe-du-site-42"))
    out = tmp_path / "broker"
    cfg = load_hub_config(chosen)
    write_mosquitto(cfg, out, BrokerOptions())
    entries = read_password_file(out / "fabgate.passwd")
    assert matches("mot-de-passe-du-site-42", entries["fabgate-hub"])
    assert not (out / "credentials" / "fabgate-hub.yaml").exists()
    assert (out / "credentials" / "laser-1.yaml").exists()  # nodes still get random ones
    again = write_mosquitto(cfg, out, BrokerOptions())
    assert read_password_file(out / "fabgate.passwd") == entries and again.accounts.kept
    # A new password in hub.yaml is followed; the example's placeholder never is.
    chosen.write_text(text.replace("remplacez-moi-mot-de-passe-du-hub", "un-autre-mot-de-passe"))
    write_mosquitto(load_hub_config(chosen), out, BrokerOptions())
    assert matches(
        "un-autre-mot-de-passe", read_password_file(out / "fabgate.passwd")["fabgate-hub"]
    )
    placeholder = tmp_path / "placeholder"
    write_mosquitto(load_hub_config(ROOT / "config" / "hub.yaml"), placeholder, BrokerOptions())
    hub_entry = read_password_file(placeholder / "fabgate.passwd")["fabgate-hub"]
    assert not matches("remplacez-moi-mot-de-passe-du-hub", hub_entry)
    assert (placeholder / "credentials" / "fabgate-hub.yaml").exists()
