"""Web accounts: users and their roles, passwords, log-in and its lock-out.

The only writer of ``accounts``, ``roles`` and ``login_throttle``. The web pages and the
command line (``fabgate user``) both come here, so a password is hashed, checked and
rehashed one way, and a lock-out counts the same whoever asks. HTTP concerns (forms,
cookies, CSRF, the route decorators) stay in ``gateway.web.auth``.

Roles: every account is a ``member``; only the other roles are stored. ``admin`` may do
everything the other roles may; a trainer's role names a certification group.

Log-in failures are counted in the database, per email and per client address, rather
than in memory, so restarting the hub does not hand an attacker a fresh set of guesses.
"""

from __future__ import annotations

import logging
import secrets
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from gateway.core.clock import iso, utcnow
from gateway.hub import audit, catalogue, members
from gateway.hub.db import HubStore, purge_rows

log = logging.getLogger("fabgate.hub.accounts")

ROLES: Final = ("member", "trainer", "fabmanager", "accountant", "admin")
STORED_ROLES: Final = ("trainer", "fabmanager", "accountant", "admin")

MAX_FAILURES = 5
LOCK_TIME = timedelta(minutes=15)
FAILURE_WINDOW = timedelta(minutes=15)
MIN_PASSWORD = 12
MAX_PASSWORD = 1024  # Argon2 hashes anything, but a megabyte "password" is an attack

# argon2-cffi's defaults are RFC 9106's second recommended profile (Argon2id, 64 MiB);
# raising them later makes ``check_needs_rehash`` upgrade each hash at the next log-in.
hasher = PasswordHasher()


@dataclass(frozen=True)
class User:
    member_id: str
    name: str
    email: str
    roles: frozenset[str]
    trainer_groups: frozenset[str]

    def has(self, *roles: str) -> bool:
        """True if the account holds any of ``roles``; admins hold them all."""
        return "admin" in self.roles or any(r in self.roles for r in roles)

    def trains(self, group_id: str) -> bool:
        """May certify members on this group (trainers up to level 2; fabmanagers and
        admins on every group)."""
        return group_id in self.trainer_groups or self.has("fabmanager")


def load_user(store: HubStore, member_id: str) -> User | None:
    conn = store.conn
    row = conn.execute(
        "SELECT a.member_id, a.email, m.name FROM accounts a JOIN members m "
        "ON m.id = a.member_id WHERE a.member_id = ?",
        (member_id,),
    ).fetchone()
    if row is None:
        return None
    roles = {"member"}
    groups = set()
    for role, group in conn.execute(
        "SELECT role, group_id FROM roles WHERE member_id = ?", (member_id,)
    ):
        roles.add(role)
        if role == "trainer" and group:
            groups.add(group)
    return User(
        member_id=row[0],
        name=row[2],
        email=row[1],
        roles=frozenset(roles),
        trainer_groups=frozenset(groups),
    )


def password_hash(store: HubStore, member_id: str) -> str | None:
    """The account's stored hash (None: no account, or no password set yet); the web
    signs a fingerprint of it into the session cookie, so a new password ends every
    other session."""
    row = store.conn.execute(
        "SELECT password_hash FROM accounts WHERE member_id = ?", (member_id,)
    ).fetchone()
    return row[0] if row else None


def find_account(store: HubStore, *, member_id: str, email: str) -> tuple[str, str] | None:
    """``(member_id, email)`` of the account of this member or with this email, if any."""
    row = store.conn.execute(
        "SELECT member_id, email FROM accounts WHERE member_id = ? OR email = ?",
        (member_id, normalise_email(email)),
    ).fetchone()
    return (row[0], row[1]) if row else None


def member_of_email(store: HubStore, email: str) -> str | None:
    row = store.conn.execute(
        "SELECT member_id FROM accounts WHERE email = ?", (normalise_email(email),)
    ).fetchone()
    return row[0] if row else None


def normalise_email(email: str) -> str:
    return email.strip().lower()


# -- log-in and its lock-out ----------------------------------------------------------


def _locked_until(conn: sqlite3.Connection, keys: list[str], now: datetime) -> str | None:
    marks = ",".join("?" * len(keys))
    row = conn.execute(
        f"SELECT max(locked_until) FROM login_throttle WHERE key IN ({marks}) AND locked_until > ?",
        (*keys, iso(now)),
    ).fetchone()
    return row[0] if row and row[0] else None


def _count_failure(conn: sqlite3.Connection, key: str, now: datetime) -> str | None:
    """One more failure for ``key``; returns the lock's end if this one locks it."""
    row = conn.execute(
        "SELECT failures, window_start, locked_until FROM login_throttle WHERE key = ?", (key,)
    ).fetchone()
    stale = (
        row is None
        or (row[2] is not None and row[2] <= iso(now))
        or row[1] < iso(now - FAILURE_WINDOW)
    )
    failures, start = (1, iso(now)) if stale else (row[0] + 1, row[1])
    locked = iso(now + LOCK_TIME) if failures >= MAX_FAILURES else None
    conn.execute(
        "INSERT INTO login_throttle (key, failures, window_start, locked_until) "
        "VALUES (?, ?, ?, ?) ON CONFLICT(key) DO UPDATE SET "
        "failures = excluded.failures, window_start = excluded.window_start, "
        "locked_until = excluded.locked_until",
        (key, failures, start, locked),
    )
    return locked


def _throttle_keys(email: str, addr: str | None) -> list[str]:
    return [f"email:{email}", f"addr:{addr or 'unknown'}"]


_DUMMY_HASH: str | None = None


def _dummy_hash() -> str:
    """Verified against when the email is unknown, so both cases take as long."""
    global _DUMMY_HASH
    if _DUMMY_HASH is None:
        _DUMMY_HASH = hasher.hash(secrets.token_urlsafe(16))
    return _DUMMY_HASH


def verify_password(stored: str | None, password: str) -> bool:
    try:
        return hasher.verify(stored or _dummy_hash(), password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


class LoginLocked(Exception):
    def __init__(self, until: str) -> None:
        super().__init__(until)
        self.until = until


def authenticate(
    store: HubStore, email: str, password: str, addr: str | None, now: datetime
) -> User | None:
    """Check a log-in attempt, counting failures; raise ``LoginLocked`` while locked.

    A locked email or address is refused before the password is even checked: a
    correct guess during the lock must not be distinguishable from a wrong one. A
    successful log-in rehashes the password when the hasher's parameters changed.
    """
    conn = store.conn
    email = normalise_email(email)
    keys = _throttle_keys(email, addr)
    until = _locked_until(conn, keys, now)
    if until:
        raise LoginLocked(until)
    row = conn.execute(
        "SELECT member_id, password_hash FROM accounts WHERE email = ?", (email,)
    ).fetchone()
    ok = len(password) <= MAX_PASSWORD and verify_password(row[1] if row else None, password)
    if not ok:
        with store.atomic():
            locks = [lock for key in keys if (lock := _count_failure(conn, key, now))]
            if row is not None:
                conn.execute(
                    "UPDATE accounts SET failed_logins = failed_logins + 1, "
                    "locked_until = coalesce(?, locked_until) WHERE member_id = ?",
                    (max(locks) if locks else None, row[0]),
                )
        log.warning("failed log-in for %r from %s", email, addr)
        if locks:
            raise LoginLocked(max(locks))
        return None
    with store.atomic():
        conn.execute("DELETE FROM login_throttle WHERE key = ?", (keys[0],))
        new_hash = hasher.hash(password) if hasher.check_needs_rehash(row[1]) else row[1]
        conn.execute(
            "UPDATE accounts SET failed_logins = 0, locked_until = NULL, "
            "last_login_at = ?, password_hash = ? WHERE member_id = ?",
            (iso(now), new_hash, row[0]),
        )
    return load_user(store, row[0])


# -- accounts, roles, passwords -------------------------------------------------------


def check_new_password(password: str) -> str | None:
    """Why a new password is refused, or None. Length only: composition rules push
    people to predictable patterns, and log-in is rate-limited anyway."""
    if len(password) < MIN_PASSWORD:
        return f"at least {MIN_PASSWORD} characters"
    if len(password) > MAX_PASSWORD:
        return f"at most {MAX_PASSWORD} characters"
    return None


def set_password(store: HubStore, member_id: str, password: str, *, actor: str) -> None:
    problem = check_new_password(password)
    if problem:
        raise ValueError(f"password refused: {problem}")
    with store.atomic():
        cur = store.conn.execute(
            "UPDATE accounts SET password_hash = ?, failed_logins = 0, "
            "locked_until = NULL WHERE member_id = ?",
            (hasher.hash(password), member_id),
        )
        if cur.rowcount != 1:
            raise ValueError(f"no account for member {member_id!r}")
        audit.record(store, actor, audit.PASSWORD_CHANGED, member_id, {})


def create_account(
    store: HubStore, member_id: str, email: str, *, actor: str, password: str | None = None
) -> None:
    """An account for an existing member; ``ValueError`` with the reason otherwise."""
    email = normalise_email(email)
    if "@" not in email:
        raise ValueError(f"{email!r} is not an email address")
    if not members.exists(store, member_id):
        raise ValueError(f"no member {member_id!r} (import members first)")
    if password is not None and (problem := check_new_password(password)):
        raise ValueError(f"password refused: {problem}")
    try:
        with store.atomic():
            store.conn.execute(
                "INSERT INTO accounts (member_id, email, password_hash, created_at) "
                "VALUES (?, ?, ?, ?)",
                (member_id, email, hasher.hash(password) if password else None, iso(utcnow())),
            )
            audit.record(store, actor, audit.ACCOUNT_CREATED, member_id, {"email": email})
    except sqlite3.IntegrityError as exc:
        raise ValueError(
            f"an account already exists for member {member_id!r} or email {email!r}"
        ) from exc


def grant_role(
    store: HubStore, member_id: str, role: str, group_id: str | None, *, actor: str
) -> bool:
    """True if granted, False if the account already had it."""
    if role not in STORED_ROLES:
        raise ValueError(f"role {role!r}: expected one of {', '.join(STORED_ROLES)}")
    if (role == "trainer") != (group_id is not None):
        raise ValueError("a trainer role names its group (--group), other roles do not")
    if group_id is not None and catalogue.group(store, group_id) is None:
        raise ValueError(f"no certification group {group_id!r}")
    with store.atomic():
        cur = store.conn.execute(
            "INSERT OR IGNORE INTO roles (member_id, role, group_id) VALUES (?, ?, ?)",
            (member_id, role, group_id),
        )
        if cur.rowcount:
            audit.record(
                store, actor, audit.ROLE_GRANTED, member_id, {"role": role, "group": group_id}
            )
    return bool(cur.rowcount)


def revoke_role(
    store: HubStore, member_id: str, role: str, group_id: str | None, *, actor: str
) -> bool:
    with store.atomic():
        cur = store.conn.execute(
            "DELETE FROM roles WHERE member_id = ? AND role = ? "
            "AND coalesce(group_id, '') = coalesce(?, '')",
            (member_id, role, group_id),
        )
        if cur.rowcount:
            audit.record(
                store, actor, audit.ROLE_REVOKED, member_id, {"role": role, "group": group_id}
            )
    return bool(cur.rowcount)


# -- retention and one member's data (docs/rgpd.md) ----------------------------------------


def purge_throttle(store: HubStore, before: str, *, apply: bool) -> int:
    """Log-in failure counters (an email or a client address each) whose window began
    before ``before``: counted, or deleted when ``apply``. Long over by then."""
    return purge_rows(store, "login_throttle", "window_start < ?", (before,), apply=apply)


def account_of(store: HubStore, member_id: str) -> dict[str, Any] | None:
    """The member's log-in account and roles as the export gives it: everything but
    the password hash (whether a password is set is said, not what it is)."""
    row = store.conn.execute(
        "SELECT email, created_at, last_login_at, failed_logins, locked_until, "
        "password_hash IS NOT NULL AS password_set FROM accounts WHERE member_id = ?",
        (member_id,),
    ).fetchone()
    if row is None:
        return None
    out = dict(row)
    out["password_set"] = bool(out["password_set"])
    out["roles"] = [
        {"role": r[0], "group": r[1]}
        for r in store.conn.execute(
            "SELECT role, group_id FROM roles WHERE member_id = ? ORDER BY role, group_id",
            (member_id,),
        )
    ]
    return out


def delete_account(store: HubStore, member_id: str) -> bool:
    """Erasure: the account goes (its roles with it, by cascade), and the log-in
    failure counter of its email; every cookie of it stops working at once."""
    row = store.conn.execute(
        "SELECT email FROM accounts WHERE member_id = ?", (member_id,)
    ).fetchone()
    if row is None:
        return False
    store.conn.execute("DELETE FROM login_throttle WHERE key = ?", (f"email:{row[0]}",))
    store.conn.execute("DELETE FROM accounts WHERE member_id = ?", (member_id,))
    return True


def list_accounts(store: HubStore) -> list[dict[str, object]]:
    """Every account with its member's name and stored roles (``trainer:<group>`` for a
    trainer), by name: the log-ins page."""
    roles: dict[str, list[str]] = {}
    for member_id, role, group_id in store.conn.execute(
        "SELECT member_id, role, group_id FROM roles ORDER BY role, group_id"
    ):
        roles.setdefault(member_id, []).append(f"{role}:{group_id}" if group_id else role)
    return [
        {
            "member_id": r[0],
            "name": r[1],
            "email": r[2],
            "last_login_at": r[3],
            "has_password": r[4] is not None,
            "locked_until": r[5],
            "roles": roles.get(r[0], []),
        }
        for r in store.conn.execute(
            "SELECT a.member_id, m.name, a.email, a.last_login_at, a.password_hash, "
            "a.locked_until FROM accounts a JOIN members m ON m.id = a.member_id "
            "ORDER BY m.name, a.member_id"
        )
    ]
