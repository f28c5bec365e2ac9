"""API tokens: made by admins and accountants, checked on every bearer request.

The only writer of ``api_tokens``. A token is shown once, when it is made, and only its
SHA-256 is stored: a copy of the database does not hand out access to the API. SHA-256
rather than a slow password hash because tokens are 256 random bits, not something a
person chose, so there is nothing to brute-force, and every API call checks one.

Each API view needs one scope; a database token must carry it. Accountants may only make
and revoke tokens whose scopes are all billing scopes. The bearer check itself (headers,
config tokens, 401/403 answers) is HTTP and lives in ``gateway.web.tokens``.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from gateway.core.clock import iso, utcnow
from gateway.hub import audit
from gateway.hub.db import HubStore

SCOPES: Final = (
    "usage",
    "invoices",
    "machines",
    "sessions",
    "jobs",
    "report",
    "members",
    "metrics",
)
BILLING_SCOPES: Final = frozenset({"usage", "invoices", "report"})
PREFIX = "fgt_"
MAX_NAME = 80
# last_used_at is for "is this token still in use?", not an access log: one write a
# minute per token is enough and keeps API reads from all becoming writes.
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class StoredToken:
    id: int
    name: str
    scopes: frozenset[str]
    revoked: bool
    last_used_at: str | None


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def allowed_scopes(roles: frozenset[str]) -> tuple[str, ...]:
    """The scopes an account with ``roles`` may put on (and revoke from) a token."""
    if "admin" in roles:
        return SCOPES
    return tuple(s for s in SCOPES if s in BILLING_SCOPES)


def find_token(store: HubStore, secret: str) -> StoredToken | None:
    """The stored token this secret is, revoked or not; None when there is none."""
    row = store.conn.execute(
        "SELECT id, name, scopes, revoked_at, last_used_at FROM api_tokens WHERE token_hash = ?",
        (token_hash(secret),),
    ).fetchone()
    if row is None:
        return None
    return StoredToken(
        id=row[0],
        name=row[1],
        scopes=frozenset(json.loads(row[2])),
        revoked=row[3] is not None,
        last_used_at=row[4],
    )


def note_use(store: HubStore, token: StoredToken, now: datetime) -> None:
    """Record that a token was used, at most once per ``LAST_USED_RESOLUTION``."""
    if token.last_used_at is None or token.last_used_at < iso(now - LAST_USED_RESOLUTION):
        with store.atomic():
            store.conn.execute(
                "UPDATE api_tokens SET last_used_at = ? WHERE id = ?", (iso(now), token.id)
            )


def token_scopes(store: HubStore, token_id: int) -> frozenset[str] | None:
    row = store.conn.execute("SELECT scopes FROM api_tokens WHERE id = ?", (token_id,)).fetchone()
    return frozenset(json.loads(row[0])) if row else None


def create_token(
    store: HubStore, name: str, scopes: Iterable[str], *, created_by: str
) -> tuple[int, str]:
    """Store a new token and return ``(id, secret)``; the secret is never stored."""
    chosen = sorted(set(scopes))
    name = name.strip()
    if not name or len(name) > MAX_NAME:
        raise ValueError(f"a name of 1 to {MAX_NAME} characters")
    if not chosen or any(s not in SCOPES for s in chosen):
        raise ValueError(f"scopes among {', '.join(SCOPES)}")
    secret = PREFIX + secrets.token_urlsafe(32)
    with store.atomic():
        cur = store.conn.execute(
            "INSERT INTO api_tokens (name, token_hash, scopes, created_by, created_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (name, token_hash(secret), json.dumps(chosen), created_by, iso(utcnow())),
        )
        token_id = int(cur.lastrowid or 0)
        audit.record(
            store,
            created_by,
            audit.TOKEN_CREATED,
            f"token:{token_id}",
            {"name": name, "scopes": chosen},
        )
    return token_id, secret


def revoke_token(store: HubStore, token_id: int, *, by: str) -> bool:
    with store.atomic():
        cur = store.conn.execute(
            "UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
            (iso(utcnow()), token_id),
        )
        if cur.rowcount:
            audit.record(store, by, audit.TOKEN_REVOKED, f"token:{token_id}", {})
    return bool(cur.rowcount)


def list_tokens(store: HubStore) -> list[dict[str, Any]]:
    rows = store.conn.execute(
        "SELECT id, name, scopes, created_by, created_at, revoked_at, "
        "last_used_at FROM api_tokens ORDER BY revoked_at IS NOT NULL, "
        "id DESC"
    ).fetchall()
    return [
        {
            "id": r[0],
            "name": r[1],
            "scopes": json.loads(r[2]),
            "created_by": r[3],
            "created_at": r[4],
            "revoked_at": r[5],
            "last_used_at": r[6],
        }
        for r in rows
    ]
