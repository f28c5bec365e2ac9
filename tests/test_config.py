"""Config loading: the examples shipped in the repository, and the errors a person gets.

Most tests take a shipped example, change one line and check the error: the examples
stay loadable, and each error test differs from a valid file by exactly that line.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.config import (
    ConfigError,
    ControllerConfig,
    GroupConfig,
    HubConfig,
    MachineConfig,
    MqttConfig,
    NodeConfig,
    ReaderConfig,
    RelayConfig,
    SessionConfig,
    load_any,
    load_hub_config,
    load_node_config,
    load_seed,
    parse_duration,
)

ROOT = Path(__file__).resolve().parent.parent
HUB = ROOT / "config" / "hub.yaml"
NODES = sorted((ROOT / "config" / "nodes").glob("*.yaml"))
SEED = ROOT / "config" / "members.example.yaml"
LASER = ROOT / "config" / "nodes" / "laser-1.yaml"


def variant(tmp_path: Path, source: Path, old: str, new: str, name: str = "") -> Path:
    """A copy of ``source`` in tmp_path with ``old`` (found exactly once) replaced."""
    text = source.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} should occur once in {source.name}"
    path = tmp_path / (name or source.name)
    path.write_text(text.replace(old, new), encoding="utf-8")
    return path


def error_of(loader: Callable[[Path], object], path: Path) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        loader(path)
    return info.value


def line_of(path: Path, needle: str) -> int:
    lines = path.read_text(encoding="utf-8").splitlines()
    return next(i for i, line in enumerate(lines, 1) if needle in line)


# --------------------------------------------------------------------------- examples


def test_examples_exist() -> None:
    assert {p.stem for p in NODES} == {"laser-1", "cnc-1", "printer-1", "embroidery-1"}


def test_hub_example_loads() -> None:
    cfg = load_hub_config(HUB)
    assert isinstance(cfg, HubConfig)
    assert cfg.site == "fablab-demo" and cfg.timezone == "Europe/Paris"
    assert cfg.mqtt.prefix == "fablab/fablab-demo/" and cfg.mqtt.client_id == "fabgate-hub"
    assert {m.id for m in cfg.machines} == {p.stem for p in NODES}
    assert cfg.snapshot_validity == timedelta(days=7)
    assert cfg.opening_hours[5] == ((time(10), time(13)), (time(14), time(18)))
    assert all(len(t.token) >= 16 for t in cfg.api_tokens)


@pytest.mark.parametrize("path", NODES, ids=lambda p: p.stem)
def test_node_examples_load_and_match_the_hub(path: Path) -> None:
    hub = load_hub_config(HUB)
    cfg = load_node_config(path)
    assert cfg.site == hub.site
    assert cfg.machine_id == path.stem == cfg.node_id  # node id defaults to the machine
    assert cfg.machine_id in {m.id for m in hub.machines}
    assert cfg.mqtt.client_id == f"fabgate-node-{cfg.node_id}"
    assert cfg.mqtt.username == cfg.node_id  # the broker ACL relies on it
    assert cfg.relay.pin >= 9 and cfg.relay.active_high


def test_node_examples_use_distinct_relay_pins() -> None:
    pins = [load_node_config(p).relay.pin for p in NODES]
    assert len(set(pins)) == len(pins)


@pytest.mark.parametrize("path", [HUB, *NODES], ids=lambda p: p.stem)
def test_load_any_tells_hub_from_node(path: Path) -> None:
    cfg = load_any(path)
    assert isinstance(cfg, HubConfig if path == HUB else NodeConfig)


def test_seed_example_loads_and_uses_the_hub_groups() -> None:
    seed = load_seed(SEED)
    hub = load_hub_config(HUB)
    assert {m.category for m in seed.members} == {
        "grand_public",
        "adherent",
        "professionnel",
        "scolaire",
        "association",
    }
    assert {c.group for c in seed.certifications} <= {g.id for g in hub.groups}
    lea = next(m for m in seed.members if m.id == "m-lea")
    assert lea.badges == ("041EA001",)  # normalised from "04:1E:A0:01"
    cert = next(c for c in seed.certifications if c.member == "m-lea")
    assert cert.certified_at == datetime(2024, 9, 1, tzinfo=UTC)  # a date is midnight UTC


# --------------------------------------------------------------------------- key errors


def test_typo_names_file_key_path_line_and_suggestion(tmp_path: Path) -> None:
    path = variant(tmp_path, HUB, "  prefix: null", "  prefx: null")
    err = error_of(load_hub_config, path)
    assert err.file == str(path) and err.key == "mqtt.prefx"
    assert err.line == line_of(path, "prefx:")
    assert "did you mean 'prefix'?" in str(err)
    assert str(err).startswith(f"{path}:{err.line}: mqtt.prefx: expected ")


def test_typo_in_a_list_item_has_its_index(tmp_path: Path) -> None:
    path = variant(tmp_path, HUB, "    kind: cnc\n", "    knd: cnc\n")
    err = error_of(load_hub_config, path)
    assert err.key == "machines[1].knd"
    assert "did you mean 'kind'?" in str(err)


def test_bad_enum_value_suggests(tmp_path: Path) -> None:
    err = error_of(load_hub_config, variant(tmp_path, HUB, "kind: cnc", "kind: lazer"))
    assert err.key == "machines[1].kind" and err.got == "lazer"
    assert "did you mean 'laser'?" in str(err)


def test_missing_required_key(tmp_path: Path) -> None:
    err = error_of(load_node_config, variant(tmp_path, LASER, "  machine: laser-1\n", ""))
    assert err.key == "node.machine" and "required" in str(err)


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        ("port: 8080", "port: '8080'", "web.port"),
        (
            "out_of_service: false\n  - id: cnc-1",
            "out_of_service: 'no'\n  - id: cnc-1",
            "machines[0].out_of_service",
        ),
        ("language: fr", "language: de", "language"),
        ("site: fablab-demo", "site: Fablab Demo", "site"),
        (
            "min_level: 2\n    out_of_service: false\n  - id: cnc-1",
            "min_level: 0\n    out_of_service: false\n  - id: cnc-1",
            "machines[0].min_level",
        ),
        (
            "default_validity_months: 24}\n  - {id: cnc",
            "default_validity_months: two}\n  - {id: cnc",
            "groups[0].default_validity_months",
        ),
        ('["14:00-19:00"]', '["14:00-12:00"]', "opening_hours.wed"),
        ('["14:00-19:00"]', '["14:00-19:00", "18:00-20:00"]', "opening_hours.wed"),
        ("  wed:", "  wen:", "opening_hours.wen"),
        ("snapshot_refresh: 1h", "snapshot_refresh: 8d", "hub.snapshot_refresh"),
        ("snapshot_validity: 7d", "snapshot_validity: 7 days", "hub.snapshot_validity"),
        ("id: cnc-1", "id: laser-1", "machines[1].id"),
        ("{id: cnc, name", "{id: laser, name", "groups[1].id"),
        (
            '    token: "remplacez-moi-par-openssl-rand-hex-24"',
            "    token: short-token",
            "api_tokens[0].token",
        ),
        ('thu: ["18:00-22:00"]', 'thu: "18:00-22:00"', "opening_hours.thu"),
        ("  url: mqtt://127.0.0.1:1883", "  url: [mqtt://127.0.0.1:1883]", "mqtt.url"),
    ],
)
def test_hub_value_errors(tmp_path: Path, old: str, new: str, key: str) -> None:
    path = variant(tmp_path, HUB, old, new)
    err = error_of(load_hub_config, path)
    assert err.key == key
    assert str(err).startswith(f"{path}:{err.line}: {key}: expected ")


def test_each_machine_names_its_node_default_the_machine_id(tmp_path: Path) -> None:
    assert [m.node_id for m in load_hub_config(HUB).machines] == [
        "laser-1",
        "cnc-1",
        "printer-1",
        "embroidery-1",
    ]
    path = variant(
        tmp_path,
        HUB,
        "kind: laser\n    group: laser",
        "kind: laser\n    node: pi-07\n    group: laser",
    )
    assert load_hub_config(path).machines[0].node_id == "pi-07"


@pytest.mark.parametrize(
    ("new", "expected"),
    [
        ("node: cnc-1", "a unique node id (a node serves one machine)"),
        ("node: pi 07", "an id of letters, digits"),
    ],
)
def test_bad_machine_node(tmp_path: Path, new: str, expected: str) -> None:
    path = variant(
        tmp_path, HUB, "kind: laser\n    group: laser", f"kind: laser\n    {new}\n    group: laser"
    )
    err = error_of(load_hub_config, path)
    assert err.key in ("machines[0].node", "machines[1].node") and expected in str(err)


def test_short_token_is_not_printed(tmp_path: Path) -> None:
    err = error_of(
        load_hub_config, variant(tmp_path, HUB, "remplacez-moi-par-openssl-rand-hex-24", "s3cret-x")
    )
    assert "s3cret-x" not in str(err) and "16" in str(err)


def test_unknown_group(tmp_path: Path) -> None:
    err = error_of(load_hub_config, variant(tmp_path, HUB, "group: cnc", "group: cnk"))
    assert err.key == "machines[1].group" and err.got == "cnk"
    assert "did you mean 'cnc'?" in str(err)


def test_bad_timezone(tmp_path: Path) -> None:
    err = error_of(
        load_hub_config, variant(tmp_path, HUB, "timezone: Europe/Paris", "timezone: Europe/Pari")
    )
    assert err.key == "timezone" and "IANA" in str(err)
    assert "did you mean 'Europe/Paris'?" in str(err)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:1883",
        "mqtt://127.0.0.1:99999",
        "mqtt://127.0.0.1:0",
        "mqtt://:1883",
        "mqtt://user:pw@127.0.0.1",
        "mqtt://127.0.0.1/topic",
        "127.0.0.1:1883",
    ],
)
def test_bad_mqtt_url(tmp_path: Path, url: str) -> None:
    err = error_of(load_hub_config, variant(tmp_path, HUB, "mqtt://127.0.0.1:1883", url))
    assert err.key == "mqtt.url" and "mqtt://host" in str(err)


@pytest.mark.parametrize(
    ("url", "host", "port", "tls"),
    [
        ("mqtt://broker.lan", "broker.lan", 1883, False),
        ("mqtts://broker.lan", "broker.lan", 8883, True),
        ("MQTTS://broker.lan:9883", "broker.lan", 9883, True),
        ("mqtt://[::1]:1884", "::1", 1884, False),
    ],
)
def test_mqtt_url_defaults(tmp_path: Path, url: str, host: str, port: int, tls: bool) -> None:
    mqtt = load_hub_config(variant(tmp_path, HUB, "mqtt://127.0.0.1:1883", url)).mqtt
    assert (mqtt.host, mqtt.port, mqtt.tls) == (host, port, tls)
    assert mqtt.url.endswith(f":{port}")


def test_reconnect_back_off_is_read_and_defaults_to_1s_and_15s(tmp_path: Path) -> None:
    assert (
        load_node_config(LASER).mqtt.reconnect_min,
        load_node_config(LASER).mqtt.reconnect_max,
    ) == (1.0, 15.0)
    mqtt = load_node_config(
        variant(tmp_path, LASER, "reconnect_max: 15s", "reconnect_max: 2.5s")
    ).mqtt
    assert mqtt.reconnect_max == 2.5
    text = LASER.read_text(encoding="utf-8")
    bare = tmp_path / "bare.yaml"
    bare.write_text(
        "\n".join(line for line in text.splitlines() if "reconnect_m" not in line), encoding="utf-8"
    )
    mqtt = load_node_config(bare).mqtt
    assert (mqtt.reconnect_min, mqtt.reconnect_max) == (1.0, 15.0)
    hub = load_hub_config(variant(tmp_path, HUB, "reconnect_min: 1s", "reconnect_min: 0.2s"))
    assert hub.mqtt.reconnect_min == 0.2


@pytest.mark.parametrize(
    ("old", "new", "key", "expected"),
    [
        ("reconnect_min: 1s", "reconnect_min: 0s", "mqtt.reconnect_min", "longer than zero"),
        ("reconnect_min: 1s", "reconnect_min: soon", "mqtt.reconnect_min", "a duration"),
        ("reconnect_max: 15s", "reconnect_max: 500ms", "mqtt.reconnect_max", "a duration"),
        ("reconnect_max: 15s", "reconnect_max: 0.5s", "mqtt.reconnect_max", "reconnect_min"),
        ("reconnect_max: 15s", "reconnect_max: 2h", "mqtt.reconnect_max", "at most 1h"),
    ],
)
def test_bad_reconnect_back_off(
    tmp_path: Path, old: str, new: str, key: str, expected: str
) -> None:
    err = error_of(load_node_config, variant(tmp_path, LASER, old, new))
    assert err.key == key and expected in str(err)


def test_explicit_prefix_gets_its_slash(tmp_path: Path) -> None:
    mqtt = load_hub_config(variant(tmp_path, HUB, "  prefix: null", "  prefix: atelier/x")).mqtt
    assert mqtt.prefix == "atelier/x/"


def test_a_file_that_leaves_keys_out_gets_the_models_defaults(tmp_path: Path) -> None:
    node_file = tmp_path / "node.yaml"
    node_file.write_text("site: lab\nnode: {machine: m1}\n")
    node = load_node_config(node_file)
    assert (node.relay, node.reader, node.controller, node.session) == (
        RelayConfig(),
        ReaderConfig(),
        ControllerConfig(),
        SessionConfig(),
    )
    assert (node.max_snapshot_age, node.heartbeat) == (
        NodeConfig.max_snapshot_age,
        NodeConfig.heartbeat,
    )
    assert (node.mqtt.url, node.mqtt.reconnect_min, node.mqtt.reconnect_max) == (
        MqttConfig.url,
        MqttConfig.reconnect_min,
        MqttConfig.reconnect_max,
    )
    hub_file = tmp_path / "hub.yaml"
    hub_file.write_text(
        "site: lab\ntimezone: Europe/Paris\nhub: {}\n"
        "groups: [{id: g}]\nmachines: [{id: m1, kind: laser, group: g}]\n"
    )
    hub = load_hub_config(hub_file)
    assert (
        hub.language,
        hub.snapshot_validity,
        hub.snapshot_refresh,
        hub.web_host,
        hub.web_port,
    ) == (
        HubConfig.language,
        HubConfig.snapshot_validity,
        HubConfig.snapshot_refresh,
        HubConfig.web_host,
        HubConfig.web_port,
    )
    assert hub.groups == (GroupConfig("g", "g"),)
    assert hub.machines == (MachineConfig("m1", "m1", "laser", "g"),)


# --------------------------------------------------------------------------- node errors


def test_pin_4_refused_because_high_at_boot(tmp_path: Path) -> None:
    err = error_of(load_node_config, variant(tmp_path, LASER, "pin: 17", "pin: 4"))
    assert err.key == "relay.pin" and err.got == 4
    assert "boot" in str(err)


@pytest.mark.parametrize(("pin", "ok"), [(8, False), (9, True), (27, True), (28, False)])
def test_pin_range_with_simulated_reader(tmp_path: Path, pin: int, ok: bool) -> None:
    path = variant(tmp_path, LASER, "pin: 17", f"pin: {pin}")
    path.write_text(path.read_text().replace("driver: rc522", "driver: simulated"))
    if ok:
        assert load_node_config(path).relay.pin == pin
    else:
        assert error_of(load_node_config, path).key == "relay.pin"


@pytest.mark.parametrize("pin", [9, 10, 11, 25])
def test_relay_pin_clashing_with_the_rc522(tmp_path: Path, pin: int) -> None:
    err = error_of(load_node_config, variant(tmp_path, LASER, "pin: 17", f"pin: {pin}"))
    assert err.key == "relay.pin"


EMBROIDERY = ROOT / "config" / "nodes" / "embroidery-1.yaml"  # RC522 on CE0, MCP3008 on CE1


def relay_on(tmp_path: Path, pin: int, *, source: Path = EMBROIDERY) -> Path:
    """``source`` with an active-low relay on ``pin`` (GPIO 0-8 pass the boot-pull check)."""
    path = variant(
        tmp_path, source, "pin: 24" if source == EMBROIDERY else "pin: 17", f"pin: {pin}"
    )
    path.write_text(path.read_text().replace("active_high: true", "active_high: false"))
    return path


def test_relay_on_the_mcp3008_chip_select_is_refused(tmp_path: Path) -> None:
    path = relay_on(tmp_path, 7)
    err = error_of(load_node_config, path)
    assert err.key == "relay.pin" and err.got == 7 and err.file == str(path)
    assert err.line == line_of(path, "pin: 7")
    assert "GPIO 7 is SPI0 CE1 of the MCP3008 current sensor" in err.expected
    assert "controller.spi_device" in err.expected
    # The same pin is fine once nothing on SPI0 CE1 is driven by the node.
    simulated = variant(
        tmp_path,
        path,
        "source: mcp3008",
        "source: mcp3008\n  simulate: true",
        name="simulated.yaml",
    )
    assert load_node_config(simulated).relay.pin == 7
    other_ce = variant(
        tmp_path, path, "  scale: 0.195", "  scale: 0.195\n  spi_device: 0", name="ce0.yaml"
    )
    other_ce.write_text(other_ce.read_text().replace("driver: rc522", "driver: simulated"))
    assert load_node_config(other_ce).relay.pin == 7


@pytest.mark.parametrize("pin", [7, 9, 10, 11])
def test_relay_on_any_pin_of_the_mcp3008_is_refused(tmp_path: Path, pin: int) -> None:
    path = (
        relay_on(tmp_path, pin)
        if pin < 9
        else variant(tmp_path, EMBROIDERY, "pin: 24", f"pin: {pin}")
    )
    with pytest.raises(
        ConfigError,
        match=rf"relay\.pin: expected a GPIO no other device uses "
        rf"\(GPIO {pin} is SPI0 \w+ of the (MCP3008|RC522)",
    ):
        load_any(path)


def test_check_config_command_refuses_a_relay_on_the_mcp3008_chip_select(tmp_path: Path) -> None:
    path = relay_on(tmp_path, 7)
    r = subprocess.run(
        [sys.executable, "-m", "gateway", "check-config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert r.returncode == 1
    assert (
        f"{path}:{line_of(path, 'pin: 7')}: relay.pin: expected a GPIO no other device "
        "uses (GPIO 7 is SPI0 CE1 of the MCP3008 current sensor, set by "
        "controller.spi_device), got 7" in r.stderr
    )


def test_relay_on_gpio_8_with_the_rc522_on_ce0_is_refused(tmp_path: Path) -> None:
    err = error_of(load_node_config, relay_on(tmp_path, 8, source=LASER))
    assert err.key == "relay.pin" and "GPIO 8 is SPI0 CE0 of the RC522 reader" in err.expected


def test_rc522_and_mcp3008_cannot_share_a_chip_select(tmp_path: Path) -> None:
    path = variant(tmp_path, EMBROIDERY, "  scale: 0.195", "  scale: 0.195\n  spi_device: 0")
    err = error_of(load_node_config, path)
    assert err.key == "controller.spi_device" and err.got == 0
    assert "GPIO 8 is SPI0 CE0 of the RC522 reader" in err.expected


def test_rc522_reset_on_the_mcp3008_chip_select_is_refused(tmp_path: Path) -> None:
    err = error_of(load_node_config, variant(tmp_path, EMBROIDERY, "rst_pin: 25", "rst_pin: 7"))
    assert err.key == "reader.rst_pin" and err.got == 7
    assert "GPIO 7 is SPI0 CE1 of the MCP3008" in err.expected


def test_rc522_reset_on_its_own_spi_pins_is_refused(tmp_path: Path) -> None:
    err = error_of(load_node_config, variant(tmp_path, LASER, "rst_pin: 25", "rst_pin: 10"))
    assert err.key == "reader.rst_pin"
    assert "GPIO 10 is SPI0 MOSI of the RC522 reader" in err.expected


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        ("driver: rc522", "driver: rc552", "reader.driver"),
        ("driver: gpio", "driver: gpoi", "relay.driver"),
        ("hold_off: 2s", "hold_off: -2s", "reader.hold_off"),
        ("poll_hz: 10", "poll_hz: 0", "reader.poll_hz"),
        ("heartbeat: 15s", "heartbeat: 0", "node.heartbeat"),
        ("active_high: true", "active_high: yes please", "relay.active_high"),
        ("  username: laser-1\n", "", "mqtt.username"),
        ("  machine: laser-1", "  machine: laser/1", "node.machine"),
    ],
)
def test_node_value_errors(tmp_path: Path, old: str, new: str, key: str) -> None:
    err = error_of(load_node_config, variant(tmp_path, LASER, old, new))
    assert err.key == key


def test_node_id_and_client_id(tmp_path: Path) -> None:
    cfg = load_node_config(variant(tmp_path, LASER, "  id: null", "  id: atelier-bois"))
    assert (cfg.node_id, cfg.machine_id) == ("atelier-bois", "laser-1")
    assert cfg.mqtt.client_id == "fabgate-node-atelier-bois"


def test_relative_paths_resolve_against_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf = tmp_path / "etc"
    conf.mkdir()
    path = variant(
        conf, LASER, "journal: /var/lib/fabgate/laser-1-journal.db", "journal: ../state/journal.db"
    )
    monkeypatch.chdir(ROOT)
    cfg = load_node_config(path)
    assert cfg.journal == (tmp_path / "state" / "journal.db").resolve()
    assert cfg.hub_public_key == (conf / "hub-signing.pub").resolve()
    hub = load_hub_config(variant(conf, HUB, "seed: null", "seed: members.yaml"))
    assert hub.signing_key == (conf / "keys" / "hub-signing.pem").resolve()
    assert hub.seed == (conf / "members.yaml").resolve()


# --------------------------------------------------------------------------- YAML itself


def test_yaml_syntax_error_reports_file_and_line(tmp_path: Path) -> None:
    path = variant(tmp_path, HUB, "  port: 8080", "  port: 8080: 8081")
    err = error_of(load_hub_config, path)
    assert err.file == str(path) and "YAML" in err.expected
    assert err.line == line_of(path, "port: 8080: 8081")
    assert str(err).startswith(f"{path}:{err.line}: expected valid YAML")


def test_unclosed_bracket_names_where_it_was_opened(tmp_path: Path) -> None:
    path = variant(tmp_path, HUB, "  port: 8080", "  port: [8080")
    err = error_of(load_hub_config, path)
    assert err.line is not None
    assert f"opened at line {line_of(path, 'port: [8080')}" in str(err)


def test_list_of_the_wrong_type(tmp_path: Path) -> None:
    path = tmp_path / "hub.yaml"
    path.write_text("site: x\ntimezone: UTC\nhub: null\ngroups: laser\n")
    err = error_of(load_hub_config, path)
    assert (err.key, err.line, err.got) == ("groups", 4, "laser")
    assert "a list" in err.expected


def test_duplicate_key_is_an_error(tmp_path: Path) -> None:
    path = variant(tmp_path, HUB, "language: fr\n", "language: fr\nlanguage: en\n")
    err = error_of(load_hub_config, path)
    assert err.key == "language" and err.line == line_of(path, "language: en")


def test_missing_and_empty_files(tmp_path: Path) -> None:
    assert "existing file" in str(error_of(load_hub_config, tmp_path / "absent.yaml"))
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing\n")
    assert "mapping" in str(error_of(load_node_config, empty))


def test_load_any_refuses_a_file_that_is_neither(tmp_path: Path) -> None:
    err = error_of(load_any, variant(tmp_path, LASER, "node:", "nod:"))
    assert "hub:" in err.expected and "node:" in err.expected


def test_load_any_uses_the_right_schema_for_typos(tmp_path: Path) -> None:
    err = error_of(load_any, variant(tmp_path, LASER, "site:", "sit:"))
    assert "did you mean 'site'?" in str(err) and "timezone" not in str(err)


# --------------------------------------------------------------------------- seed


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        (
            "{id: p-blasons, member: m-assoc-couture",
            "{id: p-blasons, member: m-assoc",
            "projects[2].member",
        ),
        (
            "{member: m-paul, group: laser",
            "{member: m-pol, group: laser",
            "certifications[8].member",
        ),
        (
            "{member: m-paul, group: laser, level: 2",
            "{member: m-paul, group: laser, level: 4",
            "certifications[8].level",
        ),
        (
            "level: 2, certified_by: m-lea, certified_at: 2023",
            "level: 2, certified_by: m-leo, certified_at: 2023",
            "certifications[8].certified_by",
        ),
        (
            "level: 2, certified_by: m-lea, certified_at: 2023",
            "level: 2, certified_by: m-lea, certified_at: 2023-05-10T18:00:00, expires: null, x: 1}"
            " #",
            "certifications[8].x",
        ),
        (
            "certified_at: 2023-05-10T18:00:00Z",
            "certified_at: 2023-05-10T18:00:00",
            "certifications[8].certified_at",
        ),
        (
            "expires: 2025-05-10T18:00:00Z",
            "expires: 2022-05-10T18:00:00Z",
            "certifications[8].expires",
        ),
        ('badges: ["04FF0102"]', "badges: [12345678]", "members[4].badges[0]"),
        ('badges: ["04FF0102"]', 'badges: ["04:b0:c0:a1"]', "members[4].badges[0]"),
        ('badges: ["04FF0102"]', 'badges: ["not-hex"]', "members[4].badges[0]"),
        ("category: grand_public", "category: grand-public", "members[4].category"),
        ("status: suspended", "status: blocked", "members[5].status"),
        ("membership_end: 2026-12-31", "membership_end: 31/12/2026", "members[4].membership_end"),
        ("current_project: p-blasons", "current_project: p-etagere", "members[3].current_project"),
        ("  - id: m-sarah", "  - id: m-paul", "members[5].id"),
        (
            "{member: m-sarah, group: printing",
            "{member: m-ines, group: printing",
            "certifications[9].group",
        ),
    ],
)
def test_seed_errors(tmp_path: Path, old: str, new: str, key: str) -> None:
    err = error_of(load_seed, variant(tmp_path, SEED, old, new))
    assert err.key == key, str(err)


def test_seed_unknown_member_suggests(tmp_path: Path) -> None:
    err = error_of(
        load_seed,
        variant(tmp_path, SEED, "{member: m-paul, group: laser", "{member: m-pol, group: laser"),
    )
    assert "did you mean 'm-paul'?" in str(err)


# --------------------------------------------------------------------------- durations


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("15s", timedelta(seconds=15)),
        ("10m", timedelta(minutes=10)),
        ("72h", timedelta(hours=72)),
        ("7d", timedelta(days=7)),
        ("1h30m", timedelta(minutes=90)),
        ("1.5h", timedelta(minutes=90)),
        (" 2S ", timedelta(seconds=2)),
        ("30", timedelta(seconds=30)),
        (30, timedelta(seconds=30)),
        (0.5, timedelta(milliseconds=500)),
    ],
)
def test_parse_duration(text: str | float, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "h",
        "-5s",
        "5 days",
        "5w",
        "1h1h",
        "s10",
        "1h 30",
        True,
        None,
        [],
        -1,
        float("nan"),
        "99999999999d",
    ],
)
def test_parse_duration_refuses(bad: object) -> None:
    with pytest.raises(ValueError, match=re.compile(r".+")):
        parse_duration(bad)  # type: ignore[arg-type]


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@given(
    st.lists(
        st.tuples(st.sampled_from("smhd"), st.integers(0, 10_000)),
        min_size=1,
        max_size=4,
        unique_by=lambda p: p[0],
    )
)
def test_parse_duration_sums_its_parts(parts: list[tuple[str, int]]) -> None:
    text = "".join(f"{n}{unit}" for unit, n in parts)
    assert parse_duration(text) == timedelta(seconds=sum(n * _UNITS[u] for u, n in parts))


@given(st.integers(0, 10**9))
def test_parse_duration_bare_seconds(n: int) -> None:
    assert parse_duration(n) == parse_duration(str(n)) == parse_duration(f"{n}s")


# --------------------------------------------------------------------------- permissives


def test_the_laser_example_has_its_permissives_and_hold() -> None:
    cfg = load_node_config(LASER)
    assert [(p.input, p.name, p.on_drop, p.hold_for) for p in cfg.permissives] == [
        (0, "water_flow", "hold", 5.0),
        (1, "fume_extraction", "hold", 5.0),
    ]
    assert cfg.session.hold_for == 10.0


@pytest.mark.parametrize(
    ("old", "new", "key", "expected"),
    [
        ("name: water_flow", "name: Water Flow", "permissives[0].name", "lower-case name"),
        ("name: fume_extraction", "name: water_flow", "permissives[1].name", "unique"),
        ("  - input: 1", "  - input: 0", "permissives[1].input", "unique"),
        ("  - input: 1", "  - input: 2", "permissives[1].input", "from 0 to 1"),
        (
            "    on_drop: hold\n    hold_for: 5s\n  - input: 1",
            "    on_drop: later\n    hold_for: 5s\n  - input: 1",
            "permissives[0].on_drop",
            "one of",
        ),
        ("  source: serial", "  source: mcp3008", "controller.driver", "sense board"),
    ],
)
def test_bad_permissives_name_the_key(
    tmp_path: Path, old: str, new: str, key: str, expected: str
) -> None:
    err = error_of(load_node_config, variant(tmp_path, LASER, old, new))
    assert key in str(err) and expected in str(err), str(err)
