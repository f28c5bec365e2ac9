"""Permission snapshots: what one machine's node may know to decide a tap on its own.

The hub builds one snapshot per machine, signs it with its Ed25519 key and publishes it
retained. A node holds only the hub's public key: it accepts a snapshot only if the
signature holds, it is newer than the one it has - by ``(epoch, version)``: the hub moves
its epoch forward at every start, so a hub restored from a backup (older versions) is
still believed - and the validity end is still ahead. The signature covers the exact
payload bytes (base64 in the wire message), so no JSON canonicalisation has to agree
between hub and node.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from gateway.contract import CONTRACT_VERSION, ContractError, dumps, iso, loads_object, parse_iso
from gateway.uids import normalise_uid

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class SnapshotRejected(ContractError):
    """A snapshot the node must not use; ``reason`` is one word for logs and events."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"snapshot rejected ({reason}): {detail}")
        self.reason = reason
        self.detail = detail


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
            "name": self.name, "category": self.category, "status": self.status,
            "membership_end": self.membership_end.isoformat() if self.membership_end else None,
            "level": self.level,
            "cert_expires": iso(self.cert_expires) if self.cert_expires else None,
            "staff": self.staff, "project_id": self.project_id, "credit_s": self.credit_s,
        }

    @classmethod
    def from_dict(cls, member_id: str, d: Mapping[str, Any]) -> MemberGrant:
        end = d.get("membership_end")
        exp = d.get("cert_expires")
        return cls(
            member_id=member_id, name=str(d.get("name", "")), category=str(d.get("category", "")),
            status=str(d["status"]),
            membership_end=date.fromisoformat(end) if end else None,
            level=int(d["level"]),
            cert_expires=parse_iso(exp, "cert_expires") if exp else None,
            staff=bool(d.get("staff", False)), project_id=d.get("project_id"),
            credit_s=None if d.get("credit_s") is None else float(d["credit_s"]),
        )


@dataclass(frozen=True)
class MachineInfo:
    id: str
    name: str
    kind: str  # laser, cnc, printer, embroidery, other
    group: str  # certification group, e.g. "laser" shared by two lasers
    min_level: int = 2
    out_of_service: bool = False
    requires_credit: bool = False  # taps need a positive prepaid balance
    certify_level: int = 2  # the level a trainer grants at this machine

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "kind": self.kind, "group": self.group,
                "min_level": self.min_level, "out_of_service": self.out_of_service,
                "requires_credit": self.requires_credit, "certify_level": self.certify_level}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> MachineInfo:
        return cls(id=str(d["id"]), name=str(d.get("name", d["id"])), kind=str(d["kind"]),
                   group=str(d["group"]), min_level=int(d.get("min_level", 2)),
                   out_of_service=bool(d.get("out_of_service", False)),
                   requires_credit=bool(d.get("requires_credit", False)),
                   certify_level=int(d.get("certify_level", 2)))


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
        return {
            "v": CONTRACT_VERSION, "site": self.site, "epoch": self.epoch,
            "version": self.version,
            "issued_at": iso(self.issued_at), "valid_until": iso(self.valid_until),
            "machine": self.machine.to_dict(), "timezone": self.timezone,
            "badges": dict(self.badges),
            "members": {m: g.to_dict() for m, g in self.members.items()},
            "staff_present_until": (iso(self.staff_present_until)
                                    if self.staff_present_until else None),
            "opening_hours": opening_hours_to_dict(self.opening_hours),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Snapshot:
        try:
            spu = d.get("staff_present_until")
            epoch = d.get("epoch", 0)
            if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
                raise ValueError(f"epoch should be an integer >= 0, got {epoch!r}")
            return cls(
                site=str(d["site"]), version=int(d["version"]), epoch=epoch,
                issued_at=parse_iso(d["issued_at"], "issued_at"),
                valid_until=parse_iso(d["valid_until"], "valid_until"),
                machine=MachineInfo.from_dict(d["machine"]), timezone=str(d["timezone"]),
                badges={normalise_uid(k): str(v) for k, v in d.get("badges", {}).items()},
                members={k: MemberGrant.from_dict(k, v) for k, v in d.get("members", {}).items()},
                staff_present_until=parse_iso(spu, "staff_present_until") if spu else None,
                opening_hours=parse_opening_hours(d.get("opening_hours", {})),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise SnapshotRejected("malformed", f"{type(exc).__name__}: {exc}") from exc


def generate_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def write_keypair(private_path: Path, public_path: Path) -> None:
    """Create the hub's signing key (mode 0600) and the public key nodes are given."""
    key = generate_key()
    private_path.parent.mkdir(parents=True, exist_ok=True)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    private_path.touch(mode=0o600, exist_ok=True)
    private_path.write_bytes(pem)
    public_path.write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))


def load_private_key(path: Path) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path}: not an Ed25519 private key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(Path(path).read_bytes())
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"{path}: not an Ed25519 public key")
    return key


def sign_snapshot(snapshot: Snapshot, key: Ed25519PrivateKey) -> bytes:
    """The wire message: ``{"v", "alg", "payload": b64(json), "sig": b64(ed25519)}``."""
    payload = dumps(snapshot.to_dict())
    return dumps({
        "v": CONTRACT_VERSION, "alg": "Ed25519",
        "payload": base64.b64encode(payload).decode(),
        "sig": base64.b64encode(key.sign(payload)).decode(),
    })


# Bounds on a snapshot message, checked before any parsing: anyone who may publish on
# the snapshot topic could otherwise make a node spend its memory or its stack. A
# snapshot of a large lab (a thousand members with badges) is about 400 KB; 4 MiB leaves
# room to grow. The real structure is 4 levels deep; 32 rejects only crafted input,
# long before the JSON decoder would hit Python's recursion limit.
MAX_SNAPSHOT_BYTES = 4 * 1024 * 1024
MAX_SNAPSHOT_DEPTH = 32
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def _json_depth(data: bytes) -> int:
    """Deepest nesting of ``[]``/``{}`` outside strings, without recursion."""
    depth = deepest = 0
    for c in _JSON_STRING.sub(b"", data).translate(None, _NOT_BRACKETS):
        depth += 1 if c in b"[{" else -1
        deepest = max(deepest, depth)
    return deepest


def _bounded_object(data: bytes | str, what: str) -> dict[str, Any]:
    """A JSON object within the size and depth bounds, else ``SnapshotRejected``."""
    raw = data.encode() if isinstance(data, str) else bytes(data)
    if len(raw) > MAX_SNAPSHOT_BYTES:
        raise SnapshotRejected("malformed", f"{what} is {len(raw)} bytes, over the "
                               f"{MAX_SNAPSHOT_BYTES}-byte limit")
    if _json_depth(raw) > MAX_SNAPSHOT_DEPTH:
        raise SnapshotRejected("malformed", f"{what} is nested deeper than "
                               f"{MAX_SNAPSHOT_DEPTH} levels")
    try:
        return loads_object(raw, what)
    except ContractError as exc:
        raise SnapshotRejected("malformed", str(exc)) from exc
    except RecursionError as exc:  # belt and braces: the depth check should prevent it
        raise SnapshotRejected("malformed", f"{what} is nested too deeply") from exc


def verify_snapshot(message: bytes | str, key: Ed25519PublicKey, *, now: datetime,
                    machine_id: str, current_version: int | None = None,
                    current_epoch: int | None = None) -> Snapshot:
    """Return the snapshot in ``message`` or raise :class:`SnapshotRejected` saying why.

    ``current_epoch`` and ``current_version`` describe the snapshot the node holds; a new
    one must be later by ``(epoch, version)``: a higher epoch wins whatever its version.
    A held snapshot without an epoch counts as epoch 0.
    """
    outer = _bounded_object(message, "snapshot message")
    if not all(isinstance(outer.get(k), str) for k in ("alg", "payload", "sig")
               if k in outer):
        raise SnapshotRejected("malformed", "alg, payload and sig must be strings")
    if "sig" not in outer or not outer.get("sig"):
        raise SnapshotRejected("unsigned", "the message carries no signature")
    if outer.get("alg") != "Ed25519":
        raise SnapshotRejected("unsigned", f"unsupported algorithm {outer.get('alg')!r}")
    try:
        payload = base64.b64decode(outer["payload"], validate=True)
        sig = base64.b64decode(outer["sig"], validate=True)
    except (KeyError, TypeError, binascii.Error) as exc:
        raise SnapshotRejected("malformed", f"payload or signature is not base64: {exc}") from exc
    try:
        key.verify(sig, payload)
    except InvalidSignature as exc:
        raise SnapshotRejected("forged", "the signature does not match the hub's key") from exc
    body = _bounded_object(payload, "signed payload")
    snap = Snapshot.from_dict(body)
    if snap.machine.id != machine_id:
        raise SnapshotRejected("wrong_machine",
                               f"made for machine {snap.machine.id!r}, this node is {machine_id!r}")
    if current_version is not None:
        held = (current_epoch or 0, current_version)
        if snap.order <= held:
            raise SnapshotRejected(
                "older", f"epoch {snap.epoch} version {snap.version} is not newer than the "
                f"held epoch {held[0]} version {held[1]}")
    if snap.valid_until <= now:
        raise SnapshotRejected("expired", f"valid until {iso(snap.valid_until)}, now {iso(now)}")
    return snap


def snapshot_age(snapshot: Snapshot, now: datetime) -> timedelta:
    return now - snapshot.issued_at
