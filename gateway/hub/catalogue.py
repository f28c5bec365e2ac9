"""The catalogue: certification groups and machines, and the node serving each machine.

The only writer of ``groups`` and ``machines`` (and of ``meta.config_catalogue``). They
come from the hub configuration and from the administration pages. At start the hub
imports the file with ``import_catalogue``: what the database lacks is created, and an
entry the file changed since the hub last read it is applied; an entry the file did not
change leaves the database as the web left it (docs/admin.md, "Where the truth lives").
``sync_catalogue`` is the plain upsert (tests, generated histories). Machines are never
deleted because past sessions still name them. A change bumps ``meta.data_version``
through the schema's triggers, so the nodes get new snapshots within a second.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Iterable
from typing import Any

from gateway.config import GroupConfig, MachineConfig
from gateway.config.models import MACHINE_KINDS
from gateway.core.levels import CERTIFY_LEVELS, Level
from gateway.core.snapshot import MachineInfo
from gateway.hub import audit
from gateway.hub.db import HubStore, insert_row, meta_text, set_meta, update_changed


def sync_catalogue(
    store: HubStore,
    groups: Iterable[GroupConfig],
    machines: Iterable[MachineConfig],
    *,
    unserve_others: bool = True,
) -> None:
    """Upsert groups and machines as given; machines are never deleted because past
    sessions still name them. ``unserve_others``: machines not given lose their node
    (the file is the whole catalogue); ``import_catalogue`` passes False."""
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
        if unserve_others:
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
        out_of_service_reason=(row["out_of_service_reason"] or "") if row["out_of_service"] else "",
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


def credit_machines(store: HubStore) -> set[str]:
    """Machines whose taps need prepaid credit (a session there spends a balance)."""
    return {r[0] for r in store.conn.execute("SELECT id FROM machines WHERE requires_credit = 1")}


def machines(store: HubStore) -> list[dict[str, Any]]:
    """Every machine with its settings, by name (the administration pages)."""
    rows = [
        dict(r)
        for r in store.conn.execute(
            "SELECT id, name, kind, group_id, min_level, certify_level, out_of_service, "
            "out_of_service_reason, requires_credit, coalesce(node, id) AS node_id, "
            "node IS NOT NULL AS served FROM machines ORDER BY name, id"
        )
    ]
    for r in rows:
        for flag in ("out_of_service", "requires_credit", "served"):
            r[flag] = bool(r[flag])
    return rows


def machine(store: HubStore, machine_id: str) -> dict[str, Any] | None:
    return next((m for m in machines(store) if m["id"] == machine_id), None)


# -- administration (audited) ------------------------------------------------------------

GROUP_CREATED = "group.created"
GROUP_UPDATED = "group.updated"
MACHINE_CREATED = "machine.created"
MACHINE_UPDATED = "machine.updated"
MACHINE_OUT_OF_SERVICE = "machine.out_of_service"
MACHINE_BACK_IN_SERVICE = "machine.back_in_service"
CATALOGUE_IMPORTED = "catalogue.imported"
CONFIG_KEY = "config_catalogue"
MAX_NAME = 120
MAX_REASON = 200
_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")


class CatalogueError(ValueError):
    """A refused change; ``field`` names the form field it is about."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def _name(value: str) -> str:
    name = " ".join(value.split())
    if not name or len(name) > MAX_NAME:
        raise CatalogueError("name", f"a name of 1 to {MAX_NAME} characters")
    return name


def _new_id(value: str) -> str:
    if not _ID.match(value):
        raise CatalogueError("id", "lower-case letters, digits, '-' or '_' (40 at most)")
    return value


def _group_values(g: GroupConfig) -> dict[str, Any]:
    if not 1 <= g.default_validity_months <= 600:
        raise CatalogueError("default_validity_months", "1 to 600 months")
    if g.lapse_months is not None and not 1 <= g.lapse_months <= 600:
        raise CatalogueError("lapse_months", "1 to 600 months, or empty (never lapses)")
    return {
        "name": _name(g.name),
        "default_validity_months": g.default_validity_months,
        "lapse_months": g.lapse_months,
    }


def save_group(store: HubStore, g: GroupConfig, *, by: str, new: bool) -> dict[str, Any]:
    """Create (``new``) or change a certification group, audited; returns the changes."""
    values = _group_values(g)
    with store.atomic():
        old = group(store, g.id)
        if new:
            _new_id(g.id)
            if old is not None:
                raise CatalogueError("id", f"the group {g.id!r} exists")
            store.conn.execute(
                "INSERT INTO groups (id, name, default_validity_months, lapse_months) "
                "VALUES (?, ?, ?, ?)",
                (g.id, *values.values()),
            )
            audit.record(store, by, GROUP_CREATED, g.id, values)
            return values
        if old is None:
            raise CatalogueError("id", f"no group {g.id!r}")
        changes = update_changed(store, "groups", g.id, old, values)
        if changes:
            audit.record(store, by, GROUP_UPDATED, g.id, {"changes": changes})
        return changes


def _machine_values(store: HubStore, m: MachineConfig, reason: str) -> dict[str, Any]:
    if m.kind not in MACHINE_KINDS:
        raise CatalogueError("kind", f"one of {', '.join(MACHINE_KINDS)}")
    if group(store, m.group) is None:
        raise CatalogueError("group", f"a known certification group (no {m.group!r})")
    if not Level.SUPERVISED <= m.min_level <= Level.TRAINER:
        raise CatalogueError("min_level", "1 supervised, 2 autonomous or 3 trainer")
    if m.certify_level not in CERTIFY_LEVELS:
        raise CatalogueError("certify_level", "1 supervised or 2 autonomous")
    reason = " ".join(reason.split())
    if len(reason) > MAX_REASON:
        raise CatalogueError("out_of_service_reason", f"{MAX_REASON} characters at most")
    if m.out_of_service and not reason:
        raise CatalogueError(
            "out_of_service_reason", "a reason: members read it at the machine and on the board"
        )
    node = m.node_id
    if not _ID.match(node):
        raise CatalogueError("node", "lower-case letters, digits, '-' or '_' (40 at most)")
    taken = store.conn.execute(
        "SELECT id FROM machines WHERE coalesce(node, id) = ? AND id != ? AND node IS NOT NULL",
        (node, m.id),
    ).fetchone()
    if taken:
        raise CatalogueError("node", f"a node serves one machine: {node!r} serves {taken[0]!r}")
    return {
        "name": _name(m.name),
        "kind": m.kind,
        "group_id": m.group,
        "min_level": int(m.min_level),
        "certify_level": int(m.certify_level),
        "requires_credit": int(m.requires_credit),
        "node": node,
        "out_of_service": int(m.out_of_service),
        "out_of_service_reason": reason if m.out_of_service else None,
    }


def save_machine(
    store: HubStore, m: MachineConfig, *, by: str, new: bool, reason: str = ""
) -> dict[str, Any]:
    """Create (``new``) or change a machine, audited; returns the changes. A change the
    node must know (out of service and its reason, levels, credit) is in the next
    snapshot: the machines trigger bumps ``data_version``."""
    with store.atomic():
        values = _machine_values(store, m, reason)
        old = store.conn.execute("SELECT * FROM machines WHERE id = ?", (m.id,)).fetchone()
        if new:
            _new_id(m.id)
            if old is not None:
                raise CatalogueError("id", f"the machine {m.id!r} exists")
            insert_row(store, "machines", m.id, values)
            audit.record(store, by, MACHINE_CREATED, m.id, values)
            return values
        if old is None:
            raise CatalogueError("id", f"no machine {m.id!r}")
        changes = update_changed(store, "machines", m.id, old, values)
        if changes:
            action = MACHINE_UPDATED
            if "out_of_service" in changes:
                action = MACHINE_OUT_OF_SERVICE if m.out_of_service else MACHINE_BACK_IN_SERVICE
            audit.record(store, by, action, m.id, {"changes": changes})
        return changes


def set_out_of_service(
    store: HubStore, machine_id: str, out: bool, reason: str, *, by: str
) -> bool:
    """The switch the fabmanager uses most: out of service, with the reason members read
    at the machine (in the snapshot) and on the board, or back in service. Audited;
    False when the machine already was so (with that reason)."""
    reason = " ".join(reason.split())
    if out and not reason:
        raise CatalogueError(
            "out_of_service_reason", "a reason: members read it at the machine and on the board"
        )
    if len(reason) > MAX_REASON:
        raise CatalogueError("out_of_service_reason", f"{MAX_REASON} characters at most")
    with store.atomic():
        row = store.conn.execute(
            "SELECT out_of_service, out_of_service_reason FROM machines WHERE id = ?",
            (machine_id,),
        ).fetchone()
        if row is None:
            raise CatalogueError("id", f"no machine {machine_id!r}")
        new = (int(out), reason if out else None)
        if (row[0], row[1]) == new:
            return False
        store.conn.execute(
            "UPDATE machines SET out_of_service = ?, out_of_service_reason = ? WHERE id = ?",
            (*new, machine_id),
        )
        audit.record(
            store,
            by,
            MACHINE_OUT_OF_SERVICE if out else MACHINE_BACK_IN_SERVICE,
            machine_id,
            {"reason": reason} if out else {"was": row[1]},
        )
    return True


def config_of(row: dict[str, Any]) -> MachineConfig:
    """A machine row as the config object the save functions take."""
    return MachineConfig(
        id=row["id"],
        name=row["name"],
        kind=row["kind"],
        group=row["group_id"],
        min_level=row["min_level"],
        out_of_service=bool(row["out_of_service"]),
        requires_credit=bool(row["requires_credit"]),
        certify_level=row["certify_level"],
        node=row["node"] if row.get("node") and row["node"] != row["id"] else None,
    )


# -- the file and the database -------------------------------------------------------------


def _digest(item: GroupConfig | MachineConfig) -> str:
    body = json.dumps(dataclasses.asdict(item), sort_keys=True, default=str)
    return hashlib.sha256(body.encode()).hexdigest()


def import_catalogue(
    store: HubStore,
    groups_: Iterable[GroupConfig],
    machines_: Iterable[MachineConfig],
    *,
    actor: str = "hub",
) -> dict[str, list[str]]:
    """The hub file's groups and machines into the database, by the source-of-truth rule.

    An entry the database lacks is created. An entry the file changed since the hub
    last imported it (or never imported: the first start of a database made before
    this rule, when the file still won at every start) is applied as the file says.
    An entry the file did not change is left as the database has it, so what was edited
    on the web survives restarts. A machine the file listed before and no longer does
    keeps its past sessions but loses its node (no node may speak for it), as before;
    one made on the web keeps its own. Returns the ids applied, audited as one entry.
    """
    groups_, machines_ = list(groups_), list(machines_)
    with store.atomic():
        last = json.loads(meta_text(store, CONFIG_KEY) or "{}")
        seen_groups: dict[str, str] = last.get("groups", {})
        seen_machines: dict[str, str] = last.get("machines", {})
        apply_groups = [
            g for g in groups_ if seen_groups.get(g.id) != _digest(g) or group(store, g.id) is None
        ]
        known = set(machine_ids(store))
        apply_machines = [
            m for m in machines_ if seen_machines.get(m.id) != _digest(m) or m.id not in known
        ]
        sync_catalogue(store, apply_groups, apply_machines, unserve_others=False)
        dropped = set(seen_machines) - {m.id for m in machines_}
        if not last:
            # Before this rule the file was the whole catalogue: machines it does not
            # list were served by no node.
            dropped |= known - {m.id for m in machines_}
        store.conn.executemany(
            "UPDATE machines SET node = NULL WHERE id = ?", [(m,) for m in sorted(dropped)]
        )
        set_meta(
            store,
            CONFIG_KEY,
            json.dumps(
                {
                    "groups": {g.id: _digest(g) for g in groups_},
                    "machines": {m.id: _digest(m) for m in machines_},
                },
                sort_keys=True,
            ),
        )
        applied = {
            "groups": [g.id for g in apply_groups],
            "machines": [m.id for m in apply_machines],
            "unserved": sorted(dropped),
        }
        if any(applied.values()):
            audit.record(store, actor, CATALOGUE_IMPORTED, "catalogue", applied)
    return applied
