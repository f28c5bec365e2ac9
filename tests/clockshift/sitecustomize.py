"""Move this process's wall clock forward when ``FABGATE_CLOCK_SHIFT_DAYS`` is set.

The test command puts this folder on ``PYTHONPATH`` for the clock-shift run
(``python3 scripts/bootstrap.py test --clock-shift 400``), so the pytest process and
every Python process it starts (hub, nodes, simulators, the demo) import it at start-up
and see the same shifted wall clock: that is how we prove no test depends on the day it
runs. Only the wall clock moves (``time.time``, ``datetime.now``, ``date.today``...);
``time.monotonic`` is left alone, so timed waits behave. libfaketime is not used for this
because it shifts the monotonic clock too, and Python's timed waits then hang.

The value is any number of days, fractional or negative (``-31.5``): a test that needs
its hub and nodes on a given day starts them with the shift that lands there, computed
from the real clock by ``tests/support/wallclock.py: clock_at`` (which takes back out the
shift its own process inherited), so processes started with one value agree on the time.
"""

from __future__ import annotations

import os


def _shift() -> None:
    days = os.environ.get("FABGATE_CLOCK_SHIFT_DAYS", "").strip()
    if not days:
        return
    from datetime import UTC, datetime, timedelta

    import time_machine

    target = datetime.now(UTC) + timedelta(days=float(days))
    # tick=True: the shifted clock keeps running at the real rate from the target.
    time_machine.travel(target, tick=True).start()


_shift()
