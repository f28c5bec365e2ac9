"""The relay must be off whenever the gateway is not deliberately holding it on."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from gpiozero import Device
from gpiozero.pins.mock import MockFactory

from gateway.config import RelayConfig
from gateway.drivers import relay as relay_mod
from gateway.drivers.factory import make_relay
from gateway.drivers.relay import GpioRelay, Relay

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def pins() -> Iterator[MockFactory]:
    previous = Device.pin_factory
    Device.pin_factory = MockFactory()
    try:
        yield Device.pin_factory
    finally:
        Device.pin_factory.reset()
        Device.pin_factory = previous


def levels(factory: MockFactory, pin: int) -> list[bool]:
    return [bool(s.state) for s in factory.pin(pin).states]


def test_off_at_construction_and_switches(pins: MockFactory) -> None:
    relay = GpioRelay(17)
    assert isinstance(relay, Relay)
    assert pins.pin(17).function == "output"
    assert pins.pin(17).state is False
    assert not relay.is_on
    relay.on()
    assert relay.is_on and pins.pin(17).state is True
    relay.off()
    assert not relay.is_on and pins.pin(17).state is False
    assert levels(pins, 17) == [False, True, False]
    relay.close()


def test_active_low_inverts_the_level(pins: MockFactory) -> None:
    relay = GpioRelay(5, active_high=False)
    assert pins.pin(5).state is True  # off = high for an active-low board
    relay.on()
    assert pins.pin(5).state is False
    relay.close()
    assert pins.pin(5).state is True


def test_close_switches_off_before_releasing(pins: MockFactory) -> None:
    relay = GpioRelay(17)
    relay.on()
    relay.close()
    assert levels(pins, 17)[-1] is False
    assert pins.pin(17).function == "input"  # released after being driven off
    assert not relay.is_on
    relay.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        relay.on()


def test_context_manager_switches_off_on_error(pins: MockFactory) -> None:
    with pytest.raises(ZeroDivisionError), GpioRelay(17) as relay:
        relay.on()
        1 / 0  # noqa: B018
    assert levels(pins, 17)[-1] is False


def test_exit_hook_switches_every_live_relay_off(pins: MockFactory) -> None:
    a, b = GpioRelay(17), GpioRelay(27)
    a.on()
    b.on()
    relay_mod.switch_all_off()
    assert pins.pin(17).state is False and pins.pin(27).state is False
    a.close()
    b.close()
    assert a not in relay_mod._live and b not in relay_mod._live


def test_exit_hook_runs_when_the_process_dies_of_an_exception(tmp_path: Path) -> None:
    # The reporter is registered before our module is imported, so (last in, first out)
    # it runs after our hook and before gpiozero's shutdown releases the pin.
    script = tmp_path / "crash.py"
    script.write_text(
        textwrap.dedent("""
        import atexit
        from gpiozero import Device

        def report():
            states = [int(s.state) for s in Device.pin_factory.pin(17).states]
            print("STATES", states, flush=True)

        atexit.register(report)
        from gateway.drivers.relay import GpioRelay
        relay = GpioRelay(17)
        relay.on()
        raise RuntimeError("node crashed with the machine on")
    """)
    )
    env = {
        **os.environ,
        "GPIOZERO_PIN_FACTORY": "mock",
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert "node crashed" in done.stderr
    assert "STATES [0, 1, 0]" in done.stdout, (done.stdout, done.stderr)


@pytest.mark.parametrize("pin", range(0, 9))
def test_boot_pull_up_pins_refused_for_active_high(pins: MockFactory, pin: int) -> None:
    with pytest.raises(ValueError, match=f"GPIO {pin} is pulled up at boot"):
        GpioRelay(pin)


def test_boot_pull_up_pin_allowed_explicitly(pins: MockFactory) -> None:
    relay = GpioRelay(4, allow_boot_pull=True)
    assert pins.pin(4).state is False
    relay.close()


def test_active_low_warns_on_pulled_down_pins(
    pins: MockFactory, caplog: pytest.LogCaptureFixture
) -> None:
    GpioRelay(17, active_high=False).close()
    assert "GPIO 17 is pulled down at boot" in caplog.text
    caplog.clear()
    GpioRelay(4, active_high=False).close()  # pulled up at boot = off: the safe side
    assert caplog.text == ""


def test_make_relay_from_config(pins: MockFactory) -> None:
    relay = make_relay(RelayConfig(pin=22, active_high=True))
    assert isinstance(relay, GpioRelay) and relay.pin == 22
    assert pins.pin(22).state is False
    relay.close()
    with pytest.raises(ValueError, match="pulled up"):
        make_relay(RelayConfig(pin=3))
    with pytest.raises(ValueError, match="unknown relay driver"):
        make_relay(RelayConfig(driver="usb"))


def test_explicit_pin_factory_is_used() -> None:
    factory = MockFactory()
    try:
        relay = make_relay(RelayConfig(pin=17), pin_factory=factory)
        relay.on()
        assert factory.pin(17).state is True
        relay.close()
        assert factory.pin(17).state is False
    finally:
        factory.reset()
