"""One pin rulebook: the config checker and the relay driver judge a pin the same way."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from gpiozero import Device
from gpiozero.pins.mock import MockFactory

from gateway.config import ConfigError, load_node_config, pins
from gateway.drivers.relay import GpioRelay

NODE = """\
site: lab
node: {{machine: m1}}
relay: {{pin: {pin}, active_high: {high}}}
reader: {{driver: simulated}}
"""


@pytest.fixture
def mock_pins() -> Iterator[MockFactory]:
    previous = Device.pin_factory
    Device.pin_factory = MockFactory()
    try:
        yield Device.pin_factory
    finally:
        Device.pin_factory.reset()
        Device.pin_factory = previous


def test_spi_pins_of_the_pi() -> None:
    assert pins.spi_pins(0, 0) == {9: "SPI0 MISO", 10: "SPI0 MOSI", 11: "SPI0 SCLK", 8: "SPI0 CE0"}
    assert pins.spi_pins(0, 1)[7] == "SPI0 CE1"
    assert pins.spi_pins(1, 2)[16] == "SPI1 CE2"


def test_pins_for_each_kind_of_relay_board() -> None:
    assert pins.ACTIVE_LOW_PINS == (4, 5, 6)
    assert tuple(range(9, 28)) == pins.ACTIVE_HIGH_PINS
    assert pins.gpio_text(pins.ACTIVE_LOW_PINS) == "GPIO 4, 5 or 6"
    assert pins.gpio_text(pins.ACTIVE_HIGH_PINS) == "GPIO 9-27"


def test_two_devices_share_a_bus_but_not_a_chip_select() -> None:
    rc522 = pins.spi_claims("the RC522 reader", "reader.spi_device", 0, 0)
    assert pins.conflict(rc522, pins.Claim(10, "the MCP3008", "SPI0 MOSI", "k")) is None
    taken = pins.conflict(rc522, pins.Claim(8, "the MCP3008", "SPI0 CE0", "k"))
    assert taken is not None and taken.device == "the RC522 reader"
    assert pins.conflict(rc522, pins.Claim(10, "a relay", "output", "relay.pin")) is not None


@pytest.mark.parametrize("high", [True, False])
def test_checker_and_driver_agree_on_every_header_pin(
    tmp_path: Path, mock_pins: MockFactory, caplog: pytest.LogCaptureFixture, high: bool
) -> None:
    caplog.set_level(logging.WARNING, logger="gateway.drivers.relay")
    for pin in range(pins.MAX_GPIO + 1):
        path = tmp_path / f"node-{pin}.yaml"
        path.write_text(NODE.format(pin=pin, high=str(high).lower()))
        try:
            load_node_config(path)
            checker_refuses = False
        except ConfigError as exc:
            assert exc.key == "relay.pin" and "boot" in exc.expected
            checker_refuses = True
        caplog.clear()
        try:
            GpioRelay(pin, active_high=high).close()
            driver_objects = bool(caplog.records)  # an active-low board: a warning
        except ValueError:
            driver_objects = True
        assert checker_refuses == driver_objects == pins.boot_energises(pin, active_high=high), pin
