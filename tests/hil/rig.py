"""The rig a check runs on: what it can observe and what a person (or the simulation) does.

A check is written once against :class:`Rig`. :class:`~tests.hil.sim_rig.SimulatedRig`
performs the steps itself (mock pins, simulated RC522 and sense board); the real rig
(:class:`~tests.hil.real_rig.RealRig`) prints what the technician must do and the check
then waits for its effect, for at most ``step_timeout`` seconds. Either way the check
observes the relay *contact* (simulated: the level the node's process drives on the pin;
real: a loopback input wired to the relay's NO contact), never the node's own report.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from gateway.config.rig import RigBadge, RigConfig

T = TypeVar("T")

POLL_S = 0.01  # where a state has no event to wait on (a file, an HTTP page)


def wait_until(predicate: Callable[[], T], timeout: float, what: str) -> T:
    """Poll ``predicate`` until it returns something true, at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.1f} s waiting for {what}")
        time.sleep(POLL_S)


class Rig(ABC):
    """One bench: a node's relay, reader and sense board, and the test badges."""

    kind: str  # "simulated" or "real": printed in the report
    step_timeout: float  # how long a step (a tap, a cable) may take to show its effect

    def __init__(self, cfg: RigConfig) -> None:
        self.cfg = cfg

    # -- set-up ----------------------------------------------------------------------

    @abstractmethod
    def start(self, workdir: Path) -> None:
        """Get the hardware (or its simulation) ready; before the node starts."""

    @abstractmethod
    def close(self) -> None: ...

    @abstractmethod
    def node_sections(self) -> dict[str, Any]:
        """The node file's ``relay``, ``reader`` and ``controller`` sections for this rig."""

    @abstractmethod
    def node_env(self) -> dict[str, str]:
        """Environment the node process needs on this rig (the simulation's hooks)."""

    # -- what the checks observe -----------------------------------------------------

    @abstractmethod
    def relay_closed(self) -> bool:
        """Is the relay contact closed now (the machine powered)?"""

    @abstractmethod
    def relay_changes(self) -> list[tuple[float, bool]]:
        """Every observed contact change so far: (monotonic time, closed)."""

    def wait_relay(self, closed: bool, timeout: float, *, after: float = 0.0) -> float:
        """Wait for the contact to be ``closed`` (or open); the monotonic time it became so.

        ``after``: only a change at or after this time counts, or the state holding since.
        """

        def reached() -> float | None:
            if self.relay_closed() != closed:
                return None
            changes = [t for t, c in self.relay_changes() if c == closed]
            last = changes[-1] if changes else 0.0
            return max(last, after) or time.monotonic()

        state = "closed" if closed else "open"
        return wait_until(reached, timeout, f"the relay contact to be {state}")

    def closed_since(self, t: float) -> bool:
        """Did the contact close at any moment since ``t``?"""
        return any(closed and when >= t for when, closed in self.relay_changes())

    # -- what a person does (the simulation does it itself) ---------------------------

    @abstractmethod
    def tap(self, badge: RigBadge) -> float | None:
        """Present ``badge`` once; the monotonic time it reached the reader, None when
        only a person knows (the check then times from the node's own record of the tap)."""

    @abstractmethod
    def make_busy(self) -> None:
        """Draw current through the clamp above the busy threshold."""

    @abstractmethod
    def make_idle(self) -> None: ...

    @abstractmethod
    def pull_serial(self) -> None:
        """Unplug the sense board's USB cable."""

    @abstractmethod
    def plug_serial(self) -> None: ...

    def say(self, text: str) -> None:  # noqa: B027 - the simulation has no one to tell
        """A progress line (the real rig prints it on the terminal)."""

    def versions(self) -> dict[str, str]:
        """Hardware and firmware versions the rig knows of itself."""
        return {}
