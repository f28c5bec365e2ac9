"""Permissives: interlocks a machine must have closed before, and while, it is powered.

A CO2 laser's tube cracks within minutes without cooling water and its fumes are toxic
without extraction, so a fablab wires the chiller's flow switch and the extractor's
auxiliary contact to the sense board's permissive inputs (``firmware/sense-board``). The
node then:

- **refuses to switch on** while any configured permissive is off *or unknown* (the
  board silent, an old board without inputs): the tap is denied with
  ``permissive_off:<name>``, which tells the member what to fix;
- **when one drops during a session** follows the rule of its machine class (or the
  node's own ``on_drop``): ``hold`` asks the controller to hold the job (a GRBL feed
  hold; a current-followed laser has no link to ask, and only gets the delay) and
  switches off ``hold_s`` later, once the motion has stopped where it can be resumed;
  ``off`` switches off at once. An idle machine is switched off at once either way. A
  permissive that comes back during the hold does not cancel it: the member restarts
  with a new tap once the cause is understood. There is no rule that keeps power on.

Pure code: the node passes the permissives it was configured with and the inputs the
board last reported; the session side of the rule is in ``session_rules.evaluate``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

__all__ = [
    "CLASS_DROP_RULES",
    "NAME_PATTERN",
    "PERMISSIVE_OFF",
    "DropRule",
    "Permissive",
    "blocking",
    "deny_reason",
    "resolve",
]

#: The end reason of a session switched off by a permissive, and the prefix of the deny
#: reason of a tap refused by one (``permissive_off:water_flow``).
PERMISSIVE_OFF = "permissive_off"
#: A permissive's name: it goes on the wire inside a deny reason, so it is short, lower
#: case, and has no colon.
NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,31}")


class DropRule(StrEnum):
    HOLD = "hold"  # ask the controller to hold, then switch off after hold_s
    OFF = "off"  # switch off at once


# Per machine class: what a dropped permissive does during a job, and the hold's length.
# A laser or a CNC is held so the tool stops on a point the member can resume from
# (a feed hold decelerates within a second or two); a printer's hold parks the head,
# which takes longer; an embroidery machine has no link to hold and a short delay
# only. "other" machines are not known well enough to be held: off.
CLASS_DROP_RULES: Mapping[str, tuple[DropRule, float]] = MappingProxyType(
    {
        "laser": (DropRule.HOLD, 5.0),
        "cnc": (DropRule.HOLD, 5.0),
        "printer": (DropRule.HOLD, 30.0),
        "embroidery": (DropRule.HOLD, 5.0),
        "other": (DropRule.OFF, 0.0),
    }
)


@dataclass(frozen=True)
class Permissive:
    """One configured permissive, its rule resolved for the machine's class."""

    name: str  # shown to members: water_flow, fume_extraction
    input: int  # the sense board's input number
    on_drop: DropRule
    hold_s: float


def resolve(
    kind: str, *, name: str, input: int, on_drop: str | None, hold_s: float | None
) -> Permissive:
    """The class's rule, with what the node's configuration says instead (None: default)."""
    rule, hold = CLASS_DROP_RULES.get(kind, CLASS_DROP_RULES["other"])
    if on_drop is not None:
        rule = DropRule(on_drop)
        if on_drop == DropRule.HOLD and hold <= 0 and hold_s is None:
            hold = CLASS_DROP_RULES["laser"][1]  # a hold asked for needs some time
    return Permissive(name, input, rule, max(0.0, hold if hold_s is None else hold_s))


def blocking(permissives: Sequence[Permissive], inputs: Mapping[int, bool]) -> Permissive | None:
    """The first permissive that is not known to be closed, or None if all are.

    Unknown is off: an input the board has not reported (silent, unplugged, a board
    without the input) proves nothing about the water flowing.
    """
    for permissive in permissives:
        if inputs.get(permissive.input) is not True:
            return permissive
    return None


def deny_reason(permissive: Permissive) -> str:
    """The tap reason of a refusal: ``permissive_off:<name>``."""
    return f"{PERMISSIVE_OFF}:{permissive.name}"
