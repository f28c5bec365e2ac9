"""The test command's clock-shift switch moves the wall clock, and only the wall clock.

``scripts/bootstrap.py test --clock-shift DAYS`` puts ``tests/clockshift`` on PYTHONPATH
with ``FABGATE_CLOCK_SHIFT_DAYS`` set; these tests check the mechanism itself in a child
process (always), and that the current run really is shifted when it says so.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.support.wallclock import clock_at

CLOCKSHIFT = Path(__file__).parent / "clockshift"
DAY = 86400.0

PROBE = """
import json, os, tempfile, time
from datetime import datetime, UTC, date
with tempfile.NamedTemporaryFile() as f:
    kernel_now = os.stat(f.name).st_mtime
print(json.dumps({"time": time.time(), "now": datetime.now(UTC).timestamp(),
                  "today": date.today().isoformat(), "kernel": kernel_now,
                  "mono": time.monotonic()}))
"""


def _kernel_now() -> float:
    """The real wall clock, as the kernel stamps a new file (time-machine cannot move it)."""
    with tempfile.NamedTemporaryFile() as f:
        return os.stat(f.name).st_mtime


def _probe(env: dict[str, str]) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return json.loads(out.stdout)


def test_a_child_process_sees_the_wall_clock_moved_and_monotonic_unchanged() -> None:
    env = dict(
        os.environ,
        FABGATE_CLOCK_SHIFT_DAYS="400",
        PYTHONPATH=os.pathsep.join([str(CLOCKSHIFT), os.environ.get("PYTHONPATH", "")]),
    )
    before = time.monotonic()
    got = _probe(env)
    after = time.monotonic()
    inherited = float(os.environ.get("FABGATE_CLOCK_SHIFT_DAYS") or 0)
    for key in ("time", "now"):
        shift_days = (got[key] - got["kernel"]) / DAY
        # The child shifts from the real clock, so a shifted parent changes nothing here.
        assert shift_days == pytest.approx(400, abs=0.01), (key, shift_days, inherited)
    # CLOCK_MONOTONIC is one clock for every process on the machine.
    assert before <= got["mono"] <= after


def test_a_subprocess_can_be_started_on_a_chosen_day_in_the_past_or_the_future() -> None:
    """``clock_at`` (negative and fractional shifts) puts a child on a given instant,
    from the real clock, whatever shift this process itself runs under."""
    real = datetime.fromtimestamp(_kernel_now(), UTC)
    for target in (datetime(2019, 3, 14, 9, 30, tzinfo=UTC), real + timedelta(days=31.25)):
        got = _probe(dict(os.environ, **clock_at(target)))
        assert got["now"] == pytest.approx(target.timestamp(), abs=60), (target, got)


def test_without_the_switch_a_child_process_has_the_real_clock() -> None:
    env = {k: v for k, v in os.environ.items() if k != "FABGATE_CLOCK_SHIFT_DAYS"}
    got = _probe(env)
    assert abs(got["now"] - got["kernel"]) < 60


@pytest.mark.skipif(
    not os.environ.get("FABGATE_CLOCK_SHIFT_DAYS"),
    reason="only in the clock-shift run of the suite",
)
def test_this_run_is_shifted_as_asked() -> None:
    days = float(os.environ["FABGATE_CLOCK_SHIFT_DAYS"])
    assert (datetime.now(UTC).timestamp() - _kernel_now()) / DAY == pytest.approx(days, abs=0.01)
