"""Permission snapshots: everything one node needs to decide a tap alone.

Built from the members, badges, certifications (with their lapse rule), prepaid
credit and the machine's session rules of the database, for one machine; signed and
published by the hub service. The version and the epoch (kept in ``meta``) order
snapshots at the nodes: a restarted hub never issues a version a node already holds, and
a database restored from a backup still issues snapshots nodes take as newer
(``advance_epoch``).
"""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, timedelta

from gateway.billing import credit
from gateway.contract import parse_iso
from gateway.core.snapshot import MemberGrant, OpeningHours, Snapshot
from gateway.hub import catalogue, certifications, machine_rules, members
from gateway.hub.db import HubStore, increment_meta, meta_int, set_meta


def next_snapshot_version(store: HubStore) -> int:
    """Persisted so that a restarted hub never issues a version a node already holds."""
    return increment_meta(store, "snapshot_version")


def snapshot_epoch(store: HubStore) -> int:
    return meta_int(store, "snapshot_epoch")


def advance_epoch(store: HubStore, now: datetime) -> int:
    """Move the snapshot epoch forward, once per hub start; returns the new epoch.

    ``max(stored + 1, unix seconds of now)``. The clock term is for a database
    restored from a backup: its stored epoch (and versions) are older than what the
    nodes hold, but the time has moved on since, so its snapshots are newer again.
    The ``stored + 1`` term is for a clock that is wrong or behind (a hub without a
    real-time clock booting before NTP): the epoch still never repeats on the same
    database. Only both together - a restored database *and* a clock behind - can
    issue snapshots nodes refuse as ``older``; they say so in ``snapshot.rejected``.
    """
    with store.atomic():
        epoch = max(snapshot_epoch(store) + 1, int(now.timestamp()))
        set_meta(store, "snapshot_epoch", str(epoch))
    return epoch


def build_snapshot(
    store: HubStore,
    machine_id: str,
    *,
    now: datetime,
    version: int,
    validity: timedelta,
    timezone: str,
    opening_hours: OpeningHours,
    staff_present_until: datetime | None,
    site: str = "",
    epoch: int = 0,
) -> Snapshot:
    """Everything one node needs to decide a tap alone, for every active badge.

    A member's level is their highest non-revoked certification on the machine's
    group *including expired ones*, with that certification's expiry: the node can
    then answer ``certification_expired`` rather than a puzzling ``not_certified``.
    A live certification outranks an expired one of a higher level.
    """
    machine = catalogue.machine_info(store, machine_id)
    if machine is None:
        raise KeyError(f"unknown machine {machine_id!r}")
    # The session rules set on the web travel with the machine (docs/mqtt.md).
    machine = dataclasses.replace(machine, session=machine_rules.rules_of(store, machine_id))
    badges = members.active_badges(store)
    best = certifications.best_certifications(store, machine.group, now)
    grants: dict[str, MemberGrant] = {}
    wanted = set(badges.values())
    for m in members.member_rows(store):
        if m["id"] not in wanted:
            continue
        level, expires = best.get(m["id"], (0, None))
        grants[m["id"]] = MemberGrant(
            member_id=m["id"],
            name=m["name"],
            category=m["category"],
            status=m["status"],
            membership_end=(
                date.fromisoformat(m["membership_end"]) if m["membership_end"] else None
            ),
            level=level,
            cert_expires=parse_iso(expires) if expires else None,
            staff=bool(m["staff"]),
            project_id=m["current_project"],
            credit_s=credit.credit_seconds(store, machine, m["id"], now),
        )
    return Snapshot(
        site=site,
        version=version,
        epoch=epoch,
        issued_at=now,
        valid_until=now + validity,
        machine=machine,
        timezone=timezone,
        badges={uid: mid for uid, mid in badges.items() if mid in grants},
        members=grants,
        staff_present_until=staff_present_until,
        opening_hours=opening_hours,
    )
