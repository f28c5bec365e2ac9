"""A closed invoice or credit note as the document people and programs receive.

``gateway.billing.invoicing`` stores what was billed (lines, totals, VAT per rate, the
hash chain); this module adds what a legal French invoice also states and the PDF and
Factur-X data are made of: the seller and the buyer with their addresses and
identifiers, readable line labels with quantity and unit price, the service period,
the due date and the payment status.

The parties are frozen at issue: the first time a document is built (at closing, from
the web or the API), the seller's details from the hub configuration and the buyer's
from the database are written to ``invoice_parties`` (append-only, owned here), and
every later build reads them from there. A seller that moves, or an organisation that
changes its name, does not rewrite invoices already sent.

Line quantities: a line whose amount is a whole number of cents per minute is shown as
minutes at that unit price (60 min at 0,50 EUR); otherwise (a start-up fee, a minimum, a
rounding unit) as one lot at its amount, with the minutes in its label. Either way the
quantity times the unit price is the line's amount exactly, as EN 16931 wants.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from gateway.billing.invoicing import (
    Invoice,
    InvoiceLine,
    close_period,
    invoice_by_number,
    is_closed,
    organisation,
)
from gateway.billing.payments import paid_amount, status_of
from gateway.config.models import (
    RECOVERY_FEE_CENTS,
    VAT_EXEMPTION_293B,
    InvoicingConfig,
    SellerConfig,
)
from gateway.core.clock import iso, parse_iso
from gateway.hub import audit
from gateway.hub.db import HubStore

__all__ = [
    "Document",
    "DocumentLine",
    "NotConfigured",
    "Party",
    "PERIOD_CLOSED",
    "build_document",
    "close_month",
    "freeze_parties",
    "seller_party",
]

PERIOD_CLOSED = "period.closed"
UNIT_MINUTE = "MIN"  # UN/ECE Recommendation 20: minute
UNIT_LOT = "C62"  # one (unit)


class NotConfigured(LookupError):
    """The hub configuration has no ``invoicing:`` section: no legal document can be made."""


@dataclass(frozen=True)
class Party:
    """The seller or the buyer of a document, as issued."""

    kind: str  # seller | member | organisation
    id: str
    name: str
    address: tuple[str, ...] = ()
    postcode: str | None = None
    city: str | None = None
    country: str = "FR"
    siret: str | None = None
    vat_number: str | None = None
    email: str | None = None
    phone: str | None = None
    legal_form: str | None = None
    organisation_kind: str | None = None  # school, company, association, other
    vat_exempt: bool = False

    @property
    def business(self) -> bool:
        """An organisation buys for its activity: business mentions apply, Factur-X too."""
        return self.kind == "organisation"

    @property
    def siren(self) -> str | None:
        return self.siret[:9] if self.siret else None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["address"] = list(self.address)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Party:
        values = dict(d)
        values["address"] = tuple(values.get("address") or ())
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in values.items() if k in known})


@dataclass(frozen=True)
class DocumentLine:
    position: int
    label: str
    machine_id: str | None
    project_id: str | None
    sessions: int
    minutes: int
    quantity: int  # minutes, or 1 lot
    unit: str  # UNIT_MINUTE or UNIT_LOT
    unit_price: int  # cents, excluding VAT; quantity x unit_price == amount_ht
    amount_ht: int  # cents, signed as on the document (negative on a credit note)
    vat_rate: Decimal
    late: bool
    correction: bool
    unpriced: bool
    service_start: date
    service_end: date


@dataclass(frozen=True)
class Document:
    invoice: Invoice
    seller: Party
    buyer: Party
    lines: tuple[DocumentLine, ...]
    issue_date: date
    service_start: date
    service_end: date
    due_date: date | None  # invoices only
    payment_terms: str
    late_penalties: str | None  # business buyers only
    recovery_fee: int | None  # cents, business buyers only
    iban: str | None
    bic: str | None
    paid: int
    status: str | None  # paid | part_paid | unpaid; None for a credit note
    vat_mention: str | None = None  # the 293 B mention of an exempt seller
    notes: tuple[str, ...] = field(default=())

    @property
    def number(self) -> str:
        return self.invoice.number or ""

    @property
    def is_credit_note(self) -> bool:
        return self.invoice.kind == "credit_note"

    @property
    def due(self) -> int:
        return max(0, self.invoice.total_ttc - self.paid) if not self.is_credit_note else 0


def seller_party(seller: SellerConfig) -> Party:
    return Party(
        kind="seller",
        id=seller.siret,
        name=seller.name,
        address=seller.address,
        postcode=seller.postcode,
        city=seller.city,
        country=seller.country,
        siret=seller.siret,
        vat_number=seller.vat_number,
        email=seller.email,
        phone=seller.phone,
        legal_form=seller.legal_form,
        vat_exempt=seller.vat_exempt,
    )


def _buyer_now(store: HubStore, inv: Invoice) -> Party:
    if inv.payer_kind == "organisation":
        org = organisation(store, inv.payer_id) or {}
        address = tuple(x.strip() for x in (org.get("address") or "").splitlines() if x.strip())
        return Party(
            kind="organisation",
            id=inv.payer_id,
            name=inv.payer_name,
            address=address,
            postcode=org.get("postcode"),
            city=org.get("city"),
            country=org.get("country") or "FR",
            siret=org.get("siret"),
            vat_number=org.get("vat_number"),
            email=org.get("email"),
            organisation_kind=org.get("kind"),
        )
    row = store.conn.execute(
        "SELECT name, email FROM members WHERE id = ?", (inv.payer_id,)
    ).fetchone()
    return Party(
        kind="member",
        id=inv.payer_id,
        name=inv.payer_name,
        email=row["email"] if row else None,
    )


def freeze_parties(
    store: HubStore, docs: Iterable[Invoice], seller: SellerConfig, at: datetime
) -> None:
    """Record the seller and buyer of each document not yet frozen (at its closing)."""
    with store.atomic():
        for inv in docs:
            if inv.number is None:
                continue
            store.conn.execute(
                "INSERT OR IGNORE INTO invoice_parties (invoice_number, seller, buyer, "
                "frozen_at) VALUES (?, ?, ?, ?)",
                (
                    inv.number,
                    json.dumps(seller_party(seller).to_dict(), ensure_ascii=False),
                    json.dumps(_buyer_now(store, inv).to_dict(), ensure_ascii=False),
                    iso(at),
                ),
            )


def close_month(
    store: HubStore,
    period: str,
    *,
    by: str,
    at: datetime,
    tz: str,
    invoicing: InvoicingConfig | None,
) -> list[Invoice]:
    """Close ``period`` (``invoicing.close_period``), then freeze the parties of the new
    documents and record the closing in the audit log, in one transaction.

    Closing is idempotent: a period already closed returns its documents and records
    nothing again. Raises ValueError as ``close_period`` does.
    """
    was_closed = is_closed(store, period)
    docs = close_period(store, period, by=by, at=at, tz=tz)
    if was_closed:
        return docs
    with store.atomic():
        if invoicing is not None:
            freeze_parties(store, docs, invoicing.seller, at)
        audit.record(
            store,
            by,
            PERIOD_CLOSED,
            period,
            {
                "documents": [d.number for d in docs],
                "total_ttc": sum(d.total_ttc for d in docs),
            },
        )
    return docs


def _parties(store: HubStore, number: str) -> tuple[Party, Party] | None:
    row = store.conn.execute(
        "SELECT seller, buyer FROM invoice_parties WHERE invoice_number = ?", (number,)
    ).fetchone()
    if row is None:
        return None
    return Party.from_dict(json.loads(row[0])), Party.from_dict(json.loads(row[1]))


def _names(store: HubStore, table: str, ids: set[str]) -> dict[str, str]:
    if not ids:
        return {}
    marks = ",".join("?" * len(ids))
    return {
        r[0]: r[1]
        for r in store.conn.execute(
            f"SELECT id, name FROM {table} WHERE id IN ({marks})", sorted(ids)
        )
    }


def _session_days(store: HubStore, ids: Sequence[str], tz: str) -> dict[str, date]:
    zone = ZoneInfo(tz)
    out: dict[str, date] = {}
    for i in range(0, len(ids), 500):
        chunk = list(ids[i : i + 500])
        marks = ",".join("?" * len(chunk))
        for r in store.conn.execute(
            f"SELECT session_id, started_at FROM sessions WHERE session_id IN ({marks})", chunk
        ):
            out[r[0]] = parse_iso(r[1]).astimezone(zone).date()
    return out


def _quantity(ln: InvoiceLine) -> tuple[int, str, int]:
    minutes = abs(ln.minutes)
    amount = ln.amount_ht
    if minutes and amount % minutes == 0:
        return minutes, UNIT_MINUTE, amount // minutes
    return 1, UNIT_LOT, amount


def _label(
    ln: InvoiceLine, machines: Mapping[str, str], projects: Mapping[str, str], lot: bool
) -> str:
    machine = machines.get(ln.machine_id or "", ln.machine_id or "Machine")
    parts = [f"Utilisation {machine}"]
    if ln.project_id:
        parts.append(f"projet {projects.get(ln.project_id, ln.project_id)}")
    count = len(ln.sessions)
    detail = f"{count} session{'s' if count > 1 else ''}"
    if lot:
        detail += f", {abs(ln.minutes)} min"
    parts.append(detail)
    if ln.late:
        parts.append("sessions arrivées après la clôture de leur mois")
    if ln.correction:
        parts.append("annulation" if ln.amount_ht < 0 else "refacturation après correction")
    if ln.unpriced:
        parts.append("sans tarif")
    return " · ".join(parts)


def _payment_terms(cfg: InvoicingConfig, issue: date) -> tuple[str, date]:
    due = issue + timedelta(days=cfg.payment_days)
    if cfg.payment_terms:
        return cfg.payment_terms, due
    if cfg.payment_days == 0:
        return "Paiement à réception de la facture.", due
    return f"Paiement à {cfg.payment_days} jours, au plus tard le {due:%d/%m/%Y}.", due


def build_document(
    store: HubStore, number: str, cfg: InvoicingConfig | None, tz: str, *, at: datetime
) -> Document | None:
    """The document numbered ``number`` (None if there is none), its parties frozen now
    if they were not yet. ``NotConfigured`` without an ``invoicing:`` configuration."""
    inv = invoice_by_number(store, number)
    if inv is None:
        return None
    if cfg is None:
        raise NotConfigured("the hub configuration has no `invoicing:` section (seller details)")
    parties = _parties(store, number)
    if parties is None:
        freeze_parties(store, [inv], cfg.seller, at)
        parties = _parties(store, number)
        assert parties is not None
    seller, buyer = parties
    zone = ZoneInfo(tz)
    issued = parse_iso(inv.issued_at).astimezone(zone).date() if inv.issued_at else at.date()
    machines = _names(store, "machines", {ln.machine_id for ln in inv.lines if ln.machine_id})
    projects = _names(store, "projects", {ln.project_id for ln in inv.lines if ln.project_id})
    days = _session_days(store, [s for ln in inv.lines for s in ln.session_ids], tz)
    year, month = (int(x) for x in inv.period.split("-"))
    month_start = date(year, month, 1)
    month_end = (month_start + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    lines = []
    for i, ln in enumerate(inv.lines, 1):
        quantity, unit, price = _quantity(ln)
        seen = [days[s] for s in ln.session_ids if s in days]
        lines.append(
            DocumentLine(
                position=i,
                label=_label(ln, machines, projects, unit == UNIT_LOT),
                machine_id=ln.machine_id,
                project_id=ln.project_id,
                sessions=len(ln.sessions),
                minutes=ln.minutes,
                quantity=quantity,
                unit=unit,
                unit_price=price,
                amount_ht=ln.amount_ht,
                vat_rate=ln.vat_rate,
                late=ln.late,
                correction=ln.correction,
                unpriced=ln.unpriced,
                service_start=min(seen, default=month_start),
                service_end=max(seen, default=month_end),
            )
        )
    start = min([month_start, *(ln.service_start for ln in lines)])
    end = max([month_end, *(ln.service_end for ln in lines)])
    terms, due = _payment_terms(cfg, issued)
    paid = paid_amount(store, number)
    credit = inv.kind == "credit_note"
    business = buyer.business
    notes = []
    if credit:
        notes.append("Avoir : ce montant vient en déduction des sommes dues.")
    if business:
        notes.append("Pas d'escompte pour paiement anticipé.")
    return Document(
        invoice=inv,
        seller=seller,
        buyer=buyer,
        lines=tuple(lines),
        issue_date=issued,
        service_start=start,
        service_end=end,
        due_date=None if credit else due,
        payment_terms=terms,
        late_penalties=cfg.late_penalties if business else None,
        recovery_fee=RECOVERY_FEE_CENTS if business else None,
        iban=cfg.iban,
        bic=cfg.bic,
        paid=paid,
        status=status_of(inv.kind, inv.total_ttc, paid),
        vat_mention=VAT_EXEMPTION_293B if seller.vat_exempt else None,
        notes=tuple(notes),
    )
