"""The hub database: one connection per thread, its pragmas, the schema applied.

SQLite in WAL mode through sqlite-utils. A connection is bound to the thread that opened
it, so every thread (ingest, snapshots, each web request) opens its own ``HubStore``: the
connection holder every repository function of ``gateway.hub`` (and ``gateway.billing``)
takes first. It holds no domain methods: each table's reads and writes live in the one
module that owns it (see ``docs/design.md``, "The hub package").

Durability: the hub runs with ``synchronous=NORMAL``. In WAL mode that never corrupts the
database and loses nothing when the *process* crashes; only a power cut can drop the last
commits. That is acceptable here because nodes keep every event in their own journal
(``synchronous=FULL``) until the hub acknowledges it, and a lost acknowledgement only
makes the node send the event again, which ingest ignores by event id.

The ``meta`` table is a small key-value store shared by several owners (each key has
one: ``data_version`` is bumped by the schema's triggers, the snapshot counters are
``gateway.hub.snapshots``', ``enrolment_version`` ``gateway.hub.enrolment``'s (by
trigger), ``audit_lock`` ``gateway.hub.audit``'s, the tariff fingerprint
``gateway.billing.pricing``'s); this module reads and writes its keys.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import sqlite_utils

from gateway.hub.schema import MIGRATIONS


class HubStore:
    """One connection to the hub database; open one per thread and close it."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.db = sqlite_utils.Database(self.path)
        conn = self.db.conn
        conn.execute("PRAGMA busy_timeout = 10000")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.row_factory = sqlite3.Row
        MIGRATIONS.apply(self.db)

    @property
    def conn(self) -> sqlite3.Connection:
        return self.db.conn

    def atomic(self) -> AbstractContextManager[Any]:
        """One transaction; nested, a savepoint (so a repository function that writes
        joins its caller's transaction and rolls back with it)."""
        return self.db.atomic()

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> HubStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- meta --------------------------------------------------------------------------------


def meta_int(store: HubStore, key: str) -> int:
    row = store.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return int(row[0]) if row and row[0] else 0


def meta_text(store: HubStore, key: str) -> str | None:
    row = store.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return row[0] if row else None


def set_meta(store: HubStore, key: str, value: str) -> None:
    store.conn.execute(
        "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) "
        "DO UPDATE SET value = excluded.value",
        (key, value),
    )


def increment_meta(store: HubStore, key: str) -> int:
    """Add one to an integer key (in the caller's transaction) and return it."""
    with store.atomic():
        store.conn.execute(
            "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = ?", (key,)
        )
        return meta_int(store, key)


def data_version(store: HubStore) -> int:
    """Bumped by the schema's triggers on every catalogue change (members, badges,
    groups, machines, certifications, projects, credit): one integer to watch."""
    return meta_int(store, "data_version")


def bump_data_version(store: HubStore) -> None:
    """For changes the triggers cannot see (tariffs, stored prices): snapshots carry each
    member's prepaid time, which they change."""
    increment_meta(store, "data_version")


def purge_rows(
    store: HubStore, table: str, where: str, args: tuple[Any, ...], *, apply: bool
) -> int:
    """Count the rows of ``table`` matching ``where``, or delete them when ``apply``
    (in one transaction, the caller's if any): the dry run and the run of the retention
    job are the same query. Only the table's owner module calls it."""
    if not apply:
        row = store.conn.execute(f"SELECT count(*) FROM {table} WHERE {where}", args).fetchone()
        return int(row[0])
    with store.atomic():
        return store.conn.execute(f"DELETE FROM {table} WHERE {where}", args).rowcount


# -- rows edited from the pages: only the table's owner module calls these ----------------


def insert_row(store: HubStore, table: str, row_id: str, values: Mapping[str, Any]) -> None:
    """``INSERT INTO table (id, <values' columns>)``: a new row the owner has checked."""
    store.conn.execute(
        f"INSERT INTO {table} (id, {', '.join(values)}) "
        f"VALUES (?, {', '.join('?' for _ in values)})",
        (row_id, *values.values()),
    )


def update_changed(
    store: HubStore, table: str, row_id: str, old: Mapping[str, Any], values: Mapping[str, Any]
) -> dict[str, list[Any]]:
    """Write the columns of ``values`` that differ from ``old`` and return them as
    ``{column: [old, new]}`` (what the audit log records); {} writes nothing."""
    changes = {k: [old[k], v] for k, v in values.items() if old[k] != v}
    if changes:
        store.conn.execute(
            f"UPDATE {table} SET {', '.join(f'{k} = ?' for k in changes)} WHERE id = ?",
            (*(v[1] for v in changes.values()), row_id),
        )
    return changes
