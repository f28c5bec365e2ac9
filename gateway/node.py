"""The node agent: badge reader -> access policy -> relay -> session -> journal -> MQTT.

Safety rules this module keeps, in this order of importance:

1. The relay is off at start, on exit, and on every error path we control. Power never
   returns by itself: a session found open after a restart is closed (with its last
   known time), never resumed.
2. Every event is in the journal before it is published; the journal forgets it only
   when the hub has acknowledged its id. So a dead broker or hub loses nothing, and a
   replay bills nothing twice (the hub is idempotent on event ids).
3. Decisions are local, from the last valid signed snapshot: the node works offline up
   to the machine's maximum snapshot age, measured on the monotonic clock; "now" never
   goes below the time the hub signed (``policies/trusted_time.py``).
4. The loop owns the state. MQTT handlers (paho's thread) only put messages in an inbox
   that ``step()`` drains, so snapshots, acks, enrolment windows, simulated taps and
   every status are handled in order on one thread; the journal sender thread only
   reads the journal and publishes.
5. No journal, no power: when the journal cannot be written the relay goes off, an open
   session ends at once, taps are denied (``journal_unavailable``) and kept in memory;
   the node retries the journal with back-off and writes them when it can again.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gateway import __version__
from gateway.config import NodeConfig
from gateway.contract import (
    MAX_DETAIL,
    MAX_NAME,
    MAX_TIME_LEFT_S,
    BadgeEnrolled,
    CertificationGranted,
    ContractError,
    EventData,
    Job,
    NodeBoot,
    SessionEnded,
    SessionStarted,
    SnapshotRejectedEvent,
    StaffPresence,
    Tap,
    Topics,
    decode_ack,
    decode_sim_job,
    decode_sim_tap,
    encode_status,
    loads_object,
    parse_iso,
)
from gateway.contract.mqtt import MqttLink, Will
from gateway.contract.signing import SnapshotRejected, verify_snapshot
from gateway.core.activity import Activity, MachineReport
from gateway.core.clock import iso, utcnow
from gateway.core.ids import normalise_uid
from gateway.core.levels import Level
from gateway.core.sdnotify import ping_watchdog
from gateway.core.snapshot import MemberGrant, Snapshot
from gateway.core.supervise import Beat, Supervisor
from gateway.drivers.machines.base import MachineController
from gateway.drivers.readers.base import BadgeReader, TapDebouncer
from gateway.drivers.relay import Relay
from gateway.drivers.simulators.machine import SimulatedMachine
from gateway.journal import Journal, JournalUnavailable
from gateway.policies import session_rules, trusted_time
from gateway.policies.access import Action, Decision, MachineState, Reason, decide
from gateway.policies.jobs import ENDING, JobEvent, JobTracker
from gateway.policies.metering import BusyMeter, billable_minutes, split_minutes
from gateway.policies.presence import presence_until, staff_present, staff_toggle

log = logging.getLogger(__name__)

RESEND_AFTER_S = 10.0
# A trainer enters certify mode by tapping twice: the second tap must come within this
# long after the reader lets the same card count again (reader.hold_off).
CERTIFY_DOUBLE_TAP_S = 3.0
CERTIFY_WINDOW_S = 15.0  # then the trainee taps within this long
MAX_IN_FLIGHT = 200
# Events that could not be journaled (denials while the journal is unavailable, job
# events, rejected snapshots) wait in memory, oldest dropped first beyond this many.
DEFERRED_MAX = 200
JOURNAL_RETRY_MIN_S = 1.0  # back-off between attempts to reopen a failed journal
JOURNAL_RETRY_MAX_S = 30.0
STEP_ERROR_MAX_WAIT_S = 5.0  # a step that keeps failing is retried at most this slowly


def _clip(text: str | None, limit: int) -> str | None:
    """Controller texts (file names, messages) within the contract's bounds: a long G-code
    path must not get a job refused at the hub."""
    if text is None or len(text) <= limit:
        return text
    return text[: limit - 1] + "\u2026"


@dataclass
class OpenSession:
    """The session in progress; its duration is metered on the monotonic clock."""

    session_id: str
    member_id: str
    member_name: str
    badge_uid: str
    project_id: str | None
    started_at: datetime
    started_mono: float
    badged_out: float | None = None  # mono time of the badge-out, while power is kept
    busy: BusyMeter | None = None
    last_active: float = 0.0
    job_ended: float | None = None
    jobs: int = 0
    credit_limit_s: float | None = None

    def metered(self, mono_now: float) -> float:
        return max(0.0, mono_now - self.started_mono)

    def to_state(self, mono_now: float, wall_now: datetime) -> dict[str, Any]:
        """What survives a restart: enough to close the session with its last known time."""
        return {"session_id": self.session_id, "member_id": self.member_id,
                "member_name": self.member_name, "badge_uid": self.badge_uid,
                "project_id": self.project_id, "started_at": iso(self.started_at),
                "last_seen_at": iso(wall_now), "metered_s": round(self.metered(mono_now), 3),
                "busy_s": round(self.busy.busy_seconds(mono_now), 3) if self.busy else 0.0}


class NodeAgent:
    """One machine's node. ``step()`` does one poll; ``run()`` loops until stopped.

    Every attribute below belongs to the thread that calls ``step()`` (the loop), except
    ``_inbox`` and ``_reports`` (thread-safe queues other threads feed), ``_sent`` (under
    ``_sent_lock``, shared with the journal sender) and the journal (locked inside).
    """

    def __init__(self, cfg: NodeConfig, *, relay: Relay, reader: BadgeReader,
                 public_key: Ed25519PublicKey, journal: Journal | None = None,
                 controller: MachineController | None = None,
                 simulated_machine: SimulatedMachine | None = None,
                 mono: Callable[[], float] = time.monotonic,
                 wall: Callable[[], datetime] = utcnow, connect: bool = True) -> None:
        self.cfg = cfg
        self.relay = relay
        self.reader = reader
        self.public_key = public_key
        self.journal = journal if journal is not None else Journal(cfg.journal, open_now=False)
        self.mono = mono
        self.wall = wall
        self.topics = Topics(cfg.mqtt.prefix)
        self.boot = str(uuid.uuid4())
        self.snapshot: Snapshot | None = None
        self.session: OpenSession | None = None
        self.local_presence_until: datetime | None = None
        self.debouncer = TapDebouncer(cfg.reader.hold_off, clock=mono)
        self.stopping = threading.Event()
        # The journal sender runs supervised: a crash is logged and it starts again.
        self._threads = Supervisor()
        self._wake_sender = threading.Event()
        self._inbox: queue.SimpleQueue[tuple[str, bytes]] = queue.SimpleQueue()
        self._sim_tap_ids: dict[str, str] = {}
        self.certify_trainer: MemberGrant | None = None
        self.certify_until: float | None = None
        self._last_trainer_tap: tuple[str, float] | None = None
        self._entering_certify = False
        self.enrolment: dict[str, Any] | None = None
        self._held_payload: bytes | None = None
        self._sent: dict[str, float] = {}  # event id -> mono time of last publish
        self._sent_lock = threading.Lock()
        self._last_heartbeat = mono()
        self._last_status = float("-inf")
        self._status_due = False
        # Trusted time: the newest hub-signed time, and when the held snapshot arrived.
        self._floor: trusted_time.SignedTime | None = None
        self._receipt: trusted_time.Receipt | None = None
        self.clock_behind = False
        # Journal health: while it cannot be written, what should have gone in waits here.
        self.journal_ok = False
        self._booted = False  # the start-up recovery and node.boot are in the journal
        self._journal_failing = False  # the failure has been logged; retries are quiet
        self._deferred: deque[tuple[str, dict[str, Any], datetime]] = deque()
        self._deferred_dropped = 0
        self._journal_retry_at = mono()
        self._journal_backoff = JOURNAL_RETRY_MIN_S
        self._backlog = 0
        self.controller = controller
        self.simulated_machine = simulated_machine
        self.activity = Activity.UNKNOWN
        self.machine_detail = ""
        self._reports: queue.SimpleQueue[MachineReport] = queue.SimpleQueue()
        self.jobs = JobTracker(new_id=lambda: str(uuid.uuid4()),
                               progress_every_s=cfg.session.progress_every)
        self.job_session: dict[str, str | None] = {}  # job id -> session that started it
        self.link: MqttLink | None = None
        if controller is not None:
            controller.subscribe(self._reports.put)
        if connect:
            self.link = MqttLink(
                cfg.mqtt.url, cfg.mqtt.client_id, username=cfg.mqtt.username,
                password=cfg.mqtt.password,
                will=Will(self.topics.node_status(cfg.node_id),
                          encode_status(node=cfg.node_id, machine=cfg.machine_id, online=False,
                                        heartbeat_s=cfg.heartbeat.total_seconds())),
                on_connect=self._on_connect, reconnect_min=cfg.mqtt.reconnect_min,
                reconnect_max=cfg.mqtt.reconnect_max)
        self.relay.off()
        self._try_journal(reopen=not self.journal.is_open)

    # -- time -------------------------------------------------------------------------

    def now(self) -> datetime:
        """The wall clock, never below the hub-signed bound; flags a clock found behind."""
        wall, mono = self.wall(), self.mono()
        behind = trusted_time.clock_behind(wall, self._floor, mono)
        if behind != self.clock_behind:
            self.clock_behind = behind
            self._status_due = True
            if behind:
                log.warning("the wall clock (%s) is behind the time signed by the hub (%s): "
                            "deciding with the signed time; check NTP", iso(wall),
                            iso(self._floor.bound(mono)) if self._floor else "?")
            else:
                log.info("the wall clock has caught up with the time signed by the hub")
        return trusted_time.trusted_now(wall, self._floor, mono)

    def _raise_floor(self, signed_at: datetime, mono: float | None) -> None:
        self._floor = trusted_time.latest(self._floor, trusted_time.SignedTime(signed_at, mono),
                                          self.mono())

    def _snapshot_age(self) -> timedelta | None:
        """The held snapshot's age on the monotonic clock (unknown: older than any limit)."""
        if self.snapshot is None or self._receipt is None:
            return None
        if self._receipt.age is None:
            now = self.now()  # a restart with the clock behind: anchor once it catches up
            if not self.clock_behind:
                self._receipt = trusted_time.receive(self.snapshot.issued_at, now, self.mono())
        return trusted_time.snapshot_age(self._receipt, self.mono())

    # -- the journal: writes that may fail, and recovery ------------------------------

    def _append(self, event: EventData, *, state: dict[str, Any] | None = None,
                before: list[EventData] | None = None, defer: bool = True) -> bool:
        """Journal one event; False if the journal is unavailable (the node fails safe).

        Every event is built as its contract type (gateway.contract.events), so a field
        the hub does not expect is a TypeError here, at the source, not a refusal there.

        A failed event is kept in memory for later when ``defer`` is true; never for the
        events whose durability the relay depends on (session start, session end: those
        are closed from the journal's own state when it can be written again).
        """
        at = self.now()
        type_, data = event.TYPE, event.to_data()
        if self.journal_ok:
            try:
                self.journal.append(node=self.cfg.node_id, boot=self.boot, type=type_,
                                    data=data, time=at, state=state,
                                    before=[(e.TYPE, e.to_data()) for e in before or ()])
                return True
            except JournalUnavailable as exc:
                self._journal_down(exc)
        if defer:
            self._defer(type_, data, at)
        return False

    def _set_state(self, values: dict[str, Any]) -> bool:
        if not self.journal_ok:
            return False
        try:
            self.journal.set_states(values)
            return True
        except JournalUnavailable as exc:
            self._journal_down(exc)
            return False

    def _defer(self, type_: str, data: dict[str, Any], at: datetime) -> None:
        if len(self._deferred) >= DEFERRED_MAX:
            self._deferred.popleft()
            self._deferred_dropped += 1
        self._deferred.append((type_, data, at))

    def _journal_down(self, exc: Exception) -> None:
        """The journal failed: power off, end the session at once, retry with back-off."""
        if not self._journal_failing:
            log.error("journal unavailable: %s; relay off and taps denied "
                      "(journal_unavailable) until it can be written again", exc)
            self._journal_failing = True
            self._journal_backoff = JOURNAL_RETRY_MIN_S
        else:
            log.debug("journal still unavailable: %s", exc)
        self.journal_ok = False
        self._journal_retry_at = self.mono() + self._journal_backoff
        self._journal_backoff = min(self._journal_backoff * 2, JOURNAL_RETRY_MAX_S)
        self._status_due = True
        try:
            self.relay.off()
        finally:
            session = self.session
            if session is not None:
                # Fail-safe: a session we cannot record must not go on. Its journal state
                # still says "open, last seen at the last heartbeat": once the journal can
                # be written again it is closed there, as after a power cut.
                self.session = None
                log.error("session %s of %s ended with the relay off: the journal cannot "
                          "record it; it will be closed at its last recorded time",
                          session.session_id, session.member_name)

    def _try_journal(self, *, reopen: bool) -> bool:
        """(Re)open the journal and write what waited for it; False while it still fails."""
        try:
            if reopen:
                self.journal.open()
            if not self._booted:
                self._recover()
                self._booted = True
            else:
                recovered = self._close_recorded_session("journal_error")
                if recovered:
                    log.warning("session %s closed at its last recorded time", recovered)
            while self._deferred:
                type_, data, at = self._deferred[0]
                self.journal.append(node=self.cfg.node_id, boot=self.boot, type=type_,
                                    data=data, time=at)
                self._deferred.popleft()
            self.journal.set_states(self._trust_state())
        except JournalUnavailable as exc:
            self._journal_down(exc)
            return False
        if self._deferred_dropped:
            log.warning("%d events could not be kept while the journal was unavailable",
                        self._deferred_dropped)
            self._deferred_dropped = 0
        if self._journal_failing:
            log.warning("journal writable again: taps are decided as usual")
        self._journal_failing = False
        self.journal_ok = True
        self._journal_backoff = JOURNAL_RETRY_MIN_S
        self._status_due = True
        self._wake_sender.set()
        return True

    def _trust_state(self) -> dict[str, Any]:
        """What must survive a restart to keep trusting time: the floor, the snapshot."""
        state: dict[str, Any] = {}
        if self._floor is not None:
            state["time_floor"] = iso(self._floor.bound(self.mono()))
        if self._held_payload is not None:
            state["snapshot"] = self._held_payload.decode()
        return state

    # -- start-up and recovery --------------------------------------------------------

    def _recover(self) -> None:
        """Close a session left open by a crash or power cut, with its last known time."""
        floor = self.journal.get_state("time_floor")
        if isinstance(floor, str):
            try:
                self._raise_floor(parse_iso(floor, "time_floor"), None)
            except ContractError as exc:
                log.warning("ignored the recorded time floor: %s", exc)
        held = self.journal.get_state("snapshot")
        if held and self.snapshot is None:
            self._load_held(held.encode())
        recovered = self._close_recorded_session("node_restart")
        if recovered:
            log.warning("session %s was open at restart: relay stays off; closed at its "
                        "last recorded time", recovered)
        boot = NodeBoot(version=__version__, recovered_session_id=recovered, relay=False)
        self.journal.append(node=self.cfg.node_id, boot=self.boot, type=boot.TYPE,
                            time=self.now(), data=boot.to_data())

    def _load_held(self, payload: bytes) -> None:
        try:
            snap = verify_snapshot(payload, self.public_key, now=self.now(),
                                   machine_id=self.cfg.machine_id)
        except SnapshotRejected as exc:
            log.warning("held snapshot not usable: %s", exc)
            return
        self.snapshot = snap
        self._held_payload = payload
        self._raise_floor(snap.issued_at, None)
        # The node cannot know how long it was off: with a wall clock behind the signed
        # floor (a Pi without RTC before NTP) the snapshot's age is unknown, so stale.
        now = self.now()
        self._receipt = trusted_time.receive(snap.issued_at,
                                             None if self.clock_behind else now, self.mono())
        log.info("using held snapshot version %s", snap.version)

    def _close_recorded_session(self, reason: str) -> str | None:
        """End the session the journal says is open, at its last recorded time."""
        state = self.journal.get_state("open_session")
        if not state:
            return None
        started = parse_iso(state["started_at"], "open_session.started_at")
        ended = parse_iso(state.get("last_seen_at") or state["started_at"], "last_seen_at")
        duration = float(state.get("metered_s", 0.0))
        end = self._session_end(state, started, ended, duration, reason)
        self.journal.append(
            node=self.cfg.node_id, boot=self.boot, type=end.TYPE, time=self.now(),
            data=end.to_data(), state={"open_session": None})
        log.info("session %s closed (%s) at %s after %.0f s", state["session_id"], reason,
                 iso(ended), duration)
        return str(state["session_id"])

    def start(self) -> None:
        if self.link:
            self.link.subscribe(self.topics.node_ack(self.cfg.node_id), self._on_ack)
            self.link.subscribe(self.topics.snapshot(self.cfg.machine_id), self._on_snapshot)
            if self.reader.injector is not None:
                self.link.subscribe(self.topics.sim_tap(self.cfg.node_id), self._on_sim_tap)
            if self.simulated_machine is not None:
                self.link.subscribe(self.topics.sim_job(self.cfg.node_id), self._on_sim_job)
            self.link.subscribe(self.topics.enrolment, self._on_enrolment)
            self.link.start()
        self._threads.spawn("journal-sender", self._send_loop,
                            stale_after=max(10.0, 3 * self.cfg.heartbeat.total_seconds()))
        if self.controller is not None:
            self.controller.start()

    def run(self) -> None:
        """Poll the reader until ``stopping`` is set; the relay is off when this returns.

        A step that raises is logged with its traceback and the loop goes on, the relay
        off and any open session ended (we cannot tell what the error left behind).
        Each turn pings the systemd watchdog (rate-limited; a no-op outside systemd), so
        a loop that hangs gets the node restarted.
        """
        period = 1.0 / max(self.cfg.reader.poll_hz, 0.1)
        failures = 0
        try:
            self.start()
            while not self.stopping.is_set():
                try:
                    self.step()
                    failures = 0
                except Exception:
                    failures += 1
                    log.exception("node loop step failed (%d in a row); relay off", failures)
                    self._after_step_error()
                ping_watchdog()
                wait = period if not failures else min(period * 2 ** failures,
                                                       STEP_ERROR_MAX_WAIT_S)
                self.stopping.wait(wait)
        finally:
            self.shutdown()

    def _after_step_error(self) -> None:
        try:
            self.relay.off()
        except Exception:
            log.exception("switching the relay off after a failed step failed too")
        if self.session is not None:
            try:
                self._end_session("node_error")
            except Exception:
                log.exception("ending the session after a failed step failed; "
                              "it will be closed from the journal")
                self.session = None
        try:
            self._publish_status()
        except Exception:
            log.exception("publishing the status after a failed step failed")

    def step(self) -> None:
        if not self.journal_ok and self.mono() >= self._journal_retry_at:
            self._try_journal(reopen=True)
        self._drain_inbox()
        uid = self.debouncer.feed(self.reader.poll())
        if uid:
            self.handle_tap(uid)
        self._drain_reports()
        if self.session:
            self._apply_session_rules()
        if self.session and self.mono() - self._last_heartbeat >= \
                self.cfg.heartbeat.total_seconds():
            self._heartbeat()
        if self._status_due or self.mono() - self._last_status >= \
                self.cfg.heartbeat.total_seconds():
            self._publish_status()

    def shutdown(self) -> None:
        """Power off first, then close the session, then tell the world and flush."""
        try:
            self.relay.off()
        finally:
            if self.session:
                self._end_session("shutdown")
            self.stopping.set()
            self._threads.stopping.set()
            self._wake_sender.set()
            self._threads.stop(timeout=2.0)
            if self.link:
                self._flush(timeout=3.0)
                self.link.stop(final=(self.topics.node_status(self.cfg.node_id), encode_status(
                    node=self.cfg.node_id, machine=self.cfg.machine_id, online=False,
                    heartbeat_s=self.cfg.heartbeat.total_seconds())))
            self.relay.close()
            self.reader.close()
            if self.controller is not None:
                self.controller.close()
            if self.simulated_machine is not None:
                self.simulated_machine.close()

    # -- taps -------------------------------------------------------------------------

    def handle_tap(self, raw_uid: str) -> Decision | None:
        try:
            uid = normalise_uid(raw_uid)
        except ValueError:
            log.warning("reader returned %r, which is not a badge UID; ignored", raw_uid)
            return None
        now = self.now()
        if not self.journal_ok:
            return self._deny_unrecorded(uid)
        if self._special_tap(uid, now):
            self._publish_status()
            self._wake_sender.set()
            return None
        state = MachineState(
            session_member_id=self.session.member_id if self.session else None,
            session_badge_uid=self.session.badge_uid if self.session else None)
        present = staff_present(self.snapshot, self.local_presence_until, now)
        decision = decide(self.snapshot, badge_uid=uid, now=now, staff_present=present,
                          state=state, max_snapshot_age=self.cfg.max_snapshot_age,
                          snapshot_age=self._snapshot_age())
        member = decision.member
        tap_id = self._sim_tap_ids.pop(uid, None)
        tap = Tap(uid=uid, member_id=member.member_id if member else None,
                  action=str(decision.action), reason=str(decision.reason), tap_id=tap_id,
                  certify_mode=self._entering_certify)
        if decision.action == Action.START and member:
            credit = (member.credit_s if self.snapshot and self.snapshot.machine.requires_credit
                      else None)
            if not self._start_session(uid, member.member_id, member.name, member.project_id,
                                       now, present, tap=tap, credit_limit_s=credit):
                self._entering_certify = False
                return self._deny_unrecorded(uid, tap_id=tap_id, member=member)
        else:
            self._append(tap)
            if decision.action == Action.END:
                self._badge_out()
            else:
                log.info("tap %s denied: %s", uid, decision.reason)
        if member:
            self._staff_presence(decision, now)
            if self._entering_certify:
                self._last_trainer_tap = None
            elif member.level >= Level.TRAINER:
                self._last_trainer_tap = (uid, self.mono())
        self._entering_certify = False
        self._publish_status()
        self._wake_sender.set()
        return decision

    def _deny_unrecorded(self, uid: str, *, tap_id: str | None = None,
                         member: MemberGrant | None = None) -> Decision:
        """A tap while the journal cannot be written: denied, kept for the journal."""
        if tap_id is None:
            tap_id = self._sim_tap_ids.pop(uid, None)
        if member is None and self.snapshot is not None:
            member = self.snapshot.member_for_badge(uid)
        decision = Decision(Action.DENY, Reason.JOURNAL_UNAVAILABLE, member)
        tap = Tap(uid=uid, member_id=member.member_id if member else None,
                  action=str(decision.action), reason=str(decision.reason), tap_id=tap_id)
        self._defer(tap.TYPE, tap.to_data(), self.now())
        log.warning("tap %s denied: %s (the journal cannot be written)", uid, decision.reason)
        self._publish_status()
        return decision

    # -- certification at the machine, badge enrolment ---------------------------------

    def _special_tap(self, uid: str, now: datetime) -> bool:
        """Taps that are not about power: a trainer's certify mode, a badge enrolment."""
        mono = self.mono()
        snap = self.snapshot
        who = snap.member_for_badge(uid) if snap else None
        if self.certify_until is not None and mono > self.certify_until:
            log.info("certify mode ended without a trainee tap")
            self.certify_trainer, self.certify_until = None, None
        trainer = self.certify_trainer
        if (trainer is not None and who is not None and snap is not None
                and who.member_id != trainer.member_id
                and who.level < snap.machine.certify_level):
            # A member already at that level is not a trainee: their tap acts as usual.
            self._certify(uid, trainer, who)
            return True
        last = self._last_trainer_tap
        if (who is not None and snap is not None and who.level >= Level.TRAINER
                and who.status == "active" and last is not None and last[0] == uid
                and mono - last[1] <= self.cfg.reader.hold_off + CERTIFY_DOUBLE_TAP_S):
            # The second tap still does what a tap does (usually a badge-out: power never
            # stays on by surprise); certify mode opens on top of it.
            self.certify_trainer, self.certify_until = who, mono + CERTIFY_WINDOW_S
            self._entering_certify = True
            log.info("certify mode for %.0f s: %s may certify the next member who taps",
                     CERTIFY_WINDOW_S, who.name)
        enrol = self.enrolment
        if who is None and enrol is not None and now < enrol["until"]:
            self.enrolment = None
            self._journal_special(uid, None, "enrol", "enrolment")
            self._append(BadgeEnrolled(request_id=enrol["request_id"], uid=uid,
                                       member_id=enrol["member_id"]))
            log.info("unknown badge %s sent to the hub for enrolment", uid)
            return True
        return False

    def _certify(self, uid: str, trainer: MemberGrant, trainee: MemberGrant) -> None:
        assert self.snapshot is not None
        level = self.snapshot.machine.certify_level
        self.certify_trainer, self.certify_until = None, None
        self._journal_special(uid, trainee.member_id, "certify", "certified")
        self._append(CertificationGranted(
            trainer_id=trainer.member_id, member_id=trainee.member_id,
            group=self.snapshot.machine.group, level=level, machine=self.cfg.machine_id))
        log.info("%s certified %s at level %d on %s", trainer.name, trainee.name, level,
                 self.snapshot.machine.group)

    def _journal_special(self, uid: str, member_id: str | None, action: str,
                         reason: str) -> None:
        self._append(Tap(uid=uid, member_id=member_id, action=action, reason=reason,
                         tap_id=self._sim_tap_ids.pop(uid, None)))

    def _staff_presence(self, decision: Decision, now: datetime) -> None:
        assert decision.member is not None
        locally = self.local_presence_until is not None and self.local_presence_until > now
        change = staff_toggle(decision.member, decision, locally)
        if change is None:
            return
        until = None
        if change and self.snapshot:
            until = presence_until(self.snapshot.opening_hours, self.snapshot.timezone, now)
        self.local_presence_until = until
        self._append(StaffPresence(member_id=decision.member.member_id, present=change,
                                   until=until))

    def _start_session(self, uid: str, member_id: str, name: str, project_id: str | None,
                       now: datetime, staff: bool, *, tap: Tap | None = None,
                       credit_limit_s: float | None = None) -> bool:
        """Open a session and switch on; False (power off) if it cannot be journaled."""
        mono = self.mono()
        session = OpenSession(str(uuid.uuid4()), member_id, name, uid, project_id, now, mono,
                              busy=BusyMeter(mono, self.activity == Activity.BUSY),
                              last_active=mono, credit_limit_s=credit_limit_s)
        # Journal first: if we crash between these two lines the relay is still off and
        # the restart closes a zero-length session; the reverse order could leave power on
        # with no record of who had it. The tap goes in the same commit (one disk wait).
        if not self._append(
                SessionStarted(session_id=session.session_id, machine=self.cfg.machine_id,
                               member_id=member_id, badge_uid=uid, project_id=project_id,
                               started_at=now, staff_present=staff),
                state={"open_session": session.to_state(mono, now)},
                before=[tap] if tap is not None else None, defer=False):
            return False
        self.session = session
        self._last_heartbeat = mono
        try:
            self.relay.on()
        except Exception:
            log.exception("relay failed to switch on; ending the session")
            self._end_session("relay_error")
            raise
        log.info("session %s started for %s (%s)", session.session_id, name, member_id)
        return True

    def _end_session(self, reason: str) -> None:
        self.relay.off()
        session = self.session
        if session is None:
            return
        mono, now = self.mono(), self.now()
        duration = session.metered(mono)
        state = session.to_state(mono, now)
        state["jobs"] = session.jobs
        ended = self._append(
            self._session_end(state, session.started_at, now, duration, reason),
            state={"open_session": None}, defer=False)
        self.session = None
        if ended:
            log.info("session %s ended (%s) after %.1f s", session.session_id, reason, duration)

    def _session_end(self, state: dict[str, Any], started: datetime, ended: datetime,
                     duration: float, reason: str) -> SessionEnded:
        duration = round(duration, 3)
        split: dict[str, Any] = {}
        if self.controller is not None:
            # Only a node that follows its machine knows busy time; without a controller
            # the split is unknown (null), which a busy/idle tariff bills as busy.
            busy = min(float(state.get("busy_s") or 0.0), duration)
            busy_min, idle_min = split_minutes(duration, busy)
            split = dict(busy_s=round(busy, 3), idle_s=round(duration - busy, 3),
                         busy_minutes=busy_min, idle_minutes=idle_min)
        return SessionEnded(
            session_id=state["session_id"], machine=self.cfg.machine_id,
            member_id=state["member_id"], badge_uid=state["badge_uid"],
            project_id=state.get("project_id"), started_at=started, ended_at=ended,
            duration_s=duration, billable_minutes=billable_minutes(duration),
            end_reason=reason, jobs=int(state.get("jobs") or 0), **split)

    # -- machine activity, jobs and session rules ------------------------------------

    def rules(self) -> session_rules.SessionRules:
        kind = self.snapshot.machine.kind if self.snapshot else "other"
        o = self.cfg.session
        return session_rules.resolve(kind, grace=o.grace, idle_timeout=o.idle_timeout,
                                     max_length=o.max_length, cooldown=o.cooldown,
                                     never_cut_busy=o.never_cut_busy)

    def _view(self, session: OpenSession) -> session_rules.SessionView:
        return session_rules.SessionView(
            started=session.started_mono, badged_out=session.badged_out,
            activity=self.activity, last_active=session.last_active,
            job_running=self.jobs.running, job_ended=session.job_ended,
            credit_limit_s=session.credit_limit_s)

    def _badge_out(self) -> None:
        session = self.session
        assert session is not None
        if session.badged_out is not None:
            return  # already badged out, power kept for the job: nothing more to do
        session.badged_out = self.mono()
        verdict = session_rules.evaluate(self.rules(), self._view(session), self.mono())
        if verdict.verdict == session_rules.Verdict.END:
            self._end_session(verdict.reason)
        else:
            log.info("badge-out by %s: power kept while the machine is busy or for the grace "
                     "period", session.member_name)

    def _apply_session_rules(self) -> None:
        session = self.session
        assert session is not None
        mono = self.mono()
        verdict = session_rules.evaluate(self.rules(), self._view(session), mono)
        if verdict.verdict == session_rules.Verdict.KEEP:
            return
        if verdict.verdict == session_rules.Verdict.SAFE_STOP_THEN_END and self.controller:
            log.warning("session %s reached its maximum length: asking the controller for a "
                        "safe stop, then switching off", session.session_id)
            try:
                self.controller.safe_stop()
            except Exception:
                log.exception("safe stop failed; switching off anyway")
        self._end_session(verdict.reason)
        self._publish_status()

    def _drain_reports(self) -> None:
        changed = False
        while True:
            try:
                report = self._reports.get_nowait()
            except queue.Empty:
                break
            changed |= self._on_report(report)
        if changed:
            self._publish_status()

    def _on_report(self, report: MachineReport) -> bool:
        mono = self.mono()
        previous = (self.activity, self.machine_detail)
        self.activity, self.machine_detail = report.activity, report.detail
        session = self.session
        if session is not None and session.busy is not None:
            session.busy.update(mono, report.activity == Activity.BUSY)
            if report.activity in (Activity.BUSY, Activity.PAUSED):
                session.last_active = mono
        changed = previous != (self.activity, self.machine_detail)
        for event in self.jobs.feed(report, mono):
            self._journal_job(event, mono)
            changed = True
        return changed

    def _journal_job(self, event: JobEvent, mono: float) -> None:
        session = self.session
        if event.kind == "started":
            self.job_session[event.job_id] = session.session_id if session else None
            if session:
                session.jobs += 1
        session_id = self.job_session.get(event.job_id)
        if event.kind in ENDING:
            self.job_session.pop(event.job_id, None)
            if session is not None and session.session_id == session_id:
                session.job_ended = mono
                session.last_active = mono
        owner = session if session is not None and session.session_id == session_id else None
        self._append(Job(
            job_id=event.job_id, event=str(event.kind), session_id=session_id,
            machine=self.cfg.machine_id, member_id=owner.member_id if owner else None,
            project_id=owner.project_id if owner else None, name=_clip(event.name, MAX_NAME),
            progress=None if event.progress is None else min(100.0, max(0.0, round(
                event.progress, 1))),
            time_left_s=None if event.time_left_s is None else min(
                max(0.0, event.time_left_s), MAX_TIME_LEFT_S),
            detail=_clip(event.detail, MAX_DETAIL) or ""))
        log.info("job %s %s (%s%%)", event.job_id[:8], event.kind,
                 "?" if event.progress is None else f"{event.progress:.0f}")
        self._wake_sender.set()

    def _heartbeat(self) -> None:
        """Record the session's last known time, so a power cut bills up to here."""
        assert self.session is not None
        mono = self.mono()
        self._last_heartbeat = mono
        state = {"open_session": self.session.to_state(mono, self.now())}
        if self._floor is not None:
            state["time_floor"] = iso(self._floor.bound(mono))  # same commit: no extra write
        self._set_state(state)

    # -- MQTT handlers (paho's thread): they only fill the inbox -----------------------

    def _on_connect(self) -> None:
        self._inbox.put(("connected", b""))

    def _on_ack(self, _topic: str, payload: bytes) -> None:
        self._inbox.put(("ack", payload))

    def _on_snapshot(self, _topic: str, payload: bytes) -> None:
        self._inbox.put(("snapshot", payload))

    def _on_sim_tap(self, _topic: str, payload: bytes) -> None:
        self._inbox.put(("sim_tap", payload))

    def _on_sim_job(self, _topic: str, payload: bytes) -> None:
        self._inbox.put(("sim_job", payload))

    def _on_enrolment(self, _topic: str, payload: bytes) -> None:
        self._inbox.put(("enrolment", payload))

    # -- the inbox, drained by the loop -----------------------------------------------

    def _drain_inbox(self) -> None:
        handlers: dict[str, Callable[[bytes], None]] = {
            "connected": self._handle_connected, "ack": self._handle_ack,
            "snapshot": self._handle_snapshot, "sim_tap": self._handle_sim_tap,
            "sim_job": self._handle_sim_job, "enrolment": self._handle_enrolment}
        while True:
            try:
                kind, payload = self._inbox.get_nowait()
            except queue.Empty:
                return
            try:
                handlers[kind](payload)
            except Exception:  # one bad message must not stop the loop
                log.exception("handling a %s message failed; ignored", kind)

    def _handle_connected(self, _payload: bytes) -> None:
        with self._sent_lock:
            self._sent.clear()  # whatever was in flight may be lost: send again
        self._publish_status()
        self._wake_sender.set()

    def _handle_ack(self, payload: bytes) -> None:
        try:
            ids = decode_ack(payload)
        except ContractError as exc:
            log.warning("ignored a malformed acknowledgement: %s", exc)
            return
        with self._sent_lock:
            for i in ids:
                self._sent.pop(i, None)
        if not self.journal_ok:
            return  # the hub acknowledges again when the events are resent
        try:
            removed = self.journal.ack(ids)
        except JournalUnavailable as exc:
            self._journal_down(exc)
            return
        log.debug("hub acknowledged %d events (%d removed from the journal)", len(ids), removed)
        self._wake_sender.set()

    def _handle_snapshot(self, payload: bytes) -> None:
        current = self.snapshot.version if self.snapshot else None
        try:
            snap = verify_snapshot(payload, self.public_key, now=self.now(),
                                   machine_id=self.cfg.machine_id, current_version=current,
                                   current_epoch=self.snapshot.epoch if self.snapshot else None)
        except SnapshotRejected as exc:
            if exc.reason == "older" and payload == self._held_payload:
                return  # the retained copy of the snapshot we hold, redelivered on reconnect
            self._reject_snapshot(exc.reason, exc.detail)
            return
        except Exception as exc:  # whatever a crafted payload may still provoke
            log.exception("snapshot verification failed unexpectedly")
            self._reject_snapshot("malformed", f"{type(exc).__name__}: {exc}"[:200])
            return
        mono = self.mono()
        self.snapshot = snap
        self._held_payload = payload
        self._raise_floor(snap.issued_at, mono)
        self._receipt = trusted_time.receive(snap.issued_at, self.now(), mono)
        self._set_state(self._trust_state())
        log.info("snapshot version %s accepted (%d badges, valid until %s)", snap.version,
                 len(snap.badges), iso(snap.valid_until))
        self._publish_status()

    def _reject_snapshot(self, reason: str, detail: str) -> None:
        log.warning("snapshot rejected (%s): %s", reason, detail)
        self._append(SnapshotRejectedEvent(reason=reason, detail=_clip(detail, MAX_DETAIL) or ""))
        self._wake_sender.set()

    def _handle_sim_tap(self, payload: bytes) -> None:
        try:
            uid, tap_id = decode_sim_tap(payload)
            uid = normalise_uid(uid)
        except (ContractError, ValueError) as exc:
            log.warning("ignored a malformed simulated tap: %s", exc)
            return
        if tap_id:
            self._sim_tap_ids[uid] = tap_id
        assert self.reader.injector is not None
        self.reader.injector.present(uid)

    def _handle_sim_job(self, payload: bytes) -> None:
        try:
            name, seconds = decode_sim_job(payload)
        except ContractError as exc:
            log.warning("ignored a malformed simulated job: %s", exc)
            return
        assert self.simulated_machine is not None
        log.info("simulated machine starts job %r for %.0f s", name, seconds)
        self.simulated_machine.start_job(name, seconds)

    def _handle_enrolment(self, payload: bytes) -> None:
        try:
            obj = loads_object(payload, "enrolment request")
            request_id = obj.get("request_id")
            self.enrolment = None if not request_id else {
                "request_id": str(request_id), "member_id": obj.get("member_id"),
                "until": parse_iso(obj.get("until"), "enrolment until")}
        except ContractError as exc:
            log.warning("ignored a malformed enrolment request: %s", exc)

    # -- publishing -------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """The node status as the loop sees it now (what ``_publish_status`` sends)."""
        s = self.session
        session = None if s is None else {
            "session_id": s.session_id, "member_id": s.member_id, "member_name": s.member_name,
            "project_id": s.project_id, "started_at": iso(s.started_at)}
        self.now()  # refreshes clock_behind
        if self.journal_ok:
            try:
                self._backlog = self.journal.count()
            except JournalUnavailable as exc:
                log.warning("could not count the journal's backlog: %s", exc)
        return dict(
            node=self.cfg.node_id, machine=self.cfg.machine_id, online=True,
            relay=self.relay.is_on, session=session,
            snapshot_version=self.snapshot.version if self.snapshot else None,
            boot=self.boot, state="in_use" if s else "free", activity=str(self.activity),
            detail=self.machine_detail, job=self._job_status(),
            ending=bool(s and s.badged_out is not None),
            mode="certify" if self.certify_trainer else None,
            heartbeat_s=self.cfg.heartbeat.total_seconds(), clock_behind=self.clock_behind,
            journal="ok" if self.journal_ok else "unavailable",
            backlog=self._backlog + len(self._deferred))

    def _publish_status(self) -> None:
        """Only ever called on the loop thread, so statuses leave in the loop's order."""
        payload = encode_status(**self.status()) if self.link else b""
        self._status_due = False
        self._last_status = self.mono()
        if self.link:
            self.link.publish(self.topics.node_status(self.cfg.node_id), payload, retain=True)

    def _job_status(self) -> dict[str, Any] | None:
        job = self.jobs.job
        if job is None:
            return None
        return {"job_id": job.job_id, "name": job.name, "paused": job.paused,
                "progress": None if job.progress is None else round(job.progress, 1),
                "session_id": self.job_session.get(job.job_id)}

    def _send_loop(self, beat: Beat) -> None:
        """The journal sender: reads the journal, publishes, touches no agent state."""
        stopping = self._threads.stopping
        while not stopping.is_set():
            beat()
            self._wake_sender.wait(1.0)
            self._wake_sender.clear()
            if stopping.is_set():
                return  # shutdown's flush sends what is left
            if self.link is None or not self.link.connected.is_set():
                continue
            try:
                self._send_due()
            except JournalUnavailable as exc:
                log.debug("journal sender: %s", exc)  # the loop reports and retries it

    def _send_due(self) -> None:
        """Publish unacknowledged events in order, a bounded window at a time."""
        assert self.link is not None
        now = self.mono()
        with self._sent_lock:
            in_flight = sum(1 for t in self._sent.values() if now - t < RESEND_AFTER_S)
        budget = MAX_IN_FLIGHT - in_flight
        if budget <= 0:
            return
        topic = self.topics.node_events(self.cfg.node_id)
        for ev in self.journal.pending(limit=MAX_IN_FLIGHT * 2):
            if budget <= 0:
                break
            with self._sent_lock:
                last = self._sent.get(ev.id)
                if last is not None and now - last < RESEND_AFTER_S:
                    continue
            if self.link.publish(topic, ev.payload, qos=1) is None:
                return
            with self._sent_lock:
                self._sent[ev.id] = now
            budget -= 1

    def _flush(self, timeout: float) -> bool:
        """At shutdown: give the hub a moment to acknowledge what is left."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if not self.journal_ok or self.journal.count() == 0:
                    break
                if self.link and self.link.connected.is_set():
                    self._send_due()
            except JournalUnavailable:
                break
            try:
                kind, payload = self._inbox.get(timeout=min(0.2, max(0.0, deadline -
                                                                     time.monotonic())))
            except queue.Empty:
                continue
            if kind == "ack":  # nothing else matters any more
                self._handle_ack(payload)
        try:
            return self.journal_ok and self.journal.count() == 0
        except JournalUnavailable:
            return False

