"""mqtts:// with a site's own CA: the configuration's TLS keys, and a whole site over TLS.

The broker runs the files of `fabgate deploy mosquitto` with its TLS listener, on a
certificate from a CA made here; the hub and a node are real processes that log in over
mqtts:// with the CA, their client certificates and the generated passwords.
"""

from __future__ import annotations

import ssl
import time
from pathlib import Path

import paho.mqtt.client as paho
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from gateway.config import ConfigError, load_hub_config, load_node_config
from gateway.contract.mqtt import TlsFiles
from gateway.demo.broker import free_port
from gateway.drivers.readers.simulated import send_tap
from tests.support.deployed import deploy_broker
from tests.support.harness import BADGE, Observer, Site, poll_until
from tests.support.tls import Authority

ROOT = Path(__file__).resolve().parent.parent


def _node_yaml(tmp_path: Path, **mqtt: object) -> Path:
    doc = yaml.safe_load((ROOT / "config" / "nodes" / "laser-1.yaml").read_text())
    doc["mqtt"].update(mqtt)
    path = tmp_path / "node.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> tuple[Authority, Authority]:
    directory = tmp_path_factory.mktemp("pki")
    return Authority(directory, "site"), Authority(directory, "other")


def test_tls_files_are_read_relative_to_the_file_and_checked(tmp_path: Path, pki) -> None:
    site, _ = pki
    client = site.issue("client-laser-1", server=False)
    (tmp_path / "ca.pem").write_bytes(site.path.read_bytes())
    cfg = load_node_config(
        _node_yaml(
            tmp_path,
            url="mqtts://hub.example:8883",
            tls_ca="ca.pem",
            tls_cert=str(client.cert),
            tls_key=str(client.key),
        )
    )
    assert cfg.mqtt.tls_files == TlsFiles(tmp_path / "ca.pem", client.cert, client.key)
    plain = load_hub_config(ROOT / "config" / "hub.yaml")
    assert plain.mqtt.tls_files is None


@pytest.mark.parametrize(
    ("mqtt", "key", "expected"),
    [
        ({"tls_ca": "missing.pem"}, "mqtt.tls_ca", "expected an existing file"),
        ({"tls_ca": "not-a-ca.pem"}, "mqtt.tls_ca", "expected a PEM file of CA certificates"),
        ({"url": "mqtt://hub:1883", "tls_ca": "ca.pem"}, "mqtt.tls_ca", "go with mqtts://"),
        ({"tls_cert": "client.pem"}, "mqtt.tls_key", "since mqtt.tls_cert is set"),
        ({"tls_key": "client.key"}, "mqtt.tls_cert", "since mqtt.tls_key is set"),
        (
            {"tls_cert": "client.pem", "tls_key": "other.key"},
            "mqtt.tls_key",
            "expected the PEM private key of mqtt.tls_cert",
        ),
    ],
)
def test_tls_mistakes_name_the_file_and_the_key(
    tmp_path: Path, pki, mqtt: dict[str, str], key: str, expected: str
) -> None:
    site, other = pki
    client, stranger = site.issue("c", server=False), other.issue("s", server=False)
    (tmp_path / "ca.pem").write_bytes(site.path.read_bytes())
    (tmp_path / "not-a-ca.pem").write_text("hello\n")
    (tmp_path / "client.pem").write_bytes(client.cert.read_bytes())
    (tmp_path / "client.key").write_bytes(client.key.read_bytes())
    (tmp_path / "other.key").write_bytes(stranger.key.read_bytes())
    path = _node_yaml(tmp_path, **{"url": "mqtts://hub:8883", **mqtt})
    with pytest.raises(ConfigError) as err:
        load_node_config(path)
    assert str(err.value).startswith(f"{path}:")
    assert err.value.key == key and expected in str(err.value)


def _connect(port: int, user: str, password: str, tls: TlsFiles) -> str:
    """One connection attempt: "ok", or how it failed."""
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=user, protocol=paho.MQTTv311)
    client.username_pw_set(user, password)
    client.tls_set_context(tls.context())
    answer: list[str] = []
    client.on_connect = lambda _c, _u, _f, reason, _p: answer.append(
        str(reason) if reason.is_failure else "ok"
    )
    deadline = time.monotonic() + 10
    try:
        client.connect("127.0.0.1", port)
        while not answer and time.monotonic() < deadline:
            if client.loop(0.5) != paho.MQTT_ERR_SUCCESS:
                return answer[0] if answer else "connection lost"
    except (ssl.SSLError, OSError) as exc:
        return type(exc).__name__
    finally:
        client.disconnect()
    return answer[0] if answer else "no answer"


@pytest.mark.integration
def test_a_site_over_tls_with_its_own_ca(tmp_path: Path, pki) -> None:
    ca, other = pki
    broker_cert = ca.issue("broker", server=True)
    tls_port = free_port("127.0.0.1")
    site = Site(tmp_path, f"mqtts://127.0.0.1:{tls_port}")
    broker = deploy_broker(
        tmp_path,
        site.files.hub_config,
        tls=broker_cert,
        ca=ca.path,
        tls_port=tls_port,
        extra=("--require-client-cert", "--monitor", "observer"),
    )
    pw = broker.passwords
    certs = {user: ca.issue(f"client-{user}", server=False) for user in ("fabgate-hub", "laser-1")}
    for path, user in [
        (site.files.hub_config, "fabgate-hub"),
        (site.files.node_configs["laser-1"], "laser-1"),
    ]:
        cfg = yaml.safe_load(path.read_text())
        cfg["mqtt"].update(
            username=user,
            password=pw[user],
            tls_ca=str(ca.path),
            tls_cert=str(certs[user].cert),
            tls_key=str(certs[user].key),
        )
        path.write_text(yaml.safe_dump(cfg, allow_unicode=True))
    # The test watches on the plain listener, which the TLS setup keeps on 127.0.0.1.
    observer = Observer(broker.url, "fablab/demo/", username="observer", password=pw["observer"])
    try:
        site.start_hub()
        node = site.start_node("laser-1")
        node.wait_line(r"snapshot version \d+ accepted")  # signed, over TLS, verified
        for log in (site.hub.log, node.log):  # both over TLS, on the TLS port
            assert f"connected to broker 127.0.0.1:{tls_port}" in log.read_text()

        send_tap(site.tap_socket("laser-1"), BADGE["alice"])
        started = observer.wait_event("session.started", member_id="m-alice")
        observer.wait_acked(started)  # stored by the hub, which heard it over TLS
        send_tap(site.tap_socket("laser-1"), BADGE["alice"])
        ended = observer.wait_event("session.ended", session_id=started.data["session_id"])
        observer.wait_acked(ended)
        (row,) = poll_until(
            lambda: [
                s
                for s in site.api("/api/v1/sessions")["sessions"]
                if s["session_id"] == started.data["session_id"] and s["status"] == "closed"
            ],
            what="the closed session at the hub",
        )
        assert row["member_id"] == "m-alice"

        # Refused: a client trusting another CA (it cannot tell the broker from an
        # impostor), one without a client certificate, one with a certificate of
        # another CA, a wrong password; the right CA, certificate and password get in.
        good = TlsFiles(ca.path, certs["laser-1"].cert, certs["laser-1"].key)
        stranger = other.issue("stranger", server=False)
        assert _connect(tls_port, "cnc-1", pw["cnc-1"], TlsFiles(other.path)) == (
            "SSLCertVerificationError"
        )
        assert _connect(tls_port, "cnc-1", pw["cnc-1"], TlsFiles(ca.path)) != "ok"
        assert (
            _connect(tls_port, "cnc-1", pw["cnc-1"], TlsFiles(ca.path, stranger.cert, stranger.key))
            != "ok"
        )
        assert _connect(tls_port, "cnc-1", "not-its-password", good) == "Not authorized"
        assert _connect(tls_port, "cnc-1", pw["cnc-1"], good) == "ok"
    finally:
        observer.close()
        site.stop()
        broker.stop()
