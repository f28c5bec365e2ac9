"""The catalogue: certification groups and machines, and the node serving each machine.

The only writer of ``groups`` and ``machines``. They come from the hub configuration,
synced at every start (``sync_catalogue``); machines are never deleted because past
sessions still name them. A change bumps ``meta.data_version`` through the schema's
triggers, so the nodes get new snapshots.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from gateway.config import GroupConfig, MachineConfig
from gateway.core.snapshot import MachineInfo
from gateway.hub.db import HubStore


def sync_catalogue(
    store: HubStore, groups: Iterable[GroupConfig], machines: Iterable[MachineConfig]
) -> None:
    """Upsert groups and machines from the hub config; machines are never deleted
    because past sessions still name them."""
    machines = list(machines)
    conn = store.conn
    with store.atomic():
        for g in groups:
            conn.execute(
                "INSERT INTO groups (id, name, default_validity_months, lapse_months) "
                "VALUES (?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET name = excluded.name, "
                "default_validity_months = excluded.default_validity_months, "
                "lapse_months = excluded.lapse_months",
                (g.id, g.name, g.default_validity_months, g.lapse_months),
            )
        for m in machines:
            conn.execute(
                "INSERT INTO machines (id, name, kind, group_id, min_level, out_of_service,"
                " requires_credit) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE "
                "SET name = excluded.name, kind = excluded.kind, "
                "group_id = excluded.group_id, min_level = excluded.min_level, "
                "out_of_service = excluded.out_of_service, "
                "requires_credit = excluded.requires_credit",
                (
                    m.id,
                    m.name,
                    m.kind,
                    m.group,
                    m.min_level,
                    int(m.out_of_service),
                    int(m.requires_credit),
                ),
            )
            conn.execute(
                "UPDATE machines SET certify_level = ? WHERE id = ?", (m.certify_level, m.id)
            )
        # The node each machine is served by; machines no longer configured keep their
        # past sessions but no node may speak for them.
        conn.execute("UPDATE machines SET node = NULL")
        conn.executemany(
            "UPDATE machines SET node = ? WHERE id = ?", [(m.node_id, m.id) for m in machines]
        )


# -- groups ------------------------------------------------------------------------------


def groups(store: HubStore) -> list[dict[str, Any]]:
    """Every group, by name: id, name, default_validity_months, lapse_months."""
    return [
        dict(r)
        for r in store.conn.execute(
            "SELECT id, name, default_validity_months, lapse_months FROM groups ORDER BY name"
        )
    ]


def group(store: HubStore, group_id: str) -> dict[str, Any] | None:
    row = store.conn.execute(
        "SELECT id, name, default_validity_months, lapse_months FROM groups WHERE id = ?",
        (group_id,),
    ).fetchone()
    return dict(row) if row else None


# -- machines ----------------------------------------------------------------------------


def machine_ids(store: HubStore) -> list[str]:
    return [r[0] for r in store.conn.execute("SELECT id FROM machines ORDER BY id")]


def machine_info(store: HubStore, machine_id: str) -> MachineInfo | None:
    """The machine as a snapshot carries it, or None when the hub does not know it."""
    row = store.conn.execute("SELECT * FROM machines WHERE id = ?", (machine_id,)).fetchone()
    if row is None:
        return None
    return MachineInfo(
        id=row["id"],
        name=row["name"],
        kind=row["kind"],
        group=row["group_id"],
        min_level=row["min_level"],
        out_of_service=bool(row["out_of_service"]),
        requires_credit=bool(row["requires_credit"]),
        certify_level=row["certify_level"],
    )


def machine_group(store: HubStore, machine_id: str) -> str | None:
    row = store.conn.execute("SELECT group_id FROM machines WHERE id = ?", (machine_id,)).fetchone()
    return row[0] if row else None


def machine_of_node(store: HubStore, node: str) -> str | None:
    """The machine a node serves, which is all the hub believes it about.

    The hub config names each machine's node (default: the machine id). A node the
    configuration does not name serves the machine of its own id, unless that machine
    is configured with another node: then it serves none. (A machine the hub does not
    know yet keeps its usage: usage is money.)
    """
    row = store.conn.execute(
        "SELECT id FROM machines WHERE node = ? ORDER BY id LIMIT 1", (node,)
    ).fetchone()
    if row is not None:
        return row[0]
    taken = store.conn.execute("SELECT 1 FROM machines WHERE id = ?", (node,)).fetchone()
    return None if taken else node
