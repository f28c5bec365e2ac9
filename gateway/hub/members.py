"""Members, their badges and their projects (and the current project of each member).

The only writer of ``members``, ``badges`` and ``projects``. Every change reaches the
machines by itself: the schema's triggers bump ``meta.data_version`` and the hub
republishes the snapshots, so nothing here talks to the nodes.
"""

from __future__ import annotations

import uuid
from typing import Any

from gateway.hub import audit
from gateway.hub.store import HubStore


def member(store: HubStore, member_id: str) -> dict[str, Any] | None:
    """The member's row, or None."""
    row = store.conn.execute("SELECT * FROM members WHERE id = ?", (member_id,)).fetchone()
    return dict(row) if row else None


def exists(store: HubStore, member_id: str) -> bool:
    return store.conn.execute("SELECT 1 FROM members WHERE id = ?",
                              (member_id,)).fetchone() is not None


def email_of(store: HubStore, member_id: str) -> str | None:
    """The email of the member record (not the account's: they may differ)."""
    row = store.conn.execute("SELECT email FROM members WHERE id = ?",
                             (member_id,)).fetchone()
    return row[0] if row else None


def roster(store: HubStore) -> list[dict[str, Any]]:
    """Everyone, with the count of their active badges, in SQLite's name order."""
    return [dict(r) for r in store.conn.execute(
        "SELECT m.id, m.name, m.category, m.status, m.membership_end, "
        "(SELECT count(*) FROM badges b WHERE b.member_id = m.id AND b.status = 'active') "
        "AS badges FROM members m ORDER BY m.name, m.id")]


# -- badges ----------------------------------------------------------------------------

def badges_of(store: HubStore, member_id: str) -> list[dict[str, Any]]:
    return [dict(r) for r in store.conn.execute(
        "SELECT uid, status FROM badges WHERE member_id = ? ORDER BY status, uid",
        (member_id,))]


def block_badge(store: HubStore, member_id: str, uid: str, *, by: str) -> bool:
    """Block one of the member's active badges, audited; False if there was none.

    It takes effect at the next snapshot, within a second: a lost badge must stop
    opening machines before whoever found it reaches one."""
    with store.atomic():
        cur = store.conn.execute(
            "UPDATE badges SET status = 'blocked' WHERE uid = ? AND member_id = ? "
            "AND status = 'active'", (uid, member_id))
        if cur.rowcount:
            audit.record(store, by, audit.BADGE_BLOCKED, member_id, {"uid": uid})
    return bool(cur.rowcount)


# -- projects --------------------------------------------------------------------------

def projects_of(store: HubStore, member_id: str) -> list[dict[str, Any]]:
    return [dict(r) for r in store.conn.execute(
        "SELECT id, name, status FROM projects WHERE member_id = ? ORDER BY name, id",
        (member_id,))]


def owns_project(store: HubStore, member_id: str, project_id: str) -> bool:
    return store.conn.execute("SELECT 1 FROM projects WHERE id = ? AND member_id = ?",
                              (project_id, member_id)).fetchone() is not None


def create_project(store: HubStore, member_id: str, name: str, *,
                   current: bool = False) -> str:
    """A new project of the member (their current one if ``current``); returns its id."""
    project_id = f"p-{uuid.uuid4().hex[:12]}"
    with store.atomic():
        store.conn.execute("INSERT INTO projects (id, member_id, name) VALUES (?, ?, ?)",
                           (project_id, member_id, name))
        if current:
            set_current_project(store, member_id, project_id)
    return project_id


def set_current_project(store: HubStore, member_id: str, project_id: str | None) -> int:
    """What the member's next session is booked to (it travels in the snapshot);
    returns 1 if it changed."""
    with store.atomic():
        return store.conn.execute(
            "UPDATE members SET current_project = ? WHERE id = ? "
            "AND current_project IS NOT ?", (project_id, member_id, project_id)).rowcount
