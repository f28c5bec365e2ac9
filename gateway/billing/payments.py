"""Payments of closed invoices: recording them, and whether an invoice is paid.

The only writer of ``payments``. The table is append-only (SQL triggers refuse updates
and deletes), like the credit ledger: a payment recorded by mistake is corrected by a
negative entry with a note, so what the accountant reconciles with the bank is every
entry ever made, and each one is in the audit log (``payment.recorded``) in the same
transaction.

Only invoices are paid; a credit note is settled by the invoices it offsets or a refund
outside the hub, and has no payment status. An invoice's status follows from the sum of
its payments: ``paid`` when it reaches the total with VAT (a zero invoice is paid),
``part_paid`` when some was paid, ``unpaid`` otherwise. Paying more than is due is
refused: an overpayment is a top-up of prepaid credit, not an invoice payment.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from gateway.core.clock import iso
from gateway.hub import audit
from gateway.hub.db import HubStore

__all__ = [
    "MEANS",
    "PAID",
    "PART_PAID",
    "PAYMENT_RECORDED",
    "STATUSES",
    "UNPAID",
    "Payment",
    "PaymentRefused",
    "paid_amount",
    "paid_amounts",
    "payments_of",
    "record_payment",
    "status_of",
]

# card, cash, cheque, bank transfer, the member's prepaid credit, SEPA direct debit.
MEANS = ("card", "cash", "cheque", "transfer", "credit", "direct_debit", "other")
UNPAID, PART_PAID, PAID = "unpaid", "part_paid", "paid"
STATUSES = (UNPAID, PART_PAID, PAID)
PAYMENT_RECORDED = "payment.recorded"
MAX_TEXT = 200


class PaymentRefused(ValueError):
    """Why a payment cannot be recorded; ``code`` names the rule (the pages translate it)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Payment:
    id: int
    invoice_number: str
    amount: int  # cents; negative: a correction of an earlier entry
    means: str
    paid_on: str  # the local day the money was received, YYYY-MM-DD
    reference: str | None
    note: str | None
    recorded_by: str
    recorded_at: str


def status_of(kind: str, total_ttc: int, paid: int) -> str | None:
    """``paid``, ``part_paid`` or ``unpaid``; None for a credit note."""
    if kind != "invoice":
        return None
    if paid >= total_ttc:
        return PAID
    return PART_PAID if paid > 0 else UNPAID


def payments_of(store: HubStore, number: str) -> list[Payment]:
    return [
        Payment(
            id=r["id"],
            invoice_number=r["invoice_number"],
            amount=r["amount_cents"],
            means=r["means"],
            paid_on=r["paid_on"],
            reference=r["reference"],
            note=r["note"],
            recorded_by=r["recorded_by"],
            recorded_at=r["recorded_at"],
        )
        for r in store.conn.execute(
            "SELECT * FROM payments WHERE invoice_number = ? ORDER BY id", (number,)
        )
    ]


def paid_amount(store: HubStore, number: str) -> int:
    row = store.conn.execute(
        "SELECT coalesce(sum(amount_cents), 0) FROM payments WHERE invoice_number = ?", (number,)
    ).fetchone()
    return int(row[0])


def paid_amounts(store: HubStore, numbers: Iterable[str] | None = None) -> dict[str, int]:
    """What was paid on each invoice that has payments (all of them, or ``numbers``)."""
    rows = store.conn.execute(
        "SELECT invoice_number, sum(amount_cents) FROM payments GROUP BY invoice_number"
    )
    wanted = None if numbers is None else set(numbers)
    return {r[0]: int(r[1]) for r in rows if wanted is None or r[0] in wanted}


def _clean(text: str | None) -> str | None:
    value = " ".join((text or "").split())[:MAX_TEXT]
    return value or None


def record_payment(
    store: HubStore,
    number: str,
    amount: int,
    *,
    means: str,
    paid_on: date,
    by: str,
    at: datetime,
    reference: str | None = None,
    note: str | None = None,
) -> Payment:
    """Record money received for invoice ``number`` (or, negative, a correction).

    Refused (``PaymentRefused``) for an unknown document, a credit note, an unknown
    means, a zero amount, a correction without a note, a total paid above what is due
    or below zero, and a payment dated after the moment it is recorded.
    """
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise TypeError("payment amounts are integer cents")
    if means not in MEANS:
        raise PaymentRefused("means", f"means must be one of {', '.join(MEANS)}, got {means!r}")
    if amount == 0:
        raise PaymentRefused("zero", "a payment of 0 records nothing")
    note = _clean(note)
    reference = _clean(reference)
    if amount < 0 and not note:
        raise PaymentRefused("note", "a correction (negative amount) needs a note saying why")
    if paid_on > at.date():
        raise PaymentRefused("future", f"a payment cannot be dated {paid_on}, after today")
    with store.atomic():
        row = store.conn.execute(
            "SELECT kind, total_ttc FROM invoices WHERE number = ?", (number,)
        ).fetchone()
        if row is None:
            raise PaymentRefused("unknown", f"no closed document numbered {number!r}")
        if row["kind"] != "invoice":
            raise PaymentRefused("credit_note", f"{number} is a credit note: it is not paid")
        already = paid_amount(store, number)
        total = int(row["total_ttc"])
        if already + amount > total:
            raise PaymentRefused(
                "too_much",
                f"{number}: {already + amount} cents paid would exceed the {total} cents due",
            )
        if already + amount < 0:
            raise PaymentRefused(
                "below_zero", f"{number}: a correction cannot take the paid amount below 0"
            )
        recorded_at = iso(at)
        cur = store.conn.execute(
            "INSERT INTO payments (invoice_number, amount_cents, means, paid_on, reference, "
            "note, recorded_by, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (number, amount, means, paid_on.isoformat(), reference, note, by, recorded_at),
        )
        payment_id = int(cur.lastrowid or 0)
        audit.record(
            store,
            by,
            PAYMENT_RECORDED,
            number,
            {
                "payment": payment_id,
                "amount": amount,
                "means": means,
                "paid_on": paid_on.isoformat(),
                "reference": reference,
                "note": note,
                "paid_total": already + amount,
                "due": total,
            },
        )
    return Payment(
        id=payment_id,
        invoice_number=number,
        amount=amount,
        means=means,
        paid_on=paid_on.isoformat(),
        reference=reference,
        note=note,
        recorded_by=by,
        recorded_at=recorded_at,
    )
