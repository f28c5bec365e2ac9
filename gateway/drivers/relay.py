"""The machine's power relay: the one output whose failure mode matters.

A relay left energised means a laser cutter or CNC that anyone can use, so every path
out of this module ends with the relay off: off at construction, off before the pin is
released on ``close()``, and off from an ``atexit`` hook when the interpreter exits
(normally or through an unhandled exception). ``atexit`` does not run on SIGKILL or on a
SIGTERM without a handler, and nothing in software runs on a power cut: that is why the
relay board must also have a pull resistor that holds its input at the OFF level when the
pin floats (a released GPIO returns to an input and floats).

In simulation the process sets ``GPIOZERO_PIN_FACTORY=mock`` and the same code drives
gpiozero's mock pins.
"""

from __future__ import annotations

import atexit
import logging
import threading
from abc import ABC, abstractmethod
from types import TracebackType
from typing import Any

from gpiozero import DigitalOutputDevice

from gateway.config import pins

log = logging.getLogger(__name__)


class Relay(ABC):
    """A switch for the machine's power; implementations must fail towards OFF."""

    @property
    @abstractmethod
    def is_on(self) -> bool:
        """True while the relay is energised (the machine has power)."""

    @abstractmethod
    def on(self) -> None: ...

    @abstractmethod
    def off(self) -> None: ...

    @abstractmethod
    def close(self) -> None:
        """Switch off, then release the hardware; safe to call more than once."""

    def __enter__(self) -> Relay:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


# Strong references on purpose: a relay the node forgot to close must still be reached
# by the exit hook instead of being garbage-collected into a floating pin.
_live: set[GpioRelay] = set()
_live_lock = threading.Lock()


def switch_all_off() -> None:
    """Exit hook: switch every relay that is still open off; never raises.

    Registered after gpiozero's own exit hook, so it runs *before* gpiozero closes its
    devices (``atexit`` runs hooks last-in first-out) and the pins are driven to OFF
    rather than just released.
    """
    with _live_lock:
        relays = list(_live)
    for relay in relays:
        try:
            relay.off()
        except Exception:  # an exit hook must try every relay
            log.exception("could not switch relay on GPIO %s off at exit", relay.pin)


atexit.register(switch_all_off)


def check_boot_level(pin: int, *, active_high: bool, allow_boot_pull: bool = False) -> None:
    """Refuse a pin whose power-on pull would energise the relay before our code runs.

    Between power-on and the moment this process configures the pin (tens of seconds
    of boot), a GPIO is an input held only by the SoC's default pull
    (``gateway.config.pins``): GPIO 0-8 are pulled up, GPIO 9-27 pulled down. With an
    active-high relay board a pull-up on GPIO 0-8 can be enough to switch the machine on
    during every boot, unattended. For an active-low
    board it is the other way round: the pulled-down pins 9-27 are the ones that could
    energise it (logged as a warning) and GPIO 0-8 are the safe choice (GPIO 4, 5 or 6
    when SPI and I2C are in use). ``allow_boot_pull`` is for a board whose own pull
    resistor is stronger than the Pi's (about 50 kOhm) and holds the input at OFF; GPIO 2
    and 3 have 1.8 kOhm pull-ups that a board resistor cannot beat.
    """
    if allow_boot_pull or not pins.boot_energises(pin, active_high=active_high):
        return
    if active_high:
        raise ValueError(
            f"GPIO {pin} is pulled up at boot, which can switch an active-high relay ON "
            f"before the gateway starts; use {pins.gpio_text(pins.ACTIVE_HIGH_PINS)} (e.g. "
            "17), or allow it explicitly only if the relay board has a pull-down that keeps "
            "it off"
        )
    # Only a warning: a ~50 kOhm pull-down rarely sinks enough current to light the
    # opto-coupler of an active-low board, and node configs refuse these pins anyway.
    log.warning(
        "GPIO %s is pulled down at boot, which can switch an active-low relay ON "
        "before the gateway starts; prefer %s, or a board with a pull-up "
        "that keeps it off",
        pin,
        pins.gpio_text(pins.ACTIVE_LOW_PINS),
    )


class GpioRelay(Relay):
    """A relay on one GPIO through gpiozero, so the mock pin factory simulates it."""

    def __init__(
        self,
        pin: int,
        *,
        active_high: bool = True,
        pin_factory: Any = None,
        allow_boot_pull: bool = False,
    ) -> None:
        check_boot_level(pin, active_high=active_high, allow_boot_pull=allow_boot_pull)
        self.pin = pin
        self.active_high = active_high
        self._lock = threading.Lock()
        self._closed = False
        # initial_value=False makes gpiozero set the OFF level as it claims the pin,
        # with no window where the output could be driven ON.
        self._device = DigitalOutputDevice(
            pin, active_high=active_high, initial_value=False, pin_factory=pin_factory
        )
        with _live_lock:
            _live.add(self)

    @property
    def is_on(self) -> bool:
        with self._lock:
            return not self._closed and bool(self._device.value)

    def on(self) -> None:
        with self._lock:
            if self._closed:
                raise RuntimeError(f"relay on GPIO {self.pin} is closed")
            self._device.on()

    def off(self) -> None:
        with self._lock:
            if not self._closed:
                self._device.off()

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                self._device.off()
            finally:
                self._device.close()
                with _live_lock:
                    _live.discard(self)

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("on" if self.is_on else "off")
        return f"<GpioRelay GPIO{self.pin} active_high={self.active_high} {state}>"
