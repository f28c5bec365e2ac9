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
from gateway.hub.db import HubStore


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


def counts_by_type(store: HubStore) -> dict[str, tuple[int, int]]:
    """type -> (events stored, of which kept with an error and not applied).

    Read from ``event_counts``, which triggers on ``events`` keep (migration 0014), so a
    scrape costs a few rows however many events the hub holds.
    """
    return {
        r[0]: (r[1], r[2])
        for r in store.conn.execute("SELECT type, stored, dead FROM event_counts")
    }
