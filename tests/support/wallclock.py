"""Start a subprocess whose wall clock reads a chosen instant, through ``tests/clockshift``.

``tests/clockshift/sitecustomize.py`` moves a Python process's wall clock by
``FABGATE_CLOCK_SHIFT_DAYS`` from the machine's real clock at start-up (any float,
negative and fractional included). A test that needs the hub and its nodes to live on a
known day - the 14th of a month, then the 3rd of the next one, so that a month the test
filled can be closed - computes that shift here from the *real* clock, so the result is
the same whether or not the test process itself runs in the clock-shift run (whose
shift it inherits and takes back out).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

__all__ = ["CLOCKSHIFT_DIR", "SHIFT_ENV", "clock_at", "real_now"]

CLOCKSHIFT_DIR = Path(__file__).resolve().parent.parent / "clockshift"
SHIFT_ENV = "FABGATE_CLOCK_SHIFT_DAYS"
DAY_S = 86400.0


def real_now() -> datetime:
    """The machine's real time (UTC), even when this process's own clock is shifted."""
    inherited = float(os.environ.get(SHIFT_ENV, "").strip() or 0)
    return datetime.now(UTC) - timedelta(days=inherited)


def clock_at(target: datetime) -> dict[str, str]:
    """The environment for a ``python`` subprocess whose wall clock reads ``target`` now
    and runs on from there at the real rate (monotonic time is untouched).

    Processes started with the same environment share one shift, so a hub and a node
    started a second apart agree to the microsecond, as two real machines with NTP do.
    """
    if target.tzinfo is None:
        raise ValueError("clock_at: target must be an aware datetime")
    shift_days = (target - real_now()).total_seconds() / DAY_S
    path = [str(CLOCKSHIFT_DIR), *filter(None, [os.environ.get("PYTHONPATH", "")])]
    return {SHIFT_ENV: repr(shift_days), "PYTHONPATH": os.pathsep.join(path)}
