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
    "admin.rules": {
        "cooldown": lambda: gettext("Cool-down"),
        "cooldown_help": lambda: gettext(
            "Power kept after a job that outlived the badge-out (2 h at most). "
        ),
        "grace": lambda: gettext("Grace period"),
        "grace_help": lambda: gettext(
            "Power kept after a badge-out on an idle machine (1 h at most)."
        ),
        "help": lambda: gettext(
            "Empty: the node's setting (its file, else the machine kind's default). A rule changed here applies at the node within a second, to the session in progress too, with no restart. Durations: 90s, 15m, 1h30m."
        ),
        "hold_for": lambda: gettext("Hold before power-off"),
        "hold_for_help": lambda: gettext(
            "Between asking to hold and switching off, at the maximum length (10 min at most)."
        ),
        "idle_timeout": lambda: gettext("Idle timeout"),
        "idle_timeout_help": lambda: gettext(
            "A session with no work ends after this long (24 h at most)."
        ),
        "kind_default": lambda: gettext("Kind's default: %(value)s."),
        "max_length": lambda: gettext("Maximum length"),
        "max_length_help": lambda: gettext(
            "Past it, a running laser or CNC is held then switched off; a printer or an embroidery machine always finishes its job (24 h at most)."
        ),
        "never": lambda: gettext("none"),
        "never_cut_busy": lambda: gettext("Never cut a job in progress"),
        "never_cut_busy_fixed": lambda: gettext(
            "Always yes for this kind of machine: it cannot be turned off from the web."
        ),
        "never_cut_busy_help": lambda: gettext(
            "Yes: even at the maximum length, the job finishes."
        ),
        "no": lambda: gettext("no"),
        "node_setting": lambda: gettext("node's setting"),
        "progress_every": lambda: gettext("Progress every"),
        "progress_every_help": lambda: gettext(
            "How often a job's progress is reported (1 s to 10 min)."
        ),
        "save": lambda: gettext("Save the rules"),
        "saved": lambda: gettext("Rules saved: the node applies them from now on."),
        "title": lambda: gettext("Session rules"),
        "yes": lambda: gettext("yes"),
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
        "metrics": lambda: gettext("monitoring metrics (/metrics)"),
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
