"""Members, their badges and their projects (and the current project of each member).

The only writer of ``members``, ``badges`` and ``projects``. Every change reaches the
machines by itself: the schema's triggers bump ``meta.data_version`` and the hub
republishes the snapshots, so nothing here talks to the nodes.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Sequence
from datetime import date
from typing import Any

from gateway.hub import audit
from gateway.hub.db import HubStore


def member(store: HubStore, member_id: str) -> dict[str, Any] | None:
    """The member's row, or None."""
    row = store.conn.execute("SELECT * FROM members WHERE id = ?", (member_id,)).fetchone()
    return dict(row) if row else None


def member_rows(store: HubStore) -> Iterator[dict[str, Any]]:
    """Every member's row (the snapshot builder reads them all)."""
    for r in store.conn.execute("SELECT * FROM members"):
        yield dict(r)


def exists(store: HubStore, member_id: str) -> bool:
    return (
        store.conn.execute("SELECT 1 FROM members WHERE id = ?", (member_id,)).fetchone()
        is not None
    )


def is_staff(store: HubStore, member_id: str) -> bool:
    row = store.conn.execute("SELECT staff FROM members WHERE id = ?", (member_id,)).fetchone()
    return bool(row and row[0])


def category_of(store: HubStore, member_id: str | None) -> str | None:
    row = store.conn.execute("SELECT category FROM members WHERE id = ?", (member_id,)).fetchone()
    return row[0] if row else None


def email_of(store: HubStore, member_id: str) -> str | None:
    """The email of the member record (not the account's: they may differ)."""
    row = store.conn.execute("SELECT email FROM members WHERE id = ?", (member_id,)).fetchone()
    return row[0] if row else None


def roster(store: HubStore) -> list[dict[str, Any]]:
    """Everyone, with the count of their active badges, in SQLite's name order."""
    return [
        dict(r)
        for r in store.conn.execute(
            "SELECT m.id, m.name, m.category, m.status, m.membership_end, "
            "(SELECT count(*) FROM badges b WHERE b.member_id = m.id AND b.status = 'active') "
            "AS badges FROM members m ORDER BY m.name, m.id"
        )
    ]


def set_paid_by(store: HubStore, member_id: str, org_id: str | None) -> None:
    """Future sessions of the member are billed to the organisation (None: to them)."""
    with store.atomic():
        store.conn.execute("UPDATE members SET paid_by = ? WHERE id = ?", (org_id, member_id))


# -- creating and updating from a seed ---------------------------------------------------


def add_member(
    store: HubStore,
    member_id: str,
    *,
    name: str,
    category: str,
    status: str,
    membership_end: date | None,
    staff: bool,
    email: str | None,
) -> bool:
    """Create the member if the id is new (no current project yet); False if it exists."""
    return (
        store.conn.execute(
            "INSERT INTO members (id, name, category, status, membership_end, staff, email, "
            "current_project) VALUES (?, ?, ?, ?, ?, ?, ?, NULL) ON CONFLICT(id) DO NOTHING",
            (
                member_id,
                name,
                category,
                status,
                membership_end.isoformat() if membership_end else None,
                int(staff),
                email,
            ),
        ).rowcount
        == 1
    )


def update_member(
    store: HubStore,
    member_id: str,
    *,
    name: str,
    category: str,
    status: str,
    membership_end: date | None,
    staff: bool,
    email: str | None,
) -> int:
    """Overwrite the fields a seed has; returns the rows changed (0 or 1)."""
    return store.conn.execute(
        "UPDATE members SET name = ?, category = ?, status = ?, membership_end = ?, "
        "staff = ?, email = ? WHERE id = ?",
        (
            name,
            category,
            status,
            membership_end.isoformat() if membership_end else None,
            int(staff),
            email,
            member_id,
        ),
    ).rowcount


def add_badge(store: HubStore, uid: str, member_id: str) -> bool:
    """An active badge of the member if the uid is new; False if it is known."""
    return (
        store.conn.execute(
            "INSERT INTO badges (uid, member_id, status) VALUES (?, ?, 'active') "
            "ON CONFLICT(uid) DO NOTHING",
            (uid, member_id),
        ).rowcount
        == 1
    )


def give_badge(store: HubStore, uid: str, member_id: str) -> int:
    """Hand a known badge to another member; returns the rows changed (0 or 1)."""
    return store.conn.execute(
        "UPDATE badges SET member_id = ? WHERE uid = ? AND member_id != ?",
        (member_id, uid, member_id),
    ).rowcount


def add_project(store: HubStore, project_id: str, member_id: str, name: str) -> bool:
    """Create the project if the id is new; False if it exists."""
    return (
        store.conn.execute(
            "INSERT INTO projects (id, member_id, name) VALUES (?, ?, ?) "
            "ON CONFLICT(id) DO NOTHING",
            (project_id, member_id, name),
        ).rowcount
        == 1
    )


def update_project(store: HubStore, project_id: str, member_id: str, name: str) -> int:
    """Give a project another owner or name; returns the rows changed (0 or 1)."""
    return store.conn.execute(
        "UPDATE projects SET member_id = ?, name = ? WHERE id = ? "
        "AND (member_id IS NOT ? OR name IS NOT ?)",
        (member_id, name, project_id, member_id, name),
    ).rowcount


# -- many at once (a generated history) -------------------------------------------------


def add_members(store: HubStore, rows: Iterable[Sequence[Any]]) -> None:
    """(id, name, category, status, membership_end, staff, email, joined_at) rows; ids
    already known are left as they are."""
    store.conn.executemany(
        "INSERT OR IGNORE INTO members (id, name, category, status, membership_end, "
        "staff, email, joined_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )


def mark_staff(store: HubStore, member_ids: Iterable[str]) -> None:
    store.conn.executemany("UPDATE members SET staff = 1 WHERE id = ?", [(m,) for m in member_ids])


def add_badges(store: HubStore, rows: Iterable[Sequence[Any]]) -> None:
    """(uid, member_id) rows of active badges; known uids are left as they are."""
    store.conn.executemany("INSERT OR IGNORE INTO badges (uid, member_id) VALUES (?, ?)", rows)


def add_projects(store: HubStore, rows: Iterable[Sequence[Any]]) -> None:
    """(id, member_id, name) rows; known ids are left as they are."""
    store.conn.executemany(
        "INSERT OR IGNORE INTO projects (id, member_id, name) VALUES (?, ?, ?)", rows
    )


# -- badges ----------------------------------------------------------------------------


def active_badges(store: HubStore) -> dict[str, str]:
    """uid -> member of every active badge (a blocked badge is simply absent)."""
    return {
        r["uid"]: r["member_id"]
        for r in store.conn.execute("SELECT uid, member_id FROM badges WHERE status = 'active'")
    }


def badge_owner(store: HubStore, uid: str) -> str | None:
    row = store.conn.execute("SELECT member_id FROM badges WHERE uid = ?", (uid,)).fetchone()
    return row[0] if row else None


def attach_badge(store: HubStore, uid: str, member_id: str) -> None:
    """A new active badge of the member (enrolment; the uid is unknown, checked first)."""
    store.conn.execute(
        "INSERT INTO badges (uid, member_id, status) VALUES (?, ?, 'active')", (uid, member_id)
    )


def badges_of(store: HubStore, member_id: str) -> list[dict[str, Any]]:
    return [
        dict(r)
        for r in store.conn.execute(
            "SELECT uid, status FROM badges WHERE member_id = ? ORDER BY status, uid", (member_id,)
        )
    ]


def block_badge(store: HubStore, member_id: str, uid: str, *, by: str) -> bool:
    """Block one of the member's active badges, audited; False if there was none.

    It takes effect at the next snapshot, within a second: a lost badge must stop
    opening machines before whoever found it reaches one."""
    with store.atomic():
        cur = store.conn.execute(
            "UPDATE badges SET status = 'blocked' WHERE uid = ? AND member_id = ? "
            "AND status = 'active'",
            (uid, member_id),
        )
        if cur.rowcount:
            audit.record(store, by, audit.BADGE_BLOCKED, member_id, {"uid": uid})
    return bool(cur.rowcount)


# -- projects --------------------------------------------------------------------------


def projects_of(store: HubStore, member_id: str) -> list[dict[str, Any]]:
    return [
        dict(r)
        for r in store.conn.execute(
            "SELECT id, name, status FROM projects WHERE member_id = ? ORDER BY name, id",
            (member_id,),
        )
    ]


def owns_project(store: HubStore, member_id: str, project_id: str) -> bool:
    return (
        store.conn.execute(
            "SELECT 1 FROM projects WHERE id = ? AND member_id = ?", (project_id, member_id)
        ).fetchone()
        is not None
    )


def create_project(store: HubStore, member_id: str, name: str, *, current: bool = False) -> str:
    """A new project of the member (their current one if ``current``); returns its id."""
    project_id = f"p-{uuid.uuid4().hex[:12]}"
    with store.atomic():
        store.conn.execute(
            "INSERT INTO projects (id, member_id, name) VALUES (?, ?, ?)",
            (project_id, member_id, name),
        )
        if current:
            set_current_project(store, member_id, project_id)
    return project_id


def set_current_project(store: HubStore, member_id: str, project_id: str | None) -> int:
    """What the member's next session is booked to (it travels in the snapshot);
    returns the rows changed (0 when it already was)."""
    with store.atomic():
        return store.conn.execute(
            "UPDATE members SET current_project = ? WHERE id = ? AND current_project IS NOT ?",
            (project_id, member_id, project_id),
        ).rowcount


# -- erasure (docs/rgpd.md) ------------------------------------------------------------

PSEUDONYM = "Membre effacé n° {n}"
ERASED_PROJECT = "Projet effacé"


def pseudonymise(store: HubStore, member_id: str, *, at: str) -> int:
    """Replace who the member is by a stable pseudonym and return its number.

    The row stays, so sessions, credit and invoices still point to it: name becomes
    "Membre effacé n° N" (N counts erasures, never reused), email, membership end, staff
    flag and current project go, the status is suspended; the category (prices,
    statistics), the paying organisation and the join date stay. Every badge row is
    deleted, so the card can be enrolled for someone else, and the member's projects
    lose their names. In the caller's transaction; the triggers bump ``data_version``,
    so the next snapshot (within a second) no longer carries the member's badges.
    """
    row = store.conn.execute("SELECT erased_no FROM members WHERE id = ?", (member_id,)).fetchone()
    if row is None:
        raise KeyError(member_id)
    if row[0] is not None:
        return int(row[0])
    n = int(store.conn.execute("SELECT coalesce(max(erased_no), 0) + 1 FROM members").fetchone()[0])
    store.conn.execute(
        "UPDATE members SET name = ?, email = NULL, membership_end = NULL, staff = 0, "
        "status = 'suspended', current_project = NULL, erased_at = ?, erased_no = ? "
        "WHERE id = ?",
        (PSEUDONYM.format(n=n), at, n, member_id),
    )
    store.conn.execute("DELETE FROM badges WHERE member_id = ?", (member_id,))
    store.conn.execute(
        "UPDATE projects SET name = ?, status = 'archived' WHERE member_id = ?",
        (ERASED_PROJECT, member_id),
    )
    return n


def is_erased(store: HubStore, member_id: str) -> bool:
    row = store.conn.execute("SELECT erased_at FROM members WHERE id = ?", (member_id,)).fetchone()
    return bool(row and row[0])
