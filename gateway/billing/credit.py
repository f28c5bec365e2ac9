"""Prepaid credit: the ledger of top-ups and corrections, and each member's balance.

The only writer of ``credit_ledger`` (append-only: a correction is a negative entry). A
member's balance is their top-ups minus the stored prices of their closed sessions on
machines that require credit (``gateway.billing.pricing`` stores those prices); other
machines are invoiced. The ledger's trigger bumps ``meta.data_version``, so a top-up
reaches the nodes in a new snapshot at once.
"""

from __future__ import annotations

from gateway.hub.store import HubStore


def members_with_credit(store: HubStore) -> list[str]:
    """Every member with a ledger entry, by id."""
    return [r[0] for r in store.conn.execute(
        "SELECT DISTINCT member_id FROM credit_ledger ORDER BY member_id")]
