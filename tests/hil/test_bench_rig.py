"""Hardware-in-the-loop tests on the bench rig (see README.md in this folder).

They prove what the simulators cannot: that the relay contact really opens and closes
(read back through a sense wire, not from our own output register) and that a real
RC522 reads a real card. Skipped unless ``FABGATE_HIL=1``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest
from gpiozero import DigitalInputDevice

from gateway.core.ids import normalise_uid
from gateway.drivers.readers.base import TapDebouncer
from gateway.drivers.relay import GpioRelay

pytestmark = [
    pytest.mark.hil,
    pytest.mark.skipif(
        os.environ.get("FABGATE_HIL") != "1",
        reason="hardware-in-the-loop: needs the bench rig and FABGATE_HIL=1",
    ),
]


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


RELAY_PIN = _env_int("FABGATE_HIL_RELAY_PIN", 17)
ACTIVE_HIGH = os.environ.get("FABGATE_HIL_RELAY_ACTIVE_HIGH", "1") != "0"
SENSE_PIN = os.environ.get("FABGATE_HIL_SENSE_PIN")
SPI_BUS = _env_int("FABGATE_HIL_SPI_BUS", 0)
SPI_DEVICE = _env_int("FABGATE_HIL_SPI_DEVICE", 0)
RST_PIN = _env_int("FABGATE_HIL_RST_PIN", 25)
TAP_TIMEOUT = float(os.environ.get("FABGATE_HIL_TAP_TIMEOUT", "30"))
CARD_UID = os.environ.get("FABGATE_HIL_CARD_UID")
SETTLE = 0.5  # seconds: relay operate time plus contact bounce, with a wide margin


@pytest.fixture
def relay() -> Iterator[GpioRelay]:
    with GpioRelay(RELAY_PIN, active_high=ACTIVE_HIGH) as relay:
        yield relay


@pytest.fixture
def contact() -> Iterator[DigitalInputDevice]:
    """The relay's NO contact, read back on a GPIO: closed (active) means powered."""
    if SENSE_PIN is None:
        pytest.skip("set FABGATE_HIL_SENSE_PIN to the GPIO wired to the relay's NO contact")
    sense = DigitalInputDevice(int(SENSE_PIN), pull_up=True, bounce_time=None)
    try:
        yield sense
    finally:
        sense.close()


def test_relay_off_at_start(relay: GpioRelay, contact: DigitalInputDevice) -> None:
    assert not relay.is_on
    assert contact.wait_for_inactive(timeout=SETTLE)
    assert not contact.is_active


def test_relay_toggles(relay: GpioRelay, contact: DigitalInputDevice) -> None:
    for _ in range(3):
        relay.on()
        assert contact.wait_for_active(timeout=SETTLE), "contact did not close"
        relay.off()
        assert contact.wait_for_inactive(timeout=SETTLE), "contact did not open"


def test_relay_off_after_close(contact: DigitalInputDevice) -> None:
    relay = GpioRelay(RELAY_PIN, active_high=ACTIVE_HIGH)
    relay.on()
    assert contact.wait_for_active(timeout=SETTLE)
    relay.close()
    assert contact.wait_for_inactive(timeout=SETTLE)


def test_reader_sees_a_tapped_card(capsys: pytest.CaptureFixture[str]) -> None:
    from gateway.drivers.readers.rc522 import RC522Reader

    with RC522Reader(bus=SPI_BUS, device=SPI_DEVICE, rst_pin=RST_PIN) as reader:
        assert reader.poll() is None, "take every card off the reader before the test"
        with capsys.disabled():
            print(f"\n>>> Tap a badge on the RC522 within {TAP_TIMEOUT:.0f} s ...", flush=True)
        debouncer = TapDebouncer(2.0)
        deadline = time.monotonic() + TAP_TIMEOUT
        tap = None
        while tap is None and time.monotonic() < deadline:
            tap = debouncer.feed(reader.poll())
            time.sleep(0.1)  # the node's poll rate, not synchronisation
        with capsys.disabled():
            print(f">>> read {tap}", flush=True)
    assert tap is not None, f"no card read within {TAP_TIMEOUT:.0f} s"
    assert tap == normalise_uid(tap)
    if CARD_UID:
        assert tap == normalise_uid(CARD_UID)
