"""Time a node can trust: never earlier than what the hub has signed.

A Raspberry Pi without a real-time clock boots with an old time, and anyone with a shell
can set the clock back; either would revive an expired certification or membership if
the node believed its wall clock. Every snapshot carries the hub's signed issue time,
so the true time is at least that plus the monotonic time elapsed since the node
received it. The node decides with the later of this bound and its wall clock, and
flags a wall clock found behind the bound. The bound survives a restart (the node
persists it), but it cannot advance while the node is off: after a restart it is the
persisted value until a new snapshot arrives.

Snapshot freshness is a separate question, answered on the monotonic clock: a
snapshot's age is its age when received plus the monotonic time since, so a wall clock
jumping either way after receipt can neither make an old snapshot look fresh nor a
fresh one look old. When that age cannot be known (a restart with a wall clock behind
the bound: the node cannot tell how long it was off) the snapshot counts as stale
until a new one arrives or the wall clock catches up with the bound.

Pure functions of the times given; the node injects its clocks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

__all__ = [
    "CLOCK_TOLERANCE",
    "UNKNOWN_AGE",
    "Receipt",
    "SignedTime",
    "clock_behind",
    "latest",
    "receive",
    "snapshot_age",
    "trusted_now",
]

# Hub and node clocks never agree to the millisecond; a wall clock less than this behind
# the signed bound is not flagged (decisions still use the bound).
CLOCK_TOLERANCE = timedelta(seconds=60)

# The age given to a snapshot whose age cannot be known: older than any limit.
UNKNOWN_AGE = timedelta.max


@dataclass(frozen=True)
class SignedTime:
    """The newest hub-signed time the node knows, anchored on this boot's monotonic clock."""

    at: datetime
    mono: float | None = None  # None: persisted by an earlier boot, so it cannot advance

    def bound(self, mono_now: float) -> datetime:
        """The earliest the true time can be now."""
        if self.mono is None:
            return self.at
        return self.at + timedelta(seconds=max(0.0, mono_now - self.mono))


def latest(a: SignedTime | None, b: SignedTime | None, mono_now: float) -> SignedTime | None:
    """The floor that is later now (a floor only ever moves forward)."""
    if a is None:
        return b
    if b is None:
        return a
    return b if b.bound(mono_now) > a.bound(mono_now) else a


def trusted_now(wall: datetime, floor: SignedTime | None, mono_now: float) -> datetime:
    """The time to decide with: the wall clock, but never before the signed bound."""
    if floor is None:
        return wall
    return max(wall, floor.bound(mono_now))


def clock_behind(
    wall: datetime,
    floor: SignedTime | None,
    mono_now: float,
    tolerance: timedelta = CLOCK_TOLERANCE,
) -> bool:
    """True when the wall clock is provably behind (by more than ``tolerance``)."""
    return floor is not None and wall < floor.bound(mono_now) - tolerance


@dataclass(frozen=True)
class Receipt:
    """A snapshot's age when the node took it, and the monotonic time it did."""

    age: timedelta | None  # None: unknown (restart with the wall clock behind the floor)
    mono: float


def receive(issued_at: datetime, now: datetime | None, mono_now: float) -> Receipt:
    """Take a snapshot at trusted time ``now`` (None: the node cannot know the time)."""
    if now is None:
        return Receipt(None, mono_now)
    return Receipt(max(timedelta(0), now - issued_at), mono_now)


def snapshot_age(receipt: Receipt, mono_now: float) -> timedelta:
    """The age at receipt plus the monotonic time since; ``UNKNOWN_AGE`` if unknown."""
    if receipt.age is None:
        return UNKNOWN_AGE
    return receipt.age + timedelta(seconds=max(0.0, mono_now - receipt.mono))
