"""Turning a session's measured duration into billed minutes and per-minute usage rows.

Durations come from a monotonic clock (a wall clock can jump under NTP mid-session), as
float seconds. A started minute is billed, so 60.0 s is one minute and 60.0001 s two.
That boundary is decided with exact rational arithmetic: float division could round a
duration a hair above a whole minute down onto it, and the minute rows would then no
longer add up to the duration.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

__all__ = [
    "MINUTE_S",
    "BusyMeter",
    "billable_minutes",
    "local_day",
    "minute_slices",
    "split_minutes",
]

MINUTE_S = 60


def _check_duration(duration_s: float) -> None:
    if not math.isfinite(duration_s):
        raise ValueError(f"session duration must be a finite number of seconds, got {duration_s}")


def billable_minutes(duration_s: float) -> int:
    """Started minutes of the session; a non-positive duration bills nothing.

    Exact without a ``Fraction`` (a per-minute export counts millions of sessions): the
    float quotient is off by at most one from the true ceiling, and Python compares an
    int with a float exactly, so one comparison with the whole-minute bounds settles it.
    """
    _check_duration(duration_s)
    if duration_s <= 0:
        return 0
    minutes = math.ceil(duration_s / MINUTE_S)
    if (minutes - 1) * MINUTE_S >= duration_s:
        return minutes - 1
    if minutes * MINUTE_S < duration_s:
        return minutes + 1
    return minutes


def _after(start: datetime, minutes: int) -> datetime:
    """Elapsed time, not wall time: aware arithmetic in a DST zone would add wall minutes."""
    if start.tzinfo is None:
        return start + timedelta(seconds=MINUTE_S * minutes)
    return (start.astimezone(UTC) + timedelta(seconds=MINUTE_S * minutes)).astimezone(start.tzinfo)


def _slices(start: datetime, duration_s: float, count: int) -> Iterator[tuple[datetime, float]]:
    for k in range(count - 1):
        yield _after(start, k), float(MINUTE_S)
    # Exact: the subtrahend is a whole number below the duration, so the difference is a
    # multiple of the duration's own precision and fits a float without rounding.
    last = count - 1
    yield _after(start, last), duration_s - MINUTE_S * last


def minute_slices(start: datetime, duration_s: float) -> Iterator[tuple[datetime, float]]:
    """``(minute_start, seconds)`` for each billed minute, counted from the session start.

    Minutes are session-relative rather than aligned on the clock so that the number of
    rows always equals the billed minutes; all are 60 s except a shorter last one.
    """
    count = billable_minutes(duration_s)  # validates eagerly, not at the first next()
    return _slices(start, duration_s, count) if count else iter(())


def local_day(t: datetime, tz: str) -> date:
    """The site's calendar day of an instant: usage is reported per local day."""
    if t.tzinfo is None:
        raise ValueError("t must be timezone-aware; a naive time would use the host's zone")
    return t.astimezone(ZoneInfo(tz)).date()


def split_minutes(duration_s: float, busy_s: float) -> tuple[int, int]:
    """``(busy_minutes, idle_minutes)`` adding up to the session's billable minutes.

    Busy time is rounded up (a member is never billed less machine time than it ran) and
    idle minutes are what remains of the billed minutes, so the two always sum to
    :func:`billable_minutes` and a session is never billed an extra minute by the split.
    """
    total = billable_minutes(duration_s)
    busy = min(billable_minutes(min(max(busy_s, 0.0), duration_s)), total)
    return busy, total - busy


class BusyMeter:
    """Accumulates the seconds a machine was busy, on the monotonic clock.

    ``update`` is called with every report; only a change of busy-ness counts. A change
    happens ``now`` unless the driver knows better: a debounced sensor confirms a change
    some seconds after it really began, and passes that moment as ``edge``. The edge is
    kept within the current interval (never before the last change, nor the meter's
    start, nor after ``now``), so it can neither count time twice nor reach back before
    the session.
    """

    def __init__(self, now: float, busy: bool = False) -> None:
        self._since = now  # when the current state (busy or not) began
        self._busy = busy
        self._total = 0.0

    @property
    def busy(self) -> bool:
        return self._busy

    def update(self, now: float, busy: bool, edge: float | None = None) -> None:
        if busy == self._busy:
            return
        at = now if edge is None else min(max(edge, self._since), now)
        if at < self._since:
            at = self._since  # a clock read out of order: never a negative interval
        if self._busy:
            self._total += at - self._since
        self._since = at
        self._busy = busy

    def busy_seconds(self, now: float) -> float:
        extra = max(0.0, now - self._since) if self._busy else 0.0
        return self._total + extra
