"""Who may say what: the hub believes a node only about its own machine.

The sender of a message is the node named in its topic (the broker binds each node's
topics to its username, see ``deploy/mosquitto/fabgate.acl``); the machine it serves comes from
the hub configuration (``machines[].node``, default the machine id). Every rule here
reads the hub's own database and never the sender's word about anyone else:

- sessions and jobs: only on the sender's machine, and a node closes only the sessions it
  opened; a closed session is never rewritten (a second, different end is a conflict; the
  same end again changes nothing);
- status: only about the sender's machine;
- staff presence: only for a member the hub knows as staff;
- certification at the machine: only for the group of the sender's machine, at that
  machine's ``certify_level``, by a member the hub itself holds at trainer level (3),
  live, on that group, for a trainee the hub knows, whose certify tap on that node (the
  tap the node journals just before) the hub has stored;
- badge enrolment: only into a window the hub opened, still open when the hub receives
  the event, not used yet. Windows are not per node: the fabmanager taps the badge on
  whichever machine is at hand, so any node may take the one open window.

A refusal raises :class:`Refused`; gateway.hub.events.ingest stores the event with the
reason, records it (gateway.hub.events.refusals) and acknowledges it, since resending
cannot help. The rules read the database only through the modules that own its tables.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from gateway.contract import (
    BadgeEnrolled,
    CertificationGranted,
    ContractError,
    Envelope,
    EventData,
    Job,
    NodeStatus,
    SessionEnded,
    SessionStarted,
    StaffPresence,
)
from gateway.core.clock import iso
from gateway.core.levels import Level
from gateway.hub import catalogue, certifications, enrolment, jobs, members, sessions
from gateway.hub.db import HubStore
from gateway.hub.events import journal, refusals

# The trainee's certify tap is journaled right before the certification; a few events
# (a snapshot rejected meanwhile, from another thread) may come between the two.
CERTIFY_TAP_WINDOW = 20

ALLOW = "allow"
DUPLICATE = "duplicate"  # the same end of a closed session again: store, change nothing


class Refused(Exception):  # noqa: N818 - reads as "raise Refused(...)"
    """The sender may not say this; ``kind`` is refusals.FORBIDDEN or CONFLICT."""

    def __init__(self, reason: str, kind: str = refusals.FORBIDDEN) -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind


class Gate:
    """The checks for one batch; caches which machine each node serves."""

    def __init__(self, store: HubStore) -> None:
        self.store = store
        self._machines: dict[str, str | None] = {}

    def machine_of(self, node: str) -> str | None:
        if node not in self._machines:
            self._machines[node] = catalogue.machine_of_node(self.store, node)
        return self._machines[node]

    def _own_machine(self, node: str, machine: str, what: str) -> None:
        own = self.machine_of(node)
        if own is None:
            raise Refused(f"node {node} serves no machine at this hub: it may not send {what}")
        if machine != own:
            raise Refused(
                f"node {node} serves {own}, not {machine}: it may not send {what} for {machine}"
            )

    # -- events ------------------------------------------------------------------------

    def check_event(self, env: Envelope, event: EventData | None, received_at: datetime) -> str:
        """ALLOW or DUPLICATE; raises Refused when the sender may not say this."""
        if isinstance(event, SessionStarted):
            return self._session_started(env, event)
        if isinstance(event, SessionEnded):
            return self._session_ended(env, event)
        if isinstance(event, Job):
            return self._job(env, event)
        if isinstance(event, StaffPresence):
            return self._staff_presence(event)
        if isinstance(event, CertificationGranted):
            return self._certification(env, event, received_at)
        if isinstance(event, BadgeEnrolled):
            return self._enrolment(event, received_at)
        return ALLOW  # taps, boots, rejected snapshots, unknown types: stored only

    def _session_row(self, session_id: str) -> dict[str, Any] | None:
        return sessions.session_owner(self.store, session_id)

    def _session_started(self, env: Envelope, ev: SessionStarted) -> str:
        self._own_machine(env.node, ev.machine, "a session start")
        row = self._session_row(ev.session_id)
        if row is not None and row["node"] != env.node:
            raise Refused(f"session {ev.session_id} belongs to node {row['node']}")
        return ALLOW

    def _session_ended(self, env: Envelope, ev: SessionEnded) -> str:
        self._own_machine(env.node, ev.machine, "a session end")
        row = self._session_row(ev.session_id)
        if row is None:
            return ALLOW  # the end arrived before the start: this node opens and closes it
        if row["node"] != env.node:
            raise Refused(
                f"session {ev.session_id} was opened by node {row['node']}: "
                f"only that node may close it"
            )
        if row["status"] != "closed":
            return ALLOW
        first = self._closing_event(row["closed_by"])
        if first == ev:
            return DUPLICATE
        raise Refused(
            f"session {ev.session_id} was already closed by event "
            f"{row['closed_by'] or '(unknown)'}; this different end changes nothing",
            refusals.CONFLICT,
        )

    def _closing_event(self, event_id: str | None) -> SessionEnded | None:
        if event_id is None:
            return None
        try:
            data = journal.event_data(self.store, event_id)
        except ValueError:
            return None
        if data is None:
            return None
        try:
            return SessionEnded.from_data(data)
        except (ContractError, ValueError):
            return None

    def _job(self, env: Envelope, ev: Job) -> str:
        self._own_machine(env.node, ev.machine, "a job")
        owner = jobs.job_node(self.store, ev.job_id)
        if owner is not None and owner != env.node:
            raise Refused(f"job {ev.job_id} belongs to node {owner}")
        if ev.session_id is not None:
            session = self._session_row(ev.session_id)
            if session is not None and session["node"] != env.node:
                raise Refused(
                    f"session {ev.session_id} belongs to node {session['node']}: "
                    f"a job of node {env.node} cannot belong to it"
                )
        return ALLOW

    def _staff_presence(self, ev: StaffPresence) -> str:
        if not members.is_staff(self.store, ev.member_id):
            raise Refused(f"{ev.member_id} is not a staff member at this hub")
        return ALLOW

    def _certification(self, env: Envelope, ev: CertificationGranted, received_at: datetime) -> str:
        self._own_machine(env.node, ev.machine, "a certification")
        machine = catalogue.machine_info(self.store, ev.machine)
        if machine is None:
            raise Refused(f"machine {ev.machine} is unknown at this hub: no group to certify")
        if ev.group != machine.group:
            raise Refused(
                f"{ev.machine} is a {machine.group} machine: it may not certify for {ev.group}"
            )
        if ev.level != machine.certify_level:
            raise Refused(
                f"{ev.machine} certifies at level {machine.certify_level}, not {ev.level}"
            )
        if ev.trainer_id == ev.member_id:
            raise Refused("a trainer cannot certify themselves")
        now = received_at.astimezone(UTC)
        level, expires = certifications.certification_expiry(
            self.store, ev.trainer_id, ev.group, now
        )
        if level < Level.TRAINER or (expires is not None and expires <= now):
            raise Refused(
                f"{ev.trainer_id} is not a live level-{Level.TRAINER:d} trainer on "
                f"{ev.group} at the hub"
            )
        if not members.exists(self.store, ev.member_id):
            raise Refused(f"trainee {ev.member_id} is unknown at this hub")
        if not journal.certify_tap_stored(
            self.store, env.node, env.boot, env.seq, CERTIFY_TAP_WINDOW, ev.member_id
        ):
            raise Refused(
                f"no certify tap by {ev.member_id} from node {env.node} is stored "
                f"before this certification"
            )
        return ALLOW

    def _enrolment(self, ev: BadgeEnrolled, received_at: datetime) -> str:
        row = enrolment.enrolment(self.store, ev.request_id)
        at = iso(received_at)
        if row is None:
            raise Refused(f"no enrolment {ev.request_id} was opened at this hub")
        if row["status"] != "pending":
            raise Refused(f"enrolment {ev.request_id} is {row['status']}, not open")
        if not row["created_at"] <= at <= row["until"]:
            raise Refused(
                f"enrolment {ev.request_id} is not open at {at} (open "
                f"{row['created_at']} to {row['until']})"
            )
        return ALLOW

    # -- status ------------------------------------------------------------------------

    def check_status(self, node: str, status: NodeStatus) -> None:
        if status.node != node:
            raise Refused(f"a status saying node {status.node} on node {node}'s topic")
        self._own_machine(node, status.machine_id, "a status")
