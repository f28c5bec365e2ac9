"""Typed event data: one frozen type per event type a node emits, with its bounds.

``SessionEnded(...).to_data()`` is the ``data`` object of the envelope, exactly as the
node has always sent it; ``decode_event(type, data)`` checks a received one and returns
the typed value, or ``None`` for a type this hub does not know (stored and acknowledged
as it is, so a newer node never blocks its journal on an older hub).

The enumerations are closed: a value outside them is a :class:`ContractError`. Tap
reasons are the access policy's :class:`~gateway.policies.access.Reason` values (read
when first needed, so a reason added there is accepted here without a change) plus the
two taps that are not about power.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, ClassVar, Self

from gateway.contract.core import ContractError
from gateway.contract.fields import Flag, Id, Integer, Message, Number, OneOf, Text, Time, Uid, wire
from gateway.core.levels import CERTIFY_LEVELS
from gateway.policies.access import Reason
from gateway.policies.material import MAX_GRAMS
from gateway.policies.permissives import NAME_PATTERN, PERMISSIVE_OFF

EV_TAP = "tap"
EV_SESSION_STARTED = "session.started"
EV_SESSION_ENDED = "session.ended"
EV_STAFF_PRESENCE = "staff.presence"
EV_NODE_BOOT = "node.boot"
EV_SNAPSHOT_REJECTED = "snapshot.rejected"
EV_JOB = "job"
EV_BADGE_ENROLLED = "badge.enrolled"
EV_CERT_GRANTED = "certification.granted"

# The longest session (and job) the contract accepts: longer than any print or
# embroidery a fablab runs unattended. A longer duration is a broken clock or a lie, and
# it would bill thousands of minutes. Session rules with a maximum length stop far
# earlier (3 h on a laser, 4 h on a CNC).
MAX_SESSION_S = 7 * 24 * 3600
# Estimates of the time left can be wild (a slicer's guess on a huge file): a year.
MAX_TIME_LEFT_S = 366 * 24 * 3600
MAX_NAME = 1024  # file names with their folders (OctoPrint), member names
MAX_DETAIL = 4096  # controller messages, exception texts

TAP_ACTIONS = ("start", "end", "deny", "certify", "enrol")
# The reasons of the two taps that are not about power (see gateway/node/certify.py).
SPECIAL_TAP_REASONS = ("certified", "enrolment")
END_REASONS = (
    "badge_out",
    "job_finished",
    "idle_timeout",
    "max_length",
    "credit_exhausted",
    "shutdown",
    "node_restart",
    "relay_error",
    "journal_error",
    "node_error",
    PERMISSIVE_OFF,
)
JOB_EVENTS = ("started", "progress", "paused", "resumed", "finished", "failed", "cancelled")
SNAPSHOT_REJECT_REASONS = ("unsigned", "forged", "older", "expired", "malformed", "wrong_machine")


@cache
def tap_reasons() -> tuple[str, ...]:
    """Every access-policy reason, then the special taps' reasons."""
    return (*(str(r) for r in Reason), *SPECIAL_TAP_REASONS)


@dataclass(frozen=True, kw_only=True)
class EventData(Message):
    """Base of the event types: ``TYPE`` is the envelope's ``type``."""

    TYPE: ClassVar[str] = ""

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Self:
        return cls.from_dict(data)

    def to_data(self) -> dict[str, Any]:
        return self.to_dict()


@dataclass(frozen=True, kw_only=True)
class Tap(EventData):
    """A badge tap and what the node answered."""

    TYPE: ClassVar[str] = EV_TAP
    WHAT: ClassVar[str] = "tap data"
    uid: str = wire(Uid())
    member_id: str | None = wire(Id(), nullable=True)
    action: str = wire(OneOf(TAP_ACTIONS))
    reason: str = wire(
        OneOf(
            tap_reasons,
            label="a tap reason (listed below)",
            qualified={PERMISSIVE_OFF: NAME_PATTERN},
        )
    )
    tap_id: str | None = wire(Text(64), nullable=True, default=None)
    certify_mode: bool = wire(Flag(), default=False)


@dataclass(frozen=True, kw_only=True)
class SessionStarted(EventData):
    TYPE: ClassVar[str] = EV_SESSION_STARTED
    WHAT: ClassVar[str] = "session.started data"
    session_id: str = wire(Id())
    machine: str = wire(Id())
    member_id: str | None = wire(Id(), nullable=True)
    badge_uid: str | None = wire(Uid(), nullable=True)
    project_id: str | None = wire(Id(), nullable=True, default=None)
    started_at: datetime = wire(Time())
    staff_present: bool = wire(Flag(), default=False)


_SECONDS = Number(0, MAX_SESSION_S)
_MINUTES = Integer(0, MAX_SESSION_S // 60 + 1)


@dataclass(frozen=True, kw_only=True)
class SessionEnded(EventData):
    """A closed session. ``billable_minutes`` is the node's figure; the hub recomputes
    it from ``duration_s``. The busy/idle split is null when the node follows no
    controller."""

    TYPE: ClassVar[str] = EV_SESSION_ENDED
    WHAT: ClassVar[str] = "session.ended data"
    session_id: str = wire(Id())
    machine: str = wire(Id())
    member_id: str | None = wire(Id(), nullable=True)
    badge_uid: str | None = wire(Uid(), nullable=True)
    project_id: str | None = wire(Id(), nullable=True, default=None)
    started_at: datetime = wire(Time())
    ended_at: datetime = wire(Time())
    duration_s: float = wire(_SECONDS)
    billable_minutes: int | None = wire(_MINUTES, nullable=True, default=None)
    end_reason: str = wire(OneOf(END_REASONS))
    busy_s: float | None = wire(_SECONDS, nullable=True, default=None)
    idle_s: float | None = wire(_SECONDS, nullable=True, default=None)
    busy_minutes: int | None = wire(_MINUTES, nullable=True, default=None)
    idle_minutes: int | None = wire(_MINUTES, nullable=True, default=None)
    jobs: int = wire(Integer(0, 100_000), default=0)
    # Material the session's jobs used (a printer's filament), weighed by the node; null
    # when its machine reports none. Billed at the tariff's material_per_gram.
    material_g: float | None = wire(Number(0, MAX_GRAMS), nullable=True, default=None)


@dataclass(frozen=True, kw_only=True)
class Job(EventData):
    """One step of a job the machine runs; it belongs to the session that started it."""

    TYPE: ClassVar[str] = EV_JOB
    WHAT: ClassVar[str] = "job data"
    job_id: str = wire(Id())
    event: str = wire(OneOf(JOB_EVENTS))
    session_id: str | None = wire(Id(), nullable=True, default=None)
    machine: str = wire(Id())
    member_id: str | None = wire(Id(), nullable=True, default=None)
    project_id: str | None = wire(Id(), nullable=True, default=None)
    name: str | None = wire(Text(MAX_NAME), nullable=True, default=None)
    progress: float | None = wire(Number(0, 100), nullable=True, default=None)
    time_left_s: float | None = wire(Number(0, MAX_TIME_LEFT_S), nullable=True, default=None)
    material_g: float | None = wire(Number(0, MAX_GRAMS), nullable=True, default=None)
    detail: str = wire(Text(MAX_DETAIL), default="")


@dataclass(frozen=True, kw_only=True)
class StaffPresence(EventData):
    TYPE: ClassVar[str] = EV_STAFF_PRESENCE
    WHAT: ClassVar[str] = "staff.presence data"
    member_id: str = wire(Id())
    present: bool = wire(Flag())
    until: datetime | None = wire(Time(), nullable=True, default=None)


@dataclass(frozen=True, kw_only=True)
class BadgeEnrolled(EventData):
    """An unknown badge tapped while the hub's enrolment window was open."""

    TYPE: ClassVar[str] = EV_BADGE_ENROLLED
    WHAT: ClassVar[str] = "badge.enrolled data"
    request_id: str = wire(Id())
    uid: str = wire(Uid())
    member_id: str | None = wire(Id(), nullable=True, default=None)


@dataclass(frozen=True, kw_only=True)
class CertificationGranted(EventData):
    """A trainer certified a member at the machine (certify mode)."""

    TYPE: ClassVar[str] = EV_CERT_GRANTED
    WHAT: ClassVar[str] = "certification.granted data"
    trainer_id: str = wire(Id())
    member_id: str = wire(Id())
    group: str = wire(Id())
    level: int = wire(Integer(int(min(CERTIFY_LEVELS)), int(max(CERTIFY_LEVELS))))
    machine: str = wire(Id())


@dataclass(frozen=True, kw_only=True)
class NodeBoot(EventData):
    TYPE: ClassVar[str] = EV_NODE_BOOT
    WHAT: ClassVar[str] = "node.boot data"
    version: str = wire(Text(64))
    recovered_session_id: str | None = wire(Id(), nullable=True, default=None)
    relay: bool = wire(Flag(), default=False)


@dataclass(frozen=True, kw_only=True)
class SnapshotRejectedEvent(EventData):
    TYPE: ClassVar[str] = EV_SNAPSHOT_REJECTED
    WHAT: ClassVar[str] = "snapshot.rejected data"
    reason: str = wire(OneOf(SNAPSHOT_REJECT_REASONS))
    detail: str = wire(Text(MAX_DETAIL), default="")


EVENT_CLASSES: dict[str, type[EventData]] = {
    cls.TYPE: cls
    for cls in (
        Tap,
        SessionStarted,
        SessionEnded,
        Job,
        StaffPresence,
        BadgeEnrolled,
        CertificationGranted,
        NodeBoot,
        SnapshotRejectedEvent,
    )
}
EVENT_TYPES = frozenset(EVENT_CLASSES)


def decode_event(type_: str, data: dict[str, Any]) -> EventData | None:
    """The typed data of a known event type; None for a type this hub does not know."""
    cls = EVENT_CLASSES.get(type_)
    if cls is None:
        return None
    if not isinstance(data, dict):
        raise ContractError(f"{type_} data: expected an object, got {type(data).__name__}")
    return cls.from_data(data)
