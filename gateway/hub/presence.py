"""Staff presence at the hub: who checked in, until when (supervised use needs one).

The only writer of ``staff_presence``. Nodes report a staff member's check-in and
check-out (a staff tap counts as one, see ``gateway.policies.presence``); the snapshot
publisher reads the latest end of presence and sends it to every node.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from gateway.contract import Envelope, StaffPresence, parse_iso
from gateway.core.clock import iso
from gateway.hub.db import HubStore, purge_rows


def record_presence(store: HubStore, env: Envelope, ev: StaffPresence) -> None:
    """A check-in or check-out (gateway.hub.events.trust checked the member is staff)."""
    until = iso(ev.until) if ev.until else None
    at = iso(parse_iso(env.time))
    # Guarded by event time: a check-in replayed late must not undo a later check-out.
    store.conn.execute(
        "INSERT INTO staff_presence (member_id, present, since, until, updated_at) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT(member_id) DO UPDATE SET "
        "present = excluded.present, "
        "since = CASE WHEN excluded.present AND present THEN since ELSE excluded.since END,"
        " until = excluded.until, updated_at = excluded.updated_at "
        "WHERE updated_at <= excluded.updated_at",
        (ev.member_id, int(ev.present), at, until if ev.present else None, at),
    )


def staff_present_until(store: HubStore, now: datetime) -> datetime | None:
    """Latest end of presence among staff checked in and not yet past their end.

    A presence without an end is ignored: supervision must have a known end, or a
    forgotten check-out would keep supervised machines usable all night.
    """
    row = store.conn.execute(
        "SELECT max(until) FROM staff_presence WHERE present = 1 AND until > ?", (iso(now),)
    ).fetchone()
    return parse_iso(row[0]) if row[0] else None


def purge(store: HubStore, before: str, *, apply: bool) -> int:
    """Staff presence rows last changed before ``before``: counted, or deleted when
    ``apply`` (a presence that old has ended long ago; the row only says when)."""
    return purge_rows(store, "staff_presence", "updated_at < ?", (before,), apply=apply)


def presence_of(store: HubStore, member_id: str) -> dict[str, Any] | None:
    row = store.conn.execute(
        "SELECT present, since, until, updated_at FROM staff_presence WHERE member_id = ?",
        (member_id,),
    ).fetchone()
    return dict(row) if row else None


def forget(store: HubStore, member_id: str) -> None:
    """Erasure: the member's presence row goes."""
    store.conn.execute("DELETE FROM staff_presence WHERE member_id = ?", (member_id,))
