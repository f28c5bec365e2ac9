"""The sales journal: each closed document as balanced accounting entries.

What an accountant imports into their bookkeeping software (a "journal des ventes"):
one piece per document, numbered with it and dated on its issue day, with

- an invoice: the customer account (``411...``, the payer as auxiliary account) debited
  with the total including VAT; per VAT rate, the revenue account (``706...``) credited
  with the amount before VAT and the VAT collected account (``44571...``) with the VAT;
- a credit note: the same accounts on the opposite sides.

Every piece balances (debits equal credits, to the cent) because the document's total
with VAT is, by construction, the sum of its per-rate amounts and VAT
(``gateway.billing.invoicing``). A document of 0 (only unpriced lines) has no entry.
Accounts and the journal code come from the hub configuration's ``accounting:``.
Formats are those of the other exports: French CSV (``;``, ``dd/mm/yyyy``, decimal
commas, UTF-8 with a byte order mark), plain CSV, JSON with amounts in cents.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import Any
from zoneinfo import ZoneInfo

from gateway.billing.exports import DAY, MONEY, csv_lines, json_lines
from gateway.billing.invoicing import Invoice, closed_invoices
from gateway.config.models import AccountingConfig
from gateway.core.clock import parse_iso
from gateway.hub.db import HubStore

__all__ = ["JOURNAL_COLUMNS", "JournalEntry", "entries_of", "journal_export"]

JOURNAL_COLUMNS = (
    "journal",
    "date",
    "piece",
    "account",
    "auxiliary",
    "label",
    "debit",
    "credit",
)
_KINDS = {"date": DAY, "debit": MONEY, "credit": MONEY}
_WORD = {"invoice": "Facture", "credit_note": "Avoir"}


@dataclass(frozen=True)
class JournalEntry:
    journal: str
    date: str  # the document's issue day, YYYY-MM-DD (site's timezone)
    piece: str  # the document's number
    account: str
    auxiliary: str  # the payer on the customer line, else empty
    label: str
    debit: int  # cents, >= 0
    credit: int  # cents, >= 0


def entries_of(doc: Invoice, accounts: AccountingConfig, tz: str) -> list[JournalEntry]:
    """The balanced entries of one closed document (none when it totals 0)."""
    if doc.number is None or doc.issued_at is None:
        raise ValueError("only closed documents go to the sales journal")
    day = parse_iso(doc.issued_at).astimezone(ZoneInfo(tz)).date().isoformat()
    label = f"{_WORD[doc.kind]} {doc.number} {doc.payer_name}"[:120]
    # An invoice's amounts are positive and debit the customer; a credit note's are
    # negative: the same accounts, the other side.
    rows: list[JournalEntry] = []

    def side(account: str, aux: str, amount: int, customer: bool) -> None:
        if amount == 0:
            return
        on_debit = (amount > 0) == customer  # a positive amount debits the customer
        rows.append(
            JournalEntry(
                journal=accounts.journal,
                date=day,
                piece=doc.number or "",
                account=account,
                auxiliary=aux,
                label=label,
                debit=abs(amount) if on_debit else 0,
                credit=0 if on_debit else abs(amount),
            )
        )

    side(accounts.customer, doc.payer_id, doc.total_ttc, True)
    for rate, ht, vat in doc.vat_breakdown:
        side(accounts.revenue_account(rate), "", ht, False)
        side(accounts.vat_account(rate), "", vat, False)
    return rows


def journal_entries(
    docs: Iterable[Invoice], accounts: AccountingConfig, tz: str
) -> Iterator[JournalEntry]:
    for doc in docs:
        yield from entries_of(doc, accounts, tz)


def journal_export(
    store: HubStore,
    first: str,
    last: str,
    *,
    fmt: str,
    tz: str,
    accounts: AccountingConfig,
) -> Iterator[str]:
    """The sales journal of the closed documents of periods [first, last], streamed."""
    entries = journal_entries(closed_invoices(store, first, last), accounts, tz)
    if fmt == "json":
        yield from json_lines(entries, "entries", _entry_json)
        return
    yield from csv_lines((asdict(e) for e in entries), JOURNAL_COLUMNS, _KINDS, fmt, tz)


def _entry_json(e: JournalEntry) -> dict[str, Any]:
    return asdict(e)
