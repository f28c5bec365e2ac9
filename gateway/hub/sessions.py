"""Machine sessions: opened and closed by nodes, read by the board, the API and billing.

The only writer of ``sessions`` (except their price columns, which are
``gateway.billing.pricing``'s: a session is priced when it closes). A session's rows come
from node events, applied in any order with the same result; a person may only move a
closed session to another project of the same member while its month is open (the rule
is the web's; the move and its audit entry are here).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

from gateway.billing import pricing
from gateway.contract import Envelope, SessionEnded, SessionStarted, parse_iso
from gateway.core.clock import iso
from gateway.hub import audit, machine_state
from gateway.hub.db import HubStore, purge_rows
from gateway.policies.metering import billable_minutes, split_minutes

# -- from node events ---------------------------------------------------------------------


def session_started(store: HubStore, env: Envelope, ev: SessionStarted) -> None:
    """Open a session (gateway.hub.events.trust checked the sender's machine)."""
    sid, machine, member = ev.session_id, ev.machine, ev.member_id
    started = iso(ev.started_at)
    event_time = iso(parse_iso(env.time))
    # A session already closed (its end arrived first) stays closed; an open one only
    # learns an earlier first event time. Both keep the result order-independent.
    store.conn.execute(
        "INSERT INTO sessions (session_id, node, machine_id, member_id, badge_uid, "
        "project_id, started_at, status, first_event_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, 'open', ?) ON CONFLICT(session_id) DO UPDATE SET "
        "first_event_at = min(first_event_at, excluded.first_event_at)",
        (sid, env.node, machine, member, ev.badge_uid, ev.project_id, started, event_time),
    )
    status = store.conn.execute(
        "SELECT status FROM sessions WHERE session_id = ?", (sid,)
    ).fetchone()[0]
    if status == "open":
        machine_state.session_opened(
            store, machine, env.node, session_id=sid, member_id=member, since=started
        )


def session_ended(store: HubStore, env: Envelope, ev: SessionEnded) -> None:
    """Close a session (opened by the same node, checked by gateway.hub.events.trust) and
    price it; the closing event is remembered, so a second, different end is a
    conflict."""
    sid, machine, member = ev.session_id, ev.machine, ev.member_id
    started, ended = iso(ev.started_at), iso(ev.ended_at)
    duration = ev.duration_s
    event_time = iso(parse_iso(env.time))
    store.conn.execute(
        "INSERT INTO sessions (session_id, node, machine_id, member_id, badge_uid, "
        "project_id, started_at, ended_at, duration_s, billable_minutes, end_reason, "
        "status, first_event_at, closed_by) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'closed', ?, ?) "
        "ON CONFLICT(session_id) DO UPDATE SET "
        "machine_id = excluded.machine_id, member_id = excluded.member_id, "
        "badge_uid = excluded.badge_uid, project_id = excluded.project_id, "
        "started_at = excluded.started_at, ended_at = excluded.ended_at, "
        "duration_s = excluded.duration_s, billable_minutes = excluded.billable_minutes, "
        "end_reason = excluded.end_reason, status = 'closed', "
        "first_event_at = min(first_event_at, excluded.first_event_at), "
        "closed_by = excluded.closed_by",
        (
            sid,
            env.node,
            machine,
            member,
            ev.badge_uid,
            ev.project_id,
            started,
            ended,
            duration,
            billable_minutes(duration),
            ev.end_reason,
            event_time,
            env.id,
        ),
    )
    # Busy/idle split, when the node follows its machine (no link: no split, NULL).
    busy: float | None = None
    idle: float | None = None
    busy_min: int | None = None
    idle_min: int | None = None
    if ev.busy_s is not None:
        busy = min(ev.busy_s, duration)
        idle = duration - busy
        busy_min, idle_min = split_minutes(duration, busy)
    store.conn.execute(
        "UPDATE sessions SET busy_s = ?, idle_s = ?, busy_minutes = ?, idle_minutes = ?, "
        "jobs = ?, material_g = ? WHERE session_id = ?",
        (busy, idle, busy_min, idle_min, ev.jobs, ev.material_g, sid),
    )
    pricing.price_closed_session(store, sid)
    machine_state.session_closed(store, machine, env.node, session_id=sid, at=ended)


def session_owner(store: HubStore, session_id: str) -> dict[str, Any] | None:
    """Who opened a session and whether it is closed (and by which event): what the
    trust checks need."""
    row = store.conn.execute(
        "SELECT node, machine_id, status, closed_by FROM sessions WHERE session_id = ?",
        (session_id,),
    ).fetchone()
    return dict(row) if row else None


def add_closed_sessions(store: HubStore, rows: Iterable[Sequence[Any]]) -> None:
    """Closed sessions of a generated history, not priced (the hub prices them at its
    next start): (session_id, node, machine_id, member_id, badge_uid, project_id,
    started_at, ended_at, duration_s, billable_minutes, end_reason, status,
    first_event_at, busy_s, idle_s, busy_minutes, idle_minutes, jobs); known ids are
    left as they are."""
    store.conn.executemany(
        "INSERT OR IGNORE INTO sessions (session_id, node, machine_id, member_id, "
        "badge_uid, project_id, started_at, ended_at, duration_s, billable_minutes, "
        "end_reason, status, first_event_at, busy_s, idle_s, busy_minutes, "
        "idle_minutes, jobs) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
        "?, ?)",
        rows,
    )


# -- reading -----------------------------------------------------------------------------

_SESSION_SELECT = (
    "SELECT s.session_id, s.node, s.machine_id, mc.name AS machine_name, s.member_id, "
    "mb.name AS member_name, s.badge_uid, s.project_id, s.started_at, s.ended_at, "
    "s.duration_s, s.billable_minutes, s.end_reason, s.status, s.first_event_at, "
    "s.busy_s, s.idle_s, s.busy_minutes, s.idle_minutes, s.jobs, s.material_g, "
    "s.amount_cents, s.priced_minutes, s.vat_rate, s.priced_with, "
    "pj.name AS project_name "
    "FROM sessions s LEFT JOIN members mb ON mb.id = s.member_id "
    "LEFT JOIN projects pj ON pj.id = s.project_id "
    "LEFT JOIN machines mc ON mc.id = s.machine_id "
)


def _range(
    start: datetime | None, end: datetime | None, closed: bool = False
) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    args: list[Any] = []
    if closed:
        clauses.append("s.status = 'closed'")
    if start is not None:
        clauses.append("s.started_at >= ?")
        args.append(iso(start))
    if end is not None:
        clauses.append("s.started_at < ?")
        args.append(iso(end))
    return (f"WHERE {' AND '.join(clauses)}" if clauses else ""), args


def recent_sessions(
    store: HubStore,
    *,
    limit: int = 100,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[dict[str, Any]]:
    """Most recent sessions first (open and closed), started in [since, until)."""
    where, args = _range(since, until)
    sql = f"{_SESSION_SELECT}{where} ORDER BY s.started_at DESC, s.session_id LIMIT ?"
    return [dict(r) for r in store.conn.execute(sql, (*args, limit))]


def session_rows(
    store: HubStore,
    start: datetime | None,
    end: datetime | None,
    *,
    member: str | None = None,
    project: str | None = None,
    machine: str | None = None,
) -> Iterator[dict[str, Any]]:
    """Closed sessions started in [start, end), oldest first, streamed from a cursor
    so a year of sessions never sits in memory; optionally one member's, project's or
    machine's (filtered in SQL, on an index, not in Python)."""
    where, args = _range(start, end, closed=True)
    for column, value in (
        ("s.member_id", member),
        ("s.project_id", project),
        ("s.machine_id", machine),
    ):
        if value is not None:
            where += f"{' AND' if where else 'WHERE'} {column} = ?"
            args.append(value)
    cur = store.conn.execute(f"{_SESSION_SELECT}{where} ORDER BY s.started_at, s.session_id", args)
    try:
        for r in cur:
            yield dict(r)
    finally:
        cur.close()


def totals(store: HubStore) -> dict[str, Any]:
    """Closed-session totals; tests and the health page use them as a fingerprint."""
    r = store.conn.execute(
        "SELECT count(*) AS sessions, coalesce(sum(duration_s), 0) AS seconds, "
        "coalesce(sum(billable_minutes), 0) AS billable_minutes FROM sessions "
        "WHERE status = 'closed'"
    ).fetchone()
    return dict(r)


def last_use_on_group(store: HubStore, group_id: str) -> dict[str, str]:
    """member -> start of their latest session on any machine of the group."""
    return {
        r[0]: r[1]
        for r in store.conn.execute(
            "SELECT s.member_id, max(s.started_at) FROM sessions s JOIN machines m "
            "ON m.id = s.machine_id WHERE m.group_id = ? GROUP BY s.member_id",
            (group_id,),
        )
    }


def last_use_of_member(store: HubStore, member_id: str) -> dict[str, str]:
    """group -> start of the member's latest session on any machine of the group."""
    return {
        r[0]: r[1]
        for r in store.conn.execute(
            "SELECT m.group_id, max(s.started_at) FROM sessions s JOIN machines m "
            "ON m.id = s.machine_id WHERE s.member_id = ? GROUP BY m.group_id",
            (member_id,),
        )
    }


def session(store: HubStore, session_id: str) -> dict[str, Any] | None:
    """What a move needs to know about a session: member, project, start, status."""
    row = store.conn.execute(
        "SELECT session_id, member_id, project_id, started_at, status "
        "FROM sessions WHERE session_id = ?",
        (session_id,),
    ).fetchone()
    return dict(row) if row else None


def of_member(store: HubStore, member_id: str, limit: int) -> list[dict[str, Any]]:
    """A member's latest sessions, newest first, with machine and project names and
    their stored price (``amount_cents``, NULL while unpriced)."""
    return [
        dict(r)
        for r in store.conn.execute(
            "SELECT s.session_id, s.machine_id, mc.name AS machine_name, s.project_id, "
            "pj.name AS project_name, s.started_at, s.ended_at, s.duration_s, "
            "s.billable_minutes, s.status, s.amount_cents, s.priced_with FROM sessions s "
            "LEFT JOIN machines mc ON mc.id = s.machine_id "
            "LEFT JOIN projects pj ON pj.id = s.project_id "
            "WHERE s.member_id = ? ORDER BY s.started_at DESC, s.session_id LIMIT ?",
            (member_id, limit),
        )
    ]


def billable_minutes_of(store: HubStore, member_id: str, start: datetime, end: datetime) -> int:
    """A member's billable minutes over the closed sessions started in [start, end)."""
    row = store.conn.execute(
        "SELECT coalesce(sum(billable_minutes), 0) FROM sessions WHERE member_id = ? "
        "AND status = 'closed' AND started_at >= ? AND started_at < ?",
        (member_id, iso(start), iso(end)),
    ).fetchone()
    return int(row[0])


def closed_count(store: HubStore, start: datetime, end: datetime) -> int:
    """Closed sessions started in [start, end): the size of a usage export."""
    return int(
        store.conn.execute(
            "SELECT count(*) FROM sessions WHERE status = 'closed' AND started_at >= ? "
            "AND started_at < ?",
            (iso(start), iso(end)),
        ).fetchone()[0]
    )


def move_to_project(
    store: HubStore,
    session_id: str,
    project_id: str,
    *,
    by: str,
    member_id: str,
    from_project: str | None,
    period: str,
) -> None:
    """Book a session to another project, audited in the same transaction (the caller
    checked the rules: a closed session of an open month, the member's own project)."""
    with store.atomic():
        store.conn.execute(
            "UPDATE sessions SET project_id = ? WHERE session_id = ?", (project_id, session_id)
        )
        audit.record(
            store,
            by,
            audit.SESSION_MOVED,
            member_id,
            {"session_id": session_id, "from": from_project, "to": project_id, "period": period},
        )


# -- retention and one member's data (docs/rgpd.md) ----------------------------------------


def purge_closed(store: HubStore, before: str, *, apply: bool) -> int:
    """Closed sessions started before ``before``: counted, or deleted when ``apply``
    (past the accounting retention). An open session is never purged; invoices keep
    what they billed in their own frozen rows."""
    return purge_rows(
        store, "sessions", "status = 'closed' AND started_at < ?", (before,), apply=apply
    )


def all_of_member(store: HubStore, member_id: str) -> list[dict[str, Any]]:
    """Every session of the member, oldest first, as stored (the export)."""
    return [
        dict(r)
        for r in store.conn.execute(
            f"{_SESSION_SELECT}WHERE s.member_id = ? ORDER BY s.started_at, s.session_id",
            (member_id,),
        )
    ]


def open_session_of(store: HubStore, member_id: str) -> dict[str, Any] | None:
    """The member's open session, if any (an erasure waits for it to end)."""
    row = store.conn.execute(
        "SELECT session_id, machine_id, started_at FROM sessions WHERE member_id = ? "
        "AND status = 'open' ORDER BY started_at DESC LIMIT 1",
        (member_id,),
    ).fetchone()
    return dict(row) if row else None


def forget_badges(store: HubStore, member_id: str) -> int:
    """Erasure: the member's sessions stay (statistics, accounting) without the badge
    uid, which names a card that will be handed to someone else."""
    return store.conn.execute(
        "UPDATE sessions SET badge_uid = NULL WHERE member_id = ? AND badge_uid IS NOT NULL",
        (member_id,),
    ).rowcount


def open_by_machine(store: HubStore) -> dict[str, int]:
    """Open sessions per machine (``/metrics``; the partial index ``sessions_open``)."""
    return {
        r[0]: r[1]
        for r in store.conn.execute(
            "SELECT machine_id, count(*) FROM sessions WHERE status = 'open' GROUP BY machine_id"
        )
    }
