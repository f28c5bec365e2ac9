"""Everything the hub refused from a node, in one table: the record, the log, the counts.

Three kinds, all acknowledged when they carry an event id (sending the same bytes again
could never make them acceptable):

- ``invalid``: the message breaks the contract (size, JSON, a field's type or bounds);
- ``forbidden``: a well-formed message the sender may not send (another machine's
  session, a certification outside its group, an enrolment nobody opened...);
- ``conflict``: a second, different end for a session already closed; the session keeps
  its first end, the second is kept here and on the event for someone to look at.

Rows live in ``rejected_messages`` (the table the hub has always had for unparseable
envelopes, extended with node, event id, event type and kind), so one query answers
"what did the hub refuse from this node, and why". This module is the only writer; it
logs each refusal once, at WARNING.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from gateway.core.clock import iso
from gateway.hub.db import HubStore, purge_rows

log = logging.getLogger(__name__)

INVALID = "invalid"
FORBIDDEN = "forbidden"
CONFLICT = "conflict"
KINDS = (INVALID, FORBIDDEN, CONFLICT)

# A refused payload is kept for diagnosis, but never more than this of it (the contract
# refuses bigger messages before parsing; their first bytes are enough to see what they
# were).
MAX_KEPT_PAYLOAD = 64 * 1024
_MAX_REASON = 500


def record(
    store: HubStore,
    *,
    topic: str,
    reason: str,
    received_at: datetime,
    kind: str = INVALID,
    node: str | None = None,
    event_id: str | None = None,
    event_type: str | None = None,
    payload: bytes | str | None = None,
) -> None:
    """Store one refusal (in the caller's transaction) and log it."""
    if kind not in KINDS:
        raise ValueError(f"unknown refusal kind {kind!r}")
    reason = reason if len(reason) <= _MAX_REASON else reason[:_MAX_REASON] + "..."
    kept: bytes | None = None
    if payload is not None:
        raw = payload.encode("utf-8", "surrogatepass") if isinstance(payload, str) else payload
        kept = bytes(raw[:MAX_KEPT_PAYLOAD])
    store.conn.execute(
        "INSERT INTO rejected_messages (topic, payload, error, received_at, node, event_id, "
        "event_type, kind) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (topic, kept, reason, iso(received_at), node, event_id, event_type, kind),
    )
    about = f" (event {event_id}{f', {event_type}' if event_type else ''})" if event_id else ""
    log.warning(
        "refused (%s) a message from node %s on %s%s: %s", kind, node or "?", topic, about, reason
    )


def by_node(store: HubStore) -> dict[str, dict[str, Any]]:
    """node -> {count, latest_reason, latest_kind, latest_at}, for the board."""
    out: dict[str, dict[str, Any]] = {}
    for r in store.conn.execute(
        "SELECT r.node, c.n, r.error, r.kind, r.received_at FROM rejected_messages r "
        "JOIN (SELECT node, count(*) AS n, max(id) AS last FROM rejected_messages "
        "WHERE node IS NOT NULL GROUP BY node) c ON r.id = c.last"
    ):
        out[r[0]] = {"count": r[1], "latest_reason": r[2], "latest_kind": r[3], "latest_at": r[4]}
    return out


def of_node(store: HubStore, node: str, limit: int = 100) -> list[dict[str, Any]]:
    """A node's refusals, newest first (payload left out)."""
    rows = store.conn.execute(
        "SELECT id, topic, node, event_id, event_type, kind, error AS reason, received_at "
        "FROM rejected_messages WHERE node = ? ORDER BY id DESC LIMIT ?",
        (node, limit),
    )
    return [dict(zip([d[0] for d in rows.description], r, strict=True)) for r in rows]


def purge(store: HubStore, before: str, *, apply: bool) -> int:
    """Refusals received before ``before`` (ISO UTC): counted, or deleted when
    ``apply``. Their payloads carry badge uids and member ids: an access-control log."""
    return purge_rows(store, "rejected_messages", "received_at < ?", (before,), apply=apply)


def counts(store: HubStore) -> dict[tuple[str | None, str], int]:
    """(node or None, kind) -> refusals ever recorded, for ``/metrics``."""
    return {
        (r[0], r[1]): r[2]
        for r in store.conn.execute(
            "SELECT node, kind, count(*) FROM rejected_messages GROUP BY node, kind"
        )
    }


def recent_by_node(store: HubStore, since: datetime) -> dict[str | None, int]:
    """node (None: none known) -> refusals received at or after ``since`` (alerts)."""
    return {
        r[0]: r[1]
        for r in store.conn.execute(
            "SELECT node, count(*) FROM rejected_messages WHERE received_at >= ? GROUP BY node",
            (iso(since),),
        )
    }
