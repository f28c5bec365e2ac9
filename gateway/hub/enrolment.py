"""Badge enrolment: a short window in which the next unknown badge tapped anywhere is
attached to a member.

The only writer of ``enrolments``. A fabmanager opens a window from the member's page;
the hub publishes it (retained) to every node; the first node that sees an unknown badge
reports it, and the badge is attached here (``members.attach_badge``), audited. Every
change bumps ``meta.enrolment_version`` (a trigger), which the publisher watches.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from gateway.contract import BadgeEnrolled, Envelope
from gateway.core.clock import iso
from gateway.hub import audit, members
from gateway.hub.db import HubStore, meta_int, purge_rows


def create_enrolment(
    store: HubStore, member_id: str, *, by: str | None, now: datetime, seconds: float = 30.0
) -> str:
    """Open a short window in which the next unknown badge tapped anywhere is attached.

    One window at a time for the whole site: a new request ends any pending one, so
    two fabmanagers cannot attach one badge to two members.
    """
    request_id = str(uuid.uuid4())
    with store.atomic():
        store.conn.execute("UPDATE enrolments SET status = 'expired' WHERE status = 'pending'")
        store.conn.execute(
            "INSERT INTO enrolments (request_id, member_id, requested_by, created_at, "
            "until) VALUES (?, ?, ?, ?, ?)",
            (request_id, member_id, by, iso(now), iso(now + timedelta(seconds=seconds))),
        )
    return request_id


def enrolment(store: HubStore, request_id: str) -> dict[str, Any] | None:
    """The window's row as stored (its status is not aged: see ``enrolment_status``)."""
    row = store.conn.execute(
        "SELECT * FROM enrolments WHERE request_id = ?", (request_id,)
    ).fetchone()
    return dict(row) if row else None


def enrolment_status(store: HubStore, request_id: str, now: datetime) -> dict[str, Any] | None:
    """The window as the member's page shows it: a pending one past its end is expired."""
    d = enrolment(store, request_id)
    if d is None:
        return None
    if d["status"] == "pending" and d["until"] <= iso(now):
        d["status"] = "expired"
    return d


def pending_enrolment(store: HubStore, now: datetime) -> dict[str, Any] | None:
    row = store.conn.execute(
        "SELECT request_id, member_id, until FROM enrolments WHERE status = 'pending' "
        "AND until > ? ORDER BY created_at DESC LIMIT 1",
        (iso(now),),
    ).fetchone()
    return dict(row) if row else None


def enrolment_version(store: HubStore) -> int:
    return meta_int(store, "enrolment_version")


def badge_enrolled(
    store: HubStore, env: Envelope, ev: BadgeEnrolled, received_at: datetime
) -> None:
    """Attach the badge to the window's member (gateway.hub.events.trust checked the
    window); a badge that belongs to someone already is refused, and said so."""
    uid, request_id = ev.uid, ev.request_id
    at = iso(received_at)
    row = enrolment(store, request_id)
    if row is None:  # the trust checks found it: a bug if not
        raise LookupError(f"no enrolment {request_id!r}")
    owner = members.badge_owner(store, uid)
    if owner is not None:
        store.conn.execute(
            "UPDATE enrolments SET status = 'refused', uid = ?, detail = ? WHERE request_id = ?",
            (uid, f"badge already belongs to {owner}", request_id),
        )
        return
    members.attach_badge(store, uid, row["member_id"])
    store.conn.execute(
        "UPDATE enrolments SET status = 'attached', uid = ?, node = ?, "
        "attached_at = ? WHERE request_id = ?",
        (uid, env.node, at, request_id),
    )
    audit.record(
        store,
        row["requested_by"] or "system",
        audit.BADGE_ENROLLED,
        row["member_id"],
        {"uid": uid, "node": env.node, "request_id": request_id},
    )


# -- retention and one member's data (docs/rgpd.md) ----------------------------------------


def purge(store: HubStore, before: str, *, apply: bool) -> int:
    """Enrolment windows opened before ``before`` (none still pending): counted, or
    deleted when ``apply``. Which badge went to whom stays in the audit log."""
    return purge_rows(
        store, "enrolments", "created_at < ? AND status != 'pending'", (before,), apply=apply
    )


def of_member(store: HubStore, member_id: str) -> list[dict[str, Any]]:
    return [
        dict(r)
        for r in store.conn.execute(
            "SELECT request_id, requested_by, created_at, until, status, uid, node, "
            "attached_at, detail FROM enrolments WHERE member_id = ? ORDER BY created_at",
            (member_id,),
        )
    ]


def forget(store: HubStore, member_id: str) -> None:
    """Erasure: the member's windows go (a pending one with them, so no badge can be
    attached to an erased member)."""
    store.conn.execute("DELETE FROM enrolments WHERE member_id = ?", (member_id,))
