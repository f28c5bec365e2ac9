"""The hub's schema: every migration, in order, and the catalogue triggers.

sqlite-utils applies the migrations of a set in declaration order, each once, and records
each by name in ``_sqlite_migrations``: a name, once released, is part of every database
made since and never changes. They are declared here in name order (``STEPS``), so the
file reads as the history of the schema; ``tests/test_hub_schema.py`` checks that order,
and that a fresh database is the same as with the order they were once declared in.

Which module owns each table is in ``docs/design.md`` ("The hub package"); migrations
only create and change tables, never data a repository owns (except the one-off
clearing of 0011).

Catalogue tables (members, badges, groups, machines, certifications, projects) carry SQL
triggers that bump ``meta.data_version`` on every real change, so the snapshot publisher -
or any other process editing the file - notices a change by reading one integer.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlite_utils

# Tables whose changes must reach the nodes in a new snapshot, with the columns compared
# by the update trigger (an upsert that rewrites identical values is not a change).
CATALOGUE: dict[str, tuple[str, ...]] = {
    "members": (
        "id",
        "name",
        "category",
        "status",
        "membership_end",
        "staff",
        "email",
        "current_project",
    ),
    "badges": ("uid", "member_id", "status"),
    "groups": ("id", "name", "default_validity_months"),
    "machines": ("id", "name", "kind", "group_id", "min_level", "out_of_service"),
    "certifications": (
        "id",
        "member_id",
        "group_id",
        "level",
        "certified_by",
        "certified_at",
        "expires_at",
        "revoked_at",
        "note",
    ),
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
    bump = "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'data_version';"
    out = []
    for table, cols in CATALOGUE.items():
        changed = " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in cols)
        out += [
            f"CREATE TRIGGER IF NOT EXISTS {table}_dv_ins AFTER INSERT ON {table} BEGIN {bump} END",
            f"CREATE TRIGGER IF NOT EXISTS {table}_dv_upd AFTER UPDATE ON {table} "
            f"WHEN {changed} BEGIN {bump} END",
            f"CREATE TRIGGER IF NOT EXISTS {table}_dv_del AFTER DELETE ON {table} BEGIN {bump} END",
        ]
    return out


def _m0001_initial(db: sqlite_utils.Database) -> None:
    # Statement by statement: executescript() would COMMIT the migration's transaction.
    for stmt in _TABLES + _trigger_statements():
        db.execute(stmt)


def _m0002_jobs(db: sqlite_utils.Database) -> None:
    """Machine activity: busy/idle split of sessions, and the jobs machines ran."""
    for column in (
        "busy_s REAL",
        "idle_s REAL",
        "busy_minutes INTEGER",
        "idle_minutes INTEGER",
        "jobs INTEGER",
    ):
        db.execute(f"ALTER TABLE sessions ADD COLUMN {column}")
    db.execute(
        "CREATE TABLE IF NOT EXISTS jobs (job_id TEXT PRIMARY KEY, node TEXT NOT NULL, "
        "machine_id TEXT NOT NULL, session_id TEXT, member_id TEXT, project_id TEXT, "
        "name TEXT, state TEXT NOT NULL, progress REAL, time_left_s REAL, detail TEXT, "
        "started_at TEXT, ended_at TEXT, updated_at TEXT NOT NULL)"
    )
    db.execute("CREATE INDEX IF NOT EXISTS jobs_started ON jobs(started_at)")


def _m0003_billing(db: sqlite_utils.Database) -> None:
    """Organisations that pay for members, closed periods and the invoice ledger.

    Only *closed* documents are stored (drafts are computed on demand, so they always
    reflect the latest sessions). Closed documents are a legal record: triggers refuse to
    change or delete them, so a correction can only be a new document (credit note or
    supplementary invoice), and ``seq`` orders the hash chain.
    """
    refuse = "SELECT RAISE(ABORT, 'closed invoices are append-only');"
    closed_doc = "(SELECT status FROM invoices WHERE number = OLD.invoice_number) = 'closed'"
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
        "CREATE INDEX IF NOT EXISTS invoiced_sessions_number ON invoiced_sessions(invoice_number)",
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
        "at TEXT NOT NULL, note TEXT, by TEXT)"
    )
    db.execute("CREATE INDEX IF NOT EXISTS credit_member ON credit_ledger(member_id)")
    bump = "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'data_version';"
    db.execute(
        f"CREATE TRIGGER IF NOT EXISTS credit_ledger_dv_ins AFTER INSERT ON "
        f"credit_ledger BEGIN {bump} END"
    )
    db.execute("DROP TRIGGER IF EXISTS machines_dv_upd")
    changed = " OR ".join(
        f"OLD.{c} IS NOT NEW.{c}" for c in (*CATALOGUE["machines"], "requires_credit")
    )
    db.execute(
        f"CREATE TRIGGER machines_dv_upd AFTER UPDATE ON machines WHEN {changed} BEGIN {bump} END"
    )


def _m0005_accounts(db: sqlite_utils.Database) -> None:
    """Web accounts, roles, API tokens, log-in throttling and the audit log.

    Written after 0006 and 0007 (and once declared after them), but it depends on
    neither and they on nothing here, so in name order a fresh database gets the same
    schema (``tests/test_hub_schema.py`` compares both orders). The audit log is
    evidence, so triggers refuse UPDATE and DELETE outright (``gateway.hub.audit`` chains
    the rows, so even a change made with the triggers dropped is detected).
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


def _m0006_enrolment_and_lapse(db: sqlite_utils.Database) -> None:
    """Badge enrolment at any machine, certification at the machine, lapse without use."""
    db.execute(
        "CREATE TABLE IF NOT EXISTS enrolments (request_id TEXT PRIMARY KEY, "
        "member_id TEXT NOT NULL REFERENCES members(id), requested_by TEXT, "
        "created_at TEXT NOT NULL, until TEXT NOT NULL, "
        "status TEXT NOT NULL DEFAULT 'pending' "
        "CHECK (status IN ('pending', 'attached', 'expired', 'refused')), "
        "uid TEXT, node TEXT, attached_at TEXT, detail TEXT)"
    )
    db.execute("ALTER TABLE groups ADD COLUMN lapse_months INTEGER")
    db.execute("ALTER TABLE machines ADD COLUMN certify_level INTEGER NOT NULL DEFAULT 2")
    db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('enrolment_version', '0')")
    bump = "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'enrolment_version';"
    for op in ("INSERT", "UPDATE"):
        db.execute(
            f"CREATE TRIGGER IF NOT EXISTS enrolments_{op.lower()} AFTER {op} ON "
            f"enrolments BEGIN {bump} END"
        )
    dv = "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'data_version';"
    for table, column in (("groups", "lapse_months"), ("machines", "certify_level")):
        db.execute(
            f"CREATE TRIGGER IF NOT EXISTS {table}_{column}_dv AFTER UPDATE OF "
            f"{column} ON {table} WHEN OLD.{column} IS NOT NEW.{column} "
            f"BEGIN {dv} END"
        )


def _m0007_members_joined_at(db: sqlite_utils.Database) -> None:
    """When a member joined: the activity report counts new members per period."""
    db.execute("ALTER TABLE members ADD COLUMN joined_at TEXT")


def _m0008_usage_indexes(db: sqlite_utils.Database) -> None:
    """One member's (or project's, or machine's) usage without reading everyone's."""
    for column in ("member_id", "project_id", "machine_id"):
        db.execute(
            f"CREATE INDEX IF NOT EXISTS sessions_{column}_started "
            f"ON sessions({column}, started_at)"
        )


def _m0009_status_received(db: sqlite_utils.Database) -> None:
    """When the hub received each node's last status (hub clock): a node silent for more
    than three heartbeats is shown offline even if its last will never came."""
    db.execute("ALTER TABLE machine_state ADD COLUMN status_received_at TEXT")


def _m0010_trust(db: sqlite_utils.Database) -> None:
    """Who may say what: each machine's node, the event that closed each session (a
    second, different end is a conflict), and refusals by node (gateway.hub.events.refusals)."""
    db.execute("ALTER TABLE machines ADD COLUMN node TEXT")
    db.execute("UPDATE machines SET node = id")
    db.execute("CREATE INDEX IF NOT EXISTS machines_node ON machines(node)")
    db.execute("ALTER TABLE sessions ADD COLUMN closed_by TEXT")
    for column in (
        "node TEXT",
        "event_id TEXT",
        "event_type TEXT",
        "kind TEXT NOT NULL DEFAULT 'invalid'",
    ):
        db.execute(f"ALTER TABLE rejected_messages ADD COLUMN {column}")
    db.execute("CREATE INDEX IF NOT EXISTS rejected_messages_node ON rejected_messages(node, id)")


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
    for column in (
        "priced_minutes INTEGER",
        "vat_rate TEXT",
        "price_category TEXT",
        "priced_with TEXT",
    ):
        db.execute(f"ALTER TABLE sessions ADD COLUMN {column}")
    db.execute(
        "CREATE TABLE IF NOT EXISTS tariffs (position INTEGER PRIMARY KEY, "
        "name TEXT NOT NULL, valid_from TEXT NOT NULL, scope_machines TEXT NOT NULL, "
        "scope_groups TEXT NOT NULL, scope_categories TEXT NOT NULL, rate INTEGER, "
        "busy_rate INTEGER, idle_rate INTEGER, startup INTEGER NOT NULL, "
        "minimum INTEGER NOT NULL, unit INTEGER NOT NULL, free_under_s REAL NOT NULL, "
        "material_per_gram TEXT NOT NULL, vat_rate TEXT NOT NULL)"
    )
    # The category a closed session is priced for from now on: the best known, today's.
    db.execute(
        "UPDATE sessions SET amount_cents = NULL, price_category = "
        "(SELECT category FROM members WHERE id = sessions.member_id) "
        "WHERE status = 'closed'"
    )


def _m0012_sessions_start_order(db: sqlite_utils.Database) -> None:
    """Exports and invoice runs read sessions ordered by (start, id): with this index
    SQLite streams them in that order instead of sorting each run of equal starts."""
    db.execute("CREATE INDEX IF NOT EXISTS sessions_started_id ON sessions(started_at, session_id)")


def _m0015_payments(db: sqlite_utils.Database) -> None:
    """Invoices as documents: payments, the buyer's legal details, the parties as issued.

    ``payments`` (owned by ``gateway.billing.payments``) is append-only like the ledger:
    a payment recorded by mistake is corrected by a negative entry, never edited, so the
    audit log and the table tell the same story. ``invoice_parties`` (owned by
    ``gateway.billing.documents``) keeps the seller's and buyer's details as they were
    when a document was issued: a seller moving house must not rewrite last year's
    invoices. Organisations get the address and identifiers a business invoice names.
    """
    refuse = "SELECT RAISE(ABORT, '{what} are append-only');"
    for column in ("address", "postcode", "city", "country", "siret", "vat_number"):
        db.execute(f"ALTER TABLE organisations ADD COLUMN {column} TEXT")
    for stmt in (
        "CREATE TABLE IF NOT EXISTS payments (id INTEGER PRIMARY KEY, "
        "invoice_number TEXT NOT NULL REFERENCES invoices(number), "
        "amount_cents INTEGER NOT NULL CHECK (amount_cents != 0), "
        "means TEXT NOT NULL CHECK (means IN "
        "('card', 'cash', 'cheque', 'transfer', 'credit', 'direct_debit', 'other')), "
        "paid_on TEXT NOT NULL, reference TEXT, note TEXT, "
        "recorded_by TEXT NOT NULL, recorded_at TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS payments_invoice ON payments(invoice_number, id)",
        "CREATE TRIGGER IF NOT EXISTS payments_no_update BEFORE UPDATE ON payments "
        f"BEGIN {refuse.format(what='payments')} END",
        "CREATE TRIGGER IF NOT EXISTS payments_no_delete BEFORE DELETE ON payments "
        f"BEGIN {refuse.format(what='payments')} END",
        "CREATE TABLE IF NOT EXISTS invoice_parties (invoice_number TEXT PRIMARY KEY "
        "REFERENCES invoices(number), seller TEXT NOT NULL, buyer TEXT NOT NULL, "
        "frozen_at TEXT NOT NULL)",
        "CREATE TRIGGER IF NOT EXISTS invoice_parties_no_update BEFORE UPDATE ON "
        f"invoice_parties BEGIN {refuse.format(what='issued parties')} END",
        "CREATE TRIGGER IF NOT EXISTS invoice_parties_no_delete BEFORE DELETE ON "
        f"invoice_parties BEGIN {refuse.format(what='issued parties')} END",
    ):
        db.execute(stmt)


def _m0017_session_material(db: sqlite_utils.Database) -> None:
    # Grams of material (a printer's filament) the node weighed for the session's jobs;
    # NULL where the machine reports none. Priced at the tariff's material_per_gram.
    db.execute("ALTER TABLE sessions ADD COLUMN material_g REAL")


def _m0013_rgpd(db: sqlite_utils.Database) -> None:
    """Data protection: erased members, the audit log's purge checkpoint, retention reads.

    An erased member keeps their row (sessions and invoices point to it) under a stable
    pseudonym: ``erased_no`` numbers erasures, ``erased_at`` says when. The audit log
    stays append-only except below its checkpoint: ``meta.audit_checkpoint`` (owned by
    ``gateway.hub.audit``) holds the last purged entry's seq and hash, the new delete
    trigger refuses any row above it, and the chain is verified from it
    (``docs/rgpd.md``). The index serves the daily retention job, which deletes old node
    events by type and reception time.
    """
    db.execute("ALTER TABLE members ADD COLUMN erased_at TEXT")
    db.execute("ALTER TABLE members ADD COLUMN erased_no INTEGER")
    db.execute(
        "CREATE UNIQUE INDEX IF NOT EXISTS members_erased_no ON members(erased_no) "
        "WHERE erased_no IS NOT NULL"
    )
    db.execute("CREATE INDEX IF NOT EXISTS events_type_received ON events(type, received_at)")
    db.execute("DROP TRIGGER IF EXISTS audit_log_no_delete")
    db.execute(
        "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log "
        "WHEN OLD.seq > coalesce((SELECT CAST(json_extract(value, '$.seq') AS INTEGER) "
        "FROM meta WHERE key = 'audit_checkpoint'), 0) "
        "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END"
    )


# The member categories the hub knew as code before they became data (0016): each
# becomes a row, so existing members and tariffs keep their category.
SEED_CATEGORIES: tuple[tuple[str, str, str], ...] = (
    ("grand_public", "Grand public", "General public"),
    ("adherent", "Adhérent·e", "Member"),
    ("professionnel", "Professionnel·le", "Professional"),
    ("scolaire", "Scolaire", "School"),
    ("association", "Association", "Association"),
)


def _m0016_administration(db: sqlite_utils.Database) -> None:
    """Running the lab from the web: categories as data, out-of-service reasons,
    opening hours and dated closures in the database, organisations' details, tariff ids.

    - ``member_categories`` (``gateway.hub.categories``): the five categories that were
      code become rows; any other category a member already has becomes a row too, so
      nothing in the database names a category the table lacks.
    - ``machines.out_of_service_reason``: shown at the machine (in the snapshot) and on
      the board; part of the machines' change trigger, so a new reason is republished.
    - ``opening_hours`` and ``closures`` (``gateway.hub.hours``): were the hub config's
      only; they feed every snapshot, so their triggers bump ``data_version``.
    - (the organisations' address, SIRET and VAT number came with 0015.)
    - ``tariffs.tariff_id`` and ``origin``: a stable id for the web to edit a tariff by,
      and the config entry it was imported from (NULL once edited on the web), for the
      rule that a file's own changes still apply at start (docs/admin.md).
    """
    bump = "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'data_version';"
    db.execute(
        "CREATE TABLE IF NOT EXISTS member_categories (code TEXT PRIMARY KEY, "
        "label_fr TEXT NOT NULL, label_en TEXT NOT NULL, position INTEGER NOT NULL DEFAULT 0, "
        "active INTEGER NOT NULL DEFAULT 1)"
    )
    for position, (code, fr, en) in enumerate(SEED_CATEGORIES):
        db.execute(
            "INSERT OR IGNORE INTO member_categories (code, label_fr, label_en, position) "
            "VALUES (?, ?, ?, ?)",
            (code, fr, en, position),
        )
    db.execute(
        "INSERT OR IGNORE INTO member_categories (code, label_fr, label_en, position) "
        "SELECT DISTINCT category, category, category, 100 FROM members"
    )
    db.execute("ALTER TABLE machines ADD COLUMN out_of_service_reason TEXT")
    db.execute("DROP TRIGGER IF EXISTS machines_dv_upd")
    changed = " OR ".join(
        f"OLD.{c} IS NOT NEW.{c}"
        for c in (*CATALOGUE["machines"], "requires_credit", "out_of_service_reason")
    )
    db.execute(
        f"CREATE TRIGGER machines_dv_upd AFTER UPDATE ON machines WHEN {changed} BEGIN {bump} END"
    )
    db.execute(
        "CREATE TABLE IF NOT EXISTS opening_hours (weekday INTEGER NOT NULL "
        "CHECK (weekday BETWEEN 0 AND 6), opens TEXT NOT NULL, closes TEXT NOT NULL, "
        "PRIMARY KEY (weekday, opens))"
    )
    db.execute(
        "CREATE TABLE IF NOT EXISTS closures (id INTEGER PRIMARY KEY, first_day TEXT NOT NULL, "
        "last_day TEXT NOT NULL, label TEXT NOT NULL DEFAULT '', CHECK (last_day >= first_day))"
    )
    for table in ("opening_hours", "closures"):
        for op in ("INSERT", "UPDATE", "DELETE"):
            db.execute(
                f"CREATE TRIGGER IF NOT EXISTS {table}_dv_{op.lower()} AFTER {op} ON {table} "
                f"BEGIN {bump} END"
            )
    db.execute("ALTER TABLE tariffs ADD COLUMN tariff_id TEXT")
    db.execute("ALTER TABLE tariffs ADD COLUMN origin TEXT")
    db.execute("UPDATE tariffs SET tariff_id = 't-' || position")


def _m0014_alerts_and_metrics(db: sqlite_utils.Database) -> None:
    """Monitoring: alert state that survives a restart, and counters a scrape reads cheaply.

    ``alert_conditions`` and ``alert_deliveries`` belong to ``gateway.hub.alerts`` (see
    ``gateway.policies.alerts``: each alert's condition, and what each channel was last
    told of it). ``event_counts`` is kept by triggers on ``events`` (stored events per
    type, and how many of them were kept with an error, not applied), so ``/metrics``
    reads a few rows instead of counting a year of events at every scrape; it starts
    from the events already stored. The partial index finds open sessions without
    reading closed ones; the other index, the refusals of the last minutes.
    """
    db.execute(
        "CREATE TABLE IF NOT EXISTS alert_conditions (kind TEXT NOT NULL, "
        "subject TEXT NOT NULL, active INTEGER NOT NULL, since TEXT, "
        "firing INTEGER NOT NULL, detail TEXT NOT NULL, changed_at TEXT NOT NULL, "
        "PRIMARY KEY (kind, subject))"
    )
    db.execute(
        "CREATE TABLE IF NOT EXISTS alert_deliveries (kind TEXT NOT NULL, "
        "subject TEXT NOT NULL, channel TEXT NOT NULL, announced INTEGER NOT NULL, "
        "attempts INTEGER NOT NULL DEFAULT 0, retry_at TEXT, last_error TEXT, "
        "PRIMARY KEY (kind, subject, channel))"
    )
    db.execute(
        "CREATE TABLE IF NOT EXISTS event_counts (type TEXT PRIMARY KEY, "
        "stored INTEGER NOT NULL, dead INTEGER NOT NULL)"
    )
    db.execute(
        "INSERT OR IGNORE INTO event_counts (type, stored, dead) SELECT type, count(*), "
        "count(error) FROM events GROUP BY type"
    )
    db.execute(
        "CREATE TRIGGER IF NOT EXISTS events_count_ins AFTER INSERT ON events BEGIN "
        "INSERT INTO event_counts (type, stored, dead) "
        "VALUES (NEW.type, 1, NEW.error IS NOT NULL) "
        "ON CONFLICT(type) DO UPDATE SET stored = stored + 1, dead = dead + excluded.dead; "
        "END"
    )
    db.execute(
        "CREATE TRIGGER IF NOT EXISTS events_count_err AFTER UPDATE OF error ON events "
        "WHEN (OLD.error IS NULL) IS NOT (NEW.error IS NULL) BEGIN "
        "UPDATE event_counts SET dead = dead + (CASE WHEN NEW.error IS NULL THEN -1 ELSE 1 END) "
        "WHERE type = NEW.type; END"
    )
    db.execute(
        "CREATE INDEX IF NOT EXISTS sessions_open ON sessions(machine_id) WHERE status = 'open'"
    )
    # Refusals of the last minutes, per node, for the refusals alert.
    db.execute(
        "CREATE INDEX IF NOT EXISTS rejected_messages_received ON rejected_messages(received_at)"
    )


def _m0018_machine_rules(db: sqlite_utils.Database) -> None:
    """Session rules per machine, set on the web (``gateway.hub.machine_rules``).

    One row per machine with a rule set; each column NULL for "the node's own setting".
    The rules travel in the machine's snapshot, so every change bumps ``data_version``
    and reaches the node within a second.
    """
    bump = "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'data_version';"
    db.execute(
        "CREATE TABLE IF NOT EXISTS machine_rules (machine_id TEXT PRIMARY KEY "
        "REFERENCES machines(id), grace_s REAL, idle_timeout_s REAL, max_length_s REAL, "
        "cooldown_s REAL, hold_s REAL, progress_every_s REAL, never_cut_busy INTEGER "
        "CHECK (never_cut_busy IN (0, 1)))"
    )
    for op in ("INSERT", "UPDATE", "DELETE"):
        db.execute(
            f"CREATE TRIGGER IF NOT EXISTS machine_rules_dv_{op.lower()} AFTER {op} ON "
            f"machine_rules BEGIN {bump} END"
        )


# Every migration, in the order a fresh database gets them.
STEPS: tuple[tuple[str, Callable[[sqlite_utils.Database], None]], ...] = (
    ("0001_initial", _m0001_initial),
    ("0002_jobs_and_busy_time", _m0002_jobs),
    ("0003_billing", _m0003_billing),
    ("0004_prepaid_credit", _m0004_prepaid_credit),
    ("0005_accounts", _m0005_accounts),
    ("0006_enrolment_and_lapse", _m0006_enrolment_and_lapse),
    ("0007_members_joined_at", _m0007_members_joined_at),
    ("0008_usage_indexes", _m0008_usage_indexes),
    ("0009_node_status_received_at", _m0009_status_received),
    ("0010_trust", _m0010_trust),
    ("0011_stored_prices", _m0011_stored_prices),
    ("0012_sessions_start_order", _m0012_sessions_start_order),
    ("0013_rgpd", _m0013_rgpd),
    ("0014_alerts_and_metrics", _m0014_alerts_and_metrics),
    ("0015_payments", _m0015_payments),
    ("0016_administration", _m0016_administration),
    ("0017_session_material", _m0017_session_material),
    ("0018_machine_rules", _m0018_machine_rules),
)

MIGRATIONS = sqlite_utils.Migrations("fabgate-hub")
for _name, _step in STEPS:
    MIGRATIONS(name=_name)(_step)
