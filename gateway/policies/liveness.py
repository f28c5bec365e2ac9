"""Is a node still there? Judged from when the hub last *received* its status.

A node's last will says "offline" only when the broker notices the connection is gone;
a frozen process with a live TCP connection (or a broker that lost the will) leaves an
"online" status standing forever. So the hub also counts heartbeats: a node republishes
its status every ``heartbeat_s`` seconds, and one silent for more than three of them is
shown offline. The receipt time is the hub's own clock, never the node's, so a node with
a wrong clock can neither look alive nor dead by it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

MISSED_HEARTBEATS = 3
DEFAULT_HEARTBEAT_S = 30.0
# A node's status is not trusted: a huge heartbeat would keep a dead node "online" for
# days, a tiny one would make a healthy one flicker.
MIN_HEARTBEAT_S = 1.0
MAX_HEARTBEAT_S = 600.0


def heartbeat_of(status: Mapping[str, Any]) -> float:
    """The status's ``heartbeat_s``, bounded; the default when absent or not a number."""
    value = status.get("heartbeat_s")
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        return DEFAULT_HEARTBEAT_S
    return min(max(float(value), MIN_HEARTBEAT_S), MAX_HEARTBEAT_S)


def silent_after(status: Mapping[str, Any]) -> timedelta:
    """How long after its last status a node counts as gone."""
    return timedelta(seconds=MISSED_HEARTBEATS * heartbeat_of(status))


def is_silent(received_at: datetime | None, status: Mapping[str, Any], now: datetime) -> bool:
    """True when no status came for more than three heartbeats (or we never dated one)."""
    if received_at is None:
        return True
    return now - received_at > silent_after(status)
