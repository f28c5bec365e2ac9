"""Building the machine controller a node config asks for, real or simulated.

``controller.simulate: true`` starts our simulator of that controller inside the node
process and points the *real* driver at it (over a pty for serial controllers), so the
demo and a bench without a machine exercise the same code as a workshop. The returned
:class:`SimulatedMachine` is the handle the demo uses to make the machine work.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from typing import Any

from gateway.config import ControllerConfig
from gateway.drivers.machine import MachineController

log = logging.getLogger(__name__)


class SimulatedMachine(ABC):
    """A simulated machine the demo (or a bench test) can make busy."""

    @abstractmethod
    def start_job(self, name: str, seconds: float) -> None: ...

    @abstractmethod
    def close(self) -> None: ...


class _GrblMachine(SimulatedMachine):
    def __init__(self) -> None:
        from gateway.drivers.grbl_sim import GrblSimulator

        self.sim = GrblSimulator().start()

    def start_job(self, name: str, seconds: float) -> None:
        # GRBL has no job names: a sender streams lines, about 10 a second here.
        self.sim.run_job(max(5, int(seconds * 10)), seconds)

    def close(self) -> None:
        self.sim.close()


class _MarlinMachine(SimulatedMachine):
    def __init__(self) -> None:
        from gateway.drivers.marlin_sim import MarlinSimulator

        self.sim = MarlinSimulator()

    def start_job(self, name: str, seconds: float) -> None:
        self.sim.start_sd_print(name, seconds)

    def close(self) -> None:
        self.sim.close()


class _CurrentMachine(SimulatedMachine):
    """A machine drawing current: over a simulated sense board, or read directly."""

    def __init__(self, cfg: ControllerConfig) -> None:
        from gateway.drivers.current_sim import SenseBoardSimulator, SimulatedCurrent

        self.current = SimulatedCurrent(0.05)
        self.job_amps = max(cfg.threshold_on * 4, 1.0)
        self.board = (SenseBoardSimulator([self.current]) if cfg.source == "serial" else None)

    def start_job(self, name: str, seconds: float) -> None:
        self.current.run_job(self.job_amps, seconds)

    def close(self) -> None:
        if self.board is not None:
            self.board.close()


def make_controller(cfg: ControllerConfig) -> tuple[MachineController | None,
                                                    SimulatedMachine | None]:
    """The driver for ``cfg`` (None for ``driver: none``) and its simulator if asked."""
    if cfg.driver == "none":
        return None, None
    poll: dict[str, Any] = {}
    if cfg.poll_interval is not None:
        poll["poll_interval"] = cfg.poll_interval
    if cfg.driver == "grbl":
        from gateway.drivers.grbl import GrblController

        sim = _GrblMachine() if cfg.simulate else None
        port = sim.sim.port if sim else cfg.port
        assert port is not None
        return GrblController(port, baudrate=cfg.baudrate, **poll), sim
    if cfg.driver == "marlin":
        from gateway.drivers.marlin import MarlinController

        msim = _MarlinMachine() if cfg.simulate else None
        port = msim.sim.port if msim else cfg.port
        assert port is not None
        return MarlinController(port, baudrate=cfg.baudrate, **poll), msim
    if cfg.driver == "octoprint":
        if cfg.simulate:
            raise ValueError("controller.simulate is not available for OctoPrint: run "
                             "OctoPrint with its virtual printer instead")
        from gateway.drivers.octoprint import OctoPrintController

        assert cfg.url and cfg.api_key
        return OctoPrintController(cfg.url, cfg.api_key, **poll), None
    if cfg.driver == "current":
        from gateway.drivers.current import CurrentController, Mcp3008Sensor, SerialSenseBoard
        from gateway.policies.current import BusyDetector

        detector = BusyDetector(cfg.threshold_on, cfg.threshold_off, cfg.on_after,
                                cfg.off_after)
        csim = _CurrentMachine(cfg) if cfg.simulate else None
        sensor: Any
        if cfg.source == "serial":
            port = csim.board.port if csim and csim.board else cfg.port
            assert port is not None
            sensor = SerialSenseBoard(port, channel=cfg.channel, baudrate=cfg.baudrate)
        elif csim is not None:
            sensor = csim.current
        else:
            sensor = Mcp3008Sensor(cfg.channel, scale=cfg.scale, device=cfg.spi_device)
        interval = {"sample_interval": cfg.poll_interval} if cfg.poll_interval else {}
        return CurrentController(sensor, detector, **interval), csim
    raise ValueError(f"unknown controller driver {cfg.driver!r}")
