"""What a machine is doing, in the words every controller driver and policy share.

A node needs the same facts from a GRBL router, a Marlin printer, OctoPrint or a current
clamp: is the machine busy, is a job running (and how far), is the link alive. Drivers
produce :class:`MachineReport` observations; the pure policies (jobs, session rules, busy
detection) consume them. The types live here, apart from both, so that the policies
never import a driver and the drivers never import a policy's module to say "busy".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Activity(StrEnum):
    UNKNOWN = "unknown"  # link down, garbage, or no answer: we do not know
    IDLE = "idle"
    BUSY = "busy"  # a job is running (or the spindle/laser/needle is drawing current)
    PAUSED = "paused"  # a job exists but is held
    ALARM = "alarm"  # the controller refuses to run until someone clears it
    ERROR = "error"  # the controller reported a failure (e.g. Marlin halted)


@dataclass(frozen=True)
class MachineReport:
    """One observation of the machine. ``job_*`` fields are None when not known."""

    activity: Activity
    job_name: str | None = None
    progress: float | None = None  # percent, 0..100
    time_left_s: float | None = None
    # Filament the current job has extruded so far (or the job that just ended, on the
    # report that ends it), in mm; None where the controller does not say.
    filament_mm: float | None = None
    # G-code lines of the job the controller has acknowledged, when the node relays the
    # sender (GRBL): progress without a percentage when the job's length is unknown.
    lines_done: int | None = None
    detail: str = ""  # human-readable: "ALARM:2", "T:205.1/210", "link lost"
    data: dict[str, object] = field(default_factory=dict)  # driver extras (temps, feed…)


# Keys of ``MachineReport.data`` that the node reads (the rest is shown, not interpreted).
#: Seconds from the real start of a change to the sample that confirmed it: a
#: debounced driver (current sensing) sets it on the report of the change, so busy time
#: runs between the real edges rather than the debounced ones.
EDGE_AGE = "edge_age_s"
#: Permissive inputs (interlocks such as a laser's water flow) the driver heard from:
#: ``{input number: closed}``, True meaning OK. An input missing from it is unknown.
PERMISSIVES = "permissives"
