"""A session's price: decided once, from the hub's tariff table, and stored with it.

There is one pricing path (docs/billing.md). A session is priced when it closes, by the
tariffs held in the hub's database, and the row keeps what every reader needs: the
amount before VAT, the minutes the tariff bills, the tariff's VAT rate and the member
category it was priced for. Invoices, credit notes, exports, prepaid balances and the
activity report read those columns; nothing else evaluates a tariff. Why stored rather
than computed on read:

- accounting wants a price fixed at close: a member who changes category today must not
  re-price last year's sessions (priced on read, they would, and every closed month would
  grow credit notes);
- the tariffs are the database's, not those some process was opened with, so ingest, the
  web app and a command-line export cannot disagree;
- a stored amount costs nothing to read, where the per-minute export of a year would
  otherwise evaluate a tariff for each of its sessions.

A stored price changes only through ``reprice_sessions``: the hub calls it when the tariff
set it syncs from its configuration at start has changed (``install_tariffs``), an
operator through ``fabgate reprice``. Both are logged and written to the audit log; a
billed session whose price changed is then reversed on a credit note and billed again by
the next invoice run, never edited in a closed document.

This module owns the ``tariffs`` table, the price columns of ``sessions`` and the
``meta`` key holding the fingerprint of the set; its schema is the migration
``0011_stored_prices``. Every function takes the hub's connection holder first.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import sqlite3
import uuid
import weakref
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from gateway.billing.tariffs import Tariff, TariffError, price_session, select_tariff, ties
from gateway.core.clock import iso, parse_iso
from gateway.hub import audit, catalogue, categories, members
from gateway.hub.db import HubStore, bump_data_version, meta_text, set_meta

__all__ = [
    "EMPTY_FINGERPRINT",
    "Repricing",
    "SessionPrice",
    "TariffChange",
    "TariffEntry",
    "delete_tariff",
    "import_tariffs",
    "save_tariff",
    "tariff_entries",
    "current_tariffs",
    "fingerprint",
    "has_tariffs",
    "install_tariffs",
    "load_tariffs",
    "next_session_tariff",
    "price_closed_session",
    "price_of",
    "price_unpriced",
    "reprice_sessions",
    "stale_sessions",
    "stored_fingerprint",
    "sync_tariffs",
]

log = logging.getLogger(__name__)

FINGERPRINT_KEY = "tariff_fingerprint"
NO_VAT = Decimal("0")
TARIFFS_SYNCED = "tariffs.synced"
SESSIONS_REPRICED = "sessions.repriced"
_BATCH = 2000

# -- the tariff table -------------------------------------------------------------------

_COLUMNS = (
    "name",
    "valid_from",
    "scope_machines",
    "scope_groups",
    "scope_categories",
    "rate",
    "busy_rate",
    "idle_rate",
    "startup",
    "minimum",
    "unit",
    "free_under_s",
    "material_per_gram",
    "vat_rate",
)


def _record(t: Tariff) -> dict[str, Any]:
    """A tariff as stored (and fingerprinted): exact texts for Decimals, UTC instants."""
    return {
        "name": t.name,
        "valid_from": iso(t.valid_from),
        "scope_machines": list(t.machines),
        "scope_groups": list(t.groups),
        "scope_categories": list(t.categories),
        "rate": t.rate,
        "busy_rate": t.busy_rate,
        "idle_rate": t.idle_rate,
        "startup": t.startup,
        "minimum": t.minimum,
        "unit": t.unit,
        "free_under_s": float(t.free_under_s),
        "material_per_gram": str(t.material_per_gram),
        "vat_rate": str(t.vat_rate),
    }


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def fingerprint(tariffs: Iterable[Tariff]) -> str:
    """SHA-256 of the tariff set as stored, in order: equal sets price alike."""
    return hashlib.sha256(_canonical([_record(t) for t in tariffs]).encode()).hexdigest()


EMPTY_FINGERPRINT = fingerprint(())


def _tariff(r: dict[str, Any]) -> Tariff:
    return Tariff(
        valid_from=parse_iso(r["valid_from"]),
        machines=tuple(json.loads(r["scope_machines"])),
        groups=tuple(json.loads(r["scope_groups"])),
        categories=tuple(json.loads(r["scope_categories"])),
        rate=r["rate"],
        busy_rate=r["busy_rate"],
        idle_rate=r["idle_rate"],
        startup=r["startup"],
        minimum=r["minimum"],
        unit=r["unit"],
        free_under_s=r["free_under_s"],
        material_per_gram=Decimal(r["material_per_gram"]),
        vat_rate=Decimal(r["vat_rate"]),
        name=r["name"],
    )


def load_tariffs(store: HubStore) -> tuple[Tariff, ...]:
    rows = store.conn.execute(f"SELECT {', '.join(_COLUMNS)} FROM tariffs ORDER BY position")
    return tuple(_tariff(dict(zip(_COLUMNS, r, strict=True))) for r in rows)


def stored_fingerprint(store: HubStore) -> str:
    """The fingerprint of the tariff table (of the empty set before any sync)."""
    return meta_text(store, FINGERPRINT_KEY) or EMPTY_FINGERPRINT


def has_tariffs(store: HubStore) -> bool:
    return bool(store.conn.execute("SELECT EXISTS (SELECT 1 FROM tariffs)").fetchone()[0])


class _TariffBook:
    """The tariff table of one connection, read again only when its fingerprint changes
    (another process, ``fabgate reprice``, may install a new set while the hub runs)."""

    def __init__(self) -> None:
        self._fingerprint: str | None = None
        self._tariffs: tuple[Tariff, ...] = ()

    def current(self, store: HubStore) -> tuple[str, tuple[Tariff, ...]]:
        fp = stored_fingerprint(store)
        if fp != self._fingerprint:
            self._tariffs = load_tariffs(store)
            self._fingerprint = fp
        return fp, self._tariffs


# One book per open connection holder, gone with it: ingest prices every closed session
# and the snapshot builder caps prepaid time, neither should read the table each time.
_BOOKS: weakref.WeakKeyDictionary[HubStore, _TariffBook] = weakref.WeakKeyDictionary()


def current_tariffs(store: HubStore) -> tuple[str, tuple[Tariff, ...]]:
    """(fingerprint, tariffs) of the database's tariff set, cached per connection."""
    book = _BOOKS.get(store)
    if book is None:
        book = _BOOKS[store] = _TariffBook()
    return book.current(store)


@dataclass(frozen=True)
class TariffChange:
    changed: bool
    old: str
    new: str
    # Earliest valid_from among the tariffs added or removed: a session that started
    # before it sees the same tariffs in both sets. None: no bound (every session).
    since: datetime | None


@dataclass(frozen=True)
class TariffEntry:
    """A row of the tariff table: the tariff, its stable id (what the pages edit it by)
    and the hub file's entry it was imported from (None: made or edited on the web)."""

    tariff_id: str
    origin: str | None
    tariff: Tariff


def record_digest(t: Tariff) -> str:
    """What identifies a tariff of the hub file between two starts: its whole content."""
    return hashlib.sha256(_canonical(_record(t)).encode()).hexdigest()


def _new_id() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"


def tariff_entries(store: HubStore) -> list[TariffEntry]:
    rows = store.conn.execute(
        f"SELECT tariff_id, origin, {', '.join(_COLUMNS)} FROM tariffs ORDER BY position"
    )
    return [TariffEntry(r[0], r[1], _tariff(dict(zip(_COLUMNS, r[2:], strict=True)))) for r in rows]


def _write_entries(store: HubStore, entries: Sequence[TariffEntry]) -> None:
    conn = store.conn
    conn.execute("DELETE FROM tariffs")
    conn.executemany(
        f"INSERT INTO tariffs (position, tariff_id, origin, {', '.join(_COLUMNS)}) "
        f"VALUES (?, ?, ?, {', '.join('?' for _ in _COLUMNS)})",
        [
            (i, e.tariff_id, e.origin, *(_stored(_record(e.tariff)[c]) for c in _COLUMNS))
            for i, e in enumerate(entries)
        ],
    )


def _as_entries(store: HubStore, wanted: Sequence[Tariff]) -> list[TariffEntry]:
    """``wanted`` as table rows, each keeping the id of an identical stored tariff."""
    free: dict[str, list[str]] = {}
    for e in tariff_entries(store):
        free.setdefault(record_digest(e.tariff), []).append(e.tariff_id)
    out = []
    for t in wanted:
        digest = record_digest(t)
        ids = free.get(digest)
        out.append(TariffEntry(ids.pop(0) if ids else _new_id(), digest, t))
    return out


def sync_tariffs(
    store: HubStore, tariffs: Iterable[Tariff], *, actor: str = "system"
) -> TariffChange:
    """Make the tariff table hold exactly ``tariffs``; prices are not touched.

    Changing the set is recorded in the audit log. Use ``install_tariffs`` to re-price
    the sessions the change affects in the same transaction.
    """
    wanted = tuple(tariffs)
    new = fingerprint(wanted)
    with store.atomic():
        old = stored_fingerprint(store)
        if new == old:
            return TariffChange(False, old, new, None)
        before = load_tariffs(store)
        _write_entries(store, _as_entries(store, wanted))
        set_meta(store, FINGERPRINT_KEY, new)
        bump_data_version(store)
        since = _earliest_difference(before, wanted)
        audit.record(
            store,
            actor,
            TARIFFS_SYNCED,
            "tariffs",
            {
                "from": old,
                "to": new,
                "tariffs": len(wanted),
                "affects_sessions_since": iso(since) if since else None,
            },
        )
    log.info("tariff set changed (%s -> %s, %d tariffs)", old[:12], new[:12], len(wanted))
    return TariffChange(True, old, new, since)


def _stored(value: Any) -> Any:
    return json.dumps(value, ensure_ascii=False) if isinstance(value, list) else value


def _earliest_difference(before: Sequence[Tariff], after: Sequence[Tariff]) -> datetime | None:
    old = Counter(_canonical(_record(t)) for t in before)
    new = Counter(_canonical(_record(t)) for t in after)
    differing = (old - new) + (new - old)
    if not differing:
        return None  # the same tariffs in another order: assume anything may differ
    return min(parse_iso(json.loads(text)["valid_from"]) for text in differing)


# -- the one pricing function -----------------------------------------------------------


@dataclass(frozen=True)
class SessionPrice:
    amount: int | None  # cents before VAT; None: no tariff applies (unpriced, not free)
    minutes: int  # the minutes the tariff bills (after its unit), else the metered
    vat_rate: Decimal  # the tariff's rate; 0 when unpriced


def price_of(
    tariffs: Sequence[Tariff],
    *,
    machine: str,
    group: str,
    category: str,
    started_at: datetime,
    duration_s: float,
    busy_s: float | None,
    metered_minutes: int,
    material_g: float | None = None,
) -> SessionPrice:
    """The price of a closed session: the tariff in force when it started, for its
    machine (or the machine's group) and the member's category."""
    tariff = select_tariff(tariffs, machine=machine, group=group, category=category, at=started_at)
    if tariff is None:
        return SessionPrice(None, metered_minutes, NO_VAT)
    price = price_session(
        tariff, duration_s=duration_s, busy_s=busy_s, material_g=_grams(material_g)
    )
    return SessionPrice(int(price.total), int(price.billable_minutes), tariff.vat_rate)


def next_session_tariff(
    store: HubStore, machine: str, member: str | None, at: datetime
) -> Tariff | None:
    """The tariff a member's next session on ``machine`` would be priced by (the
    prepaid cap in snapshots), from the database's tariffs and today's category."""
    group = catalogue.machine_group(store, machine)
    if group is None:
        return None
    _, tariffs = current_tariffs(store)
    return select_tariff(
        tariffs,
        machine=machine,
        group=group,
        category=members.category_of(store, member) or "",
        at=at,
    )


def _grams(value: float | None) -> Decimal:
    """Grams as the tariff multiplies them: to the hundredth, as the node rounds them."""
    if value is None or not math.isfinite(value) or value <= 0:
        return Decimal(0)
    return Decimal(str(round(value, 2)))


# -- stored prices ----------------------------------------------------------------------

_INPUTS = (
    "SELECT s.session_id, s.machine_id, s.started_at, s.duration_s, s.busy_s, s.material_g, "
    "s.billable_minutes, s.amount_cents, s.priced_minutes, s.vat_rate, s.price_category, "
    "s.priced_with, m.group_id, mb.category AS member_category "
    "FROM sessions s LEFT JOIN machines m ON m.id = s.machine_id "
    "LEFT JOIN members mb ON mb.id = s.member_id "
)
_UPDATE = (
    "UPDATE sessions SET amount_cents = ?, priced_minutes = ?, vat_rate = ?, "
    "price_category = ?, priced_with = ? WHERE session_id = ?"
)
Stored = tuple[int | None, int, str, str | None, str]


def _priced(row: sqlite3.Row, tariffs: Sequence[Tariff], fp: str, current_category: bool) -> Stored:
    """The stored columns for one session. The category is the one recorded when it was
    first priced (its close), unless none was known then or the caller asks for today's."""
    category = row["price_category"]
    if category is None or (current_category and row["member_category"] is not None):
        category = row["member_category"]
    busy = row["busy_s"]
    p = price_of(
        tariffs,
        machine=row["machine_id"] or "",
        group=row["group_id"] or "",
        category=category or "",
        started_at=parse_iso(row["started_at"]),
        duration_s=float(row["duration_s"] or 0),
        busy_s=None if busy is None else float(busy),
        metered_minutes=int(row["billable_minutes"] or 0),
        material_g=row["material_g"],
    )
    return (p.amount, p.minutes, str(p.vat_rate), category, fp)


def _old(row: sqlite3.Row) -> Stored:
    return (
        row["amount_cents"],
        row["priced_minutes"],
        row["vat_rate"],
        row["price_category"],
        row["priced_with"],
    )


def _cursor(conn: sqlite3.Connection) -> sqlite3.Cursor:
    cur = conn.cursor()
    cur.row_factory = sqlite3.Row
    return cur


def price_closed_session(store: HubStore, session_id: str) -> int | None:
    """Price a session that just closed (ingest); returns its amount (None: unpriced)."""
    fp, tariffs = current_tariffs(store)
    conn = store.conn
    row = (
        _cursor(conn)
        .execute(f"{_INPUTS}WHERE s.session_id = ? AND s.status = 'closed'", (session_id,))
        .fetchone()
    )
    if row is None:
        return None
    values = _priced(row, tariffs, fp, current_category=False)
    conn.execute(_UPDATE, (*values, session_id))
    return values[0]


def _batches(
    conn: sqlite3.Connection, clauses: list[str], args: list[Any]
) -> Iterator[list[sqlite3.Row]]:
    """Closed sessions in start order, a batch at a time (keyset pages, so that the
    updates between batches never run under an open cursor)."""
    where = ["s.status = 'closed'", *clauses]
    key: tuple[str, str] | None = None
    cur = _cursor(conn)
    while True:
        page = where + (
            ["s.started_at >= ? AND (s.started_at, s.session_id) > (?, ?)"] if key else []
        )
        rows = cur.execute(
            f"{_INPUTS}WHERE {' AND '.join(page)} ORDER BY s.started_at, s.session_id LIMIT ?",
            (*args, *((key[0], *key) if key else ()), _BATCH),
        ).fetchall()
        if not rows:
            return
        yield rows
        key = (rows[-1]["started_at"], rows[-1]["session_id"])


@dataclass(frozen=True)
class Repricing:
    since: datetime | None
    sessions: int  # closed sessions looked at
    changed: int  # whose amount, minutes, VAT rate or category changed
    delta_cents: int  # new amounts minus old ones over those sessions (None counts as 0)
    fingerprint: str  # the tariff set they are priced with now


def _reprice(
    store: HubStore, clauses: list[str], args: list[Any], current_category: bool
) -> tuple[int, int, int, int, str]:
    """(sessions seen, changed, delta in cents, priced with an amount, fingerprint)."""
    conn = store.conn
    fp, tariffs = stored_fingerprint(store), load_tariffs(store)
    seen = changed = delta = with_amount = 0
    for rows in _batches(conn, clauses, args):
        updates = []
        for row in rows:
            seen += 1
            old, new = _old(row), _priced(row, tariffs, fp, current_category)
            with_amount += new[0] is not None
            if new == old:
                continue
            if new[:4] != old[:4]:
                changed += 1
                delta += (new[0] or 0) - (old[0] or 0)
            updates.append((*new, row["session_id"]))
        conn.executemany(_UPDATE, updates)
    if changed:
        bump_data_version(store)
    return seen, changed, delta, with_amount, fp


def reprice_sessions(
    store: HubStore,
    since: datetime | None = None,
    *,
    member: str | None = None,
    current_categories: bool = False,
    actor: str = "system",
    reason: str = "",
) -> Repricing:
    """Price the closed sessions started at or after ``since`` (all of them: None) again
    with the tariff table, in one transaction, logged and audited.

    Each keeps the member category it was priced for at close, so a category change
    re-prices nothing unless asked: ``current_categories=True`` (with ``member`` to
    limit it to one member) applies the categories the members have now. A session in a
    closed period is re-priced too; the next invoice run reverses and re-bills it.
    """
    clauses, args = [], []
    if since is not None:
        clauses.append("s.started_at >= ?")
        args.append(iso(since))
    if member is not None:
        clauses.append("s.member_id = ?")
        args.append(member)
    with store.atomic():
        seen, changed, delta, _priced_n, fp = _reprice(store, clauses, args, current_categories)
        result = Repricing(since, seen, changed, delta, fp)
        audit.record(
            store,
            actor,
            SESSIONS_REPRICED,
            member or "sessions",
            {
                "since": iso(since) if since else None,
                "member": member,
                "current_categories": current_categories,
                "sessions": seen,
                "changed": changed,
                "delta_cents": delta,
                "tariffs": fp,
                "reason": reason,
            },
        )
    log.info(
        "re-priced %d closed sessions since %s%s: %d changed, %+d cents (%s)",
        seen,
        iso(since) if since else "the first",
        f" of {member}" if member else "",
        changed,
        delta,
        reason or "on request",
    )
    return result


def price_unpriced(store: HubStore) -> int:
    """Price closed sessions that were never priced (rows from before stored prices, or
    written by another tool); returns how many got an amount."""
    with store.atomic():
        return _reprice(store, ["s.priced_with IS NULL"], [], False)[3]


def install_tariffs(
    store: HubStore, tariffs: Iterable[Tariff], *, actor: str = "system"
) -> Repricing | None:
    """Sync the configured tariffs and, if the set changed, re-price what it affects.

    One transaction: a hub stopped half-way leaves the old set and the old prices, and
    the next start does it again. Sessions started before the earliest tariff added or
    removed cannot price differently; they only learn the new set's fingerprint. Returns
    the re-pricing, or None when the set was already installed.
    """
    with store.atomic():
        change = sync_tariffs(store, tariffs, actor=actor)
        result = None
        if change.changed:
            if change.since is not None:
                store.conn.execute(
                    "UPDATE sessions SET priced_with = ? WHERE status = 'closed' "
                    "AND priced_with = ? AND started_at < ?",
                    (change.new, change.old, iso(change.since)),
                )
            result = reprice_sessions(
                store, change.since, actor=actor, reason="the configured tariffs changed"
            )
        price_unpriced(store)
    return result


def stale_sessions(store: HubStore) -> int:
    """Closed sessions not priced with the tariff table as it is (0 when consistent)."""
    return int(
        store.conn.execute(
            "SELECT count(*) FROM sessions WHERE status = 'closed' "
            "AND (priced_with IS NULL OR priced_with != ?)",
            (stored_fingerprint(store),),
        ).fetchone()[0]
    )


# -- the hub file and the web ------------------------------------------------------------

CONFIG_KEY = "config_tariffs"
TARIFF_CREATED = "tariff.created"
TARIFF_UPDATED = "tariff.updated"
TARIFF_DELETED = "tariff.deleted"


def _replace_set(
    store: HubStore, entries: Sequence[TariffEntry], *, actor: str, reason: str
) -> Repricing | None:
    """Write ``entries`` as the tariff table and re-price what the change can affect,
    in the caller's transaction (the same rule as ``install_tariffs``)."""
    before = load_tariffs(store)
    wanted = tuple(e.tariff for e in entries)
    old, new = stored_fingerprint(store), fingerprint(wanted)
    _write_entries(store, entries)
    if new == old:
        return None
    set_meta(store, FINGERPRINT_KEY, new)
    bump_data_version(store)
    since = _earliest_difference(before, wanted)
    if since is not None:
        store.conn.execute(
            "UPDATE sessions SET priced_with = ? WHERE status = 'closed' "
            "AND priced_with = ? AND started_at < ?",
            (new, old, iso(since)),
        )
    return reprice_sessions(store, since, actor=actor, reason=reason)


def _refuse_tie(entries: Sequence[TariffEntry], candidate: TariffEntry) -> None:
    for e in entries:
        if e.tariff_id != candidate.tariff_id and ties(e.tariff, candidate.tariff):
            raise TariffError(
                "valid_from",
                "a tariff that does not tie with "
                f"{e.tariff.name or e.tariff_id!r} (same start, same machines and categories)",
            )


def save_tariff(
    store: HubStore, tariff_id: str | None, tariff: Tariff, *, by: str
) -> tuple[str, Repricing | None]:
    """Add a tariff (``tariff_id`` None) or change one, audited; the closed sessions it
    can price differently are re-priced in the same transaction (billed ones are
    reversed and billed again by the next invoice run). Returns its id and the
    re-pricing. A tariff edited here is the web's: the hub file no longer removes it."""
    with store.atomic():
        entries = tariff_entries(store)
        if tariff_id is None:
            entry = TariffEntry(_new_id(), None, tariff)
            _refuse_tie(entries, entry)
            entries.append(entry)
            action, details = TARIFF_CREATED, _record(tariff)
        else:
            index = next((i for i, e in enumerate(entries) if e.tariff_id == tariff_id), None)
            if index is None:
                raise TariffError("tariff", f"a known tariff (no {tariff_id!r})")
            entry = TariffEntry(tariff_id, None, tariff)
            _refuse_tie(entries, entry)
            before = _record(entries[index].tariff)
            after = _record(tariff)
            details = {"changes": {k: [before[k], v] for k, v in after.items() if before[k] != v}}
            entries[index] = entry
            action = TARIFF_UPDATED
        audit.record(store, by, action, entry.tariff_id, details)
        repriced = _replace_set(store, entries, actor=by, reason=f"{action} {entry.tariff_id}")
    return entry.tariff_id, repriced


def delete_tariff(store: HubStore, tariff_id: str, *, by: str) -> Repricing | None:
    """Remove a tariff (a mistake: to end prices from a date, add a newer one)."""
    with store.atomic():
        entries = tariff_entries(store)
        gone = next((e for e in entries if e.tariff_id == tariff_id), None)
        if gone is None:
            raise TariffError("tariff", f"a known tariff (no {tariff_id!r})")
        audit.record(store, by, TARIFF_DELETED, tariff_id, _record(gone.tariff))
        return _replace_set(
            store,
            [e for e in entries if e.tariff_id != tariff_id],
            actor=by,
            reason=f"{TARIFF_DELETED} {tariff_id}",
        )


def import_tariffs(
    store: HubStore, tariffs: Iterable[Tariff], *, actor: str = "hub", source: str = "hub file"
) -> Repricing | None:
    """The hub file's tariffs into the database by the source-of-truth rule.

    The first time (a database that never imported under this rule) the file's set is
    installed as it is, as every start used to. Afterwards only the file's own changes
    since the hub last read it apply: a tariff added to the file is added, one removed
    from the file is removed (unless edited on the web since), an edited one is both.
    Tariffs made or edited on the web stay. ``TariffError`` when a tariff added to the
    file ties with one the database has. A category a tariff names and the hub lacks is
    created first (``categories.ensure_codes``; ``source`` names the file in the log).
    """
    wanted = list(tariffs)
    digests = [record_digest(t) for t in wanted]
    with store.atomic():
        named: dict[str, str] = {}
        for i, t in enumerate(wanted):
            for code in t.categories:
                named.setdefault(code, f"{source}: tariffs[{i}].categories")
        categories.ensure_codes(store, named, actor=actor)
        last = meta_text(store, CONFIG_KEY)
        if last is None:
            result = install_tariffs(store, wanted, actor=actor)
        else:
            removed = Counter(json.loads(last)) - Counter(digests)
            added = Counter(digests) - Counter(json.loads(last))
            entries: list[TariffEntry] = []
            for e in tariff_entries(store):
                if e.origin is not None and removed[e.origin] > 0:
                    removed[e.origin] -= 1
                    continue
                entries.append(e)
            for t, digest in zip(wanted, digests, strict=True):
                if added[digest] > 0:
                    added[digest] -= 1
                    entry = TariffEntry(_new_id(), digest, t)
                    _refuse_tie(entries, entry)
                    entries.append(entry)
            result = _replace_set(
                store, entries, actor=actor, reason="the hub file's tariffs changed"
            )
            if result is not None:
                audit.record(store, actor, TARIFFS_SYNCED, "tariffs", {"tariffs": len(entries)})
            price_unpriced(store)
        set_meta(store, CONFIG_KEY, json.dumps(sorted(digests)))
    return result
