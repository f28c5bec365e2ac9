"""The node status: retained on the node's status topic, also its last will.

The hub shows it on the board (free, in use by whom, activity, job) and believes it only
about the node's own machine. Fields a node of this version may leave out (older nodes
do) have defaults; the last six are only sent when the node knows them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, ClassVar

from gateway.contract.core import (
    CONTRACT_VERSION,
    MAX_NODE_MESSAGE_BYTES,
    MAX_NODE_MESSAGE_DEPTH,
    ContractError,
    dumps,
    loads_object,
)
from gateway.contract.events import MAX_DETAIL, MAX_NAME
from gateway.contract.fields import (
    Flag,
    Id,
    Integer,
    Message,
    Nested,
    Number,
    OneOf,
    Text,
    Time,
    Token,
    wire,
)
from gateway.core.activity import Activity
from gateway.core.clock import utcnow

JOURNAL_STATES = ("ok", "unavailable")
MODES = ("certify",)
MAX_HEARTBEAT_S = 3600
# Snapshot ages a node reports are clipped to this (ten years): a bound, not a limit any
# real node reaches.
MAX_SNAPSHOT_AGE_S = 315_360_000


@cache
def activities() -> tuple[str, ...]:
    return tuple(str(a) for a in Activity)


@dataclass(frozen=True, kw_only=True)
class StatusSession(Message):
    """The session in progress, as the board shows it."""

    WHAT: ClassVar[str] = "status session"
    session_id: str = wire(Id())
    member_id: str | None = wire(Id(), nullable=True)
    member_name: str | None = wire(Text(MAX_NAME), nullable=True, default=None)
    project_id: str | None = wire(Id(), nullable=True, default=None)
    started_at: datetime = wire(Time())


@dataclass(frozen=True, kw_only=True)
class StatusJob(Message):
    """The job in progress."""

    WHAT: ClassVar[str] = "status job"
    job_id: str = wire(Id())
    name: str | None = wire(Text(MAX_NAME), nullable=True, default=None)
    paused: bool = wire(Flag(), default=False)
    progress: float | None = wire(Number(0, 100), nullable=True, default=None)
    session_id: str | None = wire(Id(), nullable=True, default=None)


@dataclass(frozen=True, kw_only=True)
class NodeStatus(Message):
    WHAT: ClassVar[str] = "node status"
    v: int = wire(Integer(CONTRACT_VERSION, CONTRACT_VERSION), default=CONTRACT_VERSION)
    node: str = wire(Id())
    machine: str | None = wire(Id(), nullable=True, default=None)
    online: bool = wire(Flag())
    relay: bool = wire(Flag(), default=False)
    session: StatusSession | None = wire(Nested(StatusSession), nullable=True, default=None)
    snapshot_version: int | None = wire(Integer(0), nullable=True, default=None)
    boot: str | None = wire(Id(), nullable=True, default=None)
    state: str | None = wire(Token(), nullable=True, default=None)
    activity: str = wire(OneOf(activities), default="unknown")
    detail: str = wire(Text(MAX_DETAIL), default="")
    job: StatusJob | None = wire(Nested(StatusJob), nullable=True, default=None)
    ending: bool = wire(Flag(), default=False)
    mode: str | None = wire(OneOf(MODES), nullable=True, default=None)
    time: datetime | None = wire(Time(), nullable=True, default=None)
    heartbeat_s: float | None = wire(
        Number(0, MAX_HEARTBEAT_S, lo_open=True), nullable=True, default=None, omit_none=True
    )
    clock_behind: bool | None = wire(Flag(), nullable=True, default=None, omit_none=True)
    journal: str | None = wire(OneOf(JOURNAL_STATES), nullable=True, default=None, omit_none=True)
    backlog: int | None = wire(Integer(0), nullable=True, default=None, omit_none=True)
    snapshot_age_s: float | None = wire(
        Number(0, MAX_SNAPSHOT_AGE_S), nullable=True, default=None, omit_none=True
    )
    snapshot_max_age_s: float | None = wire(
        Number(0, MAX_SNAPSHOT_AGE_S, lo_open=True), nullable=True, default=None, omit_none=True
    )

    @property
    def machine_id(self) -> str:
        """The machine the status is about (a node that names none means its own id)."""
        return self.machine or self.node

    def encode(self) -> bytes:
        return dumps(self.to_dict())

    @classmethod
    def decode(cls, payload: bytes | str) -> NodeStatus:
        obj = loads_object(
            payload, cls.WHAT, max_bytes=MAX_NODE_MESSAGE_BYTES, max_depth=MAX_NODE_MESSAGE_DEPTH
        )
        return cls.from_dict(obj)


def encode_status(
    *,
    node: str,
    machine: str,
    online: bool,
    relay: bool = False,
    session: dict[str, Any] | None = None,
    snapshot_version: int | None = None,
    boot: str | None = None,
    state: str | None = None,
    activity: str = "unknown",
    detail: str = "",
    job: dict[str, Any] | None = None,
    ending: bool = False,
    mode: str | None = None,
    heartbeat_s: float | None = None,
    clock_behind: bool | None = None,
    journal: str | None = None,
    backlog: int | None = None,
    snapshot_age_s: float | None = None,
    snapshot_max_age_s: float | None = None,
    time: datetime | None = None,
) -> bytes:
    """The status a node publishes; ``session`` and ``job`` are the objects documented in
    docs/mqtt.md. The dict is built as the node always built it (unknown keys in
    ``session``/``job`` are kept), so this stays a plain serialiser on the node side."""
    obj: dict[str, Any] = {
        "v": CONTRACT_VERSION,
        "node": node,
        "machine": machine,
        "online": online,
        "relay": relay,
        "session": session,
        "snapshot_version": snapshot_version,
        "boot": boot,
        "state": state,
        "activity": activity,
        "detail": detail,
        "job": job,
        "ending": ending,
        "mode": mode,
        "time": Time().encode(time or utcnow()),
    }
    for key, value in (
        ("heartbeat_s", heartbeat_s),
        ("clock_behind", clock_behind),
        ("journal", journal),
        ("backlog", backlog),
        ("snapshot_age_s", snapshot_age_s),
        ("snapshot_max_age_s", snapshot_max_age_s),
    ):
        if value is not None:
            obj[key] = value
    return dumps(obj)


def decode_status(payload: bytes | str) -> dict[str, Any]:
    """A node status within bounds, as a plain dict (for code that only reads a few keys);
    ContractError naming the field otherwise. The hub uses :meth:`NodeStatus.decode`."""
    return NodeStatus.decode(payload).to_dict()


__all__ = [
    "JOURNAL_STATES",
    "MAX_SNAPSHOT_AGE_S",
    "ContractError",
    "NodeStatus",
    "StatusJob",
    "StatusSession",
    "decode_status",
    "encode_status",
]
