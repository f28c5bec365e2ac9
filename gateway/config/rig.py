"""The commissioning rig file: how one node's hardware is wired, and the test badges.

``fabgate commission --rig rig.yaml`` and the hardware-in-the-loop suite
(``FABGATE_RIG=rig.yaml pytest tests/hil``) read it; without ``FABGATE_RIG`` the suite
simulates the wiring of ``config/rig.example.yaml``. It lives in the package, not in the
suite, so that ``fabgate commission`` can refuse a wrong file with the usual error (file,
line, key, what was expected) before it starts anything.

Each badge says what it must get: ``valid`` (a member certified for the machine: power),
``unknown`` (in no snapshot), ``expired`` (certification lapsed) or ``supervised`` (level
1: only with staff present, and the suite has none). The suite writes its own hub seed
from these, so any cards at hand will do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from gateway.config import pins
from gateway.config.loader import Doc, Section, unique
from gateway.core.ids import normalise_uid

__all__ = ["BADGE_KINDS", "RigBadge", "RigConfig", "RigService", "load_rig_config"]

BADGE_KINDS = ("valid", "unknown", "expired", "supervised")
_TOP = ("rig", "node", "relay", "reader", "sense_board", "badges", "limits", "service")
_RELAY = ("pin", "active_high", "sense_pin")
_READER = ("spi_bus", "spi_device", "rst_pin", "hold_off")
_SENSE = ("port", "channel", "threshold_on", "threshold_off")
_BADGE = ("uid", "kind", "label")
_LIMITS = ("tap_to_relay", "prompt_timeout")
_SERVICE = ("watchdog", "stop_timeout", "restart")
_RIG_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class RigBadge:
    uid: str  # normalised
    kind: str  # one of BADGE_KINDS
    label: str  # what the technician reads on the card ("blue fob"), for prompts


@dataclass(frozen=True)
class RigService:
    """The systemd unit's watchdog timings for the suite's run; None: the unit's own."""

    watchdog: float | None = None
    stop_timeout: float | None = None
    restart: float | None = None


@dataclass(frozen=True)
class RigConfig:
    file: Path | None
    rig: str  # the bench's name, printed in the report
    node: str  # node and machine id the suite runs
    relay_pin: int
    active_high: bool
    sense_pin: int | None  # GPIO wired to the relay's NO contact (COM to GND)
    spi_bus: int
    spi_device: int
    rst_pin: int
    hold_off: float
    sense_port: str
    sense_channel: int
    threshold_on: float
    threshold_off: float
    badges: tuple[RigBadge, ...]
    tap_to_relay: float  # seconds: the longest a tap may take to close the relay
    prompt_timeout: float  # seconds a person gets for each step
    service: RigService = field(default_factory=RigService)

    def badge(self, kind: str) -> RigBadge:
        """The first badge of ``kind`` (the loader guarantees one of each)."""
        return next(b for b in self.badges if b.kind == kind)


def load_rig_config(path: str | Path) -> RigConfig:
    """Read and check a rig file; ``ConfigError`` naming file, line and key on a mistake."""
    doc = Doc(path)
    top = doc.root(_TOP, required=("rig", "node", "relay", "sense_board", "badges"))
    name = top.text("rig", pattern=_RIG_NAME, what="a bench name (letters, digits, . _ -)")
    relay = top.section("relay", _RELAY, required=("pin",))
    reader = top.section("reader", _READER)
    sense = top.section("sense_board", _SENSE, required=("port",))
    limits = top.section("limits", _LIMITS)
    service = top.section("service", _SERVICE)
    relay_pin = relay.integer("pin", None, 2, 27)
    active_high = relay.flag("active_high", True)
    sense_pin = relay.raw("sense_pin", None)
    if sense_pin is not None:
        sense_pin = relay.integer("sense_pin", None, 2, 27)
        if sense_pin == relay_pin:
            relay.fail("sense_pin", f"another GPIO than the relay's ({relay_pin})", sense_pin)
    spi_bus = reader.integer("spi_bus", 0, 0, max(pins.SPI_BUSES))
    spi_device = reader.integer("spi_device", 0, 0, len(pins.SPI_BUSES[spi_bus].chip_selects) - 1)
    on = sense.number("threshold_on", 0.5, 0, 1000)
    off = sense.number("threshold_off", min(0.3, on), 0, 1000)
    if off > on:
        sense.fail("threshold_off", f"at most threshold_on ({on:g} A)", off)
    return RigConfig(
        file=doc.file,
        rig=name,
        node=top.id("node"),
        relay_pin=relay_pin,
        active_high=active_high,
        sense_pin=sense_pin,
        spi_bus=spi_bus,
        spi_device=spi_device,
        rst_pin=reader.integer("rst_pin", 25, 2, 27),
        hold_off=reader.duration("hold_off", "1s").total_seconds(),
        sense_port=sense.text("port", what="a serial port such as /dev/ttyUSB0"),
        sense_channel=sense.integer("channel", 0, 0, 7),
        threshold_on=on,
        threshold_off=off,
        badges=_badges(top),
        tap_to_relay=limits.duration("tap_to_relay", "1.5s").total_seconds(),
        prompt_timeout=limits.duration("prompt_timeout", "60s").total_seconds(),
        service=RigService(
            watchdog=_seconds(service, "watchdog"),
            stop_timeout=_seconds(service, "stop_timeout"),
            restart=_seconds(service, "restart"),
        ),
    )


def _seconds(sec: Section, key: str) -> float | None:
    if sec.raw(key, None) is None:
        return None
    return sec.duration(key, "1s").total_seconds()


def _badges(top: Section) -> tuple[RigBadge, ...]:
    badges: list[RigBadge] = []
    seen: dict[str, str] = {}
    for sec in top.sections("badges", _BADGE, required=("uid", "kind")):
        raw = sec.raw("uid")
        try:
            uid = normalise_uid(str(raw))
        except ValueError:
            sec.fail("uid", 'a card UID in quoted hex, e.g. "04A1CE01"', raw)
        unique(sec, "uid", uid, seen, "badge UID")
        kind = sec.choice("kind", BADGE_KINDS)
        label = sec.text("label", f"{kind} badge {uid}")
        badges.append(RigBadge(uid=uid, kind=kind, label=label))
    missing = [k for k in BADGE_KINDS if not any(b.kind == k for b in badges)]
    if missing:
        top.fail("badges", "one badge of each kind: " + ", ".join(BADGE_KINDS), "no " + missing[0])
    return tuple(badges)
