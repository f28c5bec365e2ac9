"""Topics, the event envelope, acknowledgements and the hub's small messages.

Everything that crosses the broker is built and parsed in this package, so that a node
and a hub of the same version cannot disagree on a field name, and so that a malformed
payload is turned into one clear :class:`ContractError` at the edge instead of a KeyError
deep inside the ingest. ``docs/mqtt.md`` documents the same contract for humans; a test
keeps both in step.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from gateway.contract.core import (
    CONTRACT_VERSION,
    DEFAULT_MAX_DEPTH,
    MAX_NODE_MESSAGE_BYTES,
    MAX_NODE_MESSAGE_DEPTH,
    ContractError,
    dumps,
    loads_object,
    nesting_exceeds,
)
from gateway.contract.events import EventData, decode_event
from gateway.contract.fields import Id, Integer, Time, Token
from gateway.core.clock import iso, utcnow


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
        rest = topic[len(self.prefix) + len("node/") :]
        node, _, _ = rest.partition("/")
        if not node:
            raise ContractError(f"topic {topic!r} names no node")
        return node


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
    def new(
        cls,
        *,
        node: str,
        seq: int,
        boot: str,
        type: str,
        data: dict[str, Any],
        time: datetime | None = None,
    ) -> Envelope:
        return cls(
            id=str(uuid.uuid4()),
            node=node,
            seq=seq,
            boot=boot,
            time=iso(time or utcnow()),
            type=type,
            data=data,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "v": self.v,
            "id": self.id,
            "node": self.node,
            "seq": self.seq,
            "boot": self.boot,
            "time": self.time,
            "type": self.type,
            "data": self.data,
        }

    def encode(self) -> bytes:
        return dumps(self.to_dict())

    def event(self) -> EventData | None:
        """The typed data (:mod:`gateway.contract.events`), None for an unknown type."""
        return decode_event(self.type, self.data)

    @classmethod
    def decode(cls, payload: bytes | str) -> Envelope:
        """Check the envelope (not its data: see :meth:`event`), within the node bounds.

        The error says whether the event may be acknowledged: once the version and the
        id are readable, sending the same bytes again can never make them valid, so the
        hub acknowledges and the node stops resending (an unsupported version is not
        acknowledged: a hub that understands it may come later).
        """
        what = "event envelope"
        try:
            obj = loads_object(
                payload, what, max_bytes=MAX_NODE_MESSAGE_BYTES, max_depth=MAX_NODE_MESSAGE_DEPTH
            )
        except ContractError as exc:
            raise EnvelopeError(str(exc), event_id=_salvage_id(payload)) from exc
        v = _field(obj, "v", _INT, what)
        if v != CONTRACT_VERSION:
            raise EnvelopeError(f"{what}: unsupported contract version {v}")
        event_id = _field(obj, "id", _ID, what)
        try:
            env = cls(
                v=v,
                id=event_id,
                node=_field(obj, "node", _ID, what),
                seq=_field(obj, "seq", _SEQ, what),
                boot=_field(obj, "boot", _ID, what),
                time=_field(obj, "time", _TEXT_TIME, what),
                type=_field(obj, "type", _TOKEN, what),
                data=_field(obj, "data", _OBJECT, what),
            )
        except ContractError as exc:
            raise EnvelopeError(str(exc), event_id=event_id) from exc
        return env


class EnvelopeError(ContractError):
    """An envelope the hub cannot store; ``event_id`` is set when it may be acknowledged."""

    def __init__(self, message: str, *, event_id: str | None = None) -> None:
        super().__init__(message)
        self.event_id = event_id


def _salvage_id(payload: bytes | str) -> str | None:
    """The id of a version-1 envelope that failed to parse only because of bad bytes or
    numbers (invalid UTF-8, NaN, 1e400...), so that the hub can acknowledge it; None when
    it is too big or too deep to look at, or has no readable id."""
    if isinstance(payload, str):
        text = payload
    elif len(payload) > MAX_NODE_MESSAGE_BYTES:
        return None
    else:
        text = bytes(payload).decode("utf-8", "replace")
    if len(text) > MAX_NODE_MESSAGE_BYTES or nesting_exceeds(text, DEFAULT_MAX_DEPTH):
        return None
    try:
        obj = json.loads(
            text,
            parse_constant=lambda _s: None,
            parse_float=lambda _s: 0.0,
            parse_int=lambda s: int(s) if len(s) <= 400 else 0,
        )
    except (ValueError, RecursionError):
        return None
    if not isinstance(obj, dict) or type(obj.get("v")) is not int or obj["v"] != CONTRACT_VERSION:
        return None
    try:
        return _ID.check(obj.get("id"))
    except ContractError:
        return None


class _Object:
    def check(self, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise ContractError(f"should be an object, got {type(value).__name__}")
        return value


class _TimeText:
    """A valid time, kept as the text the node sent (the envelope stores it as is)."""

    def check(self, value: Any) -> str:
        Time().check(value)
        return value


_INT = Integer(0)
_ID = Id()
_SEQ = Integer(1)
_TOKEN = Token()
_TEXT_TIME = _TimeText()
_OBJECT = _Object()


def _field(obj: dict[str, Any], key: str, spec: Any, what: str) -> Any:
    if key not in obj:
        raise ContractError(f"{what}: missing field {key!r}")
    try:
        return spec.check(obj[key])
    except ContractError as exc:
        raise ContractError(f"{what}: field {key!r} {exc}") from exc


def _require(obj: dict[str, Any], key: str, kind: type | tuple[type, ...], what: str) -> Any:
    if key not in obj:
        raise ContractError(f"{what}: missing field {key!r}")
    value = obj[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise ContractError(f"{what}: field {key!r} should be {names}, got {value!r}")
    return value


def encode_ack(ids: list[str]) -> bytes:
    return dumps({"v": CONTRACT_VERSION, "ids": ids})


def decode_ack(payload: bytes | str) -> list[str]:
    obj = loads_object(payload, "acknowledgement")
    ids = _require(obj, "ids", list, "acknowledgement")
    if not all(isinstance(i, str) for i in ids):
        raise ContractError("acknowledgement: every id must be a string")
    return ids


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


def encode_enrolment(
    request_id: str | None, member_id: str | None = None, until: str | None = None
) -> bytes:
    """The hub's open enrolment window (retained); a null request_id closes it."""
    return dumps(
        {"v": CONTRACT_VERSION, "request_id": request_id, "member_id": member_id, "until": until}
    )
