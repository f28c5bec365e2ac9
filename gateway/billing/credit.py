"""Prepaid credit: the ledger of top-ups and corrections, and each member's balance.

The only writer of ``credit_ledger`` (append-only: a correction is a negative entry). A
member's balance is their top-ups minus the stored prices of their closed sessions on
machines that require credit (``gateway.billing.pricing`` stores those prices); other
machines are invoiced. The ledger's trigger bumps ``meta.data_version``, so a top-up
reaches the nodes in a new snapshot at once, with the time it buys (``credit_seconds``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from gateway.billing import pricing
from gateway.billing.tariffs import max_session_s
from gateway.core.clock import iso
from gateway.core.snapshot import MachineInfo
from gateway.hub import audit
from gateway.hub.db import HubStore

MAX_TOP_UP_CENTS = 1_000_000  # 10 000 €: a typo of two zeros is refused, not credited


def add_credit(
    store: HubStore,
    member_id: str,
    amount_cents: int,
    *,
    at: datetime,
    note: str = "",
    by: str | None = None,
) -> None:
    """A top-up (positive) or a correction (negative); the ledger is append-only."""
    if isinstance(amount_cents, bool) or not isinstance(amount_cents, int):
        raise TypeError("credit amounts are integer cents")
    with store.atomic():
        store.conn.execute(
            "INSERT INTO credit_ledger (member_id, amount_cents, at, note, by) "
            "VALUES (?, ?, ?, ?, ?)",
            (member_id, amount_cents, iso(at), note, by),
        )


def balance(store: HubStore, member_id: str) -> int:
    """Top-ups minus the amounts of sessions on machines that require credit."""
    row = store.conn.execute(
        "SELECT (SELECT coalesce(sum(amount_cents), 0) FROM credit_ledger "
        "WHERE member_id = ?) - (SELECT coalesce(sum(s.amount_cents), 0) FROM sessions s "
        "JOIN machines m ON m.id = s.machine_id WHERE s.member_id = ? "
        "AND m.requires_credit = 1 AND s.status = 'closed')",
        (member_id, member_id),
    ).fetchone()
    return int(row[0])


def members_with_credit(store: HubStore) -> list[str]:
    """Every member with a ledger entry, by id."""
    return [
        r[0]
        for r in store.conn.execute(
            "SELECT DISTINCT member_id FROM credit_ledger ORDER BY member_id"
        )
    ]


def credit_seconds(
    store: HubStore, machine: MachineInfo, member_id: str, now: datetime
) -> float | None:
    """How long the member's balance lets them use a machine that requires credit
    (None: the machine does not; 0: no credit left), priced by the tariff their next
    session would have."""
    if not machine.requires_credit:
        return None
    left = balance(store, member_id)
    if left <= 0:
        return 0.0
    return max_session_s(pricing.next_session_tariff(store, machine.id, member_id, now), left)


def movements_of(store: HubStore, member_id: str) -> list[dict[str, Any]]:
    """The member's ledger entries, oldest first (the export)."""
    return [
        dict(r)
        for r in store.conn.execute(
            "SELECT id, amount_cents, at, note, by FROM credit_ledger WHERE member_id = ? "
            "ORDER BY at, id",
            (member_id,),
        )
    ]


def top_up(
    store: HubStore, member_id: str, amount_cents: int, *, at: datetime, note: str, by: str
) -> int:
    """A top-up or a correction made by a person, audited (``credit.added``) in the same
    transaction; returns the new balance. Reaches the nodes in the next snapshot."""
    if isinstance(amount_cents, bool) or not isinstance(amount_cents, int) or not amount_cents:
        raise ValueError("a non-zero amount of whole cents")
    if abs(amount_cents) > MAX_TOP_UP_CENTS:
        raise ValueError(f"at most {MAX_TOP_UP_CENTS // 100} € at a time")
    with store.atomic():
        if not store.conn.execute("SELECT 1 FROM members WHERE id = ?", (member_id,)).fetchone():
            raise ValueError(f"no member {member_id!r}")
        add_credit(store, member_id, amount_cents, at=at, note=note, by=by)
        audit.record(
            store, by, audit.CREDIT_ADDED, member_id, {"amount_cents": amount_cents, "note": note}
        )
        return balance(store, member_id)


def ledger(store: HubStore, member_id: str, limit: int = 50) -> list[dict[str, object]]:
    """The member's latest ledger entries, newest first."""
    return [
        dict(r)
        for r in store.conn.execute(
            "SELECT id, amount_cents, at, note, by FROM credit_ledger WHERE member_id = ? "
            "ORDER BY id DESC LIMIT ?",
            (member_id, limit),
        )
    ]


def balances(store: HubStore) -> list[dict[str, object]]:
    """Every member with a ledger entry: id, name and balance, by name."""
    names = {
        r[0]: r[1]
        for r in store.conn.execute(
            "SELECT m.id, m.name FROM members m WHERE m.id IN "
            "(SELECT DISTINCT member_id FROM credit_ledger)"
        )
    }
    rows = [{"id": m, "name": names.get(m, m), "balance": balance(store, m)} for m in names]
    return sorted(rows, key=lambda r: (str(r["name"]), str(r["id"])))
