"""The simulated Pi *inside* the node process: mirrored mock pins and an RC522 on SPI.

On the simulated rig the suite runs the real ``fabgate node`` as a subprocess; this is the
hardware that process sees, and the only thing the simulated rig adds to it:

- GPIO: gpiozero's own ``MockFactory`` (``GPIOZERO_PIN_FACTORY=mock``) with a pin class
  that also appends every change of function and level to ``GPIO<n>.jsonl`` in
  ``$FABGATE_SIM_PINS``. gpiozero picks the class by name from the
  ``gpiozero_mock_pin_classes`` entry point group (``GPIOZERO_MOCK_PIN_CLASS``), so no
  line of the node changes: the suite writes a tiny ``.dist-info`` declaring the entry
  point into a folder it puts on the node's ``PYTHONPATH``. The test process reads the
  files: it sees the level the node *drives* on the relay pin, written by the pin
  itself, not what the node says in its status.
- RC522: the register-level simulator of ``tests/fakes/rc522_sim.py`` behind fake
  ``spidev`` and ``RPi.GPIO`` modules (in the same folder), so the real ``mfrc522``
  package and our ``RC522Reader`` run unchanged. The card in the field is whatever UID
  ``$FABGATE_SIM_RC522`` (a file) holds, read at each REQA; each anticollision answer
  is appended to ``<file>.reads`` so the rig knows the card was read.

Nothing here is imported by the product; a real rig needs none of it.
"""

from __future__ import annotations

import json
import os
import sys
import time
import types
from pathlib import Path
from typing import Any

from gpiozero.pins.mock import MockPin

from tests.fakes.rc522_sim import REQA, SEL_CL1, WUPA, Card, FakeGPIO, FakeSpiDev, RC522Sim

PINS_ENV = "FABGATE_SIM_PINS"
RC522_ENV = "FABGATE_SIM_RC522"
SPI_ENV = "FABGATE_SIM_SPI"  # "bus.device rst_pin"
PIN_CLASS_NAME = "fabgate_mirror"


class MirrorPin(MockPin):  # type: ignore[misc]
    """A gpiozero mock pin that writes each change of function or level to a file."""

    def __init__(self, factory: Any, info: Any) -> None:
        super().__init__(factory, info)
        self._mirror = Path(os.environ[PINS_ENV]) / f"{info.name}.jsonl"  # GPIO17.jsonl
        self._write()

    def _write(self) -> None:
        line = json.dumps(
            {
                "t": time.monotonic(),  # CLOCK_MONOTONIC: comparable across processes
                "pid": os.getpid(),
                "function": self._function,
                "state": bool(self._state),
            }
        )
        # One O_APPEND write per line: lines from two processes never interleave.
        fd = os.open(self._mirror, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, (line + "\n").encode())
        finally:
            os.close(fd)

    def _change_state(self, value: bool) -> bool:
        changed = bool(super()._change_state(value))
        if changed:
            self._write()
        return changed

    def _set_function(self, value: str) -> None:
        before = self._function
        super()._set_function(value)
        if self._function != before:
            self._write()


class FieldRC522Sim(RC522Sim):
    """The RC522 simulator, its field fed from a file the rig writes."""

    def __init__(self, field_file: Path, *, rst_pin: int) -> None:
        super().__init__(rst_pin=rst_pin)
        self.field_file = field_file
        self.reads = field_file.with_name(field_file.name + ".reads")

    def _transceive(self, tx_last_bits: int) -> None:
        frame = bytes(self.fifo)
        if tx_last_bits == 7 and frame in (bytes([REQA]), bytes([WUPA])):
            self._refresh_card()
        answered_anticoll = (
            self.card is not None and self.card.state == "READY" and frame == bytes([SEL_CL1, 0x20])
        )
        super()._transceive(tx_last_bits)
        if answered_anticoll and self.card is not None:
            with self.reads.open("a") as fh:
                fh.write(f"{time.monotonic()} {self.card.uid.hex().upper()}\n")

    def _refresh_card(self) -> None:
        try:
            text = self.field_file.read_text().strip()
        except FileNotFoundError:
            text = ""
        if not text:
            self.card = None
        elif self.card is None or self.card.uid.hex().upper() != text:
            self.card = Card(bytes.fromhex(text))


def install_fake_pi() -> tuple[types.ModuleType, types.ModuleType]:
    """The fake ``RPi.GPIO`` and ``spidev`` modules for this process (called by the shims)."""
    bus_dev, rst = os.environ[SPI_ENV].split()
    bus, device = (int(x) for x in bus_dev.split("."))
    sim = FieldRC522Sim(Path(os.environ[RC522_ENV]), rst_pin=int(rst))
    gpio = FakeGPIO([sim])
    spidev = types.ModuleType("spidev")
    spidev.SpiDev = type("SpiDev", (FakeSpiDev,), {"buses": {(bus, device): sim}})  # type: ignore[attr-defined]
    return gpio, spidev


def _module(name: str) -> types.ModuleType:
    """The fake module ``name`` ("RPi.GPIO" or "spidev"), both made once per process."""
    cached = sys.modules.get("tests.hil.simpi._fakes")
    if cached is None:
        cached = types.ModuleType("tests.hil.simpi._fakes")
        cached.pair = install_fake_pi()  # type: ignore[attr-defined]
        sys.modules[cached.__name__] = cached
    gpio, spidev = cached.pair  # type: ignore[attr-defined]
    return gpio if name == "RPi.GPIO" else spidev


_SHIM = (
    "import sys\nfrom tests.hil.simpi import _module\nsys.modules[__name__] = _module({name!r})\n"
)


def write_sim_site(where: Path) -> Path:
    """Write the folder the node gets on ``PYTHONPATH``: the shims and the entry point."""
    where.mkdir(parents=True, exist_ok=True)
    (where / "RPi").mkdir(exist_ok=True)
    (where / "RPi" / "__init__.py").write_text("")
    (where / "RPi" / "GPIO.py").write_text(_SHIM.format(name="RPi.GPIO"))
    (where / "spidev.py").write_text(_SHIM.format(name="spidev"))
    info = where / "fabgate_hil_sim-0.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fabgate-hil-sim\nVersion: 0\n")
    (info / "entry_points.txt").write_text(
        f"[gpiozero_mock_pin_classes]\n{PIN_CLASS_NAME} = tests.hil.simpi:MirrorPin\n"
    )
    return where
