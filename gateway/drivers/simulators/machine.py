"""A simulated machine behind a controller driver, as the demo and bench use it.

``controller.simulate: true`` starts one of these inside the node process and points the
*real* driver at it (see ``gateway.drivers.factory``); the handle lets the demo make the
machine work (the sim-job topic) without knowing which controller it simulates.
"""

from __future__ import annotations

from abc import ABC, abstractmethod


class SimulatedMachine(ABC):
    """A simulated machine the demo (or a bench test) can make busy."""

    @abstractmethod
    def start_job(self, name: str, seconds: float) -> None: ...

    @abstractmethod
    def close(self) -> None: ...


class GrblMachine(SimulatedMachine):
    def __init__(self) -> None:
        from gateway.drivers.simulators.grbl import GrblSimulator

        self.sim = GrblSimulator().start()

    @property
    def port(self) -> str:
        return self.sim.port

    def start_job(self, name: str, seconds: float) -> None:
        # GRBL has no job names: a sender streams lines, about 10 a second here.
        self.sim.run_job(max(5, int(seconds * 10)), seconds)

    def close(self) -> None:
        self.sim.close()


# A real print extrudes about 2 mm of 1.75 mm filament a second. The demo's prints last
# seconds for what takes an hour or more, so its printer extrudes at the same compressed
# pace: 100 mm a second, a 60 s demo print using 6 m (about 18 g of PLA, 90 cents at the
# demo's 50 € the kilogram), enough to show on an invoice.
PRINT_FILAMENT_MM_PER_S = 100.0


class MarlinMachine(SimulatedMachine):
    def __init__(self) -> None:
        from gateway.drivers.simulators.marlin import MarlinSimulator

        self.sim = MarlinSimulator()

    @property
    def port(self) -> str:
        return self.sim.port

    def start_job(self, name: str, seconds: float) -> None:
        self.sim.start_sd_print(name, seconds, filament_mm=seconds * PRINT_FILAMENT_MM_PER_S)

    def close(self) -> None:
        self.sim.close()


class CurrentMachine(SimulatedMachine):
    """A machine drawing current: over a simulated sense board, or read directly.

    ``job_amps`` is what it draws while a job runs; ``sense_board`` puts the clamp
    behind a simulated sense board on a pty (``source: serial``).
    """

    def __init__(self, job_amps: float, *, sense_board: bool) -> None:
        from gateway.drivers.simulators.current import SenseBoardSimulator, SimulatedCurrent

        self.current = SimulatedCurrent(0.05)
        self.job_amps = job_amps
        self.board = SenseBoardSimulator([self.current]) if sense_board else None

    def start_job(self, name: str, seconds: float) -> None:
        self.current.run_job(self.job_amps, seconds)

    def close(self) -> None:
        if self.board is not None:
            self.board.close()
