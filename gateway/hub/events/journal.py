"""The hub's journal of node events: every event received, once, by its id.

The only writer of ``events``. ``INSERT OR IGNORE`` on the event id is what makes
ingest idempotent: an event already stored is never applied again, so a node replaying
its journal bills nothing twice. An event the hub refused stays here with ``error`` set.
Node data has no foreign keys on purpose: an event naming a member or machine the hub
does not know (yet) is still kept, since usage is money.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from gateway.contract import Envelope
from gateway.core.clock import iso
from gateway.hub.db import HubStore, purge_rows


def store_event(store: HubStore, env: Envelope, received_at: datetime) -> bool:
    """Insert the event row; False when its id was already stored (a duplicate)."""
    cur = store.conn.execute(
        "INSERT OR IGNORE INTO events (event_id, node, seq, boot, type, time, "
        "data, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            env.id,
            env.node,
            env.seq,
            env.boot,
            env.type,
            env.time,
            json.dumps(env.data, sort_keys=True),
            iso(received_at),
        ),
    )
    return cur.rowcount == 1


def mark_event(store: HubStore, event_id: str, error: str) -> None:
    """Say why a stored event was not applied (bad data, a refusal, a conflict)."""
    store.conn.execute("UPDATE events SET error = ? WHERE event_id = ?", (error, event_id))


def event_node(store: HubStore, event_id: str) -> str | None:
    """The node that sent the stored event with this id."""
    row = store.conn.execute("SELECT node FROM events WHERE event_id = ?", (event_id,)).fetchone()
    return row[0] if row else None


def event_data(store: HubStore, event_id: str) -> Any:
    """The stored event's data (parsed JSON), or None when there is no such event."""
    row = store.conn.execute("SELECT data FROM events WHERE event_id = ?", (event_id,)).fetchone()
    return json.loads(row[0]) if row else None


def certify_tap_stored(
    store: HubStore, node: str, boot: str, seq: int, window: int, member_id: str
) -> bool:
    """Whether the node journaled a certify tap by the member among its ``window``
    events before ``seq`` (same boot), and the hub stored it without error."""
    return (
        store.conn.execute(
            "SELECT 1 FROM events WHERE node = ? AND boot = ? AND seq < ? AND seq >= ? "
            "AND type = 'tap' AND error IS NULL "
            "AND json_extract(data, '$.action') = 'certify' "
            "AND json_extract(data, '$.member_id') = ? LIMIT 1",
            (node, boot, seq, seq - window, member_id),
        ).fetchone()
        is not None
    )


# -- retention and one member's data (docs/rgpd.md) ----------------------------------------

# Access-control records among node events: a badge tap answered (allowed, badge-out,
# certify, enrol), a staff check-in or out, an enrolled badge. Denied taps are apart.
ACCESS_TYPES = ("tap", "staff.presence", "badge.enrolled")
_DENIED = "type = 'tap' AND json_extract(data, '$.action') = 'deny'"
_ACCESS = (
    "((type = 'tap' AND json_extract(data, '$.action') IS NOT 'deny') "
    "OR type IN ('staff.presence', 'badge.enrolled'))"
)
_OTHER = "type NOT IN ('tap', 'staff.presence', 'badge.enrolled')"
KINDS = {"taps": _ACCESS, "denials": _DENIED, "node_events": _OTHER}


def purge_events(store: HubStore, kind: str, before: str, *, apply: bool) -> int:
    """Events of ``kind`` (``taps``, ``denials`` or ``node_events``) received by the
    hub before ``before`` (ISO UTC): counted, or deleted when ``apply``. Reception time,
    the hub's clock, not the node's: the hub vouches for its own clock only."""
    return purge_rows(store, "events", f"{KINDS[kind]} AND received_at < ?", (before,), apply=apply)


_OF_MEMBER = "(json_extract(data, '$.member_id') = ? OR json_extract(data, '$.uid') IN ({uids}))"


def access_events_of(store: HubStore, member_id: str, uids: list[str]) -> list[dict[str, Any]]:
    """The member's taps (allowed and denied), presence and enrolment events, oldest
    first: by member id, or by one of their badges (a tap the node could not name)."""
    where = _OF_MEMBER.format(uids=", ".join("?" * len(uids)) or "NULL")
    rows = store.conn.execute(
        f"SELECT event_id, node, type, time, received_at, data FROM events "
        f"WHERE type IN ('tap', 'staff.presence', 'badge.enrolled') AND {where} "
        f"ORDER BY time, event_id",
        (member_id, *uids),
    )
    return [{**dict(r), "data": json.loads(r["data"])} for r in rows]


def erase_access_events_of(store: HubStore, member_id: str, uids: list[str]) -> int:
    """Delete the member's taps, presence and enrolment events (erasure): no legal
    obligation keeps them, unlike the sessions they opened."""
    where = _OF_MEMBER.format(uids=", ".join("?" * len(uids)) or "NULL")
    return store.conn.execute(
        f"DELETE FROM events WHERE type IN ('tap', 'staff.presence', 'badge.enrolled') AND {where}",
        (member_id, *uids),
    ).rowcount


def counts_by_type(store: HubStore) -> dict[str, tuple[int, int]]:
    """type -> (events stored, of which kept with an error and not applied).

    Read from ``event_counts``, which triggers on ``events`` keep (migration 0014), so a
    scrape costs a few rows however many events the hub holds.
    """
    return {
        r[0]: (r[1], r[2])
        for r in store.conn.execute("SELECT type, stored, dead FROM event_counts")
    }
