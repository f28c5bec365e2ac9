"""The audit log: who granted, revoked, enrolled, moved or credited what, as a hash chain.

Triggers make ``audit_log`` append-only, but anyone holding the database file can drop
them, so each row also carries ``hash = SHA-256(canonical JSON of the row, including the
previous row's hash)``. Changing, removing or reordering a past row breaks every hash
after it, and ``verify`` says where. (Removing the *last* rows leaves a valid shorter
chain: keep the head printed by ``fabgate audit verify`` somewhere else to notice that.)

``record`` writes inside the caller's transaction when there is one, so an audit row and
the change it describes are committed, or rolled back, together.

**Purging old entries** (retention, ``docs/rgpd.md``). The log is kept ten years, then
its oldest entries go, and the chain must stay verifiable without them. ``purge_before``
first writes a *checkpoint* (``meta.audit_checkpoint``: the seq and hash of the last
entry purged), then deletes the entries up to it (the delete trigger refuses any entry
above the checkpoint), then appends an ``audit.purged`` entry naming the same seq and
hash. ``verify`` starts from the checkpoint (the first kept entry must chain onto its
hash) and checks that the newest ``audit.purged`` entry vouches for it: moving the
checkpoint to hide more deleted entries would need rewriting a hashed entry, which
breaks the chain after it. The checkpoint is this module's ``meta`` key.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from datetime import datetime
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
AUDIT_PURGED = "audit.purged"
MEMBER_EXPORTED = "member.exported"
MEMBER_ERASED = "member.erased"
RETENTION_APPLIED = "retention.applied"
CHECKPOINT_KEY = "audit_checkpoint"

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
    *,
    at: datetime | None = None,
) -> int:
    """Append one entry and return its ``seq``; ``at`` is when (default: now).

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
        return _append(conn, actor, action, subject, details, at)
    # IMMEDIATE takes the write lock before reading the head: two writers cannot both
    # chain onto the same previous row.
    conn.execute("BEGIN IMMEDIATE")
    try:
        seq = _append(conn, actor, action, subject, details, at)
    except BaseException:
        conn.rollback()
        raise
    conn.commit()
    return seq


def _append(
    conn: sqlite3.Connection,
    actor: str,
    action: str,
    subject: str,
    details: dict[str, Any],
    when: datetime | None = None,
) -> int:
    # In a caller's deferred transaction that has only read so far, take the write lock
    # before reading the head. In WAL mode this fails (SQLITE_BUSY) if another writer
    # committed since our snapshot, instead of forking the chain.
    conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('audit_lock', '')")
    head = conn.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
    if head is None:  # empty, or every entry purged: chain onto the checkpoint
        head = checkpoint(conn) or (0, GENESIS)
    seq, prev = head[0] + 1, head[1]
    at = iso(when or utcnow())
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


def checkpoint(conn_or_store: sqlite3.Connection | _HasConn) -> tuple[int, str] | None:
    """(seq, hash) of the last purged entry, or None when nothing was ever purged."""
    row = (
        _connection(conn_or_store)
        .execute("SELECT value FROM meta WHERE key = ?", (CHECKPOINT_KEY,))
        .fetchone()
    )
    if row is None or not row[0]:
        return None
    value = json.loads(row[0])
    return int(value["seq"]), str(value["hash"])


def purgeable(conn_or_store: sqlite3.Connection | _HasConn, before: str) -> tuple[int, int] | None:
    """(count, last seq) of the entries a purge before ``before`` (ISO time) would
    remove: the run of oldest entries recorded before it. None: nothing to purge."""
    conn = _connection(conn_or_store)
    row = conn.execute(
        "SELECT count(*), max(seq) FROM audit_log WHERE seq <= "
        "coalesce((SELECT min(seq) - 1 FROM audit_log WHERE at >= ?), "
        "(SELECT max(seq) FROM audit_log))",
        (before,),
    ).fetchone()
    return (int(row[0]), int(row[1])) if row and row[0] else None


def purge_before(
    conn_or_store: sqlite3.Connection | _HasConn,
    before: str,
    *,
    actor: str,
    at: datetime | None = None,
) -> int:
    """Delete the oldest entries recorded before ``before`` (a contiguous run from the
    start: an older entry after a newer one is kept with it) and leave a checkpoint;
    returns how many went. One transaction: the checkpoint, the deletion and the
    ``audit.purged`` entry commit together."""
    conn = _connection(conn_or_store)
    own = not conn.in_transaction
    if own:
        conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('audit_lock', '')")
        found = purgeable(conn, before)
        if found is None:
            count = 0
        else:
            count, last = found
            last_hash = conn.execute(
                "SELECT hash FROM audit_log WHERE seq = ?", (last,)
            ).fetchone()[0]
            conn.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) "
                "DO UPDATE SET value = excluded.value",
                (CHECKPOINT_KEY, canonical({"seq": last, "hash": last_hash})),
            )
            conn.execute("DELETE FROM audit_log WHERE seq <= ?", (last,))
            _append(
                conn,
                actor,
                AUDIT_PURGED,
                "audit_log",
                {
                    "through_seq": last,
                    "through_hash": last_hash,
                    "entries": count,
                    "before": before,
                },
                at,
            )
    except BaseException:
        if own:
            conn.rollback()
        raise
    if own:
        conn.commit()
    return count


def verify(conn_or_store: sqlite3.Connection | _HasConn) -> list[str]:
    """Every break in the chain, in order; an empty list means intact.

    After a purge the chain starts at the checkpoint: the first kept entry must follow
    the last purged one, and the newest ``audit.purged`` entry must name the checkpoint.
    """
    conn = _connection(conn_or_store)
    problems: list[str] = []
    expected_seq, prev = 1, GENESIS
    mark = checkpoint(conn)
    if mark is not None:
        expected_seq, prev = mark[0] + 1, mark[1]
        vouched = conn.execute(
            "SELECT details FROM audit_log WHERE action = ? ORDER BY seq DESC LIMIT 1",
            (AUDIT_PURGED,),
        ).fetchone()
        try:
            said = json.loads(vouched[0]) if vouched else None
        except ValueError:
            said = None
        if (
            not isinstance(said, dict)
            or (said.get("through_seq"), said.get("through_hash")) != mark
        ):
            problems.append(
                f"checkpoint (entry {mark[0]}) is not the one the latest {AUDIT_PURGED} "
                "entry records"
            )
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


def about(conn_or_store: sqlite3.Connection | _HasConn, member_id: str) -> list[dict[str, Any]]:
    """Every entry about the member or made by them, oldest first (the export)."""
    conn = _connection(conn_or_store)
    out = []
    for seq, at, actor, action, subject, details in conn.execute(
        "SELECT seq, at, actor, action, subject, details FROM audit_log "
        "WHERE subject = ? OR actor = ? ORDER BY seq",
        (member_id, member_id),
    ):
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
                "subject": subject,
                "details": parsed,
            }
        )
    return out
