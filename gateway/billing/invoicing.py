"""Monthly invoices over the hub's sessions: drafts, closing, credit notes, hash chain.

Why it is built this way:

- A draft is never stored: it is computed from the sessions each time, so it always
  reflects the latest data and the order in which events reached the hub cannot change it.
- Amounts are read, never computed here: a session's price, minutes and VAT rate are
  stored when it closes and changed only by an explicit re-pricing
  (``gateway.billing.pricing``), so drafts, exports, balances and the activity report
  agree to the cent, and a member's category change does not re-bill closed months.
- Closing a period writes documents that are never edited again (SQL triggers refuse
  it). A later change to a billed session - moved to another project, re-priced because a
  tariff was corrected - is a new document: a credit note reversing what was billed, and
  the session billed again on the next invoice. A session whose start lies in a closed
  period but that reached the hub afterwards (an offline node) is billed in the next
  period that is still open, on a line marked ``late``.
- Closed documents are numbered without gaps per year and kind (``F2026-000001``,
  ``AV2026-000001``) and hash-chained: each stores the SHA-256 of its canonical JSON,
  which includes the previous document's hash, so editing or removing one in the file
  breaks the chain at that point (``verify_chain``).
- Periods close in calendar order. A period before the one being closed that still has
  unbilled sessions of its own must be closed first; empty months in between are closed
  along with it. Every period up to the last closed one is closed.
- Who pays is decided when a session is first billed (the member's ``paid_by``
  organisation, else the member) and stays with it: assigning a member to a school later
  does not rewrite what they were already invoiced.

Money is integer cents; VAT is computed per rate on each document's sum (the tariff
policy's ``vat``), never per line.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from gateway.billing.tariffs import vat
from gateway.core import months
from gateway.core.clock import iso, parse_iso
from gateway.hub.db import HubStore

__all__ = [
    "GENESIS",
    "Invoice",
    "InvoiceLine",
    "Payers",
    "SessionCharge",
    "build_drafts",
    "chain_head",
    "charge_of",
    "close_period",
    "closed_count",
    "closed_invoices",
    "closed_periods",
    "invoice_by_number",
    "is_closed",
    "next_period",
    "organisation",
    "parse_period",
    "period_bounds",
    "period_of",
    "upsert_organisation",
    "verify_chain",
]

GENESIS = "0" * 64
ORGANISATION_KINDS = ("school", "company", "association", "other")
_PREFIX = {"invoice": "F", "credit_note": "AV"}
_NUMBER = re.compile(r"^(F|AV)(\d{4})-(\d{6})$")
NO_VAT = Decimal("0")


# -- periods ---------------------------------------------------------------------------

# A period is one of the site's calendar months, named ``YYYY-MM`` (in the database,
# invoice numbers and URLs); the month arithmetic itself is gateway.core.months.


def parse_period(period: str) -> tuple[int, int]:
    """``"2026-11"`` -> ``(2026, 11)``; ValueError otherwise."""
    first = months.parse_month(period)
    return first.year, first.month


def next_period(period: str) -> str:
    return months.month_text(months.add_months(months.parse_month(period), 1))


def period_bounds(period: str, tz: str) -> tuple[datetime, datetime]:
    """The local month as an instant range [start, end): a period is the site's month."""
    return months.month_bounds(months.parse_month(period), tz)


def period_of(t: datetime | str, tz: str) -> str:
    when = parse_iso(t) if isinstance(t, str) else t
    return months.month_text(months.local_month(when, tz)[0])


def closed_periods(store: HubStore) -> list[str]:
    return [
        r[0]
        for r in store.conn.execute(
            "SELECT period FROM periods WHERE status = 'closed' ORDER BY period"
        )
    ]


def _last_closed(store: HubStore) -> str | None:
    row = store.conn.execute("SELECT max(period) FROM periods WHERE status = 'closed'").fetchone()
    return row[0] if row else None


def is_closed(store: HubStore, period: str) -> bool:
    """Every period up to the last closed one counts as closed, recorded or not."""
    parse_period(period)
    last = _last_closed(store)
    return last is not None and period <= last


# -- payers ----------------------------------------------------------------------------


def upsert_organisation(
    store: HubStore,
    org_id: str,
    name: str,
    kind: str = "other",
    email: str | None = None,
    *,
    address: str | None = None,
    postcode: str | None = None,
    city: str | None = None,
    country: str | None = None,
    siret: str | None = None,
    vat_number: str | None = None,
) -> None:
    """Create or update a paying organisation. The address and identifiers are what a
    business invoice (and its Factur-X data) names; an invoice already issued keeps the
    details it was issued with (``gateway.billing.documents``)."""
    if kind not in ORGANISATION_KINDS:
        raise ValueError(
            f"organisation kind must be one of {', '.join(ORGANISATION_KINDS)}, got {kind!r}"
        )
    with store.atomic():
        store.conn.execute(
            "INSERT INTO organisations (id, name, kind, email, address, postcode, city, "
            "country, siret, vat_number) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(id) DO UPDATE SET name = excluded.name, kind = excluded.kind, "
            "email = excluded.email, address = excluded.address, "
            "postcode = excluded.postcode, city = excluded.city, country = excluded.country, "
            "siret = excluded.siret, vat_number = excluded.vat_number",
            (org_id, name, kind, email, address, postcode, city, country, siret, vat_number),
        )


def organisation(store: HubStore, org_id: str) -> dict[str, Any] | None:
    """One organisation's row (name, kind, email, address, identifiers), or None."""
    row = store.conn.execute("SELECT * FROM organisations WHERE id = ?", (org_id,)).fetchone()
    return dict(row) if row else None


# -- charges ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SessionCharge:
    """What one session costs, as priced when it closed (or last re-priced)."""

    session_id: str
    machine_id: str | None
    project_id: str | None
    minutes: int
    amount: int  # cents, excluding VAT
    vat_rate: Decimal
    unpriced: bool  # no tariff applied: amount 0, shown rather than dropped
    started_at: str = ""


def charge_of(s: Mapping[str, Any]) -> SessionCharge:
    """A session row's stored price as an invoice charge; no tariff is evaluated here.

    A session never priced (``priced_with`` NULL: rows from before stored prices, until
    the hub prices them at start) is shown unpriced rather than billed at a guessed VAT.
    """
    base = dict(
        session_id=s["session_id"],
        machine_id=s.get("machine_id"),
        project_id=s.get("project_id"),
        started_at=s.get("started_at") or "",
    )
    amount = s.get("amount_cents")
    if amount is None or s.get("priced_with") is None:
        minutes = s.get("priced_minutes")
        if minutes is None:
            minutes = s.get("billable_minutes")
        return SessionCharge(
            **base, minutes=int(minutes or 0), amount=0, vat_rate=NO_VAT, unpriced=True
        )
    return SessionCharge(
        **base,
        minutes=int(s["priced_minutes"] or 0),
        amount=int(amount),
        vat_rate=Decimal(s["vat_rate"]),
        unpriced=False,
    )


class Payers:
    """Who pays for whom; loads the small member and organisation maps once."""

    def __init__(self, store: HubStore) -> None:
        self.members: dict[str, tuple[str, str | None]] = {
            r[0]: (r[1], r[2]) for r in store.conn.execute("SELECT id, name, paid_by FROM members")
        }
        self.organisations = {
            r[0]: r[1] for r in store.conn.execute("SELECT id, name FROM organisations")
        }

    def payer(self, member_id: str | None) -> tuple[str, str]:
        """A member's organisation if one pays for them, else the member."""
        member = self.members.get(member_id or "")
        if member and member[1]:
            return "organisation", member[1]
        return "member", member_id or ""

    def payer_name(self, kind: str, payer_id: str) -> str:
        if kind == "organisation":
            return self.organisations.get(payer_id, payer_id)
        member = self.members.get(payer_id)
        return member[0] if member else payer_id


# -- documents -------------------------------------------------------------------------


@dataclass(frozen=True)
class InvoiceLine:
    machine_id: str | None
    project_id: str | None
    vat_rate: Decimal
    minutes: int
    amount_ht: int
    late: bool = False
    unpriced: bool = False
    correction: bool = False  # re-billing (invoice) or reversal (credit note) of a change
    # (session_id, minutes, amount) of every session on the line, sorted by id
    sessions: tuple[tuple[str, int, int], ...] = ()

    @property
    def session_ids(self) -> list[str]:
        return [s[0] for s in self.sessions]

    def to_dict(self) -> dict[str, Any]:
        return {
            "machine_id": self.machine_id,
            "project_id": self.project_id,
            "vat_rate": str(self.vat_rate),
            "minutes": self.minutes,
            "amount_ht": self.amount_ht,
            "late": self.late,
            "unpriced": self.unpriced,
            "correction": self.correction,
            "sessions": [list(s) for s in self.sessions],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> InvoiceLine:
        return cls(
            machine_id=d["machine_id"],
            project_id=d["project_id"],
            vat_rate=Decimal(d["vat_rate"]),
            minutes=int(d["minutes"]),
            amount_ht=int(d["amount_ht"]),
            late=bool(d["late"]),
            unpriced=bool(d["unpriced"]),
            correction=bool(d["correction"]),
            sessions=tuple((str(a), int(b), int(c)) for a, b, c in d["sessions"]),
        )


@dataclass(frozen=True)
class Invoice:
    kind: str  # invoice | credit_note
    payer_kind: str  # member | organisation
    payer_id: str
    payer_name: str
    period: str
    lines: tuple[InvoiceLine, ...]
    total_ht: int
    total_vat: int
    total_ttc: int
    # (rate, HT, VAT) per VAT rate, the legal breakdown of the totals
    vat_breakdown: tuple[tuple[Decimal, int, int], ...] = ()
    status: str = "draft"
    number: str | None = None
    issued_at: str | None = None
    closed_by: str | None = None
    prev_hash: str | None = None
    hash: str | None = field(default=None, compare=False)

    def content(self) -> dict[str, Any]:
        """The hashed part: everything that makes the document, its chain link included."""
        return {
            "number": self.number,
            "kind": self.kind,
            "period": self.period,
            "status": self.status,
            "issued_at": self.issued_at,
            "closed_by": self.closed_by,
            "payer": {"kind": self.payer_kind, "id": self.payer_id, "name": self.payer_name},
            "lines": [ln.to_dict() for ln in self.lines],
            "vat": [[str(r), ht, v] for r, ht, v in self.vat_breakdown],
            "total_ht": self.total_ht,
            "total_vat": self.total_vat,
            "total_ttc": self.total_ttc,
            "prev_hash": self.prev_hash,
        }

    def to_dict(self) -> dict[str, Any]:
        return {**self.content(), "hash": self.hash}

    @classmethod
    def from_content(cls, c: Mapping[str, Any], digest: str | None = None) -> Invoice:
        return cls(
            kind=c["kind"],
            payer_kind=c["payer"]["kind"],
            payer_id=c["payer"]["id"],
            payer_name=c["payer"]["name"],
            period=c["period"],
            lines=tuple(InvoiceLine.from_dict(x) for x in c["lines"]),
            total_ht=c["total_ht"],
            total_vat=c["total_vat"],
            total_ttc=c["total_ttc"],
            vat_breakdown=tuple((Decimal(r), ht, v) for r, ht, v in c["vat"]),
            status=c["status"],
            number=c["number"],
            issued_at=c["issued_at"],
            closed_by=c["closed_by"],
            prev_hash=c["prev_hash"],
            hash=digest,
        )


def canonical(content: Mapping[str, Any]) -> str:
    """One byte sequence per document, whatever the dict order: what the hash covers."""
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def digest(content: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical(content).encode()).hexdigest()


def _vat_breakdown(lines: Sequence[InvoiceLine], sign: int) -> tuple[tuple[Decimal, int, int], ...]:
    """VAT per rate on the document's sum. A credit note's VAT is the exact opposite of
    the VAT the same positive amounts would bear, so reversing a whole invoice nets to 0."""
    per_rate = vat((sign * ln.amount_ht, ln.vat_rate) for ln in lines)
    return tuple(
        sorted((Decimal(r), sign * int(ht), sign * int(v)) for r, (ht, v) in per_rate.items())
    )


def _document(
    kind: str,
    payer: tuple[str, str],
    name: str,
    period: str,
    charges: Iterable[tuple[SessionCharge, bool, bool]],
    sign: int,
) -> Invoice:
    """Group charges (charge, late, correction) into lines per machine, project and rate."""
    groups: dict[tuple[Any, ...], list[SessionCharge]] = {}
    for c, late, corr in charges:
        key = (c.machine_id, c.project_id, c.vat_rate, late, c.unpriced, corr)
        groups.setdefault(key, []).append(c)
    lines = []
    for key in sorted(groups, key=lambda k: tuple((v is None, str(v)) for v in k)):
        machine, project, rate, late, unpriced, corr = key
        items = tuple(
            sorted((c.session_id, sign * c.minutes, sign * c.amount) for c in groups[key])
        )
        lines.append(
            InvoiceLine(
                machine_id=machine,
                project_id=project,
                vat_rate=rate,
                minutes=sum(i[1] for i in items),
                amount_ht=sum(i[2] for i in items),
                late=late,
                unpriced=unpriced,
                correction=corr,
                sessions=items,
            )
        )
    breakdown = _vat_breakdown(lines, sign)
    total_ht = sum(ln.amount_ht for ln in lines)
    total_vat = sum(v for _, _, v in breakdown)
    return Invoice(
        kind=kind,
        payer_kind=payer[0],
        payer_id=payer[1],
        payer_name=name,
        period=period,
        lines=tuple(lines),
        total_ht=total_ht,
        total_vat=total_vat,
        total_ttc=total_ht + total_vat,
        vat_breakdown=breakdown,
    )


# -- drafts ----------------------------------------------------------------------------

_SESSION_COLS = (
    "s.session_id, s.machine_id, s.member_id, s.project_id, s.started_at, "
    "s.billable_minutes, s.amount_cents, s.priced_minutes, s.vat_rate, "
    "s.priced_with"
)
_UNBILLED = (
    "s.status = 'closed' AND NOT EXISTS "
    "(SELECT 1 FROM invoiced_sessions i WHERE i.session_id = s.session_id)"
)


def _unbilled(store: HubStore, start: str | None, end: str) -> Iterator[dict[str, Any]]:
    clause, args = ("s.started_at >= ? AND ", [start]) if start else ("", [])
    cur = store.conn.execute(
        f"SELECT {_SESSION_COLS} FROM sessions s WHERE {clause}s.started_at < ? "
        f"AND {_UNBILLED} ORDER BY s.started_at, s.session_id",
        (*args, end),
    )
    try:
        for r in cur:
            yield dict(r)
    finally:
        cur.close()


def _blocking_period(store: HubStore, period: str, tz: str) -> str | None:
    """An open period before ``period`` with unbilled sessions of its own, if any."""
    last = _last_closed(store)
    start = period_bounds(next_period(last), tz)[0] if last else None
    end = period_bounds(period, tz)[0]
    clause, args = ("s.started_at >= ? AND ", [iso(start)]) if start else ("", [])
    row = store.conn.execute(
        f"SELECT min(s.started_at) FROM sessions s WHERE {clause}s.started_at < ? AND {_UNBILLED}",
        (*args, iso(end)),
    ).fetchone()
    return period_of(row[0], tz) if row and row[0] else None


def _billed_now(store: HubStore) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(what was last billed, the session as it is now) for every billed session."""
    cur = store.conn.execute(
        "WITH cur AS (SELECT i.session_id AS b_session_id, i.amount AS b_amount, "
        "i.minutes AS b_minutes, i.machine_id AS b_machine_id, "
        "i.project_id AS b_project_id, i.vat_rate AS b_vat_rate, i.unpriced AS b_unpriced, "
        "inv.payer_kind AS b_payer_kind, inv.payer_id AS b_payer_id, "
        "row_number() OVER (PARTITION BY i.session_id ORDER BY inv.seq DESC) AS rn "
        "FROM invoiced_sessions i JOIN invoices inv ON inv.number = i.invoice_number "
        "WHERE inv.kind = 'invoice') "
        f"SELECT cur.*, {_SESSION_COLS} "
        "FROM cur JOIN sessions s ON s.session_id = cur.b_session_id WHERE cur.rn = 1 "
        "ORDER BY cur.b_session_id"
    )
    try:
        for r in cur:
            d = dict(r)
            billed = {k[2:]: d.pop(k) for k in list(d) if k.startswith("b_")}
            yield billed, d
    finally:
        cur.close()


def build_drafts(store: HubStore, period: str, tz: str) -> list[Invoice]:
    """The documents closing ``period`` would issue now (none if it is closed).

    Late sessions and corrections go to the earliest open period that would be closed
    next: when an earlier open month still has sessions of its own, ``period`` only gets
    its own sessions (that month collects the rest).
    """
    if is_closed(store, period):
        return []
    payers = Payers(store)
    start, end = period_bounds(period, tz)
    invoices: dict[tuple[str, str], list[tuple[SessionCharge, bool, bool]]] = {}
    credits: dict[tuple[str, str], list[tuple[SessionCharge, bool, bool]]] = {}
    for s in _unbilled(store, iso(start), iso(end)):
        invoices.setdefault(payers.payer(s["member_id"]), []).append((charge_of(s), False, False))
    if _blocking_period(store, period, tz) is None:
        last = _last_closed(store)
        if last is not None:
            closed_end = period_bounds(last, tz)[1]
            for s in _unbilled(store, None, iso(closed_end)):
                invoices.setdefault(payers.payer(s["member_id"]), []).append(
                    (charge_of(s), True, False)
                )
        for billed, now in _billed_now(store):
            charge = charge_of(now)
            was = (
                billed["amount"],
                billed["minutes"],
                billed["machine_id"],
                billed["project_id"],
                Decimal(billed["vat_rate"]),
                bool(billed["unpriced"]),
            )
            if was == (
                charge.amount,
                charge.minutes,
                charge.machine_id,
                charge.project_id,
                charge.vat_rate,
                charge.unpriced,
            ):
                continue
            payer = (billed["payer_kind"], billed["payer_id"])
            if billed["amount"]:
                old = SessionCharge(
                    session_id=billed["session_id"],
                    machine_id=billed["machine_id"],
                    project_id=billed["project_id"],
                    minutes=billed["minutes"],
                    amount=billed["amount"],
                    vat_rate=Decimal(billed["vat_rate"]),
                    unpriced=bool(billed["unpriced"]),
                )
                credits.setdefault(payer, []).append((old, False, True))
            invoices.setdefault(payer, []).append((charge, False, True))
    docs = [
        _document("invoice", p, payers.payer_name(*p), period, invoices[p], 1)
        for p in sorted(invoices)
    ]
    docs += [
        _document("credit_note", p, payers.payer_name(*p), period, credits[p], -1)
        for p in sorted(credits)
    ]
    return docs


# -- closing ---------------------------------------------------------------------------


@contextmanager
def _immediate(store: HubStore) -> Iterator[None]:
    """Take the write lock before reading: two closings at once must not both number
    from the same last document."""
    conn = store.conn
    if conn.in_transaction:
        raise RuntimeError("close_period needs its own transaction")
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _next_numbers(store: HubStore, year: int) -> dict[str, int]:
    out = {}
    for kind, prefix in _PREFIX.items():
        row = store.conn.execute(
            "SELECT max(number) FROM invoices WHERE number LIKE ?", (f"{prefix}{year:04d}-%",)
        ).fetchone()
        out[kind] = int(row[0].rsplit("-", 1)[1]) + 1 if row and row[0] else 1
    return out


def _insert(store: HubStore, doc: Invoice, seq: int) -> None:
    content = doc.content()
    conn = store.conn
    conn.execute(
        "INSERT INTO invoices (number, seq, kind, payer_kind, payer_id, period, status, "
        "issued_at, total_ht, total_vat, total_ttc, hash, prev_hash, content) "
        "VALUES (?, ?, ?, ?, ?, ?, 'closed', ?, ?, ?, ?, ?, ?, ?)",
        (
            doc.number,
            seq,
            doc.kind,
            doc.payer_kind,
            doc.payer_id,
            doc.period,
            doc.issued_at,
            doc.total_ht,
            doc.total_vat,
            doc.total_ttc,
            doc.hash,
            doc.prev_hash,
            canonical(content),
        ),
    )
    for ln in doc.lines:
        conn.execute(
            "INSERT INTO invoice_lines (invoice_number, machine_id, project_id, minutes, "
            "amount_ht, vat_rate, late, unpriced, session_ids) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                doc.number,
                ln.machine_id,
                ln.project_id,
                ln.minutes,
                ln.amount_ht,
                str(ln.vat_rate),
                int(ln.late),
                int(ln.unpriced),
                json.dumps(ln.session_ids),
            ),
        )
        for sid, minutes, amount in ln.sessions:
            conn.execute(
                "INSERT INTO invoiced_sessions (session_id, invoice_number, amount, minutes, "
                "machine_id, project_id, vat_rate, unpriced) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    sid,
                    doc.number,
                    amount,
                    minutes,
                    ln.machine_id,
                    ln.project_id,
                    str(ln.vat_rate),
                    int(ln.unpriced),
                ),
            )


def close_period(store: HubStore, period: str, *, by: str, at: datetime, tz: str) -> list[Invoice]:
    """Freeze ``period``: number, hash-chain and store its documents in one transaction.

    Closing a closed period changes nothing and returns its documents (idempotent, so a
    retried request cannot issue a second set). Raises ValueError when an earlier month
    still has unbilled sessions of its own: it must be closed first.
    """
    with _immediate(store):
        if is_closed(store, period):
            return list(closed_invoices(store, period, period))
        blocking = _blocking_period(store, period, tz)
        if blocking is not None:
            raise ValueError(f"close {blocking} before {period}: it has unbilled sessions")
        last = _last_closed(store)
        drafts = build_drafts(store, period, tz)
        numbers = _next_numbers(store, parse_period(period)[0])
        row = store.conn.execute(
            "SELECT seq, hash FROM invoices ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        seq, prev = (row[0], row[1]) if row else (0, GENESIS)
        issued = iso(at)
        out = []
        for draft in drafts:
            seq += 1
            number = f"{_PREFIX[draft.kind]}{parse_period(period)[0]:04d}-{numbers[draft.kind]:06d}"
            numbers[draft.kind] += 1
            doc = replace(
                draft,
                status="closed",
                number=number,
                issued_at=issued,
                closed_by=by,
                prev_hash=prev,
            )
            doc = replace(doc, hash=digest(doc.content()))
            _insert(store, doc, seq)
            prev = doc.hash or GENESIS
            out.append(doc)
        p = next_period(last) if last is not None and last < period else period
        while p <= period:
            store.conn.execute(
                "INSERT INTO periods (period, status, closed_at, closed_by) "
                "VALUES (?, 'closed', ?, ?) ON CONFLICT(period) DO UPDATE SET "
                "status = 'closed', closed_at = excluded.closed_at, "
                "closed_by = excluded.closed_by",
                (p, issued, by),
            )
            p = next_period(p)
        return out


# -- reading and verifying ------------------------------------------------------------


def closed_invoices(
    store: HubStore,
    first: str | None = None,
    last: str | None = None,
    kind: str | None = None,
    *,
    payer: tuple[str, str] | None = None,
) -> Iterator[Invoice]:
    """Closed documents of periods [first, last] (of one ``(payer_kind, payer_id)``), in
    chain order, streamed from a cursor."""
    clauses, args = [], []
    if payer:
        clauses += ["payer_kind = ?", "payer_id = ?"]
        args += list(payer)
    if first:
        clauses.append("period >= ?")
        args.append(first)
    if last:
        clauses.append("period <= ?")
        args.append(last)
    if kind:
        clauses.append("kind = ?")
        args.append(kind)
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    cur = store.conn.execute(f"SELECT content, hash FROM invoices {where} ORDER BY seq", args)
    try:
        for r in cur:
            yield Invoice.from_content(json.loads(r[0]), r[1])
    finally:
        cur.close()


def closed_count(store: HubStore, first: str, last: str) -> int:
    """Closed documents of periods [first, last]: the size of an invoice export."""
    return int(
        store.conn.execute(
            "SELECT count(*) FROM invoices WHERE period >= ? AND period <= ?", (first, last)
        ).fetchone()[0]
    )


def chain_head(store: HubStore) -> tuple[str, str] | None:
    """(number, hash) of the last closed document: keep it elsewhere to notice a rewrite
    of that document together with its hash."""
    row = store.conn.execute(
        "SELECT number, hash FROM invoices ORDER BY seq DESC LIMIT 1"
    ).fetchone()
    return (row[0], row[1]) if row else None


def invoice_by_number(store: HubStore, number: str) -> Invoice | None:
    row = store.conn.execute(
        "SELECT content, hash FROM invoices WHERE number = ?", (number,)
    ).fetchone()
    return Invoice.from_content(json.loads(row[0]), row[1]) if row else None


def verify_chain(store: HubStore) -> list[str]:
    """Every inconsistency between the stored documents and their hash chain.

    Checks, in chain order: the link to the previous hash, the hash of the canonical
    content, that the row's columns, lines and billed sessions say what the hashed
    content says, and that numbers have no gap. Editing the last document *and* its hash
    cannot be seen from inside the file; keep the latest hash elsewhere (it is in every
    export) to catch that too.
    """
    problems: list[str] = []
    prev = GENESIS
    expected_seq = 1
    last_number: dict[tuple[str, str], int] = {}
    conn = store.conn
    for r in conn.execute("SELECT * FROM invoices ORDER BY seq"):
        number = r["number"]
        if r["seq"] != expected_seq:
            problems.append(
                f"{number}: chain position {r['seq']}, expected {expected_seq} "
                "(a document is missing)"
            )
        expected_seq = r["seq"] + 1
        if r["prev_hash"] != prev:
            problems.append(f"{number}: previous hash does not match the document before it")
        try:
            content = json.loads(r["content"])
        except ValueError:
            problems.append(f"{number}: content is not valid JSON")
            prev = r["hash"]
            continue
        if digest(content) != r["hash"] or canonical(content) != r["content"]:
            problems.append(f"{number}: content does not match its hash")
        if content.get("prev_hash") != r["prev_hash"]:
            problems.append(f"{number}: hashed previous hash differs from the row's")
        payer = content.get("payer") or {}
        for col, value in (
            ("number", content.get("number")),
            ("kind", content.get("kind")),
            ("period", content.get("period")),
            ("status", content.get("status")),
            ("issued_at", content.get("issued_at")),
            ("payer_kind", payer.get("kind")),
            ("payer_id", payer.get("id")),
            ("total_ht", content.get("total_ht")),
            ("total_vat", content.get("total_vat")),
            ("total_ttc", content.get("total_ttc")),
        ):
            if r[col] != value:
                problems.append(
                    f"{number}: column {col} is {r[col]!r} but the hashed document says {value!r}"
                )
        lines = content.get("lines") or []
        if sum(int(x["amount_ht"]) for x in lines) != content.get("total_ht"):
            problems.append(f"{number}: lines do not add up to the total")
        want_lines = sorted(
            (
                x["machine_id"] or "",
                x["project_id"] or "",
                int(x["minutes"]),
                int(x["amount_ht"]),
                x["vat_rate"],
                int(bool(x["late"])),
                int(bool(x["unpriced"])),
                json.dumps([s[0] for s in x["sessions"]]),
            )
            for x in lines
        )
        have_lines = sorted(
            (x[0] or "", x[1] or "", x[2], x[3], x[4], x[5], x[6], x[7])
            for x in conn.execute(
                "SELECT machine_id, project_id, minutes, amount_ht, vat_rate, late, "
                "unpriced, session_ids FROM invoice_lines WHERE invoice_number = ?",
                (number,),
            )
        )
        if want_lines != have_lines:
            problems.append(f"{number}: stored lines differ from the hashed document")
        want_sessions = sorted((s[0], int(s[2]), int(s[1])) for x in lines for s in x["sessions"])
        have_sessions = sorted(
            tuple(x)
            for x in conn.execute(
                "SELECT session_id, amount, minutes FROM invoiced_sessions "
                "WHERE invoice_number = ?",
                (number,),
            )
        )
        if want_sessions != have_sessions:
            problems.append(f"{number}: billed sessions differ from the hashed document")
        m = _NUMBER.match(number or "")
        if not m:
            problems.append(f"{number!r}: not a document number")
        else:
            key = (m.group(1), m.group(2))
            n = int(m.group(3))
            if n != last_number.get(key, 0) + 1:
                problems.append(
                    f"{number}: expected number "
                    f"{m.group(1)}{m.group(2)}-{last_number.get(key, 0) + 1:06d}"
                )
            last_number[key] = n
        prev = r["hash"]
    orphans = conn.execute(
        "SELECT count(*) FROM invoiced_sessions WHERE invoice_number NOT IN "
        "(SELECT number FROM invoices)"
    ).fetchone()[0]
    if orphans:
        problems.append(f"{orphans} billed session rows name no document")
    return problems
