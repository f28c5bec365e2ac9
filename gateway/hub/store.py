"""The hub database: schema, seed import, idempotent event ingest and the web's queries.

SQLite in WAL mode through sqlite-utils. A connection is bound to the thread that opened
it, so every thread (ingest, snapshots, each web request) opens its own ``HubStore``.

Durability: the hub runs with ``synchronous=NORMAL``. In WAL mode that never corrupts the
database and loses nothing when the *process* crashes; only a power cut can drop the last
commits. That is acceptable here because nodes keep every event in their own journal
(``synchronous=FULL``) until the hub acknowledges it, and a lost acknowledgement only
makes the node send the event again, which ingest ignores by event id.

Catalogue tables (members, badges, groups, machines, certifications, projects) carry SQL
triggers that bump ``meta.data_version`` on every real change, so the snapshot publisher -
or any other process editing the file - notices a change by reading one integer.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlite_utils

from gateway.billing import pricing
from gateway.billing.tariffs import Tariff, max_session_s, select_tariff
from gateway.config import GroupConfig, MachineConfig, Seed
from gateway.contract import (
    BadgeEnrolled,
    CertificationGranted,
    Envelope,
    EventData,
    Job,
    NodeStatus,
    SessionEnded,
    SessionStarted,
    StaffPresence,
    parse_iso,
)
from gateway.core.clock import iso
from gateway.core.months import add_months
from gateway.core.snapshot import MachineInfo, MemberGrant, OpeningHours, Snapshot
from gateway.hub import refusals
from gateway.policies.liveness import is_silent
from gateway.policies.metering import billable_minutes, split_minutes

# Tables whose changes must reach the nodes in a new snapshot, with the columns compared
# by the update trigger (an upsert that rewrites identical values is not a change).
CATALOGUE: dict[str, tuple[str, ...]] = {
    "members": ("id", "name", "category", "status", "membership_end", "staff", "email",
                "current_project"),
    "badges": ("uid", "member_id", "status"),
    "groups": ("id", "name", "default_validity_months"),
    "machines": ("id", "name", "kind", "group_id", "min_level", "out_of_service"),
    "certifications": ("id", "member_id", "group_id", "level", "certified_by",
                       "certified_at", "expires_at", "revoked_at", "note"),
    "projects": ("id", "member_id", "name", "status"),
}

_TABLES = [
    """CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)""",
    """CREATE TABLE IF NOT EXISTS members (
        id TEXT PRIMARY KEY, name TEXT NOT NULL, category TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
        membership_end TEXT, staff INTEGER NOT NULL DEFAULT 0, email TEXT,
        current_project TEXT)""",
    """CREATE TABLE IF NOT EXISTS badges (
        uid TEXT PRIMARY KEY,
        member_id TEXT NOT NULL REFERENCES members(id) ON DELETE CASCADE,
        status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'blocked')))""",
    """CREATE INDEX IF NOT EXISTS badges_member ON badges(member_id)""",
    """CREATE TABLE IF NOT EXISTS groups (
        id TEXT PRIMARY KEY, name TEXT NOT NULL,
        default_validity_months INTEGER NOT NULL DEFAULT 24)""",
    """CREATE TABLE IF NOT EXISTS machines (
        id TEXT PRIMARY KEY, name TEXT NOT NULL, kind TEXT NOT NULL,
        group_id TEXT NOT NULL REFERENCES groups(id),
        min_level INTEGER NOT NULL DEFAULT 2, out_of_service INTEGER NOT NULL DEFAULT 0)""",
    """CREATE TABLE IF NOT EXISTS certifications (
        id INTEGER PRIMARY KEY,
        member_id TEXT NOT NULL REFERENCES members(id) ON DELETE CASCADE,
        group_id TEXT NOT NULL REFERENCES groups(id),
        level INTEGER NOT NULL CHECK (level BETWEEN 0 AND 3),
        certified_by TEXT, certified_at TEXT NOT NULL, expires_at TEXT, revoked_at TEXT,
        note TEXT, UNIQUE (member_id, group_id, certified_at))""",
    """CREATE TABLE IF NOT EXISTS projects (
        id TEXT PRIMARY KEY,
        member_id TEXT NOT NULL REFERENCES members(id) ON DELETE CASCADE,
        name TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'active')""",
    # Node data: no foreign keys on purpose. An event naming a member or machine the hub
    # does not know (yet) must still be stored: usage is money, nothing may be dropped.
    """CREATE TABLE IF NOT EXISTS events (
        event_id TEXT PRIMARY KEY, node TEXT NOT NULL, seq INTEGER NOT NULL,
        boot TEXT NOT NULL, type TEXT NOT NULL, time TEXT NOT NULL, data TEXT NOT NULL,
        received_at TEXT NOT NULL, error TEXT)""",
    """CREATE INDEX IF NOT EXISTS events_node_seq ON events(node, boot, seq)""",
    """CREATE TABLE IF NOT EXISTS sessions (
        session_id TEXT PRIMARY KEY, node TEXT NOT NULL, machine_id TEXT NOT NULL,
        member_id TEXT, badge_uid TEXT, project_id TEXT, started_at TEXT NOT NULL,
        ended_at TEXT, duration_s REAL, billable_minutes INTEGER, end_reason TEXT,
        status TEXT NOT NULL CHECK (status IN ('open', 'closed')),
        first_event_at TEXT NOT NULL)""",
    """CREATE INDEX IF NOT EXISTS sessions_started ON sessions(started_at)""",
    """CREATE TABLE IF NOT EXISTS machine_state (
        machine_id TEXT PRIMARY KEY, node TEXT, online INTEGER NOT NULL DEFAULT 0,
        relay INTEGER NOT NULL DEFAULT 0, session_id TEXT, member_id TEXT, since TEXT,
        status TEXT, updated_at TEXT)""",
    """CREATE TABLE IF NOT EXISTS staff_presence (
        member_id TEXT PRIMARY KEY, present INTEGER NOT NULL, since TEXT, until TEXT,
        updated_at TEXT NOT NULL)""",
    # Messages that were not even a valid envelope: kept for diagnosis, never applied.
    """CREATE TABLE IF NOT EXISTS rejected_messages (
        id INTEGER PRIMARY KEY, topic TEXT NOT NULL, payload BLOB, error TEXT NOT NULL,
        received_at TEXT NOT NULL)""",
    """INSERT OR IGNORE INTO meta (key, value) VALUES ('data_version', '0')""",
    """INSERT OR IGNORE INTO meta (key, value) VALUES ('snapshot_version', '0')""",
]


def _trigger_statements() -> list[str]:
    bump = ("UPDATE meta SET value = CAST(value AS INTEGER) + 1 "
            "WHERE key = 'data_version';")
    out = []
    for table, cols in CATALOGUE.items():
        changed = " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in cols)
        out += [
            f"CREATE TRIGGER IF NOT EXISTS {table}_dv_ins AFTER INSERT ON {table} "
            f"BEGIN {bump} END",
            f"CREATE TRIGGER IF NOT EXISTS {table}_dv_upd AFTER UPDATE ON {table} "
            f"WHEN {changed} BEGIN {bump} END",
            f"CREATE TRIGGER IF NOT EXISTS {table}_dv_del AFTER DELETE ON {table} "
            f"BEGIN {bump} END",
        ]
    return out


MIGRATIONS = sqlite_utils.Migrations("fabgate-hub")


@MIGRATIONS(name="0001_initial")
def _m0001_initial(db: sqlite_utils.Database) -> None:
    # Statement by statement: executescript() would COMMIT the migration's transaction.
    for stmt in _TABLES + _trigger_statements():
        db.execute(stmt)


@MIGRATIONS(name="0002_jobs_and_busy_time")
def _m0002_jobs(db: sqlite_utils.Database) -> None:
    """Machine activity: busy/idle split of sessions, and the jobs machines ran."""
    for column in ("busy_s REAL", "idle_s REAL", "busy_minutes INTEGER",
                   "idle_minutes INTEGER", "jobs INTEGER"):
        db.execute(f"ALTER TABLE sessions ADD COLUMN {column}")
    db.execute(
        "CREATE TABLE IF NOT EXISTS jobs (job_id TEXT PRIMARY KEY, node TEXT NOT NULL, "
        "machine_id TEXT NOT NULL, session_id TEXT, member_id TEXT, project_id TEXT, "
        "name TEXT, state TEXT NOT NULL, progress REAL, time_left_s REAL, detail TEXT, "
        "started_at TEXT, ended_at TEXT, updated_at TEXT NOT NULL)")
    db.execute("CREATE INDEX IF NOT EXISTS jobs_started ON jobs(started_at)")


@dataclass
class SeedImport:
    """What one seed import created (and, with ``update``, how many rows it changed)."""

    members: int = 0
    badges: int = 0
    projects: int = 0
    certifications: int = 0
    updated: int = 0

    @property
    def created(self) -> int:
        return self.members + self.badges + self.projects + self.certifications

    def summary(self) -> str:
        return (f"created {self.members} members, {self.badges} badges, {self.projects} "
                f"projects, {self.certifications} certifications"
                + (f"; updated {self.updated} rows" if self.updated else ""))


def _audit(store: HubStore, actor: str | None, action: str, subject: str,
           details: dict[str, Any]) -> None:
    """Write to the audit log when it exists (accounts migration), in the same transaction."""
    try:
        from gateway.hub import audit
    except ImportError:  # pragma: no cover - the audit module is part of the package
        return
    audit.record(store, actor or "system", action, subject, details)


def _status_json(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _dt(value: str | None) -> datetime | None:
    return parse_iso(value) if value else None


class HubStore:
    """One connection to the hub database; open one per thread and close it."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        # Sessions are priced when they close, by the database's tariffs (billing.pricing).
        self._tariff_book = pricing.TariffBook()
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

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> HubStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- meta -------------------------------------------------------------------------

    def _meta_int(self, key: str) -> int:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return int(row[0]) if row else 0

    def data_version(self) -> int:
        return self._meta_int("data_version")

    def next_snapshot_version(self) -> int:
        """Persisted so that a restarted hub never issues a version a node already holds."""
        with self.db.atomic():
            self.conn.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 "
                              "WHERE key = 'snapshot_version'")
            return self._meta_int("snapshot_version")

    def snapshot_epoch(self) -> int:
        return self._meta_int("snapshot_epoch")

    def advance_epoch(self, now: datetime) -> int:
        """Move the snapshot epoch forward, once per hub start; returns the new epoch.

        ``max(stored + 1, unix seconds of now)``. The clock term is for a database
        restored from a backup: its stored epoch (and versions) are older than what the
        nodes hold, but the time has moved on since, so its snapshots are newer again.
        The ``stored + 1`` term is for a clock that is wrong or behind (a hub without a
        real-time clock booting before NTP): the epoch still never repeats on the same
        database. Only both together - a restored database *and* a clock behind - can
        issue snapshots nodes refuse as ``older``; they say so in ``snapshot.rejected``.
        """
        with self.db.atomic():
            epoch = max(self.snapshot_epoch() + 1, int(now.timestamp()))
            self.conn.execute("INSERT INTO meta (key, value) VALUES ('snapshot_epoch', ?) "
                              "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                              (str(epoch),))
        return epoch

    # -- catalogue --------------------------------------------------------------------

    def sync_catalogue(self, groups: Iterable[GroupConfig],
                       machines: Iterable[MachineConfig]) -> None:
        """Upsert groups and machines from the hub config; machines are never deleted
        because past sessions still name them."""
        machines = list(machines)
        with self.db.atomic():
            for g in groups:
                self.conn.execute(
                    "INSERT INTO groups (id, name, default_validity_months, lapse_months) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET name = excluded.name, "
                    "default_validity_months = excluded.default_validity_months, "
                    "lapse_months = excluded.lapse_months",
                    (g.id, g.name, g.default_validity_months, g.lapse_months))
            for m in machines:
                self.conn.execute(
                    "INSERT INTO machines (id, name, kind, group_id, min_level, out_of_service,"
                    " requires_credit) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE "
                    "SET name = excluded.name, kind = excluded.kind, "
                    "group_id = excluded.group_id, min_level = excluded.min_level, "
                    "out_of_service = excluded.out_of_service, "
                    "requires_credit = excluded.requires_credit",
                    (m.id, m.name, m.kind, m.group, m.min_level, int(m.out_of_service),
                     int(m.requires_credit)))
                self.conn.execute("UPDATE machines SET certify_level = ? WHERE id = ?",
                                  (m.certify_level, m.id))
            # The node each machine is served by; machines no longer configured keep their
            # past sessions but no node may speak for them.
            self.conn.execute("UPDATE machines SET node = NULL")
            self.conn.executemany("UPDATE machines SET node = ? WHERE id = ?",
                                  [(m.node_id, m.id) for m in machines])

    def import_seed(self, seed: Seed, *, update: bool = False) -> SeedImport:
        """Create what the seed has and the database lacks; never touch what exists.

        The database is the hub's: once a member, badge, project or certification is in
        it, the web owns it (a renamed member, a new current project, a blocked badge, a
        revoked certification), and re-importing the seed at every start must not undo
        that. A member's ``current_project`` is set only for members this import creates.
        ``update=True`` (``fabgate import --update``) is the deliberate exception: the seed
        overwrites the fields it has, as the seed-as-source-of-truth import once did.
        Importing the same file again changes nothing (and does not bump ``data_version``).
        """
        report = SeedImport()
        with self.db.atomic():
            created_members: set[str] = set()
            for m in seed.members:
                values = (m.id, m.name, m.category, m.status,
                          m.membership_end.isoformat() if m.membership_end else None,
                          int(m.staff), m.email)
                cur = self.conn.execute(
                    "INSERT INTO members (id, name, category, status, membership_end, staff, "
                    "email, current_project) VALUES (?, ?, ?, ?, ?, ?, ?, NULL) "
                    "ON CONFLICT(id) DO NOTHING", values)
                if cur.rowcount:
                    created_members.add(m.id)
                    report.members += 1
                elif update:
                    cur = self.conn.execute(
                        "UPDATE members SET name = ?, category = ?, status = ?, "
                        "membership_end = ?, staff = ?, email = ? WHERE id = ?",
                        (*values[1:], m.id))
                    report.updated += cur.rowcount
                for uid in m.badges:
                    cur = self.conn.execute(
                        "INSERT INTO badges (uid, member_id, status) VALUES (?, ?, 'active') "
                        "ON CONFLICT(uid) DO NOTHING", (uid, m.id))
                    report.badges += cur.rowcount
                    if not cur.rowcount and update:
                        report.updated += self.conn.execute(
                            "UPDATE badges SET member_id = ? WHERE uid = ? AND member_id != ?",
                            (m.id, uid, m.id)).rowcount
            for p in seed.projects:
                cur = self.conn.execute(
                    "INSERT INTO projects (id, member_id, name) VALUES (?, ?, ?) "
                    "ON CONFLICT(id) DO NOTHING", (p.id, p.member, p.name))
                report.projects += cur.rowcount
                if not cur.rowcount and update:
                    report.updated += self.conn.execute(
                        "UPDATE projects SET member_id = ?, name = ? WHERE id = ? "
                        "AND (member_id IS NOT ? OR name IS NOT ?)",
                        (p.member, p.name, p.id, p.member, p.name)).rowcount
            # Projects exist now: the members' current project can reference them.
            for m in seed.members:
                if m.id in created_members or update:
                    self.conn.execute(
                        "UPDATE members SET current_project = ? WHERE id = ? "
                        "AND current_project IS NOT ?", (m.current_project, m.id,
                                                         m.current_project))
            for c in seed.certifications:
                if update:
                    self._upsert_certification(
                        c.member, c.group, c.level, certified_by=c.certified_by,
                        certified_at=c.certified_at, expires_at=c.expires)
                    continue
                cur = self.conn.execute(
                    "INSERT INTO certifications (member_id, group_id, level, certified_by, "
                    "certified_at, expires_at) VALUES (?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT(member_id, group_id, certified_at) DO NOTHING",
                    (c.member, c.group, c.level, c.certified_by, iso(c.certified_at),
                     iso(c.expires) if c.expires else None))
                report.certifications += cur.rowcount
        return report

    def add_certification(self, member_id: str, group_id: str, level: int, *,
                          certified_by: str | None, certified_at: datetime,
                          expires_at: datetime | None = None, note: str | None = None) -> None:
        """Record a certification; the same (member, group, certified_at) is updated."""
        with self.db.atomic():
            self._upsert_certification(member_id, group_id, level, certified_by=certified_by,
                                       certified_at=certified_at, expires_at=expires_at,
                                       note=note)

    def _upsert_certification(self, member_id: str, group_id: str, level: int, *,
                              certified_by: str | None, certified_at: datetime,
                              expires_at: datetime | None = None,
                              note: str | None = None) -> None:
        self.conn.execute(
            "INSERT INTO certifications (member_id, group_id, level, certified_by, "
            "certified_at, expires_at, note) VALUES (?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(member_id, group_id, certified_at) DO UPDATE SET "
            "level = excluded.level, certified_by = excluded.certified_by, "
            "expires_at = excluded.expires_at, note = coalesce(excluded.note, note)",
            (member_id, group_id, level, certified_by, iso(certified_at),
             iso(expires_at) if expires_at else None, note))

    def revoke_certification(self, member_id: str, group_id: str, at: datetime) -> int:
        """Revoke every live certification of a member on a group; returns how many."""
        with self.db.atomic():
            cur = self.conn.execute(
                "UPDATE certifications SET revoked_at = ? WHERE member_id = ? "
                "AND group_id = ? AND revoked_at IS NULL", (iso(at), member_id, group_id))
        return cur.rowcount

    def machine_ids(self) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT id FROM machines ORDER BY id")]

    # -- ingest -----------------------------------------------------------------------

    def ingest(self, envelopes: Iterable[Envelope], received_at: datetime) -> list[str]:
        """Store and apply a batch in one transaction; return every id to acknowledge.

        ``INSERT OR IGNORE`` on the event id is the idempotence: an event already stored is
        never applied again, so a node replaying its journal bills nothing twice. Each
        event is handled in its own savepoint (see :mod:`gateway.hub.ingest`): data that
        breaks the contract, or that its sender may not send, is stored with ``error``
        set and recorded as a refusal - still acknowledged, because sending it again
        would never make it valid; an unexpected error rolls back that event only, which
        is then not acknowledged (the node sends it again).
        """
        from gateway.hub.ingest import ingest_envelopes  # ingest drives this store: import late

        return ingest_envelopes(self, list(envelopes), received_at)

    def store_event(self, env: Envelope, received_at: datetime) -> bool:
        """Insert the event row; False when its id was already stored (a duplicate)."""
        cur = self.conn.execute(
            "INSERT OR IGNORE INTO events (event_id, node, seq, boot, type, time, "
            "data, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (env.id, env.node, env.seq, env.boot, env.type, env.time,
             json.dumps(env.data, sort_keys=True), iso(received_at)))
        return cur.rowcount == 1

    def mark_event(self, event_id: str, error: str) -> None:
        self.conn.execute("UPDATE events SET error = ? WHERE event_id = ?", (error, event_id))

    def apply_event(self, env: Envelope, event: EventData | None,
                    received_at: datetime) -> None:
        """Apply checked, authorised event data (see gateway.hub.trust)."""
        if isinstance(event, SessionStarted):
            self._session_started(env, event)
        elif isinstance(event, SessionEnded):
            self._session_ended(env, event)
        elif isinstance(event, StaffPresence):
            self._staff_presence(env, event)
        elif isinstance(event, Job):
            self._job(env, event)
        elif isinstance(event, BadgeEnrolled):
            self._badge_enrolled(env, event, received_at)
        elif isinstance(event, CertificationGranted):
            self._certified_at_machine(env, event, received_at)
        # tap, node.boot, snapshot.rejected and unknown types: stored only.

    def _session_started(self, env: Envelope, ev: SessionStarted) -> None:
        sid, machine, member = ev.session_id, ev.machine, ev.member_id
        started = iso(ev.started_at)
        event_time = iso(parse_iso(env.time))
        # A session already closed (its end arrived first) stays closed; an open one only
        # learns an earlier first event time. Both keep the result order-independent.
        self.conn.execute(
            "INSERT INTO sessions (session_id, node, machine_id, member_id, badge_uid, "
            "project_id, started_at, status, first_event_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, 'open', ?) ON CONFLICT(session_id) DO UPDATE SET "
            "first_event_at = min(first_event_at, excluded.first_event_at)",
            (sid, env.node, machine, member, ev.badge_uid, ev.project_id, started,
             event_time))
        status = self.conn.execute("SELECT status FROM sessions WHERE session_id = ?",
                                   (sid,)).fetchone()[0]
        if status == "open":
            self.conn.execute(
                "INSERT INTO machine_state (machine_id, node, relay, session_id, member_id, "
                "since, updated_at) VALUES (?, ?, 1, ?, ?, ?, ?) "
                "ON CONFLICT(machine_id) DO UPDATE SET node = excluded.node, relay = 1, "
                "session_id = excluded.session_id, member_id = excluded.member_id, "
                "since = excluded.since, updated_at = excluded.updated_at "
                "WHERE updated_at IS NULL OR updated_at <= excluded.updated_at",
                (machine, env.node, sid, member, started, started))

    def _session_ended(self, env: Envelope, ev: SessionEnded) -> None:
        """Close a session (opened by the same node, checked by gateway.hub.trust); the
        closing event is remembered, so a second, different end is a conflict."""
        sid, machine, member = ev.session_id, ev.machine, ev.member_id
        started, ended = iso(ev.started_at), iso(ev.ended_at)
        duration = ev.duration_s
        event_time = iso(parse_iso(env.time))
        self.conn.execute(
            "INSERT INTO sessions (session_id, node, machine_id, member_id, badge_uid, "
            "project_id, started_at, ended_at, duration_s, billable_minutes, end_reason, "
            "status, first_event_at, closed_by) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'closed', ?, ?) "
            "ON CONFLICT(session_id) DO UPDATE SET "
            "machine_id = excluded.machine_id, member_id = excluded.member_id, "
            "badge_uid = excluded.badge_uid, project_id = excluded.project_id, "
            "started_at = excluded.started_at, ended_at = excluded.ended_at, "
            "duration_s = excluded.duration_s, billable_minutes = excluded.billable_minutes, "
            "end_reason = excluded.end_reason, status = 'closed', "
            "first_event_at = min(first_event_at, excluded.first_event_at), "
            "closed_by = excluded.closed_by",
            (sid, env.node, machine, member, ev.badge_uid, ev.project_id, started, ended,
             duration, billable_minutes(duration), ev.end_reason, event_time, env.id))
        # Busy/idle split, when the node follows its machine (no link: no split, NULL).
        busy: float | None = None
        idle: float | None = None
        busy_min: int | None = None
        idle_min: int | None = None
        if ev.busy_s is not None:
            busy = min(ev.busy_s, duration)
            idle = duration - busy
            busy_min, idle_min = split_minutes(duration, busy)
        self.conn.execute(
            "UPDATE sessions SET busy_s = ?, idle_s = ?, busy_minutes = ?, idle_minutes = ?, "
            "jobs = ? WHERE session_id = ?",
            (busy, idle, busy_min, idle_min, ev.jobs, sid))
        self._price(sid)
        self.conn.execute(
            "INSERT INTO machine_state (machine_id, node, relay, updated_at) "
            "VALUES (?, ?, 0, ?) ON CONFLICT(machine_id) DO UPDATE SET relay = 0, "
            "session_id = NULL, member_id = NULL, since = NULL, "
            "updated_at = excluded.updated_at "
            "WHERE session_id = ? OR updated_at IS NULL OR updated_at <= excluded.updated_at",
            (machine, env.node, ended, sid))

    def _tariff_for(self, machine: str, member: str | None, at: datetime) -> Tariff | None:
        """The tariff a member's next session on ``machine`` would be priced by (the
        prepaid cap in snapshots), from the database's tariffs and today's category."""
        row = self.conn.execute(
            "SELECT m.group_id, (SELECT category FROM members WHERE id = ?) AS category "
            "FROM machines m WHERE m.id = ?", (member, machine)).fetchone()
        if row is None:
            return None
        _, tariffs = self._tariff_book.current(self.conn)
        return select_tariff(tariffs, machine=machine, group=row["group_id"],
                             category=row["category"] or "", at=at)

    def _price(self, session_id: str) -> int | None:
        """Store a closed session's price (``billing.pricing``, the one pricing path);
        returns the amount in cents, None when no tariff applies (unpriced)."""
        return pricing.price_closed_session(self.conn, self._tariff_book, session_id)

    def price_unpriced(self) -> int:
        """Price closed sessions never priced (history written by another tool, rows
        from before stored prices); returns how many got an amount."""
        return pricing.price_unpriced(self)

    # -- prepaid credit ---------------------------------------------------------------

    def add_credit(self, member_id: str, amount_cents: int, *, at: datetime,
                   note: str = "", by: str | None = None) -> None:
        """A top-up (positive) or a correction (negative); the ledger is append-only."""
        if isinstance(amount_cents, bool) or not isinstance(amount_cents, int):
            raise TypeError("credit amounts are integer cents")
        with self.db.atomic():
            self.conn.execute(
                "INSERT INTO credit_ledger (member_id, amount_cents, at, note, by) "
                "VALUES (?, ?, ?, ?, ?)", (member_id, amount_cents, iso(at), note, by))

    def balance(self, member_id: str) -> int:
        """Top-ups minus the amounts of sessions on machines that require credit."""
        row = self.conn.execute(
            "SELECT (SELECT coalesce(sum(amount_cents), 0) FROM credit_ledger "
            "WHERE member_id = ?) - (SELECT coalesce(sum(s.amount_cents), 0) FROM sessions s "
            "JOIN machines m ON m.id = s.machine_id WHERE s.member_id = ? "
            "AND m.requires_credit = 1 AND s.status = 'closed')",
            (member_id, member_id)).fetchone()
        return int(row[0])

    def _credit_s(self, machine: MachineInfo, member_id: str, now: datetime) -> float | None:
        if not machine.requires_credit:
            return None
        balance = self.balance(member_id)
        if balance <= 0:
            return 0.0
        return max_session_s(self._tariff_for(machine.id, member_id, now), balance)

    def _staff_presence(self, env: Envelope, ev: StaffPresence) -> None:
        until = iso(ev.until) if ev.until else None
        at = iso(parse_iso(env.time))
        # Guarded by event time: a check-in replayed late must not undo a later check-out.
        self.conn.execute(
            "INSERT INTO staff_presence (member_id, present, since, until, updated_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT(member_id) DO UPDATE SET "
            "present = excluded.present, "
            "since = CASE WHEN excluded.present AND present THEN since ELSE excluded.since END,"
            " until = excluded.until, updated_at = excluded.updated_at "
            "WHERE updated_at <= excluded.updated_at",
            (ev.member_id, int(ev.present), at, until if ev.present else None, at))

    _JOB_STATES = {"started": "running", "progress": "running", "resumed": "running",
                   "paused": "paused", "finished": "finished", "failed": "failed",
                   "cancelled": "cancelled"}
    _JOB_FINAL = ("finished", "failed", "cancelled")

    def _job(self, env: Envelope, ev: Job) -> None:
        """Upsert a job from one of its events; any arrival order gives the same row.

        A final state (finished, failed, cancelled) is never overwritten by an earlier
        event arriving late; otherwise the event with the latest time wins.
        """
        job_id, event, progress = ev.job_id, ev.event, ev.progress
        state = self._JOB_STATES[event]
        final = state in self._JOB_FINAL
        at = iso(parse_iso(env.time))
        self.conn.execute(
            "INSERT INTO jobs (job_id, node, machine_id, session_id, member_id, project_id, "
            "name, state, progress, time_left_s, detail, started_at, ended_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(job_id) DO UPDATE SET "
            "session_id = coalesce(session_id, excluded.session_id), "
            "member_id = coalesce(member_id, excluded.member_id), "
            "project_id = coalesce(project_id, excluded.project_id), "
            "name = coalesce(excluded.name, name), "
            "started_at = coalesce(min(started_at, excluded.started_at), started_at, "
            "excluded.started_at), "
            "ended_at = coalesce(ended_at, excluded.ended_at), "
            "progress = CASE WHEN excluded.progress IS NULL THEN progress "
            "WHEN progress IS NULL THEN excluded.progress "
            "ELSE max(progress, excluded.progress) END, "
            "state = CASE WHEN state IN ('finished', 'failed', 'cancelled') THEN state "
            "WHEN excluded.state IN ('finished', 'failed', 'cancelled') THEN excluded.state "
            "WHEN excluded.updated_at >= updated_at THEN excluded.state ELSE state END, "
            "time_left_s = CASE WHEN excluded.updated_at >= updated_at "
            "THEN excluded.time_left_s ELSE time_left_s END, "
            "detail = CASE WHEN excluded.updated_at >= updated_at "
            "THEN excluded.detail ELSE detail END, "
            "updated_at = max(updated_at, excluded.updated_at)",
            (job_id, env.node, ev.machine, ev.session_id, ev.member_id, ev.project_id,
             ev.name, state, progress, ev.time_left_s, ev.detail,
             at if event == "started" else None, at if final else None, at))

    def jobs(self, *, limit: int = 100, since: datetime | None = None,
             until: datetime | None = None,
             machine: str | None = None) -> list[dict[str, Any]]:
        """Jobs, newest first, with member and machine names, started in [since, until)."""
        clauses, args = [], []
        if since is not None:
            clauses.append("j.updated_at >= ?")
            args.append(iso(since))
        if until is not None:
            clauses.append("j.updated_at < ?")
            args.append(iso(until))
        if machine is not None:
            clauses.append("j.machine_id = ?")
            args.append(machine)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = ("SELECT j.*, mb.name AS member_name, mc.name AS machine_name FROM jobs j "
               "LEFT JOIN members mb ON mb.id = j.member_id "
               "LEFT JOIN machines mc ON mc.id = j.machine_id "
               f"{where} ORDER BY coalesce(j.started_at, j.updated_at) DESC, j.job_id LIMIT ?")
        return [dict(r) for r in self.conn.execute(sql, (*args, limit))]

    def set_node_status(self, node: str, status: NodeStatus | Mapping[str, Any],
                        received_at: datetime | None = None) -> None:
        """Apply a node's retained status: the freshest view of online, relay and session.

        The ingest checks first that the status is about the node's own machine; a plain
        mapping (tests, tools) is checked against the contract here. ``received_at`` is
        when the hub got it, on the hub's clock (default: now); the board shows a node
        offline when no status came for three heartbeats after it.
        """
        if not isinstance(status, NodeStatus):
            status = NodeStatus.from_dict(status)
        session = status.session
        received = iso(received_at or datetime.now(UTC))
        with self.db.atomic():
            self.conn.execute(
                "INSERT INTO machine_state (machine_id, node, online, relay, session_id, "
                "member_id, since, status, updated_at, status_received_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT(machine_id) DO UPDATE SET node = excluded.node, "
                "online = excluded.online, relay = excluded.relay, "
                "session_id = CASE WHEN excluded.online THEN excluded.session_id "
                "ELSE session_id END, "
                "member_id = CASE WHEN excluded.online THEN excluded.member_id "
                "ELSE member_id END, "
                "since = CASE WHEN excluded.online THEN excluded.since ELSE since END, "
                "status = excluded.status, updated_at = excluded.updated_at, "
                "status_received_at = excluded.status_received_at",
                (status.machine_id, node, int(status.online), int(status.relay),
                 session.session_id if session else None,
                 session.member_id if session else None,
                 iso(session.started_at) if session else None,
                 json.dumps(status.to_dict(), sort_keys=True),
                 iso(status.time or datetime.now(UTC)), received))

    def record_rejected(self, topic: str, payload: bytes | str, error: str,
                        received_at: datetime, *, node: str | None = None) -> None:
        """A message that is not even a valid envelope (see gateway.hub.refusals)."""
        with self.db.atomic():
            refusals.record(self.conn, topic=topic, payload=payload, reason=error,
                            received_at=received_at, node=node)

    def machine_of_node(self, node: str) -> str | None:
        """The machine a node serves, which is all the hub believes it about.

        The hub config names each machine's node (default: the machine id). A node the
        configuration does not name serves the machine of its own id, unless that machine
        is configured with another node: then it serves none. (A machine the hub does not
        know yet keeps its usage: usage is money.)
        """
        row = self.conn.execute("SELECT id FROM machines WHERE node = ? ORDER BY id LIMIT 1",
                                (node,)).fetchone()
        if row is not None:
            return row[0]
        taken = self.conn.execute("SELECT 1 FROM machines WHERE id = ?", (node,)).fetchone()
        return None if taken else node

    # -- snapshots --------------------------------------------------------------------

    def build_snapshot(self, machine_id: str, *, now: datetime, version: int,
                       validity: timedelta, timezone: str, opening_hours: OpeningHours,
                       staff_present_until: datetime | None, site: str = "",
                       epoch: int = 0) -> Snapshot:
        """Everything one node needs to decide a tap alone, for every active badge.

        A member's level is their highest non-revoked certification on the machine's
        group *including expired ones*, with that certification's expiry: the node can
        then answer ``certification_expired`` rather than a puzzling ``not_certified``.
        A live certification outranks an expired one of a higher level.
        """
        row = self.conn.execute("SELECT * FROM machines WHERE id = ?",
                                (machine_id,)).fetchone()
        if row is None:
            raise KeyError(f"unknown machine {machine_id!r}")
        machine = MachineInfo(id=row["id"], name=row["name"], kind=row["kind"],
                              group=row["group_id"], min_level=row["min_level"],
                              out_of_service=bool(row["out_of_service"]),
                              requires_credit=bool(row["requires_credit"]),
                              certify_level=row["certify_level"])
        badges = {r["uid"]: r["member_id"] for r in self.conn.execute(
            "SELECT uid, member_id FROM badges WHERE status = 'active'")}
        best = self._best_certifications(machine.group, now)
        members: dict[str, MemberGrant] = {}
        wanted = set(badges.values())
        for m in self.conn.execute("SELECT * FROM members"):
            if m["id"] not in wanted:
                continue
            level, expires = best.get(m["id"], (0, None))
            members[m["id"]] = MemberGrant(
                member_id=m["id"], name=m["name"], category=m["category"],
                status=m["status"],
                membership_end=(date.fromisoformat(m["membership_end"])
                                if m["membership_end"] else None),
                level=level, cert_expires=_dt(expires), staff=bool(m["staff"]),
                project_id=m["current_project"],
                credit_s=self._credit_s(machine, m["id"], now))
        return Snapshot(
            site=site, version=version, epoch=epoch, issued_at=now, valid_until=now + validity,
            machine=machine, timezone=timezone,
            badges={uid: mid for uid, mid in badges.items() if mid in members},
            members=members, staff_present_until=staff_present_until,
            opening_hours=opening_hours)

    def _best_certifications(self, group: str,
                             now: datetime) -> dict[str, tuple[int, str | None]]:
        """member -> (level, effective expiry) on ``group``, lapses without use included.

        A group may lapse certifications after ``lapse_months`` without use of any of its
        machines: the effective expiry is then the earlier of the certification's own end
        and the last use (or the certification, if more recent) plus that many months.
        """
        now_s = iso(now)
        lapse = self.conn.execute("SELECT lapse_months FROM groups WHERE id = ?",
                                  (group,)).fetchone()
        months = lapse[0] if lapse else None
        last_use: dict[str, str] = {}
        if months:
            last_use = {r[0]: r[1] for r in self.conn.execute(
                "SELECT s.member_id, max(s.started_at) FROM sessions s JOIN machines m "
                "ON m.id = s.machine_id WHERE m.group_id = ? GROUP BY s.member_id",
                (group,))}
        best: dict[str, tuple[int, str | None]] = {}
        for c in self.conn.execute(
                "SELECT member_id, level, expires_at, certified_at, "
                "(expires_at IS NULL OR expires_at > ?) AS live FROM certifications "
                "WHERE group_id = ? AND revoked_at IS NULL "
                "ORDER BY member_id, live DESC, level DESC, coalesce(expires_at, '9999') DESC",
                (now_s, group)):
            if c["member_id"] in best:
                continue
            expires = c["expires_at"]
            if months:
                since = max(c["certified_at"], last_use.get(c["member_id"], ""))
                lapses = iso(add_months(parse_iso(since), months))
                expires = lapses if expires is None else min(expires, lapses)
            best[c["member_id"]] = (c["level"], expires)
        return best

    def certification_expiry(self, member_id: str, group: str,
                             now: datetime) -> tuple[int, datetime | None]:
        """(level, effective expiry) a member holds on a group, for their own pages."""
        level, expires = self._best_certifications(group, now).get(member_id, (0, None))
        return level, _dt(expires)

    # -- enrolment and certification at the machine -------------------------------------

    def create_enrolment(self, member_id: str, *, by: str | None, now: datetime,
                         seconds: float = 30.0) -> str:
        """Open a short window in which the next unknown badge tapped anywhere is attached.

        One window at a time for the whole site: a new request ends any pending one, so
        two fabmanagers cannot attach one badge to two members.
        """
        request_id = str(uuid.uuid4())
        with self.db.atomic():
            self.conn.execute("UPDATE enrolments SET status = 'expired' "
                              "WHERE status = 'pending'")
            self.conn.execute(
                "INSERT INTO enrolments (request_id, member_id, requested_by, created_at, "
                "until) VALUES (?, ?, ?, ?, ?)",
                (request_id, member_id, by, iso(now), iso(now + timedelta(seconds=seconds))))
        return request_id

    def enrolment_status(self, request_id: str, now: datetime) -> dict[str, Any] | None:
        row = self.conn.execute("SELECT * FROM enrolments WHERE request_id = ?",
                                (request_id,)).fetchone()
        if row is None:
            return None
        d = dict(row)
        if d["status"] == "pending" and d["until"] <= iso(now):
            d["status"] = "expired"
        return d

    def pending_enrolment(self, now: datetime) -> dict[str, Any] | None:
        row = self.conn.execute(
            "SELECT request_id, member_id, until FROM enrolments WHERE status = 'pending' "
            "AND until > ? ORDER BY created_at DESC LIMIT 1", (iso(now),)).fetchone()
        return dict(row) if row else None

    def enrolment_version(self) -> int:
        return self._meta_int("enrolment_version")

    def _badge_enrolled(self, env: Envelope, ev: BadgeEnrolled,
                        received_at: datetime) -> None:
        """Attach the badge to the window's member (gateway.hub.trust checked the window)."""
        uid, request_id = ev.uid, ev.request_id
        at = iso(received_at)
        row = self.conn.execute("SELECT * FROM enrolments WHERE request_id = ?",
                                (request_id,)).fetchone()
        owner = self.conn.execute("SELECT member_id FROM badges WHERE uid = ?",
                                  (uid,)).fetchone()
        if owner is not None:
            self.conn.execute("UPDATE enrolments SET status = 'refused', uid = ?, detail = ? "
                              "WHERE request_id = ?",
                              (uid, f"badge already belongs to {owner[0]}", request_id))
            return
        self.conn.execute("INSERT INTO badges (uid, member_id, status) VALUES (?, ?, 'active')",
                          (uid, row["member_id"]))
        self.conn.execute("UPDATE enrolments SET status = 'attached', uid = ?, node = ?, "
                          "attached_at = ? WHERE request_id = ?",
                          (uid, env.node, at, request_id))
        _audit(self, row["requested_by"], "badge.enrolled", row["member_id"],
               {"uid": uid, "node": env.node, "request_id": request_id})

    def _certified_at_machine(self, env: Envelope, ev: CertificationGranted,
                              received_at: datetime) -> None:
        """Record a certification given at the machine (gateway.hub.trust checked the
        trainer, the group and the trainee's tap). It counts from the event's time, but
        never from later than the hub received it: a node's clock cannot push it ahead."""
        at = min(parse_iso(env.time), received_at.astimezone(UTC))
        months = self.conn.execute("SELECT default_validity_months FROM groups WHERE id = ?",
                                   (ev.group,)).fetchone()
        self._upsert_certification(ev.member_id, ev.group, ev.level,
                                   certified_by=ev.trainer_id, certified_at=at,
                                   expires_at=add_months(at, months[0]),
                                   note=f"certified at machine {ev.machine}")
        _audit(self, ev.trainer_id, "certification.granted", ev.member_id,
               {"group": ev.group, "level": ev.level, "machine": ev.machine,
                "at_machine": True})

    def staff_present_until(self, now: datetime) -> datetime | None:
        """Latest end of presence among staff checked in and not yet past their end.

        A presence without an end is ignored: supervision must have a known end, or a
        forgotten check-out would keep supervised machines usable all night.
        """
        row = self.conn.execute(
            "SELECT max(until) FROM staff_presence WHERE present = 1 AND until > ?",
            (iso(now),)).fetchone()
        return _dt(row[0])

    # -- web queries ------------------------------------------------------------------

    def machines_live(self, now: datetime | None = None) -> list[dict[str, Any]]:
        """Machines with their live state: ``free``, ``in_use``, ``offline`` or
        ``out_of_service``.

        A node that said "online" but has been silent for more than three heartbeats
        (judged at ``now``, hub clock, default the current time) is ``offline`` with
        ``silent`` set: a frozen node sends no last will.
        """
        now = now or datetime.now(UTC)
        out = []
        refused = refusals.by_node(self.conn)
        for r in self.conn.execute(
                "SELECT m.id AS machine_id, m.name, m.kind, m.group_id, m.min_level, "
                "m.out_of_service, coalesce(m.node, m.id) AS node_id, s.node, "
                "coalesce(s.online, 0) AS online, "
                "coalesce(s.relay, 0) AS relay, s.session_id, s.member_id, "
                "mb.name AS member_name, s.since, s.updated_at, s.status AS node_status, "
                "s.status_received_at AS last_seen "
                "FROM machines m LEFT JOIN machine_state s ON s.machine_id = m.id "
                "LEFT JOIN members mb ON mb.id = s.member_id ORDER BY m.name, m.id"):
            d = dict(r)
            status = _status_json(d.pop("node_status"))
            d["silent"] = bool(d["online"]) and is_silent(_dt(d["last_seen"]), status, now)
            if d["silent"]:
                d["online"] = 0
            d["activity"] = status.get("activity")
            d["detail"] = status.get("detail") or ""
            d["job"] = status.get("job") if isinstance(status.get("job"), dict) else None
            d["ending"] = bool(status.get("ending"))
            d["online"] = bool(d["online"])
            d["relay"] = bool(d["relay"])
            d["out_of_service"] = bool(d["out_of_service"])
            # What the hub refused from the machine's node (gateway.hub.refusals).
            mine = refused.get(d["node_id"], {})
            d["refusals"] = mine.get("count", 0)
            d["refusal_reason"] = mine.get("latest_reason")
            d["refusal_at"] = mine.get("latest_at")
            if d["out_of_service"]:
                d["state"] = "out_of_service"
            elif not d["online"]:
                d["state"] = "offline"
            elif d["session_id"]:
                d["state"] = "in_use"
            else:
                d["state"] = "free"
            out.append(d)
        return out

    _SESSION_SELECT = (
        "SELECT s.session_id, s.node, s.machine_id, mc.name AS machine_name, s.member_id, "
        "mb.name AS member_name, s.badge_uid, s.project_id, s.started_at, s.ended_at, "
        "s.duration_s, s.billable_minutes, s.end_reason, s.status, s.first_event_at, "
        "s.busy_s, s.idle_s, s.busy_minutes, s.idle_minutes, s.jobs, "
        "s.amount_cents, s.priced_minutes, s.vat_rate, s.priced_with, "
        "pj.name AS project_name "
        "FROM sessions s LEFT JOIN members mb ON mb.id = s.member_id "
        "LEFT JOIN projects pj ON pj.id = s.project_id "
        "LEFT JOIN machines mc ON mc.id = s.machine_id ")

    def sessions(self, *, limit: int = 100, since: datetime | None = None,
                 until: datetime | None = None) -> list[dict[str, Any]]:
        """Most recent sessions first (open and closed), started in [since, until)."""
        where, args = self._range(since, until)
        sql = f"{self._SESSION_SELECT}{where} ORDER BY s.started_at DESC, s.session_id LIMIT ?"
        return [dict(r) for r in self.conn.execute(sql, (*args, limit))]

    def session_rows(self, start: datetime | None, end: datetime | None, *,
                     member: str | None = None, project: str | None = None,
                     machine: str | None = None) -> Iterator[dict[str, Any]]:
        """Closed sessions started in [start, end), oldest first, streamed from a cursor
        so a year of sessions never sits in memory; optionally one member's, project's or
        machine's (filtered in SQL, on an index, not in Python)."""
        where, args = self._range(start, end, closed=True)
        for column, value in (("s.member_id", member), ("s.project_id", project),
                              ("s.machine_id", machine)):
            if value is not None:
                where += f"{' AND' if where else 'WHERE'} {column} = ?"
                args.append(value)
        cur = self.conn.execute(
            f"{self._SESSION_SELECT}{where} ORDER BY s.started_at, s.session_id", args)
        try:
            for r in cur:
                yield dict(r)
        finally:
            cur.close()

    @staticmethod
    def _range(start: datetime | None, end: datetime | None,
               closed: bool = False) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        args: list[Any] = []
        if closed:
            clauses.append("s.status = 'closed'")
        if start is not None:
            clauses.append("s.started_at >= ?")
            args.append(iso(start))
        if end is not None:
            clauses.append("s.started_at < ?")
            args.append(iso(end))
        return (f"WHERE {' AND '.join(clauses)}" if clauses else ""), args

    def totals(self) -> dict[str, Any]:
        """Closed-session totals; tests and the health page use them as a fingerprint."""
        r = self.conn.execute(
            "SELECT count(*) AS sessions, coalesce(sum(duration_s), 0) AS seconds, "
            "coalesce(sum(billable_minutes), 0) AS billable_minutes FROM sessions "
            "WHERE status = 'closed'").fetchone()
        return dict(r)



@MIGRATIONS(name="0003_billing")
def _m0003_billing(db: sqlite_utils.Database) -> None:
    """Organisations that pay for members, closed periods and the invoice ledger.

    Only *closed* documents are stored (drafts are computed on demand, so they always
    reflect the latest sessions). Closed documents are a legal record: triggers refuse to
    change or delete them, so a correction can only be a new document (credit note or
    supplementary invoice), and ``seq`` orders the hash chain.
    """
    refuse = "SELECT RAISE(ABORT, 'closed invoices are append-only');"
    closed_doc = ("(SELECT status FROM invoices WHERE number = OLD.invoice_number) "
                  "= 'closed'")
    for stmt in (
        "CREATE TABLE IF NOT EXISTS organisations (id TEXT PRIMARY KEY, name TEXT NOT NULL, "
        "kind TEXT NOT NULL DEFAULT 'other' "
        "CHECK (kind IN ('school', 'company', 'association', 'other')), email TEXT)",
        "ALTER TABLE members ADD COLUMN paid_by TEXT REFERENCES organisations(id)",
        "CREATE TABLE IF NOT EXISTS periods (period TEXT PRIMARY KEY, "
        "status TEXT NOT NULL CHECK (status IN ('open', 'closed')), closed_at TEXT, "
        "closed_by TEXT)",
        "CREATE TABLE IF NOT EXISTS invoices (number TEXT PRIMARY KEY, "
        "seq INTEGER NOT NULL UNIQUE, "
        "kind TEXT NOT NULL CHECK (kind IN ('invoice', 'credit_note')), "
        "payer_kind TEXT NOT NULL CHECK (payer_kind IN ('member', 'organisation')), "
        "payer_id TEXT NOT NULL, period TEXT NOT NULL, "
        "status TEXT NOT NULL CHECK (status IN ('draft', 'closed')), issued_at TEXT, "
        "total_ht INTEGER NOT NULL, total_vat INTEGER NOT NULL, total_ttc INTEGER NOT NULL, "
        "hash TEXT, prev_hash TEXT, content TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS invoices_period ON invoices(period, seq)",
        "CREATE TABLE IF NOT EXISTS invoice_lines (id INTEGER PRIMARY KEY, "
        "invoice_number TEXT NOT NULL REFERENCES invoices(number), machine_id TEXT, "
        "project_id TEXT, minutes INTEGER NOT NULL, amount_ht INTEGER NOT NULL, "
        "vat_rate TEXT NOT NULL, late INTEGER NOT NULL DEFAULT 0, "
        "unpriced INTEGER NOT NULL DEFAULT 0, session_ids TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS invoice_lines_number ON invoice_lines(invoice_number)",
        # One row per session per document: what was billed, so a later change to the
        # session is noticed and reversed, and a session is never billed twice.
        "CREATE TABLE IF NOT EXISTS invoiced_sessions (session_id TEXT NOT NULL, "
        "invoice_number TEXT NOT NULL REFERENCES invoices(number), amount INTEGER NOT NULL, "
        "minutes INTEGER NOT NULL, machine_id TEXT, project_id TEXT, vat_rate TEXT NOT NULL, "
        "unpriced INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (session_id, invoice_number))",
        "CREATE INDEX IF NOT EXISTS invoiced_sessions_number "
        "ON invoiced_sessions(invoice_number)",
        f"CREATE TRIGGER IF NOT EXISTS invoices_frozen_upd BEFORE UPDATE ON invoices "
        f"WHEN OLD.status = 'closed' BEGIN {refuse} END",
        f"CREATE TRIGGER IF NOT EXISTS invoices_frozen_del BEFORE DELETE ON invoices "
        f"WHEN OLD.status = 'closed' BEGIN {refuse} END",
        f"CREATE TRIGGER IF NOT EXISTS invoice_lines_frozen_upd BEFORE UPDATE ON "
        f"invoice_lines WHEN {closed_doc} BEGIN {refuse} END",
        f"CREATE TRIGGER IF NOT EXISTS invoice_lines_frozen_del BEFORE DELETE ON "
        f"invoice_lines WHEN {closed_doc} BEGIN {refuse} END",
        f"CREATE TRIGGER IF NOT EXISTS invoiced_sessions_frozen_upd BEFORE UPDATE ON "
        f"invoiced_sessions WHEN {closed_doc} BEGIN {refuse} END",
        f"CREATE TRIGGER IF NOT EXISTS invoiced_sessions_frozen_del BEFORE DELETE ON "
        f"invoiced_sessions WHEN {closed_doc} BEGIN {refuse} END",
        "CREATE TRIGGER IF NOT EXISTS periods_frozen_upd BEFORE UPDATE ON periods "
        "WHEN OLD.status = 'closed' BEGIN SELECT RAISE(ABORT, 'a closed period stays "
        "closed'); END",
        "CREATE TRIGGER IF NOT EXISTS periods_frozen_del BEFORE DELETE ON periods "
        "WHEN OLD.status = 'closed' BEGIN SELECT RAISE(ABORT, 'a closed period stays "
        "closed'); END",
    ):
        db.execute(stmt)


@MIGRATIONS(name="0004_prepaid_credit")
def _m0004_prepaid_credit(db: sqlite_utils.Database) -> None:
    """Prepaid credit: a ledger of top-ups, priced sessions, machines that require credit.

    A member's balance is their top-ups minus the amounts of their sessions on machines
    that require credit; other machines are invoiced. The ledger bumps ``data_version``
    so a top-up reaches the nodes in a new snapshot at once.
    """
    db.execute("ALTER TABLE machines ADD COLUMN requires_credit INTEGER NOT NULL DEFAULT 0")
    db.execute("ALTER TABLE sessions ADD COLUMN amount_cents INTEGER")
    db.execute(
        "CREATE TABLE IF NOT EXISTS credit_ledger (id INTEGER PRIMARY KEY, "
        "member_id TEXT NOT NULL REFERENCES members(id), amount_cents INTEGER NOT NULL, "
        "at TEXT NOT NULL, note TEXT, by TEXT)")
    db.execute("CREATE INDEX IF NOT EXISTS credit_member ON credit_ledger(member_id)")
    bump = ("UPDATE meta SET value = CAST(value AS INTEGER) + 1 "
            "WHERE key = 'data_version';")
    db.execute(f"CREATE TRIGGER IF NOT EXISTS credit_ledger_dv_ins AFTER INSERT ON "
               f"credit_ledger BEGIN {bump} END")
    db.execute("DROP TRIGGER IF EXISTS machines_dv_upd")
    changed = " OR ".join(f"OLD.{c} IS NOT NEW.{c}"
                          for c in (*CATALOGUE["machines"], "requires_credit"))
    db.execute(f"CREATE TRIGGER machines_dv_upd AFTER UPDATE ON machines WHEN {changed} "
               f"BEGIN {bump} END")


@MIGRATIONS(name="0006_enrolment_and_lapse")
def _m0006_enrolment_and_lapse(db: sqlite_utils.Database) -> None:
    """Badge enrolment at any machine, certification at the machine, lapse without use."""
    db.execute(
        "CREATE TABLE IF NOT EXISTS enrolments (request_id TEXT PRIMARY KEY, "
        "member_id TEXT NOT NULL REFERENCES members(id), requested_by TEXT, "
        "created_at TEXT NOT NULL, until TEXT NOT NULL, "
        "status TEXT NOT NULL DEFAULT 'pending' "
        "CHECK (status IN ('pending', 'attached', 'expired', 'refused')), "
        "uid TEXT, node TEXT, attached_at TEXT, detail TEXT)")
    db.execute("ALTER TABLE groups ADD COLUMN lapse_months INTEGER")
    db.execute("ALTER TABLE machines ADD COLUMN certify_level INTEGER NOT NULL DEFAULT 2")
    db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('enrolment_version', '0')")
    bump = ("UPDATE meta SET value = CAST(value AS INTEGER) + 1 "
            "WHERE key = 'enrolment_version';")
    for op in ("INSERT", "UPDATE"):
        db.execute(f"CREATE TRIGGER IF NOT EXISTS enrolments_{op.lower()} AFTER {op} ON "
                   f"enrolments BEGIN {bump} END")
    dv = "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'data_version';"
    for table, column in (("groups", "lapse_months"), ("machines", "certify_level")):
        db.execute(f"CREATE TRIGGER IF NOT EXISTS {table}_{column}_dv AFTER UPDATE OF "
                   f"{column} ON {table} WHEN OLD.{column} IS NOT NEW.{column} "
                   f"BEGIN {dv} END")


@MIGRATIONS(name="0007_members_joined_at")
def _m0007_members_joined_at(db: sqlite_utils.Database) -> None:
    """When a member joined: the activity report counts new members per period."""
    db.execute("ALTER TABLE members ADD COLUMN joined_at TEXT")


@MIGRATIONS(name="0005_accounts")
def _m0005_accounts(db: sqlite_utils.Database) -> None:
    """Web accounts, roles, API tokens, log-in throttling and the audit log.

    Registered after 0006 because it was written later: sqlite-utils applies migrations
    by name once each, in declaration order, and nothing here depends on 0006. The audit
    log is evidence, so triggers refuse UPDATE and DELETE outright (``gateway.hub.audit``
    chains the rows, so even a change made with the triggers dropped is detected).
    Log-in failures are counted here rather than in memory so that restarting the hub does
    not hand an attacker a fresh set of guesses.
    """
    refuse = "SELECT RAISE(ABORT, 'the audit log is append-only');"
    for stmt in (
        "CREATE TABLE IF NOT EXISTS accounts ("
        "member_id TEXT PRIMARY KEY REFERENCES members(id) ON DELETE CASCADE, "
        "email TEXT NOT NULL UNIQUE COLLATE NOCASE, password_hash TEXT, "
        "created_at TEXT NOT NULL, last_login_at TEXT, "
        "failed_logins INTEGER NOT NULL DEFAULT 0, locked_until TEXT)",
        # "member" is implicit for every account; only the other roles are stored. A
        # trainer always names the certification group they train for, nobody else does.
        "CREATE TABLE IF NOT EXISTS roles ("
        "member_id TEXT NOT NULL REFERENCES accounts(member_id) ON DELETE CASCADE, "
        "role TEXT NOT NULL "
        "CHECK (role IN ('trainer', 'fabmanager', 'accountant', 'admin')), "
        "group_id TEXT REFERENCES groups(id), "
        "CHECK ((role = 'trainer') = (group_id IS NOT NULL)))",
        "CREATE UNIQUE INDEX IF NOT EXISTS roles_unique "
        "ON roles(member_id, role, coalesce(group_id, ''))",
        "CREATE TABLE IF NOT EXISTS api_tokens (id INTEGER PRIMARY KEY, name TEXT NOT NULL, "
        "token_hash TEXT NOT NULL UNIQUE, scopes TEXT NOT NULL, created_by TEXT, "
        "created_at TEXT NOT NULL, revoked_at TEXT, last_used_at TEXT)",
        "CREATE TABLE IF NOT EXISTS login_throttle (key TEXT PRIMARY KEY, "
        "failures INTEGER NOT NULL, window_start TEXT NOT NULL, locked_until TEXT)",
        "CREATE TABLE IF NOT EXISTS audit_log (seq INTEGER PRIMARY KEY, at TEXT NOT NULL, "
        "actor TEXT NOT NULL, action TEXT NOT NULL, subject TEXT NOT NULL, "
        "details TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL UNIQUE)",
        f"CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log "
        f"BEGIN {refuse} END",
        f"CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log "
        f"BEGIN {refuse} END",
    ):
        db.execute(stmt)


@MIGRATIONS(name="0008_usage_indexes")
def _m0008_usage_indexes(db: sqlite_utils.Database) -> None:
    """One member's (or project's, or machine's) usage without reading everyone's."""
    for column in ("member_id", "project_id", "machine_id"):
        db.execute(f"CREATE INDEX IF NOT EXISTS sessions_{column}_started "
                   f"ON sessions({column}, started_at)")


@MIGRATIONS(name="0009_node_status_received_at")
def _m0009_status_received(db: sqlite_utils.Database) -> None:
    """When the hub received each node's last status (hub clock): a node silent for more
    than three heartbeats is shown offline even if its last will never came."""
    db.execute("ALTER TABLE machine_state ADD COLUMN status_received_at TEXT")


@MIGRATIONS(name="0010_trust")
def _m0010_trust(db: sqlite_utils.Database) -> None:
    """Who may say what: each machine's node, the event that closed each session (a
    second, different end is a conflict), and refusals by node (gateway.hub.refusals)."""
    db.execute("ALTER TABLE machines ADD COLUMN node TEXT")
    db.execute("UPDATE machines SET node = id")
    db.execute("CREATE INDEX IF NOT EXISTS machines_node ON machines(node)")
    db.execute("ALTER TABLE sessions ADD COLUMN closed_by TEXT")
    for column in ("node TEXT", "event_id TEXT", "event_type TEXT",
                   "kind TEXT NOT NULL DEFAULT 'invalid'"):
        db.execute(f"ALTER TABLE rejected_messages ADD COLUMN {column}")
    db.execute("CREATE INDEX IF NOT EXISTS rejected_messages_node "
               "ON rejected_messages(node, id)")


@MIGRATIONS(name="0011_stored_prices")
def _m0011_stored_prices(db: sqlite_utils.Database) -> None:
    """One pricing path: the hub's tariffs in the database, each session's price stored.

    ``gateway.billing.pricing`` owns the ``tariffs`` table (synced from the hub config at
    hub start, its fingerprint in ``meta``) and the price columns of ``sessions``: what
    an invoice line needs (amount, the tariff's minutes and VAT rate), the member
    category the session was priced for, and the fingerprint of the tariff set it was
    priced with (NULL: never priced). Amounts written before this migration came from
    whatever tariffs the writing process was opened with, so they are cleared: the hub
    prices every closed session again at its next start.
    """
    for column in ("priced_minutes INTEGER", "vat_rate TEXT", "price_category TEXT",
                   "priced_with TEXT"):
        db.execute(f"ALTER TABLE sessions ADD COLUMN {column}")
    db.execute(
        "CREATE TABLE IF NOT EXISTS tariffs (position INTEGER PRIMARY KEY, "
        "name TEXT NOT NULL, valid_from TEXT NOT NULL, scope_machines TEXT NOT NULL, "
        "scope_groups TEXT NOT NULL, scope_categories TEXT NOT NULL, rate INTEGER, "
        "busy_rate INTEGER, idle_rate INTEGER, startup INTEGER NOT NULL, "
        "minimum INTEGER NOT NULL, unit INTEGER NOT NULL, free_under_s REAL NOT NULL, "
        "material_per_gram TEXT NOT NULL, vat_rate TEXT NOT NULL)")
    # The category a closed session is priced for from now on: the best known, today's.
    db.execute("UPDATE sessions SET amount_cents = NULL, price_category = "
               "(SELECT category FROM members WHERE id = sessions.member_id) "
               "WHERE status = 'closed'")


@MIGRATIONS(name="0012_sessions_start_order")
def _m0012_sessions_start_order(db: sqlite_utils.Database) -> None:
    """Exports and invoice runs read sessions ordered by (start, id): with this index
    SQLite streams them in that order instead of sorting each run of equal starts."""
    db.execute("CREATE INDEX IF NOT EXISTS sessions_started_id "
               "ON sessions(started_at, session_id)")
