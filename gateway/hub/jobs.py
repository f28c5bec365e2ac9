"""Jobs machines ran (a print, a cut), from the job events nodes send during sessions.

The only writer of ``jobs``. Job events may arrive in any order (a node resends after a
restart, a progress event may overtake a start): ``record_job`` gives the same row for
any order, and a final state is never undone by an earlier event arriving late.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from gateway.contract import Envelope, Job, parse_iso
from gateway.core.clock import iso
from gateway.hub.db import HubStore, purge_rows

_JOB_STATES = {
    "started": "running",
    "progress": "running",
    "resumed": "running",
    "paused": "paused",
    "finished": "finished",
    "failed": "failed",
    "cancelled": "cancelled",
}
_JOB_FINAL = ("finished", "failed", "cancelled")


def record_job(store: HubStore, env: Envelope, ev: Job) -> None:
    """Upsert a job from one of its events; any arrival order gives the same row.

    A final state (finished, failed, cancelled) is never overwritten by an earlier
    event arriving late; otherwise the event with the latest time wins.
    """
    job_id, event, progress = ev.job_id, ev.event, ev.progress
    state = _JOB_STATES[event]
    final = state in _JOB_FINAL
    at = iso(parse_iso(env.time))
    store.conn.execute(
        "INSERT INTO jobs (job_id, node, machine_id, session_id, member_id, project_id, "
        "name, state, progress, time_left_s, detail, started_at, ended_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(job_id) DO UPDATE SET "
        "session_id = coalesce(session_id, excluded.session_id), "
        "member_id = coalesce(member_id, excluded.member_id), "
        "project_id = coalesce(project_id, excluded.project_id), "
        "name = coalesce(excluded.name, name), "
        "started_at = coalesce(min(started_at, excluded.started_at), started_at, "
        "excluded.started_at), "
        "ended_at = coalesce(ended_at, excluded.ended_at), "
        "progress = CASE WHEN excluded.progress IS NULL THEN progress "
        "WHEN progress IS NULL THEN excluded.progress "
        "ELSE max(progress, excluded.progress) END, "
        "state = CASE WHEN state IN ('finished', 'failed', 'cancelled') THEN state "
        "WHEN excluded.state IN ('finished', 'failed', 'cancelled') THEN excluded.state "
        "WHEN excluded.updated_at >= updated_at THEN excluded.state ELSE state END, "
        "time_left_s = CASE WHEN excluded.updated_at >= updated_at "
        "THEN excluded.time_left_s ELSE time_left_s END, "
        "detail = CASE WHEN excluded.updated_at >= updated_at "
        "THEN excluded.detail ELSE detail END, "
        "updated_at = max(updated_at, excluded.updated_at)",
        (
            job_id,
            env.node,
            ev.machine,
            ev.session_id,
            ev.member_id,
            ev.project_id,
            ev.name,
            state,
            progress,
            ev.time_left_s,
            ev.detail,
            at if event == "started" else None,
            at if final else None,
            at,
        ),
    )


def recent_jobs(
    store: HubStore,
    *,
    limit: int = 100,
    since: datetime | None = None,
    until: datetime | None = None,
    machine: str | None = None,
) -> list[dict[str, Any]]:
    """Jobs, newest first, with member and machine names, started in [since, until)."""
    clauses, args = [], []
    if since is not None:
        clauses.append("j.updated_at >= ?")
        args.append(iso(since))
    if until is not None:
        clauses.append("j.updated_at < ?")
        args.append(iso(until))
    if machine is not None:
        clauses.append("j.machine_id = ?")
        args.append(machine)
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    sql = (
        "SELECT j.*, mb.name AS member_name, mc.name AS machine_name FROM jobs j "
        "LEFT JOIN members mb ON mb.id = j.member_id "
        "LEFT JOIN machines mc ON mc.id = j.machine_id "
        f"{where} ORDER BY coalesce(j.started_at, j.updated_at) DESC, j.job_id LIMIT ?"
    )
    return [dict(r) for r in store.conn.execute(sql, (*args, limit))]


def job_node(store: HubStore, job_id: str) -> str | None:
    """The node that first reported a job: only it may report it again."""
    row = store.conn.execute("SELECT node FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
    return row[0] if row else None


def add_jobs(store: HubStore, rows: Iterable[Sequence[Any]]) -> None:
    """Jobs of a generated history: (job_id, node, machine_id, session_id, member_id,
    project_id, name, state, progress, time_left_s, detail, started_at, ended_at,
    updated_at); known ids are left as they are."""
    store.conn.executemany(
        "INSERT OR IGNORE INTO jobs (job_id, node, machine_id, session_id, member_id,"
        " project_id, name, state, progress, time_left_s, detail, started_at, "
        "ended_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )


# -- retention and one member's data (docs/rgpd.md) ----------------------------------------


def purge(store: HubStore, before: str, *, apply: bool) -> int:
    """Jobs last updated before ``before`` and over: counted, or deleted when ``apply``
    (they go with the sessions they ran in)."""
    return purge_rows(
        store,
        "jobs",
        "updated_at < ? AND state NOT IN ('running', 'paused')",
        (before,),
        apply=apply,
    )


def of_member(store: HubStore, member_id: str) -> list[dict[str, Any]]:
    return [
        dict(r)
        for r in store.conn.execute(
            "SELECT * FROM jobs WHERE member_id = ? "
            "ORDER BY coalesce(started_at, updated_at), job_id",
            (member_id,),
        )
    ]


def forget_names(store: HubStore, member_id: str) -> int:
    """Erasure: the member's jobs stay (machine statistics) without their file names,
    which people often name after themselves."""
    return store.conn.execute(
        "UPDATE jobs SET name = NULL, detail = NULL WHERE member_id = ?", (member_id,)
    ).rowcount
