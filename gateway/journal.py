"""The node's local journal: every event is durable on the node before it goes anywhere.

A node must keep working when the hub or the network is down, and must not lose or
double-bill a minute when power is pulled mid-session. So every event is written here
first (WAL, ``synchronous=FULL``: a committed row survives a power cut), then published,
and deleted only once the hub has acknowledged its id. Sequence numbers come from a
counter kept in the same transaction, so they never repeat even after rows are deleted.

The journal also keeps the node's small persistent state (open session, last held
snapshot) in the same file, updated atomically with the event that changes it: a
``session.started`` row and the "a session is open" marker are one commit.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from .contract import Envelope

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL,
    payload BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS state (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class PendingEvent:
    seq: int
    id: str
    payload: bytes


class Journal:
    """Thread-safe: the node's main loop appends, the MQTT thread acknowledges."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- events ---------------------------------------------------------------------

    def append(self, *, node: str, boot: str, type: str, data: dict[str, Any],
               time: datetime | None = None,
               state: Mapping[str, Any | None] | None = None,
               before: list[tuple[str, dict[str, Any]]] | None = None) -> Envelope:
        """Write one event (and optional state changes) in a single durable commit.

        ``state`` maps keys to JSON-able values; ``None`` deletes the key. ``before`` are
        events (type, data) written first in the same commit: a tap and the session it
        starts cost one wait for the disk, not two, before the relay may switch on.
        """
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                seq = self._get_state_locked("next_seq", 1)
                for type_, data_ in [*(before or []), (type, data)]:
                    env = Envelope.new(node=node, seq=seq, boot=boot, type=type_, data=data_,
                                       time=time)
                    db.execute("INSERT INTO events (seq, id, type, payload) "
                               "VALUES (?, ?, ?, ?)", (seq, env.id, type_, env.encode()))
                    seq += 1
                self._set_state_locked("next_seq", seq)
                for key, value in (state or {}).items():
                    self._set_state_locked(key, value)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return env

    def pending(self, limit: int = 500, after_seq: int = 0) -> list[PendingEvent]:
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, id, payload FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
                (after_seq, limit)).fetchall()
        return [PendingEvent(seq, id_, bytes(payload)) for seq, id_, payload in rows]

    def ack(self, ids: list[str]) -> int:
        """Forget acknowledged events; unknown ids (already acked) are ignored."""
        if not ids:
            return 0
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                n = 0
                for start in range(0, len(ids), 500):
                    chunk = ids[start:start + 500]
                    marks = ",".join("?" * len(chunk))
                    n += db.execute(f"DELETE FROM events WHERE id IN ({marks})", chunk).rowcount
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return n

    def count(self) -> int:
        with self._lock:
            return self._db.execute("SELECT count(*) FROM events").fetchone()[0]

    def all_payloads(self) -> list[bytes]:
        """Every unacknowledged event, oldest first (for replay tools and tests)."""
        return [p.payload for p in self.pending(limit=-1)]

    # -- state ----------------------------------------------------------------------

    def get_state(self, key: str, default: Any = None) -> Any:
        with self._lock:
            return self._get_state_locked(key, default)

    def set_state(self, key: str, value: Any | None) -> None:
        with self._lock:
            self._set_state_locked(key, value)

    def _get_state_locked(self, key: str, default: Any) -> Any:
        row = self._db.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    def _set_state_locked(self, key: str, value: Any | None) -> None:
        if value is None:
            self._db.execute("DELETE FROM state WHERE key = ?", (key,))
        else:
            self._db.execute(
                "INSERT INTO state (key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, json.dumps(value)))
