"""The simulated rig: the wiring of a rig file, played in CI without a Pi.

- Relay: the node drives gpiozero mock pins whose every change is mirrored to a file
  (``tests/hil/simpi.py``); :meth:`relay_closed` reads the level the node's process
  last drove on the relay pin. A pin a killed process left driven keeps its level here
  (the worst case: on some GPIO drivers a dead process's line stays an output); only the
  real rig shows what the relay board's pull resistor does.
- Reader: the real ``mfrc522`` and ``RC522Reader`` in the node, against the register-level
  RC522 simulator; :meth:`tap` puts the card in the field, waits until the reader has read
  it (anticollision answered), and takes it away, as a hand would.
- Sense board: :class:`SenseBoardSimulator` on a pty in this process, behind a symlink
  that stays at the rig file's port path for the node; pulling the cable closes the pty
  (the node's next read fails as a hung-up device), plugging it back starts a new
  simulator and points the link at it, as udev would with a by-id path.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from gateway.config.rig import RigBadge, RigConfig
from gateway.drivers.simulators.current import SenseBoardSimulator
from tests.hil.rig import Rig, wait_until
from tests.hil.simpi import PIN_CLASS_NAME, PINS_ENV, RC522_ENV, SPI_ENV, write_sim_site

REPO = Path(__file__).resolve().parents[2]
BUSY_AMPS = 3.0  # well above any threshold_on a rig file allows for a bench load


class SimulatedRig(Rig):
    kind = "simulated"
    step_timeout = 10.0

    def __init__(self, cfg: RigConfig) -> None:
        super().__init__(cfg)
        self.board: SenseBoardSimulator | None = None
        self.dir = Path()
        self.link: Path | None = None
        self._last_read: dict[str, float] = {}

    def start(self, workdir: Path) -> None:
        self.dir = workdir
        self.site = write_sim_site(workdir / "simpi")
        self.pins = workdir / "pins"
        self.pins.mkdir()
        self.field = workdir / "rc522-field"
        self.field.write_text("")
        self.reads = self.field.with_name(self.field.name + ".reads")
        self.link = workdir / "ttySense"
        self.plug_serial()

    def close(self) -> None:
        self.pull_serial()

    def node_sections(self) -> dict[str, Any]:
        c = self.cfg
        return {
            "relay": {"driver": "gpio", "pin": c.relay_pin, "active_high": c.active_high},
            "reader": {
                "driver": "rc522",
                "spi_bus": c.spi_bus,
                "spi_device": c.spi_device,
                "rst_pin": c.rst_pin,
                "poll_hz": 20,
                "hold_off": f"{c.hold_off}s",
            },
            "controller": {
                "driver": "current",
                "source": "serial",
                "port": str(self.link),
                "channel": c.sense_channel,
                "threshold_on": c.threshold_on,
                "threshold_off": c.threshold_off,
                "on_after": "0.2s",
                "off_after": "0.2s",
                "poll_interval": "0.1s",
            },
        }

    def node_env(self) -> dict[str, str]:
        c = self.cfg
        path = [str(self.site), str(REPO), os.environ.get("PYTHONPATH", "")]
        return {
            "PYTHONPATH": os.pathsep.join(p for p in path if p),
            "GPIOZERO_PIN_FACTORY": "mock",
            "GPIOZERO_MOCK_PIN_CLASS": PIN_CLASS_NAME,
            PINS_ENV: str(self.pins),
            RC522_ENV: str(self.field),
            SPI_ENV: f"{c.spi_bus}.{c.spi_device} {c.rst_pin}",
        }

    # -- relay ------------------------------------------------------------------------

    def _pin_lines(self) -> list[dict[str, Any]]:
        path = self.pins / f"GPIO{self.cfg.relay_pin}.jsonl"
        try:
            text = path.read_text()
        except FileNotFoundError:
            return []
        # A line being appended right now may be incomplete: keep whole lines only.
        return [json.loads(line) for line in text.splitlines(keepends=True) if line.endswith("\n")]

    def _closed(self, line: dict[str, Any]) -> bool:
        return line["function"] == "output" and line["state"] == self.cfg.active_high

    def relay_closed(self) -> bool:
        lines = self._pin_lines()
        return bool(lines) and self._closed(lines[-1])

    def relay_changes(self) -> list[tuple[float, bool]]:
        changes: list[tuple[float, bool]] = []
        for line in self._pin_lines():
            closed = self._closed(line)
            if not changes or changes[-1][1] != closed:
                changes.append((line["t"], closed))
        return changes

    def pin_history(self) -> list[dict[str, Any]]:
        """Every function and level change on the relay pin, with the pid that made it."""
        return self._pin_lines()

    # -- reader -----------------------------------------------------------------------

    def _reads_of(self, uid: str) -> list[float]:
        try:
            lines = self.reads.read_text().splitlines()
        except FileNotFoundError:
            return []
        return [float(t) for t, u in (line.split() for line in lines) if u == uid]

    def tap(self, badge: RigBadge) -> float:
        # A hand lifts a card for a while before tapping it again: the node counts the
        # same card again only after it has been away for the reader's hold-off.
        last = self._last_read.get(badge.uid)
        if last is not None:
            wait_until(
                lambda: time.monotonic() - last > self.cfg.hold_off + 0.05,
                self.cfg.hold_off + 1,
                "the card's hold-off",
            )
        before = len(self._reads_of(badge.uid))
        presented = time.monotonic()
        self.field.write_text(badge.uid)
        try:
            reads = wait_until(
                lambda: self._reads_of(badge.uid)[before:],
                self.step_timeout,
                f"the reader to read {badge.uid}",
            )
        finally:
            self.field.write_text("")
        self._last_read[badge.uid] = reads[-1]
        return presented

    # -- sense board --------------------------------------------------------------------

    def make_busy(self) -> None:
        assert self.board is not None, "the sense board is unplugged"
        self.board.set_amps(BUSY_AMPS, self.cfg.sense_channel)

    def make_idle(self) -> None:
        assert self.board is not None, "the sense board is unplugged"
        self.board.set_amps(0.0, self.cfg.sense_channel)

    def pull_serial(self) -> None:
        board, self.board = self.board, None
        if board is not None:
            board.unplug()
        if self.link is not None:
            self.link.unlink(missing_ok=True)

    def plug_serial(self) -> None:
        if self.board is not None:
            return
        currents = self.cfg.sense_channel + 1
        from gateway.drivers.simulators.current import SimulatedCurrent

        self.board = SenseBoardSimulator([SimulatedCurrent() for _ in range(currents)])
        assert self.link is not None
        tmp = self.link.with_name(self.link.name + ".new")
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(self.board.port)
        os.replace(tmp, self.link)  # the node never sees the path missing while plugged

    def versions(self) -> dict[str, str]:
        board = self.board.version if self.board is not None else "?"
        return {
            "rig": "simulated (mock pins, RC522 simulator, sense-board simulator)",
            "python": sys.version.split()[0],
            "sense_board_simulator": board,
        }
