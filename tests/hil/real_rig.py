"""The real rig: a Pi with the relay board, an RC522 and a sense board, and a person.

The suite's node drives the real relay pin, SPI bus and serial port (the rig file says
which). This process only watches the relay's dry contact on ``relay.sense_pin`` (NO
contact to the pin, COM to GND, internal pull-up: closed reads low), through gpiozero's
edge callbacks, so a check sees the contact itself and when it moved. Every step a person
must do is printed on the terminal (not captured by pytest) and the check waits for its
effect for at most ``limits.prompt_timeout``.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any, TextIO

from gateway.config.rig import RigBadge, RigConfig
from tests.hil.rig import Rig


def _terminal() -> TextIO:
    """The technician's terminal, past pytest's capture; stderr when there is none."""
    try:
        return open("/dev/tty", "w")  # noqa: SIM115 - kept for the run, closed in close()
    except OSError:
        return sys.__stderr__ or sys.stderr


class RealRig(Rig):
    kind = "real"

    def __init__(self, cfg: RigConfig) -> None:
        super().__init__(cfg)
        if cfg.sense_pin is None:
            raise ValueError(
                f"{cfg.file}: relay.sense_pin is required on a real rig: wire the relay's NO "
                "contact to a GPIO and COM to GND, so the suite sees the contact itself"
            )
        self.step_timeout = cfg.prompt_timeout
        self._lock = threading.Lock()
        self._changes: list[tuple[float, bool]] = []
        self._sense: Any = None
        self._tty: TextIO | None = None

    def start(self, workdir: Path) -> None:
        from gpiozero import DigitalInputDevice

        self._tty = _terminal()
        sense = DigitalInputDevice(self.cfg.sense_pin, pull_up=True, bounce_time=None)
        sense.when_activated = lambda: self._edge(True)
        sense.when_deactivated = lambda: self._edge(False)
        self._sense = sense
        with self._lock:
            self._changes.append((time.monotonic(), bool(sense.is_active)))
        if not Path(self.cfg.sense_port).exists():
            self.say(f"plug the sense board in ({self.cfg.sense_port} is missing)")

    def _edge(self, closed: bool) -> None:
        now = time.monotonic()
        with self._lock:
            if not self._changes or self._changes[-1][1] != closed:
                self._changes.append((now, closed))

    def close(self) -> None:
        if self._sense is not None:
            self._sense.close()
            self._sense = None
        if self._tty not in (None, sys.__stderr__, sys.stderr):
            assert self._tty is not None
            self._tty.close()

    def node_sections(self) -> dict[str, Any]:
        c = self.cfg
        return {
            "relay": {"driver": "gpio", "pin": c.relay_pin, "active_high": c.active_high},
            "reader": {
                "driver": "rc522",
                "spi_bus": c.spi_bus,
                "spi_device": c.spi_device,
                "rst_pin": c.rst_pin,
                "hold_off": f"{c.hold_off}s",
            },
            "controller": {
                "driver": "current",
                "source": "serial",
                "port": c.sense_port,
                "channel": c.sense_channel,
                "threshold_on": c.threshold_on,
                "threshold_off": c.threshold_off,
                "on_after": "1s",
                "off_after": "1s",
            },
        }

    def node_env(self) -> dict[str, str]:
        return {}

    def relay_closed(self) -> bool:
        assert self._sense is not None
        return bool(self._sense.is_active)

    def relay_changes(self) -> list[tuple[float, bool]]:
        with self._lock:
            return list(self._changes)

    def say(self, text: str) -> None:
        assert self._tty is not None
        print(f"\n>>> {text}", file=self._tty, flush=True)

    def _ask(self, text: str) -> None:
        self.say(f"{text}  (within {self.step_timeout:.0f} s)")

    def tap(self, badge: RigBadge) -> float | None:
        self._ask(f"Tap the {badge.kind} badge «{badge.label}» ({badge.uid}) on the reader")
        return None  # when the hand reached the reader, only the node knows

    def make_busy(self) -> None:
        self._ask("Switch the load through the current clamp ON")

    def make_idle(self) -> None:
        self._ask("Switch the load through the current clamp OFF")

    def pull_serial(self) -> None:
        self._ask(f"Pull the sense board's USB cable ({self.cfg.sense_port})")

    def plug_serial(self) -> None:
        self._ask("Plug the sense board's USB cable back in")

    def versions(self) -> dict[str, str]:
        model = "?"
        with contextlib.suppress(OSError):
            model = Path("/proc/device-tree/model").read_text().strip("\0\n")
        return {
            "rig": f"real ({model})",
            "python": sys.version.split()[0],
            "kernel": os.uname().release,
        }
