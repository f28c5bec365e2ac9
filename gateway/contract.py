"""The MQTT contract between nodes and the hub: topics, envelopes, acknowledgements.

Everything that crosses the broker is built and parsed here, so that a node and a hub
of the same version cannot disagree on a field name, and so that a malformed payload
is turned into one clear :class:`ContractError` at the edge instead of a KeyError deep
inside the ingest. ``docs/mqtt.md`` documents the same contract for humans; keep both
in step.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

CONTRACT_VERSION = 1

# Event types a node emits. The hub ignores (but stores and acknowledges) types it does
# not know, so a newer node never blocks its journal on an older hub.
EV_TAP = "tap"
EV_SESSION_STARTED = "session.started"
EV_SESSION_ENDED = "session.ended"
EV_STAFF_PRESENCE = "staff.presence"
EV_NODE_BOOT = "node.boot"
EV_SNAPSHOT_REJECTED = "snapshot.rejected"
EV_JOB = "job"
EV_BADGE_ENROLLED = "badge.enrolled"
EV_CERT_GRANTED = "certification.granted"
EVENT_TYPES = frozenset(
    {EV_TAP, EV_SESSION_STARTED, EV_SESSION_ENDED, EV_STAFF_PRESENCE, EV_NODE_BOOT,
     EV_SNAPSHOT_REJECTED, EV_JOB, EV_BADGE_ENROLLED, EV_CERT_GRANTED}
)


class ContractError(ValueError):
    """A payload that does not follow the contract; the message says what is wrong."""


def default_prefix(site: str) -> str:
    return f"fablab/{site}/"


@dataclass(frozen=True)
class Topics:
    """Topic names under one site prefix (which always ends with ``/``)."""

    prefix: str

    def __post_init__(self) -> None:
        if not self.prefix.endswith("/"):
            object.__setattr__(self, "prefix", self.prefix + "/")

    def node_status(self, node: str) -> str:
        return f"{self.prefix}node/{node}/status"

    def node_events(self, node: str) -> str:
        return f"{self.prefix}node/{node}/event"

    def node_ack(self, node: str) -> str:
        return f"{self.prefix}node/{node}/ack"

    def snapshot(self, machine: str) -> str:
        return f"{self.prefix}machine/{machine}/snapshot"

    def sim_tap(self, node: str) -> str:
        return f"{self.prefix}sim/{node}/tap"

    def sim_job(self, node: str) -> str:
        return f"{self.prefix}sim/{node}/job"

    @property
    def enrolment(self) -> str:
        return f"{self.prefix}hub/enrolment"

    @property
    def hub_status(self) -> str:
        return f"{self.prefix}hub/status"

    @property
    def all_node_events(self) -> str:
        return f"{self.prefix}node/+/event"

    @property
    def all_node_status(self) -> str:
        return f"{self.prefix}node/+/status"

    def node_from_topic(self, topic: str) -> str:
        """``<prefix>node/<node>/...`` -> ``<node>``; ContractError for anything else."""
        if not topic.startswith(self.prefix + "node/"):
            raise ContractError(f"topic {topic!r} is not under {self.prefix}node/")
        rest = topic[len(self.prefix) + len("node/"):]
        node, _, _ = rest.partition("/")
        if not node:
            raise ContractError(f"topic {topic!r} names no node")
        return node


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(dt: datetime) -> str:
    """UTC ISO 8601 with milliseconds and a ``Z``: sortable as text in SQLite."""
    if dt.tzinfo is None:
        raise ValueError("naive datetime: every wall time in the contract is timezone-aware")
    return dt.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso(value: Any, what: str = "time") -> datetime:
    if not isinstance(value, str):
        raise ContractError(f"{what}: expected an ISO 8601 string, got {type(value).__name__}")
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ContractError(f"{what}: {value!r} is not an ISO 8601 time") from exc
    if dt.tzinfo is None:
        raise ContractError(f"{what}: {value!r} has no timezone")
    return dt


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), sort_keys=True).encode()


def loads_object(payload: bytes | str, what: str) -> dict[str, Any]:
    try:
        obj = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ContractError(f"{what}: not valid JSON ({exc})") from exc
    if not isinstance(obj, dict):
        raise ContractError(f"{what}: expected a JSON object, got {type(obj).__name__}")
    return obj


def _require(obj: dict[str, Any], key: str, kind: type | tuple[type, ...], what: str) -> Any:
    if key not in obj:
        raise ContractError(f"{what}: missing field {key!r}")
    value = obj[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise ContractError(f"{what}: field {key!r} should be {names}, got {value!r}")
    return value


@dataclass(frozen=True)
class Envelope:
    """One node event. ``id`` makes ingest idempotent; ``seq`` orders a node's events."""

    id: str
    node: str
    seq: int
    boot: str
    time: str
    type: str
    data: dict[str, Any] = field(default_factory=dict)
    v: int = CONTRACT_VERSION

    @classmethod
    def new(cls, *, node: str, seq: int, boot: str, type: str, data: dict[str, Any],
            time: datetime | None = None) -> Envelope:
        return cls(id=str(uuid.uuid4()), node=node, seq=seq, boot=boot,
                   time=iso(time or utcnow()), type=type, data=data)

    def to_dict(self) -> dict[str, Any]:
        return {"v": self.v, "id": self.id, "node": self.node, "seq": self.seq,
                "boot": self.boot, "time": self.time, "type": self.type, "data": self.data}

    def encode(self) -> bytes:
        return dumps(self.to_dict())

    @classmethod
    def decode(cls, payload: bytes | str) -> Envelope:
        what = "event envelope"
        obj = loads_object(payload, what)
        v = _require(obj, "v", int, what)
        if v != CONTRACT_VERSION:
            raise ContractError(f"{what}: unsupported contract version {v}")
        env = cls(
            v=v,
            id=_require(obj, "id", str, what),
            node=_require(obj, "node", str, what),
            seq=_require(obj, "seq", int, what),
            boot=_require(obj, "boot", str, what),
            time=_require(obj, "time", str, what),
            type=_require(obj, "type", str, what),
            data=_require(obj, "data", dict, what),
        )
        if not env.id or not env.node or not env.type:
            raise ContractError(f"{what}: id, node and type must not be empty")
        parse_iso(env.time, f"{what} time")
        if env.seq < 1:
            raise ContractError(f"{what}: seq must be >= 1, got {env.seq}")
        return env


def encode_ack(ids: list[str]) -> bytes:
    return dumps({"v": CONTRACT_VERSION, "ids": ids})


def decode_ack(payload: bytes | str) -> list[str]:
    obj = loads_object(payload, "acknowledgement")
    ids = _require(obj, "ids", list, "acknowledgement")
    if not all(isinstance(i, str) for i in ids):
        raise ContractError("acknowledgement: every id must be a string")
    return ids


def encode_status(*, node: str, machine: str, online: bool, relay: bool = False,
                  session: dict[str, Any] | None = None, snapshot_version: int | None = None,
                  boot: str | None = None, state: str | None = None,
                  activity: str = "unknown", detail: str = "",
                  job: dict[str, Any] | None = None, ending: bool = False,
                  mode: str | None = None, heartbeat_s: float | None = None,
                  clock_behind: bool = False, journal: str = "ok",
                  backlog: int | None = None) -> bytes:
    # heartbeat_s: the node republishes its status this often (the hub calls a node
    # silent for three periods offline); clock_behind: its wall clock is behind the
    # hub-signed time; journal: "ok" or "unavailable"; backlog: events not yet acked.
    return dumps({"v": CONTRACT_VERSION, "node": node, "machine": machine, "online": online,
                  "relay": relay, "session": session, "snapshot_version": snapshot_version,
                  "boot": boot, "state": state, "activity": activity, "detail": detail,
                  "job": job, "ending": ending, "mode": mode, "heartbeat_s": heartbeat_s,
                  "clock_behind": clock_behind, "journal": journal, "backlog": backlog,
                  "time": iso(utcnow())})


def decode_status(payload: bytes | str) -> dict[str, Any]:
    what = "node status"
    obj = loads_object(payload, what)
    _require(obj, "node", str, what)
    _require(obj, "online", bool, what)
    session = obj.get("session")
    if session is not None and not isinstance(session, dict):
        raise ContractError(f"{what}: session should be an object or null")
    return obj


def encode_sim_tap(uid: str, tap_id: str | None = None) -> bytes:
    return dumps({"v": CONTRACT_VERSION, "uid": uid, "tap_id": tap_id or str(uuid.uuid4())})


def decode_sim_tap(payload: bytes | str) -> tuple[str, str]:
    obj = loads_object(payload, "simulated tap")
    uid = _require(obj, "uid", str, "simulated tap")
    tap_id = obj.get("tap_id") or ""
    if not isinstance(tap_id, str):
        raise ContractError("simulated tap: tap_id should be a string")
    return uid, tap_id


def encode_sim_job(name: str, seconds: float) -> bytes:
    return dumps({"v": CONTRACT_VERSION, "name": name, "seconds": seconds})


def decode_sim_job(payload: bytes | str) -> tuple[str, float]:
    obj = loads_object(payload, "simulated job")
    name = _require(obj, "name", str, "simulated job")
    seconds = _require(obj, "seconds", (int, float), "simulated job")
    if not 0 < seconds <= 24 * 3600:
        raise ContractError(f"simulated job: seconds should be in (0, 86400], got {seconds}")
    return name, float(seconds)


def encode_enrolment(request_id: str | None, member_id: str | None = None,
                     until: str | None = None) -> bytes:
    """The hub's open enrolment window (retained); a null request_id closes it."""
    return dumps({"v": CONTRACT_VERSION, "request_id": request_id, "member_id": member_id,
                  "until": until})
