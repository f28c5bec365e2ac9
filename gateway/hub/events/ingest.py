"""Hub ingest: a batch of node messages -> decoded, checked, stored -> what to acknowledge.

No message may stop the ingest, so each is handled in isolation, inside its own
savepoint of the batch's one transaction (one commit per batch keeps ingest fast):

- bad data (the contract refuses it) and refusals (gateway.hub.events.trust) are stored,
  recorded (gateway.hub.events.refusals) and acknowledged when they carry an event id:
  sending the same bytes again could never make them valid;
- an unexpected error (a bug, ``database is locked``, a full disk) rolls back that message
  only, is logged once with its traceback and is *not* acknowledged, so the node sends it
  again once the hub has recovered; the rest of the batch is stored and acknowledged;
- if an error takes the whole transaction with it (SQLite does that on some I/O
  errors), what it held is not acknowledged either, and the rest of the batch goes on in
  a new transaction; a failed commit acknowledges nothing of its transaction.

Acknowledgements are only handed out for transactions that committed. A checked event
is applied by the module that owns what it changes (``apply_event``); this one only
dispatches.
"""

from __future__ import annotations

import logging
import sqlite3
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

from gateway.contract import (
    BadgeEnrolled,
    CertificationGranted,
    ContractError,
    Envelope,
    EnvelopeError,
    EventData,
    Job,
    NodeStatus,
    SessionEnded,
    SessionStarted,
    StaffPresence,
    Topics,
)
from gateway.hub import certifications, enrolment, jobs, machine_state, presence, sessions
from gateway.hub.db import HubStore
from gateway.hub.events import journal, refusals
from gateway.hub.events.trust import DUPLICATE, Gate, Refused

log = logging.getLogger(__name__)


@dataclass
class Applied:
    """One handled message: the ids to acknowledge to its node, what it changed."""

    node: str | None = None
    ack: list[str] = field(default_factory=list)
    event: Envelope | None = None  # set when the event was applied (for republishing)
    data: EventData | None = None
    refused: bool = False
    status: bool = False


@dataclass
class BatchResult:
    acks: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    applied: list[tuple[Envelope, EventData | None]] = field(default_factory=list)
    events: int = 0  # event messages handled and committed (new, duplicate or refused)
    refused: int = 0
    statuses: int = 0
    failed: int = 0  # unexpected errors: rolled back, not acknowledged
    committed: int = 0  # messages handled and committed, whatever they were

    def _add(self, item: Applied) -> None:
        self.committed += 1
        if item.node is not None and item.ack:
            self.acks[item.node].extend(item.ack)
        if item.event is not None:
            self.applied.append((item.event, item.data))
        self.refused += item.refused
        if item.status:
            self.statuses += 1
        elif item.ack:
            self.events += 1


class _TransactionLost(Exception):  # noqa: N818 - control flow only
    pass


T = TypeVar("T")


@contextmanager
def _savepoint(conn: sqlite3.Connection) -> Iterator[None]:
    """One message's savepoint (never nested in itself, so one fixed name will do)."""
    conn.execute("SAVEPOINT message")
    try:
        yield
    except BaseException:
        if conn.in_transaction:  # some errors take the whole transaction with them
            conn.execute("ROLLBACK TO SAVEPOINT message")
            conn.execute("RELEASE SAVEPOINT message")
        raise
    conn.execute("RELEASE SAVEPOINT message")


def _run(
    store: HubStore,
    items: Sequence[T],
    handle: Callable[[T], Applied],
    describe: Callable[[T], str],
) -> BatchResult:
    """Handle every item, each in a savepoint, in as few transactions as possible."""
    result = BatchResult()
    i = 0
    while i < len(items):
        held: list[Applied] = []
        try:
            with store.atomic():
                while i < len(items):
                    item = items[i]
                    i += 1
                    try:
                        with _savepoint(store.conn):
                            held.append(handle(item))
                    except Exception:
                        result.failed += 1
                        log.exception(
                            "unexpected error on %s: rolled back, not acknowledged "
                            "(the node sends it again)",
                            describe(item),
                        )
                        if not store.conn.in_transaction:
                            raise _TransactionLost from None
        except _TransactionLost:
            if held:
                log.error(
                    "the error took the transaction with it: %d other messages are "
                    "not acknowledged and will be sent again",
                    len(held),
                )
            continue
        except Exception:
            log.exception(
                "a batch of %d messages could not be committed: none is "
                "acknowledged, their nodes send them again",
                len(held),
            )
            result.failed += len(held)
            continue
        for applied in held:
            result._add(applied)
    return result


def ingest_messages(
    store: HubStore, topics: Topics, batch: Sequence[tuple[str, bytes]], received_at: datetime
) -> BatchResult:
    """A batch of raw MQTT messages (events and statuses), in arrival order."""
    gate = Gate(store)

    def handle(message: tuple[str, bytes]) -> Applied:
        topic, payload = message
        return _message(store, gate, topics, topic, payload, received_at)

    return _run(store, list(batch), handle, lambda m: f"a message on {m[0]}")


def ingest_envelopes(
    store: HubStore, envelopes: Iterable[Envelope], received_at: datetime
) -> list[str]:
    """Envelopes already decoded (tests, imports): store and apply them in one
    transaction, each in its own savepoint; return every id that may be acknowledged
    (new, duplicate, bad data or refused alike; not those an unexpected error hit), in
    order."""
    gate = Gate(store)
    envelopes = list(envelopes)

    def handle(env: Envelope) -> Applied:
        return _event(store, gate, env, f"node/{env.node}/event", received_at)

    result = _run(store, envelopes, handle, lambda e: f"event {e.id} ({e.type}) of {e.node}")
    acked = {i for ids in result.acks.values() for i in ids}
    return [e.id for e in envelopes if e.id in acked]


def _message(
    store: HubStore, gate: Gate, topics: Topics, topic: str, payload: bytes, received_at: datetime
) -> Applied:
    try:
        node = topics.node_from_topic(topic)
        if len(node) > 64:
            raise ContractError(f"topic names a node id of {len(node)} characters")
    except ContractError as exc:
        refusals.record(
            store, topic=topic, reason=str(exc), received_at=received_at, payload=payload
        )
        return Applied(refused=True)
    if topic.endswith("/status"):
        return _status(store, gate, node, topic, payload, received_at)
    try:
        env = Envelope.decode(payload)
    except ContractError as exc:
        event_id = exc.event_id if isinstance(exc, EnvelopeError) else None
        refusals.record(
            store,
            topic=topic,
            reason=str(exc),
            received_at=received_at,
            node=node,
            event_id=event_id,
            payload=payload,
        )
        return Applied(node=node, ack=[event_id] if event_id else [], refused=True)
    if env.node != node:
        refusals.record(
            store,
            topic=topic,
            kind=refusals.FORBIDDEN,
            reason=f"envelope says node {env.node!r}, topic says {node!r}",
            received_at=received_at,
            node=node,
            event_id=env.id,
            event_type=env.type,
            payload=payload,
        )
        return Applied(node=node, ack=[env.id], refused=True)
    return _event(store, gate, env, topic, received_at)


def _event(
    store: HubStore, gate: Gate, env: Envelope, topic: str, received_at: datetime
) -> Applied:
    done = Applied(node=env.node, ack=[env.id])

    def refuse(reason: str, kind: str, error: str) -> Applied:
        journal.mark_event(store, env.id, error)
        refusals.record(
            store,
            topic=topic,
            kind=kind,
            reason=reason,
            received_at=received_at,
            node=env.node,
            event_id=env.id,
            event_type=env.type,
        )
        done.refused = True
        return done

    if not journal.store_event(store, env, received_at):
        owner = journal.event_node(store, env.id)
        if owner is not None and owner != env.node:
            refusals.record(
                store,
                topic=topic,
                kind=refusals.FORBIDDEN,
                reason=f"event id {env.id} is already used by node {owner}",
                received_at=received_at,
                node=env.node,
                event_id=env.id,
                event_type=env.type,
            )
            done.refused = True
        return done  # a duplicate: already applied once, acknowledge again
    try:
        event = env.event()
    except ContractError as exc:
        return refuse(str(exc), refusals.INVALID, f"ContractError: {exc}")
    try:
        if gate.check_event(env, event, received_at) == DUPLICATE:
            return done
    except Refused as exc:
        label = "conflict" if exc.kind == refusals.CONFLICT else "refused"
        return refuse(exc.reason, exc.kind, f"{label}: {exc.reason}")
    # Checked and authorised: anything the apply step raises is unexpected, and rolls the
    # whole message back (event row included) through the message's savepoint.
    apply_event(store, env, event, received_at)
    done.event, done.data = env, event
    return done


def apply_event(
    store: HubStore, env: Envelope, event: EventData | None, received_at: datetime
) -> None:
    """Apply checked, authorised event data (see gateway.hub.events.trust), through the
    module that owns what it changes (each called through its module, so a test can make
    one fail where it is defined)."""
    if isinstance(event, SessionStarted):
        sessions.session_started(store, env, event)
    elif isinstance(event, SessionEnded):
        sessions.session_ended(store, env, event)
    elif isinstance(event, StaffPresence):
        presence.record_presence(store, env, event)
    elif isinstance(event, Job):
        jobs.record_job(store, env, event)
    elif isinstance(event, BadgeEnrolled):
        enrolment.badge_enrolled(store, env, event, received_at)
    elif isinstance(event, CertificationGranted):
        certifications.certified_at_machine(store, env, event, received_at)
    # tap, node.boot, snapshot.rejected and unknown types: stored only.


def _status(
    store: HubStore, gate: Gate, node: str, topic: str, payload: bytes, received_at: datetime
) -> Applied:
    """A retained status: never acknowledged (statuses are not), applied or refused."""
    try:
        status = NodeStatus.decode(payload)
        gate.check_status(node, status)
    except ContractError as exc:
        refusals.record(
            store, topic=topic, reason=str(exc), received_at=received_at, node=node, payload=payload
        )
        return Applied(node=node, refused=True, status=True)
    except Refused as exc:
        refusals.record(
            store,
            topic=topic,
            kind=exc.kind,
            reason=exc.reason,
            received_at=received_at,
            node=node,
            payload=payload,
        )
        return Applied(node=node, refused=True, status=True)
    machine_state.set_node_status(store, node, status, received_at=received_at)
    return Applied(node=node, status=True)
