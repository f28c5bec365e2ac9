"""The node file's `sender:` section: the GRBL relay's doors, checked with clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import ConfigError, SenderConfig, load_node_config

ROOT = Path(__file__).resolve().parent.parent
CNC = ROOT / "config" / "nodes" / "cnc-1.yaml"
LASER = ROOT / "config" / "nodes" / "laser-1.yaml"


def _variant(tmp_path: Path, source: Path, old: str, new: str) -> Path:
    text = source.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} should occur once in {source.name}"
    path = tmp_path / source.name
    path.write_text(text.replace(old, new), encoding="utf-8")
    return path


def _error(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_node_config(path)
    return str(info.value)


def test_the_cnc_example_relays_a_sender_on_the_node_only() -> None:
    cfg = load_node_config(CNC)
    assert cfg.sender == SenderConfig(tcp_port=2323, bind="127.0.0.1", pty=None)
    assert cfg.sender.enabled


def test_a_file_without_the_section_has_no_link() -> None:
    assert not load_node_config(LASER).sender.enabled


def test_pty_is_relative_to_the_file(tmp_path: Path) -> None:
    path = _variant(tmp_path, CNC, "  pty: null", "  pty: run/ttyGRBL")
    assert load_node_config(path).sender.pty == (tmp_path / "run" / "ttyGRBL").resolve()


@pytest.mark.parametrize(
    ("old", "new", "says"),
    [
        ("tcp_port: 2323", "tcp_port: 70000", "sender.tcp_port"),
        ("tcp_port: 2323", "tcp_port: telnet", "an integer from 1 to 65535"),
        ("bind: 127.0.0.1", "bind: workshop.local", "an IP address of the node"),
        ("bind: 127.0.0.1", "bind: 127.0.0.1\n  password: x", "password"),
    ],
)
def test_bad_sender_values_name_the_key(tmp_path: Path, old: str, new: str, says: str) -> None:
    message = _error(_variant(tmp_path, CNC, old, new))
    assert says in message
    assert "cnc-1.yaml" in message


def test_a_sender_link_needs_a_grbl_controller(tmp_path: Path) -> None:
    text = LASER.read_text(encoding="utf-8") + "\nsender:\n  tcp_port: 2323\n"
    path = tmp_path / "laser-1.yaml"
    path.write_text(text, encoding="utf-8")
    message = _error(path)
    assert "sender.tcp_port" in message and "controller.driver is grbl" in message


def test_the_pty_may_not_be_the_controllers_port(tmp_path: Path) -> None:
    path = _variant(
        tmp_path, CNC, "  pty: null", "  pty: /dev/serial/by-id/usb-1a86_USB_Serial-if00-port0"
    )
    assert "other than controller.port" in _error(path)
