"""One member's personal data: the export (right of access) and the erasure.

Owns no table: it reads and writes through each table's owner (members, accounts,
certifications, sessions, jobs, events, enrolments, presence, credit, invoices, audit),
so the rule "one writer per table" holds and each owner says what erasing means for its
rows. ``docs/rgpd.md`` is the page for people; this is what the code does.

**Export** (RGPD art. 15 and 20): everything the hub holds about one member, as one JSON
document: identity, category, badges, certifications, sessions, jobs, projects, closed
invoices and credit notes, credit movements, taps and denials still kept, enrolments,
staff presence, the log-in account (never the password hash) and every audit entry
about them or by them. Each export is audited (``member.exported``): who asked for
whose data is itself worth keeping.

**Erasure** (art. 17), staff only: the member becomes "Membre effacé n° N" in place.
What stays and why: sessions (statistics and the accounting of the machines: they point
to the pseudonym, without the badge uid), closed invoices and credit notes exactly as
issued (a French invoice is kept ten years with its buyer's name), credit movements
(money), the audit log (security evidence; it names member ids, not people). What goes:
name, email, badges (the card can be enrolled again), the log-in account and roles,
live certifications (ended, kept as revoked), trainers' notes, project and job names,
taps, denials, presence and enrolment records.

It is refused while the member has an open session (the machine is powered for them:
end it first), a negative prepaid balance, or priced sessions they pay that no closed
invoice carries yet (close the month first, so the invoice is issued in their name).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gateway.billing import credit, invoicing
from gateway.core.clock import iso
from gateway.hub import (
    accounts,
    audit,
    certifications,
    enrolment,
    jobs,
    members,
    presence,
    sessions,
)
from gateway.hub.db import HubStore
from gateway.hub.events import journal

EXPORT_FORMAT = "fabgate.member-export/1"


class ErasureRefused(Exception):
    """The erasure cannot be done now; ``key`` names the reason (a web catalogue key,
    ``erase.err.*``), ``values`` fill it, and ``str()`` is the English sentence."""

    def __init__(self, key: str, message: str, **values: object) -> None:
        super().__init__(message)
        self.key = key
        self.values = values


def export_member(store: HubStore, member_id: str, *, now: datetime, by: str) -> dict[str, Any]:
    """Everything about the member, audited as asked by ``by``; KeyError if unknown."""
    row = members.member(store, member_id)
    if row is None:
        raise KeyError(member_id)
    badges = members.badges_of(store, member_id)
    uids = [b["uid"] for b in badges]
    document = {
        "format": EXPORT_FORMAT,
        "exported_at": iso(now),
        "member": row,
        "account": accounts.account_of(store, member_id),
        "badges": badges,
        "certifications": certifications.of_member(store, member_id, now),
        "projects": members.projects_of(store, member_id),
        "sessions": sessions.all_of_member(store, member_id),
        "jobs": jobs.of_member(store, member_id),
        "invoices": invoicing.documents_of_member(store, member_id),
        "credit": {
            "balance_cents": credit.balance(store, member_id),
            "movements": credit.movements_of(store, member_id),
        },
        "access_events": journal.access_events_of(store, member_id, uids),
        "enrolments": enrolment.of_member(store, member_id),
        "staff_presence": presence.presence_of(store, member_id),
        "audit": audit.about(store, member_id),
    }
    audit.record(store, by, audit.MEMBER_EXPORTED, member_id, {})
    return document


@dataclass(frozen=True)
class Erased:
    member_id: str
    number: int
    pseudonym: str
    badges: int
    certifications: int
    access_events: int
    account: bool


def check_erasable(store: HubStore, member_id: str) -> None:
    """Raise ErasureRefused with the reason when the member cannot be erased now."""
    if members.member(store, member_id) is None:
        raise KeyError(member_id)
    if members.is_erased(store, member_id):
        raise ErasureRefused("erase.err.done", f"member {member_id} is already erased")
    open_session = sessions.open_session_of(store, member_id)
    if open_session is not None:
        raise ErasureRefused(
            "erase.err.open_session",
            f"member {member_id} has an open session on {open_session['machine_id']}: "
            "end it at the machine first",
            machine=open_session["machine_id"],
        )
    owed = credit.balance(store, member_id)
    if owed < 0:
        raise ErasureRefused(
            "erase.err.balance",
            f"member {member_id} owes {-owed} cents of prepaid credit: settle it first",
            cents=-owed,
        )
    unbilled = invoicing.unbilled_of_member(store, member_id)
    if unbilled:
        raise ErasureRefused(
            "erase.err.unbilled",
            f"member {member_id} has {unbilled} priced session(s) not invoiced yet: close "
            "their month first, so the invoice is issued in their name",
            count=unbilled,
        )


def erase_member(store: HubStore, member_id: str, *, now: datetime, by: str) -> Erased:
    """Pseudonymise the member in one transaction with its audit entry (see the module
    docstring for what stays and what goes); ErasureRefused when it cannot be done."""
    with store.atomic():
        check_erasable(store, member_id)
        uids = [b["uid"] for b in members.badges_of(store, member_id)]
        ended = certifications.end_all(store, member_id, now)
        certifications.notes_cleared(store, member_id)
        events = journal.erase_access_events_of(store, member_id, uids)
        had_account = accounts.delete_account(store, member_id)
        enrolment.forget(store, member_id)
        presence.forget(store, member_id)
        sessions.forget_badges(store, member_id)
        jobs.forget_names(store, member_id)
        number = members.pseudonymise(store, member_id, at=iso(now))
        # Counts only: the audit log is kept for years, so it must not carry what was
        # just erased (no name, no email, no badge uid).
        audit.record(
            store,
            by,
            audit.MEMBER_ERASED,
            member_id,
            {
                "erased_no": number,
                "badges": len(uids),
                "certifications_ended": ended,
                "access_events": events,
                "account": had_account,
            },
        )
    return Erased(
        member_id=member_id,
        number=number,
        pseudonym=members.PSEUDONYM.format(n=number),
        badges=len(uids),
        certifications=ended,
        access_events=events,
        account=had_account,
    )
