"""Who may switch a machine on: the node's decision for one badge tap.

The node must decide on its own when the hub is unreachable, so the whole rule lives
here, as a pure function of the last signed snapshot, the tap and the machine's state.
Keeping it free of clocks and I/O lets the hub, the CLI and the tests replay any tap and
get the node's exact answer.

The order of the checks matters as much as the checks: ending one's own session must
work even with no usable snapshot (nobody may be locked *into* a running machine), and
the first failing check is the one reported, so members see the most useful reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from types import MappingProxyType
from zoneinfo import ZoneInfo

from gateway.core.ids import normalise_uid
from gateway.core.levels import Level
from gateway.core.snapshot import MemberGrant, Snapshot

__all__ = [
    "DENY_REASONS",
    "Action",
    "Decision",
    "MachineState",
    "Reason",
    "decide",
    "explain",
    "snapshot_stale",
]


class Reason(StrEnum):
    """Why a tap was answered the way it was; the value goes on the wire and in logs."""

    ALLOWED = "allowed"
    BADGE_OUT = "badge_out"
    UNKNOWN_BADGE = "unknown_badge"
    SUSPENDED = "suspended"
    MEMBERSHIP_EXPIRED = "membership_expired"
    NOT_CERTIFIED = "not_certified"
    LEVEL_TOO_LOW = "level_too_low"
    CERTIFICATION_EXPIRED = "certification_expired"
    STAFF_REQUIRED = "staff_required"
    IN_USE = "in_use"
    SNAPSHOT_TOO_OLD = "snapshot_too_old"
    NO_SNAPSHOT = "no_snapshot"
    OUT_OF_SERVICE = "out_of_service"
    INSUFFICIENT_CREDIT = "insufficient_credit"
    JOURNAL_UNAVAILABLE = "journal_unavailable"  # the node cannot record a session now
    # A permissive (interlock) is off or unknown; on the wire with its name after a colon,
    # ``permissive_off:water_flow`` (see policies/permissives.py).
    PERMISSIVE_OFF = "permissive_off"


class Action(StrEnum):
    START = "start"
    END = "end"
    DENY = "deny"


@dataclass(frozen=True)
class MachineState:
    """What the node knows about its machine's open session, independent of any snapshot.

    The badge uid is kept because a member's badge may have vanished from a newer
    snapshot (blocked, reassigned to nobody) while their session still runs: they must
    still be able to end it.
    """

    session_member_id: str | None = None
    session_badge_uid: str | None = None
    # The first configured permissive not known to be closed (its name), if any.
    interlock: str | None = None

    @property
    def in_session(self) -> bool:
        return self.session_member_id is not None or self.session_badge_uid is not None


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: Reason
    member: MemberGrant | None = None
    detail: str | None = None  # PERMISSIVE_OFF: the permissive's name

    @property
    def allowed(self) -> bool:
        return self.action is not Action.DENY

    @property
    def wire_reason(self) -> str:
        """The reason as taps carry it: ``permissive_off:water_flow``, else the reason."""
        return f"{self.reason}:{self.detail}" if self.detail else str(self.reason)


# One line per deny reason, shown to members on the node log, the CLI and the web UI.
# Phrased as what the member can do about it, since that is what they need at the machine.
DENY_REASONS: Mapping[Reason, Mapping[str, str]] = MappingProxyType(
    {
        Reason.UNKNOWN_BADGE: MappingProxyType(
            {
                "en": "This badge is not registered (or is blocked): ask the staff.",
                "fr": "Ce badge n'est pas enregistré (ou est bloqué) : adressez-vous à l'équipe.",
            }
        ),
        Reason.SUSPENDED: MappingProxyType(
            {
                "en": "Your account is suspended: please see the staff.",
                "fr": "Votre compte est suspendu : merci de voir l'équipe.",
            }
        ),
        Reason.MEMBERSHIP_EXPIRED: MappingProxyType(
            {
                "en": "Your membership has ended: renew it to use the machines.",
                "fr": "Votre adhésion est terminée : renouvelez-la pour utiliser les machines.",
            }
        ),
        Reason.NOT_CERTIFIED: MappingProxyType(
            {
                "en": "You are not certified on this machine: book a training session.",
                "fr": "Vous n'êtes pas habilité·e sur cette machine : "
                "inscrivez-vous à une formation.",
            }
        ),
        Reason.LEVEL_TOO_LOW: MappingProxyType(
            {
                "en": "Your certification level is too low for this machine.",
                "fr": "Votre niveau d'habilitation est insuffisant pour cette machine.",
            }
        ),
        Reason.CERTIFICATION_EXPIRED: MappingProxyType(
            {
                "en": "Your certification on this machine has expired: ask for a refresher.",
                "fr": "Votre habilitation sur cette machine a expiré : demandez "
                "une remise à niveau.",
            }
        ),
        Reason.STAFF_REQUIRED: MappingProxyType(
            {
                "en": "Supervised use only: a staff member must be present.",
                "fr": "Usage encadré uniquement : un membre de l'équipe doit être présent.",
            }
        ),
        Reason.INSUFFICIENT_CREDIT: MappingProxyType(
            {
                "en": "This machine needs prepaid credit and your balance is empty: top it up.",
                "fr": "Cette machine demande du crédit prépayé et votre solde est épuisé : "
                "rechargez-le.",
            }
        ),
        Reason.IN_USE: MappingProxyType(
            {
                "en": "The machine is in use by another member.",
                "fr": "La machine est utilisée par un·e autre membre.",
            }
        ),
        Reason.SNAPSHOT_TOO_OLD: MappingProxyType(
            {
                "en": "The machine has lost contact with the hub for too long: ask the staff.",
                "fr": "La machine n'a plus de nouvelles du serveur depuis trop longtemps : "
                "prévenez l'équipe.",
            }
        ),
        Reason.NO_SNAPSHOT: MappingProxyType(
            {
                "en": "The machine has not received its access list yet: try again shortly.",
                "fr": "La machine n'a pas encore reçu sa liste d'accès : réessayez "
                "dans un instant.",
            }
        ),
        Reason.OUT_OF_SERVICE: MappingProxyType(
            {
                "en": "The machine is out of service.",
                "fr": "La machine est hors service.",
            }
        ),
        Reason.PERMISSIVE_OFF: MappingProxyType(
            {
                "en": "A safety interlock of the machine ({name}) is off or not reported "
                "(water cooling, fume extraction...): switch it on, then tap again.",
                "fr": "Une sécurité de la machine ({name}) est coupée ou non signalée "
                "(refroidissement, extraction des fumées...) : mettez-la en marche, "
                "puis badgez à nouveau.",
            }
        ),
        Reason.JOURNAL_UNAVAILABLE: MappingProxyType(
            {
                "en": "The machine cannot record sessions right now (storage "
                "problem): ask the staff.",
                "fr": "La machine ne peut pas enregistrer de session pour l'instant (problème de "
                "stockage) : prévenez l'équipe.",
            }
        ),
    }
)

_GRANT_TEXT: Mapping[Reason, Mapping[str, str]] = MappingProxyType(
    {
        Reason.ALLOWED: MappingProxyType(
            {
                "en": "Access granted: the machine is on.",
                "fr": "Accès autorisé : la machine est sous tension.",
            }
        ),
        Reason.BADGE_OUT: MappingProxyType(
            {
                "en": "Session ended: the machine is off.",
                "fr": "Session terminée : la machine est hors tension.",
            }
        ),
    }
)


def explain(reason: Reason | str, lang: str = "en") -> str:
    """Human text for any reason, so callers need not special-case granted taps.

    Takes the wire form too (``permissive_off:water_flow``: the name goes in the text).
    Unknown languages fall back to English rather than failing a log line or a page; an
    unknown reason raises ``ValueError``, as ``Reason()`` does.
    """
    word, _, detail = str(reason).partition(":")
    texts = DENY_REASONS.get(Reason(word)) or _GRANT_TEXT[Reason(word)]
    text = texts.get(lang, texts["en"])
    return text.replace("{name}", detail or "?")


def _canonical(uid: str | None) -> str | None:
    """A uid that cannot be a badge simply matches nothing, instead of crashing the node."""
    if uid is None:
        return None
    try:
        return normalise_uid(uid)
    except ValueError:
        return None


def _deny(reason: Reason, member: MemberGrant | None = None) -> Decision:
    return Decision(Action.DENY, reason, member)


def _badge_out(snapshot: Snapshot | None, uid: str | None, state: MachineState) -> Decision | None:
    """END when the tap comes from whoever opened the session, whatever the snapshot says.

    The member is recognised by id through the snapshot; when the snapshot cannot say
    (none, or the badge is no longer in it) the badge that opened the session is enough.
    """
    if not state.in_session or uid is None:
        return None
    member = snapshot.member_for_badge(uid) if snapshot else None
    if member is not None:
        if member.member_id == state.session_member_id:
            return Decision(Action.END, Reason.BADGE_OUT, member)
        return None
    if uid == _canonical(state.session_badge_uid):
        owner = snapshot.members.get(state.session_member_id or "") if snapshot else None
        return Decision(Action.END, Reason.BADGE_OUT, owner)
    return None


def _utc(t: datetime) -> datetime:
    """Python subtracts and compares datetimes sharing a tzinfo by wall time; UTC has no
    DST, so converting first keeps every comparison about real instants."""
    return t.astimezone(UTC)


def snapshot_stale(
    snapshot: Snapshot, now: datetime, max_age: timedelta, age: timedelta | None
) -> bool:
    """Too old or past its validity; on the snapshot's own (monotonic) age when given.

    Taps are refused on a stale snapshot, and the node stops using the hub's session
    rules from it (``gateway/node/sessions.py``): both read this one rule."""
    if age is None:
        return now - _utc(snapshot.issued_at) > max_age or now >= _utc(snapshot.valid_until)
    return age > max_age or age >= _utc(snapshot.valid_until) - _utc(snapshot.issued_at)


def _local_today(snapshot: Snapshot, now: datetime) -> date:
    """Memberships end on a calendar day of the site, not of UTC."""
    return now.astimezone(ZoneInfo(snapshot.timezone)).date()


def _member_status(member: MemberGrant, snapshot: Snapshot, now: datetime) -> Reason | None:
    # Anything but "active" is refused: a status this code does not know must fail closed.
    if member.status != "active":
        return Reason.SUSPENDED
    if member.membership_end is not None and member.membership_end < _local_today(snapshot, now):
        return Reason.MEMBERSHIP_EXPIRED
    return None


def _certification(
    member: MemberGrant, min_level: int, now: datetime, staff_present: bool
) -> Reason | None:
    if member.level <= Level.NONE:
        return Reason.NOT_CERTIFIED
    if member.cert_expires is not None and _utc(member.cert_expires) <= now:
        return Reason.CERTIFICATION_EXPIRED
    if member.level < min_level:
        return Reason.LEVEL_TOO_LOW
    if member.level == Level.SUPERVISED and not staff_present:
        return Reason.STAFF_REQUIRED
    return None


def decide(
    snapshot: Snapshot | None,
    *,
    badge_uid: str,
    now: datetime,
    staff_present: bool,
    state: MachineState,
    max_snapshot_age: timedelta,
    snapshot_age: timedelta | None = None,
) -> Decision:
    """Answer one tap; the first failing check, in the order of docs/design.md, wins.

    ``snapshot_age``, when given, is the snapshot's age measured by the node on its
    monotonic clock (see ``policies/trusted_time.py``); it replaces ``now - issued_at``
    so that a wall clock moved after receipt changes nothing about freshness.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware: snapshot times are absolute")
    now = _utc(now)
    uid = _canonical(badge_uid)
    ending = _badge_out(snapshot, uid, state)
    if ending is not None:
        return ending
    if snapshot is None:
        return _deny(Reason.NO_SNAPSHOT)
    if snapshot_stale(snapshot, now, max_snapshot_age, snapshot_age):
        return _deny(Reason.SNAPSHOT_TOO_OLD)
    if snapshot.machine.out_of_service:
        return _deny(Reason.OUT_OF_SERVICE)
    member = snapshot.member_for_badge(uid) if uid else None
    if member is None:
        return _deny(Reason.UNKNOWN_BADGE)
    refused = _member_status(member, snapshot, now)
    if refused is None and state.in_session:
        refused = Reason.IN_USE
    if refused is None:
        refused = _certification(member, snapshot.machine.min_level, now, staff_present)
    if (
        refused is None
        and snapshot.machine.requires_credit
        and member.credit_s is not None
        and member.credit_s <= 0
    ):
        refused = Reason.INSUFFICIENT_CREDIT
    if refused is not None:
        return _deny(refused, member)
    if state.interlock is not None:
        # Last: the member may use the machine, and this is what they can fix at once.
        return Decision(Action.DENY, Reason.PERMISSIVE_OFF, member, detail=state.interlock)
    return Decision(Action.START, Reason.ALLOWED, member)
