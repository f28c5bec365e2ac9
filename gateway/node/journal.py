"""The node's local journal: every event is durable on the node before it goes anywhere.

A node must keep working when the hub or the network is down, and must not lose or
double-bill a minute when power is pulled mid-session. So every event is written here
first (WAL, ``synchronous=FULL``: a committed row survives a power cut), then published,
and deleted only once the hub has acknowledged its id. Sequence numbers come from a
counter kept in the same transaction, so they never repeat even after rows are deleted.

The journal also keeps the node's small persistent state (open session, last held
snapshot) in the same file, updated atomically with the event that changes it: a
``session.started`` row and the "a session is open" marker are one commit.

A journal that cannot be written (disk full, read-only file or file system, I/O error)
raises :class:`JournalUnavailable` carrying SQLite's own error, never a secondary one:
the node turns it into "relay off, taps denied" and calls :meth:`Journal.open` again
later, which reconnects (a file made writable again needs a new connection).
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from gateway.contract import Envelope

log = logging.getLogger(__name__)

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


class JournalUnavailable(Exception):
    """The journal cannot be opened or written; the message is SQLite's (or the OS's) own."""


# Errors that say "the storage is not usable", as opposed to a bug in what we write
# (IntegrityError, ProgrammingError, a TypeError from json.dumps), which must surface.
_STORAGE_ERRORS = (sqlite3.OperationalError, OSError)
_NOT_STORAGE = (sqlite3.IntegrityError, sqlite3.ProgrammingError)


def _is_storage_error(exc: BaseException) -> bool:
    if isinstance(exc, _STORAGE_ERRORS):
        return True
    # "database disk image is malformed", "file is not a database": DatabaseError itself.
    return isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, _NOT_STORAGE)


Connector = Callable[[Path], sqlite3.Connection]


def _connect(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, check_same_thread=False, isolation_level=None)


class Journal:
    """Thread-safe: the node's main loop writes, the journal sender reads.

    ``connect`` opens the SQLite connection (tests pass one whose writes fail, to play a
    full disk); ``open_now=False`` leaves the journal closed until :meth:`open`, so a
    node can start, relay off, on a journal it cannot open yet.
    """

    def __init__(
        self, path: Path | str, *, open_now: bool = True, connect: Connector = _connect
    ) -> None:
        self.path = Path(path)
        self._connect = connect
        self._lock = threading.RLock()
        self._db: sqlite3.Connection | None = None
        if open_now:
            self.open()

    @property
    def is_open(self) -> bool:
        return self._db is not None

    def open(self) -> None:
        """(Re)connect; raises :class:`JournalUnavailable` and stays closed on failure."""
        with self._lock:
            self._close_locked()
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                db = self._connect(self.path)
            except Exception as exc:
                if _is_storage_error(exc):
                    raise JournalUnavailable(f"{self.path}: {exc}") from exc
                raise
            try:
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=FULL")
                db.executescript(_SCHEMA)
            except Exception as exc:
                db.close()
                if _is_storage_error(exc):
                    raise JournalUnavailable(f"{self.path}: {exc}") from exc
                raise
            self._db = db

    def close(self) -> None:
        with self._lock:
            self._close_locked()

    def _close_locked(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            try:
                db.close()
            except sqlite3.Error as exc:  # closing a broken file must not hide why it broke
                log.debug("closing the journal: %s", exc)

    @contextmanager
    def _use(self) -> Iterator[sqlite3.Connection]:
        """The connection, under the lock; storage errors become JournalUnavailable."""
        with self._lock:
            if self._db is None:
                raise JournalUnavailable(f"{self.path}: the journal is not open")
            try:
                yield self._db
            except Exception as exc:
                if _is_storage_error(exc):
                    raise JournalUnavailable(f"{self.path}: {exc}") from exc
                raise

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._use() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                db.execute("COMMIT")
            except BaseException:
                self._rollback(db)
                raise

    @staticmethod
    def _rollback(db: sqlite3.Connection) -> None:
        """Undo what is left of a failed transaction without masking why it failed.

        SQLite rolls a transaction back by itself on some errors (SQLITE_FULL on COMMIT
        among them); a ROLLBACK then fails with "no transaction is active", and raising
        that instead would hide the real error.
        """
        if not db.in_transaction:
            return
        try:
            db.execute("ROLLBACK")
        except sqlite3.Error as exc:
            log.warning("journal rollback failed too: %s", exc)

    # -- events ---------------------------------------------------------------------

    def append(
        self,
        *,
        node: str,
        boot: str,
        type: str,
        data: dict[str, Any],
        time: datetime | None = None,
        state: Mapping[str, Any | None] | None = None,
        before: list[tuple[str, dict[str, Any]]] | None = None,
    ) -> Envelope:
        """Write one event (and optional state changes) in a single durable commit.

        ``state`` maps keys to JSON-able values; ``None`` deletes the key. ``before`` are
        events (type, data) written first in the same commit: a tap and the session it
        starts cost one wait for the disk, not two, before the relay may switch on.
        """
        with self._transaction() as db:
            seq = self._get_state_locked(db, "next_seq", 1)
            for type_, data_ in [*(before or []), (type, data)]:
                env = Envelope.new(node=node, seq=seq, boot=boot, type=type_, data=data_, time=time)
                db.execute(
                    "INSERT INTO events (seq, id, type, payload) VALUES (?, ?, ?, ?)",
                    (seq, env.id, type_, env.encode()),
                )
                seq += 1
            self._set_state_locked(db, "next_seq", seq)
            for key, value in (state or {}).items():
                self._set_state_locked(db, key, value)
        return env

    def pending(self, limit: int = 500, after_seq: int = 0) -> list[PendingEvent]:
        with self._use() as db:
            rows = db.execute(
                "SELECT seq, id, payload FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
                (after_seq, limit),
            ).fetchall()
        return [PendingEvent(seq, id_, bytes(payload)) for seq, id_, payload in rows]

    def ack(self, ids: list[str]) -> int:
        """Forget acknowledged events; unknown ids (already acked) are ignored."""
        if not ids:
            return 0
        n = 0
        with self._transaction() as db:
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                marks = ",".join("?" * len(chunk))
                n += db.execute(f"DELETE FROM events WHERE id IN ({marks})", chunk).rowcount
        return n

    def count(self) -> int:
        with self._use() as db:
            return db.execute("SELECT count(*) FROM events").fetchone()[0]

    def all_payloads(self) -> list[bytes]:
        """Every unacknowledged event, oldest first (for replay tools and tests)."""
        return [p.payload for p in self.pending(limit=-1)]

    # -- state ----------------------------------------------------------------------

    def get_state(self, key: str, default: Any = None) -> Any:
        with self._use() as db:
            return self._get_state_locked(db, key, default)

    def set_state(self, key: str, value: Any | None) -> None:
        self.set_states({key: value})

    def set_states(self, values: Mapping[str, Any | None]) -> None:
        """Several state keys in one durable commit (``None`` deletes a key)."""
        with self._transaction() as db:
            for key, value in values.items():
                self._set_state_locked(db, key, value)

    @staticmethod
    def _get_state_locked(db: sqlite3.Connection, key: str, default: Any) -> Any:
        row = db.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    @staticmethod
    def _set_state_locked(db: sqlite3.Connection, key: str, value: Any | None) -> None:
        if value is None:
            db.execute("DELETE FROM state WHERE key = ?", (key,))
        else:
            db.execute(
                "INSERT INTO state (key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, json.dumps(value)),
            )
