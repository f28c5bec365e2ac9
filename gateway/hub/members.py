"""Members, their badges and their projects (and the current project of each member).

The only writer of ``members``, ``badges`` and ``projects``. Every change reaches the
machines by itself: the schema's triggers bump ``meta.data_version`` and the hub
republishes the snapshots, so nothing here talks to the nodes.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from gateway.core.ids import normalise_uid
from gateway.hub import audit
from gateway.hub.db import HubStore, update_changed


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


# -- administration from the web and the API (audited) ------------------------------------

MEMBER_CREATED = "member.created"
MEMBER_UPDATED = "member.updated"
BADGE_ADDED = "badge.added"
BADGE_REACTIVATED = "badge.reactivated"
MAX_NAME = 120
MAX_EMAIL = 254
_MEMBER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# What a person may change on a member record, in the order pages show them.
EDITABLE = ("name", "email", "category", "status", "membership_end", "staff", "paid_by")


class MemberError(ValueError):
    """A refused change; ``field`` names the form field (or JSON key) it is about."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class MemberFields:
    """A member record as the pages and ``POST /api/v1/members`` give it."""

    name: str
    category: str
    email: str | None = None
    status: str = "active"
    membership_end: date | None = None
    staff: bool = False
    paid_by: str | None = None


def _checked(store: HubStore, f: MemberFields, *, new: bool) -> dict[str, Any]:
    """The stored values of ``f``, or ``MemberError`` naming the first wrong field."""
    name = " ".join(f.name.split())
    if not name or len(name) > MAX_NAME:
        raise MemberError("name", f"a name of 1 to {MAX_NAME} characters")
    email = (f.email or "").strip() or None
    if email is not None and (
        len(email) > MAX_EMAIL or "@" not in email or any(c.isspace() for c in email)
    ):
        raise MemberError("email", "an e-mail address such as alice@example.org")
    known = {
        r[0]: bool(r[1]) for r in store.conn.execute("SELECT code, active FROM member_categories")
    }
    if f.category not in known or (new and not known[f.category]):
        choices = ", ".join(c for c, active in known.items() if active)
        raise MemberError("category", f"one of the categories ({choices})")
    if f.status not in ("active", "suspended"):
        raise MemberError("status", "active or suspended")
    if (
        f.paid_by is not None
        and not store.conn.execute(
            "SELECT 1 FROM organisations WHERE id = ?", (f.paid_by,)
        ).fetchone()
    ):
        raise MemberError("paid_by", f"a known organisation (no {f.paid_by!r})")
    return {
        "name": name,
        "email": email,
        "category": f.category,
        "status": f.status,
        "membership_end": f.membership_end.isoformat() if f.membership_end else None,
        "staff": int(f.staff),
        "paid_by": f.paid_by,
    }


def create_member(
    store: HubStore,
    fields: MemberFields,
    *,
    by: str,
    member_id: str | None = None,
    joined: date,
    badges: Sequence[str] = (),
) -> str:
    """A new member (and their badges, already normalised), audited; returns the id.

    Without an id one is made (``m-`` and 10 hex digits). ``MemberError`` names what is
    wrong: a taken id, a badge another member has, a bad field."""
    if member_id is not None and not _MEMBER_ID.match(member_id):
        raise MemberError("id", "letters, digits, '.', '_' or '-' (64 at most)")
    member_id = member_id or f"m-{uuid.uuid4().hex[:10]}"
    with store.atomic():
        values = _checked(store, fields, new=True)
        if exists(store, member_id):
            raise MemberError("id", f"the id {member_id!r} is already a member's")
        for uid in badges:
            owner = badge_owner(store, uid)
            if owner is not None:
                raise MemberError("badges", f"badge {uid} already belongs to {owner}")
        store.conn.execute(
            "INSERT INTO members (id, name, email, category, status, membership_end, staff, "
            "paid_by, joined_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (member_id, *values.values(), joined.isoformat()),
        )
        for uid in badges:
            attach_badge(store, uid, member_id)
        audit.record(store, by, MEMBER_CREATED, member_id, {**values, "badges": list(badges)})
    return member_id


def edit_member(
    store: HubStore, member_id: str, fields: MemberFields, *, by: str
) -> dict[str, Any]:
    """Change what differs, audited with each field's old and new value; returns those
    changes (empty: nothing to do). A suspension, a category, a membership end or a
    staff flag reaches the machines in the next snapshot (the members trigger)."""
    with store.atomic():
        old = member(store, member_id)
        if old is None:
            raise MemberError("id", f"no member {member_id!r}")
        values = _checked(store, fields, new=False)
        changes = update_changed(store, "members", member_id, old, values)
        if changes:
            audit.record(store, by, MEMBER_UPDATED, member_id, {"changes": changes})
    return changes


def add_badge_by_uid(store: HubStore, member_id: str, uid: str, *, by: str) -> None:
    """A badge typed in (read on a desk reader): active at once, audited. ``MemberError``
    when the uid is not a badge or is known already (a blocked badge stays blocked)."""
    try:
        uid = normalise_uid(uid)
    except ValueError as exc:
        raise MemberError("uid", str(exc)) from None
    with store.atomic():
        if not exists(store, member_id):
            raise MemberError("id", f"no member {member_id!r}")
        owner = badge_owner(store, uid)
        if owner is not None:
            raise MemberError("uid", f"badge {uid} is already known (member {owner})")
        attach_badge(store, uid, member_id)
        audit.record(store, by, BADGE_ADDED, member_id, {"uid": uid})


def reactivate_badge(store: HubStore, member_id: str, uid: str, *, by: str) -> bool:
    """A blocked badge found again opens machines again; False if it was not blocked."""
    with store.atomic():
        cur = store.conn.execute(
            "UPDATE badges SET status = 'active' WHERE uid = ? AND member_id = ? "
            "AND status = 'blocked'",
            (uid, member_id),
        )
        if cur.rowcount:
            audit.record(store, by, BADGE_REACTIVATED, member_id, {"uid": uid})
    return bool(cur.rowcount)


def find_members(
    store: HubStore,
    *,
    q: str | None = None,
    status: str | None = None,
    category: str | None = None,
    paid_by: str | None = None,
    staff: bool | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[int, list[dict[str, Any]]]:
    """(how many match, one page of them by name) with their active badges' uids.

    ``q`` matches a part of the name, the id or the e-mail, case aside."""
    clauses: list[str] = []
    args: list[Any] = []
    if q:
        like = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        clauses.append(
            "(m.name LIKE ? ESCAPE '\\' OR m.id LIKE ? ESCAPE '\\' OR m.email LIKE ? ESCAPE '\\')"
        )
        args += [like, like, like]
    for column, value in (("status", status), ("category", category), ("paid_by", paid_by)):
        if value is not None:
            clauses.append(f"m.{column} = ?")
            args.append(value)
    if staff is not None:
        clauses.append("m.staff = ?")
        args.append(int(staff))
    where = f"WHERE {' AND '.join(clauses)} " if clauses else ""
    total = store.conn.execute(f"SELECT count(*) FROM members m {where}", args).fetchone()[0]
    rows = [
        dict(r)
        for r in store.conn.execute(
            "SELECT m.id, m.name, m.email, m.category, m.status, m.membership_end, m.staff, "
            "m.paid_by, m.joined_at, (SELECT group_concat(b.uid, ' ') FROM badges b "
            "WHERE b.member_id = m.id AND b.status = 'active') AS badges "
            f"FROM members m {where}ORDER BY m.name, m.id LIMIT ? OFFSET ?",
            (*args, limit, offset),
        )
    ]
    for r in rows:
        r["staff"] = bool(r["staff"])
        r["badges"] = sorted((r["badges"] or "").split())
    return int(total), rows
