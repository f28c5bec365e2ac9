"""Building the reader, controller and relay a node config asks for, real or simulated.

This is the one place that chooses between hardware and simulation: the node agent is
handed a :class:`BadgeReader`, a :class:`MachineController` and a :class:`Relay` and
never asks which kind it got (it asks a reader for its ``injector`` capability instead).
``controller.simulate: true`` starts our simulator of that controller inside the node
process and points the *real* driver at it (over a pty for serial controllers), so the
demo and a bench without a machine exercise the same code as a workshop; the returned
:class:`SimulatedMachine` is the handle the demo uses to make the machine work.
"""

from __future__ import annotations

import logging
from typing import Any

from gateway.config import ControllerConfig, ReaderConfig, RelayConfig, SenderConfig
from gateway.drivers.machines.base import MachineController
from gateway.drivers.readers.base import BadgeReader
from gateway.drivers.relay import GpioRelay, Relay
from gateway.drivers.simulators.machine import (
    CurrentMachine,
    GrblMachine,
    MarlinMachine,
    SimulatedMachine,
)

log = logging.getLogger(__name__)


def make_reader(cfg: ReaderConfig) -> BadgeReader:
    """The reader ``cfg`` asks for: ``simulated`` (with its tap socket if set) or ``rc522``."""
    if cfg.driver == "simulated":
        from gateway.drivers.readers.simulated import SimulatedReader

        return SimulatedReader(socket=cfg.socket)
    if cfg.driver == "rc522":
        from gateway.drivers.readers.rc522 import RC522Reader

        return RC522Reader(bus=cfg.spi_bus, device=cfg.spi_device, rst_pin=cfg.rst_pin)
    raise ValueError(f"unknown reader driver {cfg.driver!r}; expected 'simulated' or 'rc522'")


def make_relay(cfg: RelayConfig, pin_factory: Any = None) -> Relay:
    """The relay ``cfg`` asks for (only ``driver: gpio`` exists; simulation is gpiozero's
    mock pin factory, chosen by ``GPIOZERO_PIN_FACTORY=mock`` or ``pin_factory``)."""
    if cfg.driver != "gpio":
        raise ValueError(f"unknown relay driver {cfg.driver!r}; expected 'gpio'")
    return GpioRelay(
        cfg.pin,
        active_high=cfg.active_high,
        pin_factory=pin_factory,
        allow_boot_pull=cfg.allow_boot_pull,
    )


def make_controller(
    cfg: ControllerConfig, sender: SenderConfig | None = None
) -> tuple[MachineController | None, SimulatedMachine | None]:
    """The driver for ``cfg`` (None for ``driver: none``) and its simulator if asked;
    ``sender``: the GRBL driver's link for a G-code sender (``sender:`` of a node file)."""
    if cfg.driver == "none":
        return None, None
    poll: dict[str, Any] = {}
    if cfg.poll_interval is not None:
        poll["poll_interval"] = cfg.poll_interval
    if cfg.driver == "grbl":
        from gateway.drivers.machines.grbl import GrblController

        grbl = GrblMachine() if cfg.simulate else None
        port = grbl.port if grbl else cfg.port
        assert port is not None
        link: dict[str, Any] = {}
        if sender is not None and sender.tcp_port is not None:
            link["sender_tcp"] = (sender.bind, sender.tcp_port)
        if sender is not None and sender.pty is not None:
            link["sender_pty"] = str(sender.pty)
        return GrblController(port, baudrate=cfg.baudrate, **poll, **link), grbl
    if cfg.driver == "marlin":
        from gateway.drivers.machines.marlin import MarlinController

        marlin = MarlinMachine() if cfg.simulate else None
        port = marlin.port if marlin else cfg.port
        assert port is not None
        return MarlinController(port, baudrate=cfg.baudrate, **poll), marlin
    if cfg.driver == "octoprint":
        if cfg.simulate:
            raise ValueError(
                "controller.simulate is not available for OctoPrint: run "
                "OctoPrint with its virtual printer instead"
            )
        from gateway.drivers.machines.octoprint import OctoPrintController

        assert cfg.url and cfg.api_key
        return OctoPrintController(cfg.url, cfg.api_key, **poll), None
    if cfg.driver == "current":
        return _current_controller(cfg)
    raise ValueError(f"unknown controller driver {cfg.driver!r}")


def _current_controller(cfg: ControllerConfig) -> tuple[MachineController, CurrentMachine | None]:
    from gateway.drivers.machines.current import (
        CurrentController,
        Mcp3008Sensor,
        SerialSenseBoard,
    )
    from gateway.policies.current import BusyDetector

    detector = BusyDetector(cfg.threshold_on, cfg.threshold_off, cfg.on_after, cfg.off_after)
    sim = (
        CurrentMachine(max(cfg.threshold_on * 4, 1.0), sense_board=cfg.source == "serial")
        if cfg.simulate
        else None
    )
    sensor: Any
    if cfg.source == "serial":
        port = sim.board.port if sim and sim.board else cfg.port
        assert port is not None
        sensor = SerialSenseBoard(port, channel=cfg.channel, baudrate=cfg.baudrate)
    elif sim is not None:
        sensor = sim.current
    else:
        sensor = Mcp3008Sensor(cfg.channel, scale=cfg.scale, device=cfg.spi_device)
    if cfg.poll_interval:
        return CurrentController(sensor, detector, sample_interval=cfg.poll_interval), sim
    return CurrentController(sensor, detector), sim
