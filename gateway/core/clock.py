"""Wall times as the gateway writes and reads them, and the two clocks code is given.

Every time the gateway stores or sends is UTC ISO 8601 with milliseconds and a ``Z``
(``2026-11-25T18:04:05.123Z``): sortable as text in SQLite and unambiguous on the wire.
Code never reads a clock itself: it takes a :class:`WallClock` (what time it is, for
records and expiries) and a :class:`MonoClock` (how long something took, immune to NTP
steps and to a Pi without RTC booting in 1970), so tests can move either one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Protocol


class WallClock(Protocol):
    """Returns the current time, timezone-aware (``utcnow`` in production)."""

    def __call__(self) -> datetime: ...


class MonoClock(Protocol):
    """Returns seconds on a clock that never jumps (``time.monotonic`` in production)."""

    def __call__(self) -> float: ...


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(dt: datetime) -> str:
    """UTC ISO 8601 with milliseconds and a ``Z``: sortable as text in SQLite."""
    if dt.tzinfo is None:
        raise ValueError("naive datetime: every wall time in the gateway is timezone-aware")
    return dt.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


_MAX_TIME_TEXT = 40


def parse_iso(value: Any, what: str = "time", *, error: type[ValueError] = ValueError) -> datetime:
    """An ISO 8601 time with a zone, as an aware datetime in UTC; ``error`` otherwise.

    ``error`` lets the wire contract raise its own ``ContractError`` for a bad time in
    a node's message, like any other bad field. Converted to UTC here so that a time near
    the ends of the calendar fails now, with a clear message, and not later as an
    ``OverflowError`` in ``astimezone``.
    """
    if not isinstance(value, str):
        raise error(f"{what}: expected an ISO 8601 string, got {type(value).__name__}")
    if len(value) > _MAX_TIME_TEXT:
        raise error(f"{what}: {value[:_MAX_TIME_TEXT]!r}... is not an ISO 8601 time")
    try:
        dt = datetime.fromisoformat(value)  # Python 3.11 reads the "Z" itself
    except ValueError as exc:
        raise error(f"{what}: {value!r} is not an ISO 8601 time") from exc
    if dt.tzinfo is None:
        raise error(f"{what}: {value!r} has no timezone")
    try:
        return dt.astimezone(UTC)
    except OverflowError as exc:
        raise error(f"{what}: {value!r} is out of range") from exc
