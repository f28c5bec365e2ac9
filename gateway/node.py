"""The node agent: badge reader -> access policy -> relay -> session -> journal -> MQTT.

Safety rules this module keeps, in this order of importance:

1. The relay is off at start, on exit, and on every error path we control. Power never
   returns by itself: a session found open after a restart is closed (with its last
   known time), never resumed.
2. Every event is in the journal before it is published; the journal forgets it only
   when the hub has acknowledged its id. So a dead broker or hub loses nothing, and a
   replay bills nothing twice (the hub is idempotent on event ids).
3. Decisions are local, from the last valid signed snapshot: the node works offline up
   to the machine's maximum snapshot age.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from . import __version__
from .config import NodeConfig
from .contract import (
    EV_BADGE_ENROLLED,
    EV_CERT_GRANTED,
    EV_JOB,
    EV_NODE_BOOT,
    EV_SESSION_ENDED,
    EV_SESSION_STARTED,
    EV_SNAPSHOT_REJECTED,
    EV_STAFF_PRESENCE,
    EV_TAP,
    ContractError,
    Topics,
    decode_ack,
    decode_sim_job,
    decode_sim_tap,
    encode_status,
    iso,
    loads_object,
    parse_iso,
    utcnow,
)
from .drivers.controllers import SimulatedMachine
from .drivers.machine import Activity, MachineController, MachineReport
from .drivers.readers import BadgeReader, SimulatedReader, TapDebouncer
from .drivers.relay import Relay
from .journal import Journal
from .mqtt import MqttLink, Will
from .permissions import MemberGrant, Snapshot, SnapshotRejected, verify_snapshot
from .policies import session_rules
from .policies.access import Action, Decision, MachineState, decide
from .policies.jobs import ENDING, JobEvent, JobTracker
from .policies.metering import BusyMeter, billable_minutes, split_minutes
from .policies.presence import presence_until, staff_present, staff_toggle
from .uids import normalise_uid

log = logging.getLogger(__name__)

RESEND_AFTER_S = 10.0
TRAINER_LEVEL = 3
# A trainer enters certify mode by tapping twice: the second tap must come within this
# long after the reader lets the same card count again (reader.hold_off).
CERTIFY_DOUBLE_TAP_S = 3.0
CERTIFY_WINDOW_S = 15.0  # then the trainee taps within this long
MAX_IN_FLIGHT = 200


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
    """One machine's node. ``step()`` does one poll; ``run()`` loops until stopped."""

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
        self.journal = journal or Journal(cfg.journal)
        self.mono = mono
        self.wall = wall
        self.topics = Topics(cfg.mqtt.prefix)
        self.boot = str(uuid.uuid4())
        self.snapshot: Snapshot | None = None
        self.session: OpenSession | None = None
        self.local_presence_until: datetime | None = None
        self.debouncer = TapDebouncer(cfg.reader.hold_off, clock=mono)
        self.stopping = threading.Event()
        self._wake_sender = threading.Event()
        self._sim_tap_ids: dict[str, str] = {}
        self.certify_trainer: MemberGrant | None = None
        self.certify_until: float | None = None
        self._last_trainer_tap: tuple[str, float] | None = None
        self._entering_certify = False
        self.enrolment: dict[str, Any] | None = None
        self._held_payload: bytes | None = None
        self._acked = threading.Event()
        self._sent: dict[str, float] = {}  # event id -> mono time of last publish
        self._sent_lock = threading.Lock()
        self._last_heartbeat = mono()
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
                          encode_status(node=cfg.node_id, machine=cfg.machine_id, online=False)),
                on_connect=self._on_connect)
        self.relay.off()
        self._recover()

    # -- start-up and recovery --------------------------------------------------------

    def _recover(self) -> None:
        """Close a session left open by a crash or power cut, with its last known time."""
        recovered = None
        state = self.journal.get_state("open_session")
        if state:
            started = parse_iso(state["started_at"], "open_session.started_at")
            ended = parse_iso(state.get("last_seen_at") or state["started_at"], "last_seen_at")
            duration = float(state.get("metered_s", 0.0))
            recovered = state["session_id"]
            log.warning("session %s was open at restart: relay stays off; closing it at %s "
                        "after %.0f s", recovered, iso(ended), duration)
            self.journal.append(
                node=self.cfg.node_id, boot=self.boot, type=EV_SESSION_ENDED,
                data=self._session_end_data(state, started, ended, duration, "node_restart"),
                state={"open_session": None})
        self.journal.append(node=self.cfg.node_id, boot=self.boot, type=EV_NODE_BOOT,
                            data={"version": __version__, "recovered_session_id": recovered,
                                  "relay": False})
        held = self.journal.get_state("snapshot")
        if held:
            try:
                self.snapshot = verify_snapshot(held.encode(), self.public_key, now=self.wall(),
                                                machine_id=self.cfg.machine_id)
                self._held_payload = held.encode()
                log.info("using held snapshot version %s", self.snapshot.version)
            except SnapshotRejected as exc:
                log.warning("held snapshot not usable: %s", exc)

    def start(self) -> None:
        if self.link:
            self.link.subscribe(self.topics.node_ack(self.cfg.node_id), self._on_ack)
            self.link.subscribe(self.topics.snapshot(self.cfg.machine_id), self._on_snapshot)
            if isinstance(self.reader, SimulatedReader):
                self.link.subscribe(self.topics.sim_tap(self.cfg.node_id), self._on_sim_tap)
            if self.simulated_machine is not None:
                self.link.subscribe(self.topics.sim_job(self.cfg.node_id), self._on_sim_job)
            self.link.subscribe(self.topics.enrolment, self._on_enrolment)
            self.link.start()
        self._sender = threading.Thread(target=self._send_loop, name="journal-sender",
                                        daemon=True)
        self._sender.start()
        if self.controller is not None:
            self.controller.start()

    def run(self) -> None:
        """Poll the reader until ``stopping`` is set; the relay is off when this returns."""
        period = 1.0 / max(self.cfg.reader.poll_hz, 0.1)
        try:
            self.start()
            while not self.stopping.is_set():
                self.step()
                self.stopping.wait(period)
        finally:
            self.shutdown()

    def step(self) -> None:
        uid = self.debouncer.feed(self.reader.poll())
        if uid:
            self.handle_tap(uid)
        self._drain_reports()
        if self.session:
            self._apply_session_rules()
        if self.session and self.mono() - self._last_heartbeat >= \
                self.cfg.heartbeat.total_seconds():
            self._heartbeat()

    def shutdown(self) -> None:
        """Power off first, then close the session, then tell the world and flush."""
        try:
            self.relay.off()
        finally:
            if self.session:
                self._end_session("shutdown")
            self.stopping.set()
            self._wake_sender.set()
            if self.link:
                self._flush(timeout=3.0)
                self.link.stop(final=(self.topics.node_status(self.cfg.node_id), encode_status(
                    node=self.cfg.node_id, machine=self.cfg.machine_id, online=False)))
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
        now = self.wall()
        if self._special_tap(uid, now):
            self._publish_status()
            self._wake_sender.set()
            return None
        state = MachineState(
            session_member_id=self.session.member_id if self.session else None,
            session_badge_uid=self.session.badge_uid if self.session else None)
        present = staff_present(self.snapshot, self.local_presence_until, now)
        decision = decide(self.snapshot, badge_uid=uid, now=now, staff_present=present,
                          state=state, max_snapshot_age=self.cfg.max_snapshot_age)
        member = decision.member
        tap_id = self._sim_tap_ids.pop(uid, None)
        tap = {"uid": uid, "member_id": member.member_id if member else None,
               "action": str(decision.action), "reason": str(decision.reason), "tap_id": tap_id,
               "certify_mode": self._entering_certify}
        if decision.action == Action.START and member:
            credit = (member.credit_s if self.snapshot and self.snapshot.machine.requires_credit
                      else None)
            self._start_session(uid, member.member_id, member.name, member.project_id, now,
                                present, tap=tap, credit_limit_s=credit)
        else:
            self.journal.append(node=self.cfg.node_id, boot=self.boot, type=EV_TAP, data=tap)
            if decision.action == Action.END:
                self._badge_out()
            else:
                log.info("tap %s denied: %s", uid, decision.reason)
        if member:
            self._staff_presence(decision, now)
            if self._entering_certify:
                self._last_trainer_tap = None
            elif member.level >= TRAINER_LEVEL:
                self._last_trainer_tap = (uid, self.mono())
        self._entering_certify = False
        self._publish_status()
        self._wake_sender.set()
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
        if (who is not None and snap is not None and who.level >= TRAINER_LEVEL
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
            self.journal.append(node=self.cfg.node_id, boot=self.boot, type=EV_BADGE_ENROLLED,
                                data={"request_id": enrol["request_id"], "uid": uid,
                                      "member_id": enrol["member_id"]})
            log.info("unknown badge %s sent to the hub for enrolment", uid)
            return True
        return False

    def _certify(self, uid: str, trainer: MemberGrant, trainee: MemberGrant) -> None:
        assert self.snapshot is not None
        level = self.snapshot.machine.certify_level
        self.certify_trainer, self.certify_until = None, None
        self._journal_special(uid, trainee.member_id, "certify", "certified")
        self.journal.append(node=self.cfg.node_id, boot=self.boot, type=EV_CERT_GRANTED, data={
            "trainer_id": trainer.member_id, "member_id": trainee.member_id,
            "group": self.snapshot.machine.group, "level": level,
            "machine": self.cfg.machine_id})
        log.info("%s certified %s at level %d on %s", trainer.name, trainee.name, level,
                 self.snapshot.machine.group)

    def _journal_special(self, uid: str, member_id: str | None, action: str,
                         reason: str) -> None:
        self.journal.append(node=self.cfg.node_id, boot=self.boot, type=EV_TAP, data={
            "uid": uid, "member_id": member_id, "action": action, "reason": reason,
            "tap_id": self._sim_tap_ids.pop(uid, None)})

    def _on_enrolment(self, _topic: str, payload: bytes) -> None:
        try:
            obj = loads_object(payload, "enrolment request")
            request_id = obj.get("request_id")
            self.enrolment = None if not request_id else {
                "request_id": str(request_id), "member_id": obj.get("member_id"),
                "until": parse_iso(obj.get("until"), "enrolment until")}
        except ContractError as exc:
            log.warning("ignored a malformed enrolment request: %s", exc)
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
        self.journal.append(node=self.cfg.node_id, boot=self.boot, type=EV_STAFF_PRESENCE,
                            data={"member_id": decision.member.member_id, "present": change,
                                  "until": iso(until) if until else None})

    def _start_session(self, uid: str, member_id: str, name: str, project_id: str | None,
                       now: datetime, staff: bool, *, tap: dict[str, Any] | None = None,
                       credit_limit_s: float | None = None) -> None:
        mono = self.mono()
        session = OpenSession(str(uuid.uuid4()), member_id, name, uid, project_id, now, mono,
                              busy=BusyMeter(mono, self.activity == Activity.BUSY),
                              last_active=mono, credit_limit_s=credit_limit_s)
        # Journal first: if we crash between these two lines the relay is still off and
        # the restart closes a zero-length session; the reverse order could leave power on
        # with no record of who had it. The tap goes in the same commit (one disk wait).
        self.journal.append(
            node=self.cfg.node_id, boot=self.boot, type=EV_SESSION_STARTED,
            data={"session_id": session.session_id, "machine": self.cfg.machine_id,
                  "member_id": member_id, "badge_uid": uid, "project_id": project_id,
                  "started_at": iso(now), "staff_present": staff},
            state={"open_session": session.to_state(mono, now)},
            before=[(EV_TAP, tap)] if tap is not None else None)
        self.session = session
        self._last_heartbeat = mono
        try:
            self.relay.on()
        except Exception:
            log.exception("relay failed to switch on; ending the session")
            self._end_session("relay_error")
            raise
        log.info("session %s started for %s (%s)", session.session_id, name, member_id)

    def _end_session(self, reason: str) -> None:
        self.relay.off()
        session = self.session
        if session is None:
            return
        mono, now = self.mono(), self.wall()
        duration = session.metered(mono)
        state = session.to_state(mono, now)
        state["jobs"] = session.jobs
        self.journal.append(
            node=self.cfg.node_id, boot=self.boot, type=EV_SESSION_ENDED,
            data=self._session_end_data(state, session.started_at, now, duration, reason),
            state={"open_session": None})
        self.session = None
        log.info("session %s ended (%s) after %.1f s", session.session_id, reason, duration)

    def _session_end_data(self, state: dict[str, Any], started: datetime, ended: datetime,
                          duration: float, reason: str) -> dict[str, Any]:
        duration = round(duration, 3)
        data = {"session_id": state["session_id"], "machine": self.cfg.machine_id,
                "member_id": state["member_id"], "badge_uid": state["badge_uid"],
                "project_id": state.get("project_id"), "started_at": iso(started),
                "ended_at": iso(ended), "duration_s": duration,
                "billable_minutes": billable_minutes(duration), "end_reason": reason,
                "busy_s": None, "idle_s": None, "busy_minutes": None, "idle_minutes": None,
                "jobs": int(state.get("jobs") or 0)}
        if self.controller is not None:
            # Only a node that follows its machine knows busy time; without a controller
            # the split is unknown (null), which a busy/idle tariff bills as busy.
            busy = min(float(state.get("busy_s") or 0.0), duration)
            busy_min, idle_min = split_minutes(duration, busy)
            data.update(busy_s=round(busy, 3), idle_s=round(duration - busy, 3),
                        busy_minutes=busy_min, idle_minutes=idle_min)
        return data

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
        self.journal.append(node=self.cfg.node_id, boot=self.boot, type=EV_JOB, data={
            "job_id": event.job_id, "event": str(event.kind), "session_id": session_id,
            "machine": self.cfg.machine_id, "member_id": owner.member_id if owner else None,
            "project_id": owner.project_id if owner else None, "name": event.name,
            "progress": None if event.progress is None else round(event.progress, 1),
            "time_left_s": event.time_left_s, "detail": event.detail})
        log.info("job %s %s (%s%%)", event.job_id[:8], event.kind,
                 "?" if event.progress is None else f"{event.progress:.0f}")
        self._wake_sender.set()

    def _heartbeat(self) -> None:
        """Record the session's last known time, so a power cut bills up to here."""
        assert self.session is not None
        mono = self.mono()
        self._last_heartbeat = mono
        self.journal.set_state("open_session", self.session.to_state(mono, self.wall()))

    # -- MQTT handlers (paho's thread) ------------------------------------------------

    def _on_connect(self) -> None:
        with self._sent_lock:
            self._sent.clear()  # whatever was in flight may be lost: send again
        self._publish_status()
        self._wake_sender.set()

    def _on_ack(self, _topic: str, payload: bytes) -> None:
        try:
            ids = decode_ack(payload)
        except ContractError as exc:
            log.warning("ignored a malformed acknowledgement: %s", exc)
            return
        removed = self.journal.ack(ids)
        with self._sent_lock:
            for i in ids:
                self._sent.pop(i, None)
        self._acked.set()
        log.debug("hub acknowledged %d events (%d removed from the journal)", len(ids), removed)
        self._wake_sender.set()

    def _on_snapshot(self, _topic: str, payload: bytes) -> None:
        current = self.snapshot.version if self.snapshot else None
        try:
            snap = verify_snapshot(payload, self.public_key, now=self.wall(),
                                   machine_id=self.cfg.machine_id, current_version=current,
                                   current_epoch=self.snapshot.epoch if self.snapshot else None)
        except SnapshotRejected as exc:
            if exc.reason == "older" and payload == self._held_payload:
                return  # the retained copy of the snapshot we hold, redelivered on reconnect
            log.warning("%s", exc)
            self.journal.append(node=self.cfg.node_id, boot=self.boot,
                                type=EV_SNAPSHOT_REJECTED,
                                data={"reason": exc.reason, "detail": exc.detail})
            self._wake_sender.set()
            return
        self.snapshot = snap
        self._held_payload = payload
        self.journal.set_state("snapshot", payload.decode())
        log.info("snapshot version %s accepted (%d badges, valid until %s)", snap.version,
                 len(snap.badges), iso(snap.valid_until))
        self._publish_status()

    def _on_sim_tap(self, _topic: str, payload: bytes) -> None:
        try:
            uid, tap_id = decode_sim_tap(payload)
            uid = normalise_uid(uid)
        except (ContractError, ValueError) as exc:
            log.warning("ignored a malformed simulated tap: %s", exc)
            return
        if tap_id:
            self._sim_tap_ids[uid] = tap_id
        assert isinstance(self.reader, SimulatedReader)
        self.reader.present(uid)

    def _on_sim_job(self, _topic: str, payload: bytes) -> None:
        try:
            name, seconds = decode_sim_job(payload)
        except ContractError as exc:
            log.warning("ignored a malformed simulated job: %s", exc)
            return
        assert self.simulated_machine is not None
        log.info("simulated machine starts job %r for %.0f s", name, seconds)
        self.simulated_machine.start_job(name, seconds)

    # -- publishing -------------------------------------------------------------------

    def _publish_status(self) -> None:
        if not self.link:
            return
        s = self.session
        session = None if s is None else {
            "session_id": s.session_id, "member_id": s.member_id, "member_name": s.member_name,
            "project_id": s.project_id, "started_at": iso(s.started_at)}
        self.link.publish(self.topics.node_status(self.cfg.node_id), encode_status(
            node=self.cfg.node_id, machine=self.cfg.machine_id, online=True,
            relay=self.relay.is_on, session=session,
            snapshot_version=self.snapshot.version if self.snapshot else None,
            boot=self.boot, state="in_use" if s else "free", activity=str(self.activity),
            detail=self.machine_detail, job=self._job_status(),
            ending=bool(s and s.badged_out is not None),
            mode="certify" if self.certify_trainer else None), retain=True)

    def _job_status(self) -> dict[str, Any] | None:
        job = self.jobs.job
        if job is None:
            return None
        return {"job_id": job.job_id, "name": job.name, "paused": job.paused,
                "progress": None if job.progress is None else round(job.progress, 1),
                "session_id": self.job_session.get(job.job_id)}

    def _send_loop(self) -> None:
        while True:
            self._wake_sender.wait(1.0)
            self._wake_sender.clear()
            if self.link is None or not self.link.connected.is_set():
                if self.stopping.is_set():
                    return
                continue
            self._send_due()
            if self.stopping.is_set() and self.journal.count() == 0:
                return

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
        while self.journal.count() and time.monotonic() < deadline:
            if self.link and self.link.connected.is_set():
                self._acked.clear()
                self._send_due()
            self._acked.wait(min(0.2, max(0.0, deadline - time.monotonic())))
        return self.journal.count() == 0
