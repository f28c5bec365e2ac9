"""Permission snapshots as data: what one machine's node may know to decide a tap alone.

The hub builds one :class:`Snapshot` per machine (``gateway.hub``), signs it and
publishes it; the node checks the signature (``gateway.contract.signing``) and the
access policy reads it (``gateway.policies``). The types and their plain-dict form live
here so that the pure policies need neither the keys nor the wire to use one.
``from_dict`` raises ``KeyError``, ``TypeError`` or ``ValueError`` on a malformed dict;
the signing module turns those into a ``malformed`` rejection.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any

from gateway.core.clock import iso, parse_iso
from gateway.core.ids import normalise_uid
from gateway.core.levels import Level

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class MemberGrant:
    """What a snapshot says about one member, for the machine it was made for."""

    member_id: str
    name: str
    category: str
    status: str  # "active" or "suspended"
    membership_end: date | None
    level: int  # on the machine's certification group: 0 none .. 3 trainer
    cert_expires: datetime | None
    staff: bool
    project_id: str | None = None
    # Machines that require prepaid credit: the longest session the member's balance pays
    # for at their tariff, in seconds (None: no limit, e.g. a free tariff).
    credit_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "category": self.category,
            "status": self.status,
            "membership_end": self.membership_end.isoformat() if self.membership_end else None,
            "level": self.level,
            "cert_expires": iso(self.cert_expires) if self.cert_expires else None,
            "staff": self.staff,
            "project_id": self.project_id,
            "credit_s": self.credit_s,
        }

    @classmethod
    def from_dict(cls, member_id: str, d: Mapping[str, Any]) -> MemberGrant:
        end = d.get("membership_end")
        exp = d.get("cert_expires")
        return cls(
            member_id=member_id,
            name=str(d.get("name", "")),
            category=str(d.get("category", "")),
            status=str(d["status"]),
            membership_end=date.fromisoformat(end) if end else None,
            level=int(d["level"]),
            cert_expires=parse_iso(exp, "cert_expires") if exp else None,
            staff=bool(d.get("staff", False)),
            project_id=d.get("project_id"),
            credit_s=None if d.get("credit_s") is None else float(d["credit_s"]),
        )


# The session rules a hub may set for one machine (``machine.session`` in a snapshot), in
# seconds, each with its bounds: (lowest, highest). A rule left out means "the node's own
# setting". The hub's page and the node check the same bounds (docs/mqtt.md).
RULE_BOUNDS: dict[str, tuple[float, float]] = {
    "grace_s": (0.0, 3600.0),  # power kept after a badge-out on an idle machine
    "idle_timeout_s": (1.0, 86400.0),  # a session nobody uses ends after this
    "max_length_s": (1.0, 86400.0),  # longest session
    "cooldown_s": (0.0, 7200.0),  # after a job that outlived the badge-out
    "hold_s": (0.0, 600.0),  # at a limit, between asking to hold and power off
    "progress_every_s": (1.0, 600.0),  # job progress events at most this often
}
RULE_FLAGS = ("never_cut_busy",)


def _number_text(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def describe_rule(name: str) -> str:
    """How docs/mqtt.md states a rule's value (a test compares the two)."""
    if name in RULE_FLAGS:
        return "true or false; optional"
    lo, hi = RULE_BOUNDS[name]
    return f"number from {_number_text(lo)} to {_number_text(hi)}; optional"


@dataclass(frozen=True)
class MachineRules:
    """Session rules for one machine, each None when this layer does not set it.

    The hub's layer travels in the snapshot (``from_dict`` checks types and bounds, so a
    crafted or buggy value is a ``malformed`` snapshot, never a rule); the node builds
    its own layer from its file's ``session:`` section, where 0 for ``idle_timeout_s``
    or ``max_length_s`` still means never / no limit. ``policies.session_rules``
    resolves the layers.
    """

    grace_s: float | None = None
    idle_timeout_s: float | None = None
    max_length_s: float | None = None
    cooldown_s: float | None = None
    hold_s: float | None = None
    progress_every_s: float | None = None
    never_cut_busy: bool | None = None

    @property
    def empty(self) -> bool:
        return all(getattr(self, name) is None for name in (*RULE_BOUNDS, *RULE_FLAGS))

    def to_dict(self) -> dict[str, Any]:
        """Only the rules this layer sets."""
        out: dict[str, Any] = {}
        for name in (*RULE_BOUNDS, *RULE_FLAGS):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out

    @classmethod
    def from_dict(cls, d: Any) -> MachineRules:
        """ValueError naming the rule when a value is of the wrong type or out of bounds;
        a key this code does not know is ignored (a newer hub may add rules)."""
        if not isinstance(d, Mapping):
            raise ValueError(f"machine.session should be an object, got {type(d).__name__}")
        values: dict[str, Any] = {}
        for name, (lo, hi) in RULE_BOUNDS.items():
            value = d.get(name)
            if value is None:
                continue
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not lo <= float(value) <= hi  # NaN fails this too
            ):
                raise ValueError(f"machine.session.{name} should be {describe_rule(name)}")
            values[name] = float(value)
        for name in RULE_FLAGS:
            value = d.get(name)
            if value is None:
                continue
            if not isinstance(value, bool):
                raise ValueError(f"machine.session.{name} should be true or false")
            values[name] = value
        return cls(**values)


@dataclass(frozen=True)
class MachineInfo:
    id: str
    name: str
    kind: str  # laser, cnc, printer, embroidery, other
    group: str  # certification group, e.g. "laser" shared by two lasers
    min_level: int = int(Level.AUTONOMOUS)
    out_of_service: bool = False
    requires_credit: bool = False  # taps need a positive prepaid balance
    certify_level: int = int(Level.AUTONOMOUS)  # the level a trainer grants at this machine
    # Why the machine is out of service, as the fabmanager wrote it ("" when none): the
    # node says it with the denial, so a member knows whether to wait or to ask.
    out_of_service_reason: str = ""
    # The session rules the hub sets for this machine (empty: the node's own settings).
    session: MachineRules = field(default_factory=MachineRules)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "kind": self.kind,
            "group": self.group,
            "min_level": self.min_level,
            "out_of_service": self.out_of_service,
            "requires_credit": self.requires_credit,
            "certify_level": self.certify_level,
        }
        if self.out_of_service_reason:
            d["out_of_service_reason"] = self.out_of_service_reason
        if not self.session.empty:
            d["session"] = self.session.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> MachineInfo:
        return cls(
            id=str(d["id"]),
            name=str(d.get("name", d["id"])),
            kind=str(d["kind"]),
            group=str(d["group"]),
            min_level=int(d.get("min_level", cls.min_level)),
            out_of_service=bool(d.get("out_of_service", False)),
            requires_credit=bool(d.get("requires_credit", False)),
            certify_level=int(d.get("certify_level", cls.certify_level)),
            out_of_service_reason=str(d.get("out_of_service_reason") or "")[:200],
            session=(
                MachineRules() if d.get("session") is None else MachineRules.from_dict(d["session"])
            ),
        )


# Weekly opening hours: weekday index (0 = Monday) -> sorted (open, close) local times.
OpeningHours = Mapping[int, tuple[tuple[time, time], ...]]


def opening_hours_to_dict(hours: OpeningHours) -> dict[str, list[str]]:
    return {WEEKDAYS[d]: [f"{a:%H:%M}-{b:%H:%M}" for a, b in hours.get(d, ())] for d in range(7)}


def parse_opening_hours(d: Mapping[str, Any]) -> dict[int, tuple[tuple[time, time], ...]]:
    """``{"tue": ["18:00-22:00"], ...}`` -> weekday index -> slots. ValueError if malformed.

    A slot ending at ``24:00`` is written ``00:00`` on the close side and means midnight.
    """
    out: dict[int, tuple[tuple[time, time], ...]] = {}
    for key, slots in d.items():
        if key not in WEEKDAYS:
            raise ValueError(f"unknown weekday {key!r} (expected one of {', '.join(WEEKDAYS)})")
        if not isinstance(slots, list):
            raise ValueError(f"{key}: expected a list of 'HH:MM-HH:MM' slots")
        parsed = []
        for slot in slots:
            if not isinstance(slot, str) or slot.count("-") != 1:
                raise ValueError(f"{key}: {slot!r} is not 'HH:MM-HH:MM'")
            a, b = (time.fromisoformat(p.strip()) for p in slot.split("-"))
            if b != time(0) and b <= a:
                raise ValueError(f"{key}: slot {slot!r} closes before it opens")
            parsed.append((a, b))
        out[WEEKDAYS.index(key)] = tuple(sorted(parsed))
    return out


@dataclass(frozen=True)
class Snapshot:
    site: str
    version: int
    issued_at: datetime
    valid_until: datetime
    machine: MachineInfo
    timezone: str
    badges: Mapping[str, str] = field(default_factory=dict)  # normalised uid -> member id
    members: Mapping[str, MemberGrant] = field(default_factory=dict)
    staff_present_until: datetime | None = None
    opening_hours: OpeningHours = field(default_factory=dict)
    # Orders snapshots before ``version`` does; 0 for a hub that predates epochs.
    epoch: int = 0

    @property
    def order(self) -> tuple[int, int]:
        return (self.epoch, self.version)

    def member_for_badge(self, uid: str) -> MemberGrant | None:
        member_id = self.badges.get(normalise_uid(uid))
        return self.members.get(member_id) if member_id else None

    def to_dict(self) -> dict[str, Any]:
        """The signed payload's fields (the signer adds the contract version ``v``)."""
        return {
            "site": self.site,
            "epoch": self.epoch,
            "version": self.version,
            "issued_at": iso(self.issued_at),
            "valid_until": iso(self.valid_until),
            "machine": self.machine.to_dict(),
            "timezone": self.timezone,
            "badges": dict(self.badges),
            "members": {m: g.to_dict() for m, g in self.members.items()},
            "staff_present_until": (
                iso(self.staff_present_until) if self.staff_present_until else None
            ),
            "opening_hours": opening_hours_to_dict(self.opening_hours),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Snapshot:
        spu = d.get("staff_present_until")
        epoch = d.get("epoch", 0)
        if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
            raise ValueError(f"epoch should be an integer >= 0, got {epoch!r}")
        return cls(
            site=str(d["site"]),
            version=int(d["version"]),
            epoch=epoch,
            issued_at=parse_iso(d["issued_at"], "issued_at"),
            valid_until=parse_iso(d["valid_until"], "valid_until"),
            machine=MachineInfo.from_dict(d["machine"]),
            timezone=str(d["timezone"]),
            badges={normalise_uid(k): str(v) for k, v in d.get("badges", {}).items()},
            members={k: MemberGrant.from_dict(k, v) for k, v in d.get("members", {}).items()},
            staff_present_until=parse_iso(spu, "staff_present_until") if spu else None,
            opening_hours=parse_opening_hours(d.get("opening_hours", {})),
        )
