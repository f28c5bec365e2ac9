"""Words for codes the pages get from data (a machine's state, a role, a level).

Each family maps a code to a gettext call, literal so that extraction finds the
msgid; ``label(family, code)`` answers the code itself for one it does not know, so
a new code shows up on the page instead of breaking it. Written by the conversion
from the old dict catalogue; add new codes by hand, like any other string.
"""

from __future__ import annotations

from collections.abc import Callable

from flask_babel import gettext

LABELS: dict[str, dict[str, Callable[[], str]]] = {
    "activity": {
        "alarm": lambda: gettext("in alarm"),
        "busy": lambda: gettext("running"),
        "error": lambda: gettext("in error"),
        "idle": lambda: gettext("idle"),
        "paused": lambda: gettext("paused"),
        "unknown": lambda: gettext("state unknown"),
    },
    "admin.org.kind": {
        "association": lambda: gettext("association"),
        "company": lambda: gettext("company"),
        "other": lambda: gettext("other"),
        "school": lambda: gettext("school"),
    },
    "badge.status": {
        "active": lambda: gettext("active"),
        "blocked": lambda: gettext("blocked"),
    },
    "cert.state": {
        "expired": lambda: gettext("expired"),
        "live": lambda: gettext("valid"),
        "revoked": lambda: gettext("revoked"),
    },
    "certify.level_help": {
        "0": lambda: gettext("records a training without giving access"),
        "1": lambda: gettext("only while a supervisor is present"),
        "2": lambda: gettext("may use the machines alone"),
        "3": lambda: gettext("may also certify others"),
    },
    "level": {
        "0": lambda: gettext("none"),
        "1": lambda: gettext("supervised"),
        "2": lambda: gettext("autonomous"),
        "3": lambda: gettext("trainer"),
    },
    "means": {
        "card": lambda: gettext("card"),
        "cash": lambda: gettext("cash"),
        "cheque": lambda: gettext("cheque"),
        "credit": lambda: gettext("prepaid credit"),
        "direct_debit": lambda: gettext("direct debit"),
        "other": lambda: gettext("other"),
        "transfer": lambda: gettext("bank transfer"),
    },
    "members.status": {
        "active": lambda: gettext("active"),
        "suspended": lambda: gettext("suspended"),
    },
    "payments.err": {
        "amount": lambda: gettext("Invalid amount: in euros, e.g. 12.50."),
        "below_zero": lambda: gettext("A correction cannot make the amount paid negative."),
        "credit_note": lambda: gettext("A credit note is not paid."),
        "date": lambda: gettext("Invalid date."),
        "future": lambda: gettext("A payment cannot be dated in the future."),
        "means": lambda: gettext("Unknown means of payment."),
        "note": lambda: gettext("A correction must say why (note)."),
        "too_much": lambda: gettext("This payment would exceed the amount due."),
        "zero": lambda: gettext("A payment of 0 records nothing."),
    },
    "role": {
        "accountant": lambda: gettext("accountant"),
        "admin": lambda: gettext("administrator"),
        "fabmanager": lambda: gettext("fabmanager"),
        "member": lambda: gettext("member"),
        "trainer": lambda: gettext("trainer"),
    },
    "scope": {
        "invoices": lambda: gettext("invoices and closing months"),
        "jobs": lambda: gettext("machine jobs"),
        "machines": lambda: gettext("live machines"),
        "members": lambda: gettext("members: list, create, one member's data export"),
        "report": lambda: gettext("activity report"),
        "sessions": lambda: gettext("sessions"),
        "usage": lambda: gettext("usage (minutes and amounts)"),
    },
    "state": {
        "free": lambda: gettext("Free"),
        "in_use": lambda: gettext("In use"),
        "offline": lambda: gettext("Offline"),
        "out_of_service": lambda: gettext("Out of service"),
    },
    "status": {
        "credit_note": lambda: gettext("credit note"),
        "paid": lambda: gettext("paid"),
        "part_paid": lambda: gettext("part-paid"),
        "unpaid": lambda: gettext("unpaid"),
    },
    "unit": {
        "C62": lambda: gettext("lot"),
        "MIN": lambda: gettext("min"),
        "hours": lambda: gettext("%(n)s h"),
        "members": lambda: gettext("%(num)s member"),
        "sessions": lambda: gettext("%(num)s session"),
    },
}


def label(family: str, code: object, **values: object) -> str:
    """The words for ``code`` in ``family``; the code itself when it has none."""
    word = LABELS.get(family, {}).get(str(code))
    if word is None:
        return str(code)
    text = word()
    return text % values if values else text
