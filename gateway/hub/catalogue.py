"""The catalogue: certification groups and machines, and the node serving each machine.

The only writer of ``groups`` and ``machines``. They come from the hub configuration,
synced at every start (``sync_catalogue``); machines are never deleted because past
sessions still name them. A change bumps ``meta.data_version`` through the schema's
triggers, so the nodes get new snapshots.
"""

from __future__ import annotations

from typing import Any

from gateway.hub.store import HubStore


def groups(store: HubStore) -> list[dict[str, Any]]:
    """Every group, by name: id, name, default_validity_months, lapse_months."""
    return [dict(r) for r in store.conn.execute(
        "SELECT id, name, default_validity_months, lapse_months FROM groups ORDER BY name")]


def group(store: HubStore, group_id: str) -> dict[str, Any] | None:
    row = store.conn.execute(
        "SELECT id, name, default_validity_months, lapse_months FROM groups WHERE id = ?",
        (group_id,)).fetchone()
    return dict(row) if row else None
