"""Machine sessions: opened and closed by nodes, read by the board, the API and billing.

The only writer of ``sessions`` (except their price columns, which are
``gateway.billing.pricing``'s). A session's rows come from node events; a person may
only move a closed session to another project of the same member while its month is
open (the rule is the web's; the move and its audit entry are here).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from gateway.contract import iso
from gateway.hub import audit
from gateway.hub.store import HubStore


def session(store: HubStore, session_id: str) -> dict[str, Any] | None:
    """What a move needs to know about a session: member, project, start, status."""
    row = store.conn.execute("SELECT session_id, member_id, project_id, started_at, status "
                             "FROM sessions WHERE session_id = ?", (session_id,)).fetchone()
    return dict(row) if row else None


def of_member(store: HubStore, member_id: str, limit: int) -> list[dict[str, Any]]:
    """A member's latest sessions, newest first, with machine and project names."""
    return [dict(r) for r in store.conn.execute(
        "SELECT s.session_id, s.machine_id, mc.name AS machine_name, s.project_id, "
        "pj.name AS project_name, s.started_at, s.ended_at, s.duration_s, "
        "s.billable_minutes, s.status FROM sessions s "
        "LEFT JOIN machines mc ON mc.id = s.machine_id "
        "LEFT JOIN projects pj ON pj.id = s.project_id "
        "WHERE s.member_id = ? ORDER BY s.started_at DESC, s.session_id LIMIT ?",
        (member_id, limit))]


def billable_minutes_of(store: HubStore, member_id: str, start: datetime,
                        end: datetime) -> int:
    """A member's billable minutes over the closed sessions started in [start, end)."""
    row = store.conn.execute(
        "SELECT coalesce(sum(billable_minutes), 0) FROM sessions WHERE member_id = ? "
        "AND status = 'closed' AND started_at >= ? AND started_at < ?",
        (member_id, iso(start), iso(end))).fetchone()
    return int(row[0])


def closed_count(store: HubStore, start: datetime, end: datetime) -> int:
    """Closed sessions started in [start, end): the size of a usage export."""
    return int(store.conn.execute(
        "SELECT count(*) FROM sessions WHERE status = 'closed' AND started_at >= ? "
        "AND started_at < ?", (iso(start), iso(end))).fetchone()[0])


def move_to_project(store: HubStore, session_id: str, project_id: str, *, by: str,
                    member_id: str, from_project: str | None, period: str) -> None:
    """Book a session to another project, audited in the same transaction (the caller
    checked the rules: a closed session of an open month, the member's own project)."""
    with store.atomic():
        store.conn.execute("UPDATE sessions SET project_id = ? WHERE session_id = ?",
                           (project_id, session_id))
        audit.record(store, by, audit.SESSION_MOVED, member_id,
                     {"session_id": session_id, "from": from_project, "to": project_id,
                      "period": period})
