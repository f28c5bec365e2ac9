"""Certifications: who may use which group of machines, at what level, until when.

The only writer of ``certifications``, and the one place the lapse rule is written: a
group may end certifications after ``lapse_months`` without use of any of its machines
(``lapses_at``). Snapshots, the trust checks and the member pages all read a member's
level and expiry through this module, so the node, the hub and the person see the same
date.

A member's level on a group is their highest non-revoked certification; a live one beats
a higher expired one, and the expiry that goes with it is the earlier of its own end and
its lapse date.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from gateway.contract import CertificationGranted, Envelope, parse_iso
from gateway.core.clock import iso
from gateway.hub import audit, catalogue, sessions
from gateway.hub.db import HubStore


def add_months(t: datetime, months: int) -> datetime:
    """Calendar months later, clamped to the month's last day (31 Jan + 1 = 28/29 Feb)."""
    y, m = divmod(t.month - 1 + months, 12)
    year, month = t.year + y, m + 1
    last = (date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)).day
    return t.replace(year=year, month=month, day=min(t.day, last))


# -- the lapse rule ----------------------------------------------------------------------


def lapses_at(certified_at: str, last_use: str | None, lapse_months: int | None) -> str | None:
    """When the lapse-without-use rule ends a certification (None: the group has none).

    The later of its grant and the member's last session on the group, plus the group's
    ``lapse_months``: using a machine pushes the date back, the certification's own
    expiry stays where it is.
    """
    if not lapse_months:
        return None
    since = max(certified_at, last_use or "")
    return iso(add_months(parse_iso(since), lapse_months))


def effective_expiry(expires_at: str | None, lapses: str | None) -> str | None:
    """The earlier of a certification's own end and its lapse date (None: neither)."""
    if lapses is None:
        return expires_at
    return lapses if expires_at is None else min(expires_at, lapses)


# -- levels ------------------------------------------------------------------------------


def best_certifications(
    store: HubStore, group_id: str, now: datetime
) -> dict[str, tuple[int, str | None]]:
    """member -> (level, effective expiry) on the group, lapses without use included,
    for every member holding a non-revoked certification on it (expired ones too: a
    node then answers ``certification_expired`` rather than a puzzling
    ``not_certified``)."""
    now_s = iso(now)
    group = catalogue.group(store, group_id)
    months = group["lapse_months"] if group else None
    last_use = sessions.last_use_on_group(store, group_id) if months else {}
    best: dict[str, tuple[int, str | None]] = {}
    for c in store.conn.execute(
        "SELECT member_id, level, expires_at, certified_at, "
        "(expires_at IS NULL OR expires_at > ?) AS live FROM certifications "
        "WHERE group_id = ? AND revoked_at IS NULL "
        "ORDER BY member_id, live DESC, level DESC, coalesce(expires_at, '9999') DESC",
        (now_s, group_id),
    ):
        if c["member_id"] in best:
            continue
        lapses = lapses_at(c["certified_at"], last_use.get(c["member_id"]), months)
        best[c["member_id"]] = (c["level"], effective_expiry(c["expires_at"], lapses))
    return best


def certification_expiry(
    store: HubStore, member_id: str, group_id: str, now: datetime
) -> tuple[int, datetime | None]:
    """(level, effective expiry) a member holds on a group."""
    level, expires = best_certifications(store, group_id, now).get(member_id, (0, None))
    return level, parse_iso(expires) if expires else None


def live_level(store: HubStore, member_id: str, group_id: str, now: datetime) -> int:
    """The level a member may use now (0 when expired, lapsed, revoked or never held)."""
    level, expires = certification_expiry(store, member_id, group_id, now)
    return level if expires is None or expires > now else 0


def live_levels(store: HubStore, group_ids: list[str], now: datetime) -> dict[str, dict[str, int]]:
    """member -> {group: level} of the live certifications on those groups."""
    levels: dict[str, dict[str, int]] = {}
    for group_id in group_ids:
        for member_id, (level, expires) in best_certifications(store, group_id, now).items():
            if level and (expires is None or expires > iso(now)):
                levels.setdefault(member_id, {})[group_id] = level
    return levels


def of_member(
    store: HubStore, member_id: str, now: datetime, groups: set[str] | None = None
) -> list[dict[str, Any]]:
    """A member's certifications, by group name then newest first, each with its state
    (live, expired, revoked) and its lapse date (``lapses_at``), shown apart from the
    expiry because using a machine pushes it back while the expiry stays."""
    last_use = sessions.last_use_of_member(store, member_id)
    rows = store.conn.execute(
        "SELECT c.*, g.name AS group_name, g.lapse_months, tr.name AS certified_by_name "
        "FROM certifications c JOIN groups g ON g.id = c.group_id "
        "LEFT JOIN members tr ON tr.id = c.certified_by WHERE c.member_id = ? "
        "ORDER BY g.name, c.certified_at DESC",
        (member_id,),
    ).fetchall()
    now_s = iso(now)
    out = []
    for r in rows:
        c = dict(r)
        if groups is not None and c["group_id"] not in groups:
            continue
        c["last_use"] = last_use.get(c["group_id"])
        lapses = lapses_at(c["certified_at"], c["last_use"], c["lapse_months"])
        c["lapses_at"] = lapses
        expires = effective_expiry(c["expires_at"], lapses)
        if c["revoked_at"]:
            c["state"] = "revoked"
        elif expires is not None and expires <= now_s:
            c["state"] = "expired"
        else:
            c["state"] = "live"
        out.append(c)
    return out


# -- changes -----------------------------------------------------------------------------


def _upsert(
    store: HubStore,
    member_id: str,
    group_id: str,
    level: int,
    *,
    certified_by: str | None,
    certified_at: datetime,
    expires_at: datetime | None = None,
    note: str | None = None,
) -> None:
    store.conn.execute(
        "INSERT INTO certifications (member_id, group_id, level, certified_by, "
        "certified_at, expires_at, note) VALUES (?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT(member_id, group_id, certified_at) DO UPDATE SET "
        "level = excluded.level, certified_by = excluded.certified_by, "
        "expires_at = excluded.expires_at, note = coalesce(excluded.note, note)",
        (
            member_id,
            group_id,
            level,
            certified_by,
            iso(certified_at),
            iso(expires_at) if expires_at else None,
            note,
        ),
    )


def add_certification(
    store: HubStore,
    member_id: str,
    group_id: str,
    level: int,
    *,
    certified_by: str | None,
    certified_at: datetime,
    expires_at: datetime | None = None,
    note: str | None = None,
) -> None:
    """Record a certification; the same (member, group, certified_at) is updated."""
    with store.atomic():
        _upsert(
            store,
            member_id,
            group_id,
            level,
            certified_by=certified_by,
            certified_at=certified_at,
            expires_at=expires_at,
            note=note,
        )


def add_if_missing(
    store: HubStore,
    member_id: str,
    group_id: str,
    level: int,
    *,
    certified_by: str | None,
    certified_at: datetime,
    expires_at: datetime | None = None,
) -> bool:
    """Record a certification unless the same (member, group, certified_at) exists (a
    seed creates what is missing only); True if created."""
    return (
        store.conn.execute(
            "INSERT INTO certifications (member_id, group_id, level, certified_by, "
            "certified_at, expires_at) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(member_id, group_id, certified_at) DO NOTHING",
            (
                member_id,
                group_id,
                level,
                certified_by,
                iso(certified_at),
                iso(expires_at) if expires_at else None,
            ),
        ).rowcount
        == 1
    )


def add_certifications(store: HubStore, rows: Iterable[Sequence[Any]]) -> None:
    """(member_id, group_id, level, certified_by, certified_at, expires_at, revoked_at)
    rows of a generated history; one already there is left as it is."""
    store.conn.executemany(
        "INSERT OR IGNORE INTO certifications (member_id, group_id, level, "
        "certified_by, certified_at, expires_at, revoked_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        rows,
    )


def revoke_certification(store: HubStore, member_id: str, group_id: str, at: datetime) -> int:
    """Revoke every live certification of a member on a group; returns how many."""
    with store.atomic():
        cur = store.conn.execute(
            "UPDATE certifications SET revoked_at = ? WHERE member_id = ? "
            "AND group_id = ? AND revoked_at IS NULL",
            (iso(at), member_id, group_id),
        )
    return cur.rowcount


def grant(
    store: HubStore,
    member_id: str,
    group_id: str,
    level: int,
    *,
    by: str,
    at: datetime,
    months: int,
    note: str | None = None,
) -> datetime:
    """A certification a person grants (the pages), valid ``months``, audited in the
    same transaction; returns its expiry."""
    expires = add_months(at, months)
    with store.atomic():
        _upsert(
            store,
            member_id,
            group_id,
            level,
            certified_by=by,
            certified_at=at,
            expires_at=expires,
            note=note,
        )
        audit.record(
            store,
            by,
            audit.CERTIFICATION_GRANTED,
            member_id,
            {"group": group_id, "level": level, "validity_months": months, "note": note},
        )
    return expires


def revoke(store: HubStore, member_id: str, group_id: str, *, by: str, at: datetime) -> int:
    """Revoke a member's live certifications on a group, audited; returns how many."""
    with store.atomic():
        count = revoke_certification(store, member_id, group_id, at)
        if count:
            audit.record(
                store,
                by,
                audit.CERTIFICATION_REVOKED,
                member_id,
                {"group": group_id, "certifications": count},
            )
    return count


def certified_at_machine(
    store: HubStore, env: Envelope, ev: CertificationGranted, received_at: datetime
) -> None:
    """Record a certification given at the machine (gateway.hub.events.trust checked the
    trainer, the group and the trainee's tap), audited. It counts from the event's time,
    but never from later than the hub received it: a node's clock cannot push it ahead;
    it lasts the group's default validity."""
    at = min(parse_iso(env.time), received_at.astimezone(UTC))
    group = catalogue.group(store, ev.group)
    if group is None:  # the trust checks name the machine's own group: a bug if not
        raise LookupError(f"no group {ev.group!r} for a certification at the machine")
    months = group["default_validity_months"]
    _upsert(
        store,
        ev.member_id,
        ev.group,
        ev.level,
        certified_by=ev.trainer_id,
        certified_at=at,
        expires_at=add_months(at, months),
        note=f"certified at machine {ev.machine}",
    )
    audit.record(
        store,
        ev.trainer_id,
        audit.CERTIFICATION_GRANTED,
        ev.member_id,
        {"group": ev.group, "level": ev.level, "machine": ev.machine, "at_machine": True},
    )


def end_all(store: HubStore, member_id: str, at: datetime) -> int:
    """Erasure: every live certification of the member ends now (kept as revoked, for
    the training statistics); returns how many."""
    return store.conn.execute(
        "UPDATE certifications SET revoked_at = ? WHERE member_id = ? AND revoked_at IS NULL",
        (iso(at), member_id),
    ).rowcount


def notes_cleared(store: HubStore, member_id: str) -> int:
    """Erasure: a trainer's free-text notes about the member go, revoked ones too."""
    return store.conn.execute(
        "UPDATE certifications SET note = NULL WHERE member_id = ? AND note IS NOT NULL",
        (member_id,),
    ).rowcount
