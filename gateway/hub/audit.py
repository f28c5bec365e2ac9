"""The audit log: who granted, revoked, enrolled, moved or credited what, as a hash chain.

Triggers make ``audit_log`` append-only, but anyone holding the database file can drop
them, so each row also carries ``hash = SHA-256(canonical JSON of the row, including the
previous row's hash)``. Changing, removing or reordering a past row breaks every hash
after it, and ``verify`` says where. (Removing the *last* rows leaves a valid shorter
chain: keep the head printed by ``fabgate audit verify`` somewhere else to notice that.)

``record`` writes inside the caller's transaction when there is one, so an audit row and
the change it describes are committed, or rolled back, together.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from typing import Any, Protocol

from gateway.core.clock import iso, utcnow

GENESIS = "0" * 64

CERTIFICATION_GRANTED = "certification.granted"
CERTIFICATION_REVOKED = "certification.revoked"
BADGE_ENROLLED = "badge.enrolled"
BADGE_BLOCKED = "badge.blocked"
ROLE_GRANTED = "role.granted"
ROLE_REVOKED = "role.revoked"
TOKEN_CREATED = "token.created"
TOKEN_REVOKED = "token.revoked"
SESSION_MOVED = "session.moved"
CREDIT_ADDED = "credit.added"
ACCOUNT_CREATED = "account.created"
PASSWORD_CHANGED = "account.password_changed"

# Not a closed list (new features add actions), but a typo such as "Role granted" would
# make the log unsearchable, so the shape is enforced.
_ACTION = re.compile(r"^[a-z][a-z_]*\.[a-z][a-z_]*$")


class _HasConn(Protocol):
    @property
    def conn(self) -> sqlite3.Connection: ...


def _connection(conn_or_store: sqlite3.Connection | _HasConn) -> sqlite3.Connection:
    if isinstance(conn_or_store, sqlite3.Connection):
        return conn_or_store
    return conn_or_store.conn


def canonical(value: Any) -> str:
    """One text per value whatever the key order, so the hash can be recomputed."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def row_hash(
    seq: int, at: str, actor: str, action: str, subject: str, details: Any, prev_hash: str
) -> str:
    body = canonical(
        {
            "seq": seq,
            "at": at,
            "actor": actor,
            "action": action,
            "subject": subject,
            "details": details,
            "prev_hash": prev_hash,
        }
    )
    return hashlib.sha256(body.encode()).hexdigest()


def record(
    conn_or_store: sqlite3.Connection | _HasConn,
    actor: str,
    action: str,
    subject: str,
    details: dict[str, Any] | None = None,
) -> int:
    """Append one entry and return its ``seq``.

    Inside an open transaction the row joins it (and is committed by the caller);
    otherwise the entry is its own transaction.
    """
    if not _ACTION.match(action):
        raise ValueError(f"audit action {action!r} should look like 'noun.verb'")
    if not actor or not subject:
        raise ValueError("an audit entry needs an actor and a subject")
    details = dict(details or {})
    conn = _connection(conn_or_store)
    if conn.in_transaction:
        return _append(conn, actor, action, subject, details)
    # IMMEDIATE takes the write lock before reading the head: two writers cannot both
    # chain onto the same previous row.
    conn.execute("BEGIN IMMEDIATE")
    try:
        seq = _append(conn, actor, action, subject, details)
    except BaseException:
        conn.rollback()
        raise
    conn.commit()
    return seq


def _append(
    conn: sqlite3.Connection, actor: str, action: str, subject: str, details: dict[str, Any]
) -> int:
    # In a caller's deferred transaction that has only read so far, take the write lock
    # before reading the head. In WAL mode this fails (SQLITE_BUSY) if another writer
    # committed since our snapshot, instead of forking the chain.
    conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('audit_lock', '')")
    head = conn.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
    seq, prev = (head[0] + 1, head[1]) if head else (1, GENESIS)
    at = iso(utcnow())
    text = canonical(details)
    digest = row_hash(seq, at, actor, action, subject, json.loads(text), prev)
    conn.execute(
        "INSERT INTO audit_log (seq, at, actor, action, subject, details, prev_hash, hash) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (seq, at, actor, action, subject, text, prev, digest),
    )
    return seq


def entries(
    conn_or_store: sqlite3.Connection | _HasConn, *, limit: int = 100, subject: str | None = None
) -> list[dict[str, Any]]:
    """Newest first, details parsed: for the pages that show the log."""
    conn = _connection(conn_or_store)
    where, args = ("WHERE subject = ?", [subject]) if subject else ("", [])
    rows = conn.execute(
        f"SELECT seq, at, actor, action, subject, details FROM audit_log "
        f"{where} ORDER BY seq DESC LIMIT ?",
        (*args, limit),
    ).fetchall()
    out = []
    for seq, at, actor, action, subj, details in rows:
        try:
            parsed = json.loads(details)
        except ValueError:
            parsed = {"unreadable": details}
        out.append(
            {
                "seq": seq,
                "at": at,
                "actor": actor,
                "action": action,
                "subject": subj,
                "details": parsed,
            }
        )
    return out


def head(conn_or_store: sqlite3.Connection | _HasConn) -> tuple[int, str] | None:
    row = (
        _connection(conn_or_store)
        .execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
        .fetchone()
    )
    return (row[0], row[1]) if row else None


def verify(conn_or_store: sqlite3.Connection | _HasConn) -> list[str]:
    """Every break in the chain, in order; an empty list means intact."""
    conn = _connection(conn_or_store)
    problems: list[str] = []
    expected_seq, prev = 1, GENESIS
    for seq, at, actor, action, subject, details, prev_hash, digest in conn.execute(
        "SELECT seq, at, actor, action, subject, details, prev_hash, hash "
        "FROM audit_log ORDER BY seq"
    ):
        if seq != expected_seq:
            problems.append(
                f"entry {seq}: expected entry {expected_seq} "
                f"(entries {expected_seq}..{seq - 1} are missing)"
            )
        if prev_hash != prev:
            problems.append(
                f"entry {seq}: prev_hash does not match the hash of the entry before it"
            )
        try:
            parsed = json.loads(details)
        except (TypeError, ValueError):
            problems.append(f"entry {seq}: details are not JSON")
        else:
            if row_hash(seq, at, actor, action, subject, parsed, prev_hash) != digest:
                problems.append(
                    f"entry {seq}: content does not match its hash "
                    f"({action} on {subject} by {actor} at {at})"
                )
        expected_seq, prev = seq + 1, digest
    return problems
