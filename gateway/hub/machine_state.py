"""What each machine is doing now: its node's retained status, relay and open session.

The only writer of ``machine_state``. Two sources feed it: the node's retained status
(the freshest view of online, relay and session) and session events (a start turns the
relay on, an end off), each guarded by time so that a late message cannot undo a newer
one. The board and the API read it through ``machines_live``, which also says when a
node that claims to be online has gone silent.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from gateway.contract import NodeStatus, parse_iso
from gateway.core.clock import iso
from gateway.hub.db import HubStore
from gateway.hub.events import refusals
from gateway.policies.liveness import is_silent


def set_node_status(
    store: HubStore,
    node: str,
    status: NodeStatus | Mapping[str, Any],
    received_at: datetime | None = None,
) -> None:
    """Apply a node's retained status: the freshest view of online, relay and session.

    The ingest checks first that the status is about the node's own machine; a plain
    mapping (tests, tools) is checked against the contract here. ``received_at`` is
    when the hub got it, on the hub's clock (default: now); the board shows a node
    offline when no status came for three heartbeats after it.
    """
    if not isinstance(status, NodeStatus):
        status = NodeStatus.from_dict(status)
    session = status.session
    received = iso(received_at or datetime.now(UTC))
    with store.atomic():
        store.conn.execute(
            "INSERT INTO machine_state (machine_id, node, online, relay, session_id, "
            "member_id, since, status, updated_at, status_received_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(machine_id) DO UPDATE SET node = excluded.node, "
            "online = excluded.online, relay = excluded.relay, "
            "session_id = CASE WHEN excluded.online THEN excluded.session_id "
            "ELSE session_id END, "
            "member_id = CASE WHEN excluded.online THEN excluded.member_id "
            "ELSE member_id END, "
            "since = CASE WHEN excluded.online THEN excluded.since ELSE since END, "
            "status = excluded.status, updated_at = excluded.updated_at, "
            "status_received_at = excluded.status_received_at",
            (
                status.machine_id,
                node,
                int(status.online),
                int(status.relay),
                session.session_id if session else None,
                session.member_id if session else None,
                iso(session.started_at) if session else None,
                json.dumps(status.to_dict(), sort_keys=True),
                iso(status.time or datetime.now(UTC)),
                received,
            ),
        )


def session_opened(
    store: HubStore,
    machine_id: str,
    node: str,
    *,
    session_id: str,
    member_id: str | None,
    since: str,
) -> None:
    """A session started: relay on, unless a newer state is already known."""
    store.conn.execute(
        "INSERT INTO machine_state (machine_id, node, relay, session_id, member_id, "
        "since, updated_at) VALUES (?, ?, 1, ?, ?, ?, ?) "
        "ON CONFLICT(machine_id) DO UPDATE SET node = excluded.node, relay = 1, "
        "session_id = excluded.session_id, member_id = excluded.member_id, "
        "since = excluded.since, updated_at = excluded.updated_at "
        "WHERE updated_at IS NULL OR updated_at <= excluded.updated_at",
        (machine_id, node, session_id, member_id, since, since),
    )


def session_closed(
    store: HubStore, machine_id: str, node: str, *, session_id: str, at: str
) -> None:
    """A session ended: relay off, if it is the session shown or the news is newer."""
    store.conn.execute(
        "INSERT INTO machine_state (machine_id, node, relay, updated_at) "
        "VALUES (?, ?, 0, ?) ON CONFLICT(machine_id) DO UPDATE SET relay = 0, "
        "session_id = NULL, member_id = NULL, since = NULL, "
        "updated_at = excluded.updated_at "
        "WHERE session_id = ? OR updated_at IS NULL OR updated_at <= excluded.updated_at",
        (machine_id, node, at, session_id),
    )


def _status_json(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def machines_live(store: HubStore, now: datetime | None = None) -> list[dict[str, Any]]:
    """Machines with their live state: ``free``, ``in_use``, ``offline`` or
    ``out_of_service``.

    A node that said "online" but has been silent for more than three heartbeats
    (judged at ``now``, hub clock, default the current time) is ``offline`` with
    ``silent`` set: a frozen node sends no last will.
    """
    now = now or datetime.now(UTC)
    out = []
    refused = refusals.by_node(store)
    for r in store.conn.execute(
        "SELECT m.id AS machine_id, m.name, m.kind, m.group_id, m.min_level, "
        "m.out_of_service, m.out_of_service_reason, coalesce(m.node, m.id) AS node_id, s.node, "
        "coalesce(s.online, 0) AS online, "
        "coalesce(s.relay, 0) AS relay, s.session_id, s.member_id, "
        "mb.name AS member_name, s.since, s.updated_at, s.status AS node_status, "
        "s.status_received_at AS last_seen "
        "FROM machines m LEFT JOIN machine_state s ON s.machine_id = m.id "
        "LEFT JOIN members mb ON mb.id = s.member_id ORDER BY m.name, m.id"
    ):
        d = dict(r)
        status = _status_json(d.pop("node_status"))
        last_seen = parse_iso(d["last_seen"]) if d["last_seen"] else None
        d["silent"] = bool(d["online"]) and is_silent(last_seen, status, now)
        if d["silent"]:
            d["online"] = 0
        d["activity"] = status.get("activity")
        d["detail"] = status.get("detail") or ""
        d["job"] = status.get("job") if isinstance(status.get("job"), dict) else None
        d["ending"] = bool(status.get("ending"))
        d["online"] = bool(d["online"])
        d["relay"] = bool(d["relay"])
        d["out_of_service"] = bool(d["out_of_service"])
        # What the hub refused from the machine's node (gateway.hub.events.refusals).
        mine = refused.get(d["node_id"], {})
        d["refusals"] = mine.get("count", 0)
        d["refusal_reason"] = mine.get("latest_reason")
        d["refusal_at"] = mine.get("latest_at")
        if d["out_of_service"]:
            d["state"] = "out_of_service"
        elif not d["online"]:
            d["state"] = "offline"
        elif d["session_id"]:
            d["state"] = "in_use"
        else:
            d["state"] = "free"
        out.append(d)
    return out


def node_statuses(store: HubStore) -> list[dict[str, Any]]:
    """Every configured machine's node with its last status (parsed) and when the hub
    received it (``last_seen``, hub clock, None before any): what ``/metrics`` and the
    alerts read."""
    out = []
    for r in store.conn.execute(
        "SELECT m.id, coalesce(m.node, m.id), coalesce(s.online, 0), s.status, "
        "s.status_received_at FROM machines m LEFT JOIN machine_state s "
        "ON s.machine_id = m.id ORDER BY m.id"
    ):
        out.append(
            {
                "machine": r[0],
                "node": r[1],
                "online": bool(r[2]),
                "status": _status_json(r[3]),
                "last_seen": parse_iso(r[4]) if r[4] else None,
            }
        )
    return out
