"""The Raspberry Pi GPIO rulebook: how each pin is pulled at boot and which pins a device
on a bus takes.

One rulebook for two readers. The config checker knows every device a node file sets up
(relay, RC522 reader, MCP3008 current sensor) and refuses a relay or a reset line on a pin
another device already uses, or a relay whose pin the Pi pulls to the relay's ON level
while it boots. The relay driver knows only its own pin and checks the boot pull again,
for code that builds a relay without a config file. Pin numbers are BCM GPIO numbers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

MAX_GPIO = 27
HEADER_GPIOS = frozenset(range(0, MAX_GPIO + 1))
#: GPIOs the SoC pulls up from power-on until software configures them; 9-27 are pulled
#: down. A released pin (an exited process) is an input again and floats to that pull.
BOOT_PULL_UP = frozenset(range(0, 9))
#: GPIO 2 and 3 (I2C1) have 1.8 kOhm pull-ups on the board that no relay board resistor beats.
FIXED_PULL_UP = frozenset({2, 3})
#: GPIO 0 and 1 read a HAT's ID EEPROM at boot.
ID_EEPROM = frozenset({0, 1})


@dataclass(frozen=True)
class SpiBus:
    number: int
    miso: int
    mosi: int
    sclk: int
    chip_selects: tuple[int, ...]  # CE0, CE1, ...


SPI_BUSES = {
    0: SpiBus(0, miso=9, mosi=10, sclk=11, chip_selects=(8, 7)),
    1: SpiBus(1, miso=19, mosi=20, sclk=21, chip_selects=(18, 17, 16)),
}


def spi_pins(bus: int, device: int) -> dict[int, str]:
    """The GPIOs a device on SPI ``bus``, chip select ``device`` uses, with their roles.

    ``spi_pins(0, 1)`` is ``{9: "SPI0 MISO", 10: "SPI0 MOSI", 11: "SPI0 SCLK",
    7: "SPI0 CE1"}``. KeyError or IndexError for a bus or chip select the Pi lacks.
    """
    b = SPI_BUSES[bus]
    return {
        b.miso: f"SPI{bus} MISO",
        b.mosi: f"SPI{bus} MOSI",
        b.sclk: f"SPI{bus} SCLK",
        b.chip_selects[device]: f"SPI{bus} CE{device}",
    }


def is_shared_bus_line(role: str) -> bool:
    """Clock and data lines are shared by every device on a bus; a chip select is not."""
    return role.endswith(("MISO", "MOSI", "SCLK"))


def pulled_up_at_boot(pin: int) -> bool:
    return pin in BOOT_PULL_UP


def boot_energises(pin: int, *, active_high: bool) -> bool:
    """Whether the Pi's boot-time pull on ``pin`` is the relay's ON level.

    Between power-on and the moment the node configures the pin (tens of seconds of boot)
    the relay input sees only that pull: with an active-high board on a pulled-up pin,
    or an active-low board on a pulled-down pin, the machine can switch on unattended.
    Pins off the header are not judged.
    """
    if pin not in HEADER_GPIOS:
        return False
    return pulled_up_at_boot(pin) == active_high


#: Pulled up at boot and used by no common bus or the ID EEPROM: where an active-low
#: relay board belongs (GPIO 4, 5 and 6).
ACTIVE_LOW_PINS = tuple(
    sorted(BOOT_PULL_UP - ID_EEPROM - FIXED_PULL_UP - set(spi_pins(0, 0)) - set(spi_pins(0, 1)))
)
#: Pulled down at boot: where an active-high relay board belongs.
ACTIVE_HIGH_PINS = tuple(sorted(HEADER_GPIOS - BOOT_PULL_UP))


def gpio_text(pins: Iterable[int]) -> str:
    """``(4, 5, 6)`` -> ``"GPIO 4, 5 or 6"``; a run of more than three as ``"GPIO 9-27"``."""
    ordered = sorted(pins)
    if len(ordered) > 3 and ordered == list(range(ordered[0], ordered[-1] + 1)):
        return f"GPIO {ordered[0]}-{ordered[-1]}"
    head, last = ordered[:-1], ordered[-1]
    return f"GPIO {', '.join(map(str, head))} or {last}" if head else f"GPIO {last}"


@dataclass(frozen=True)
class Claim:
    """A pin a configured device uses: what uses it, as what, and which key put it there."""

    pin: int
    device: str  # "the RC522 reader"
    role: str  # "SPI0 CE0", "RST"
    key: str  # the config key(s) that put it there: "controller.spi_device"

    def text(self) -> str:
        """``GPIO 7 is SPI0 CE1 of the MCP3008 current sensor, set by controller.spi_device``"""
        return f"GPIO {self.pin} is {self.role} of {self.device}, set by {self.key}"


def spi_claims(device: str, key: str, bus: int, chip_select: int) -> list[Claim]:
    return [Claim(pin, device, role, key) for pin, role in spi_pins(bus, chip_select).items()]


def conflict(claims: Iterable[Claim], new: Claim) -> Claim | None:
    """The claim ``new`` cannot share its pin with, if any (two devices on one bus share
    its clock and data lines, never a chip select or another device's pin)."""
    for old in claims:
        if old.pin == new.pin and not (is_shared_bus_line(old.role) and old.role == new.role):
            return old
    return None
