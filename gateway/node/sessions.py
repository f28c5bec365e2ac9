"""The open session: its start and end, its metering, and the rules that may end it.

A session is money and power at once, so its two safety rules live here, next to the
relay calls they order (rule 1 and 2 of ``gateway/node/agent.py``): the start is in the
journal before the relay switches on, and the relay is off before the end is journaled.
Durations and busy time are metered on the monotonic clock; the heartbeat records the
session's last known time, so a power cut (or a journal that fails) bills up to there
and no further: the session is then closed from the journal's state, never resumed.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from gateway.config import NodeConfig
from gateway.contract import SessionEnded, SessionStarted, Tap, parse_iso
from gateway.core.activity import Activity
from gateway.core.clock import iso
from gateway.core.snapshot import MachineRules
from gateway.drivers.relay import Relay
from gateway.node.recorder import Recorder
from gateway.node.trust import Trust
from gateway.policies import permissives, session_rules
from gateway.policies.material import MAX_GRAMS
from gateway.policies.metering import BusyMeter, billable_minutes, split_minutes

log = logging.getLogger(__name__)


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
    material_g: float | None = None  # None: no job reported any material
    credit_limit_s: float | None = None
    stop: session_rules.Stop | None = None  # a hold asked for, power off at its deadline

    def metered(self, mono_now: float) -> float:
        return max(0.0, mono_now - self.started_mono)

    def to_state(self, mono_now: float, wall_now: datetime) -> dict[str, Any]:
        """What survives a restart: enough to close the session with its last known time."""
        return {
            "session_id": self.session_id,
            "member_id": self.member_id,
            "member_name": self.member_name,
            "badge_uid": self.badge_uid,
            "project_id": self.project_id,
            "started_at": iso(self.started_at),
            "last_seen_at": iso(wall_now),
            "metered_s": round(self.metered(mono_now), 3),
            "busy_s": round(self.busy.busy_seconds(mono_now), 3) if self.busy else 0.0,
            "material_g": self.material_g,
        }


class MachineView(Protocol):
    """What the session rules read of the machine (``gateway/node/machine.py``)."""

    @property
    def activity(self) -> Activity: ...
    @property
    def job_running(self) -> bool: ...
    @property
    def followed(self) -> bool: ...
    @property
    def permissives(self) -> Mapping[int, bool]: ...
    def safe_stop(self) -> None: ...


class Sessions:
    """The open session (``current``, None when the machine is free); loop thread only."""

    def __init__(
        self,
        cfg: NodeConfig,
        *,
        relay: Relay,
        recorder: Recorder,
        trust: Trust,
        machine: MachineView,
        mono: Callable[[], float],
    ) -> None:
        self.cfg = cfg
        self.relay = relay
        self.recorder = recorder
        self.trust = trust
        self.machine = machine
        self.mono = mono
        self.current: OpenSession | None = None
        self._last_heartbeat = mono()
        o = cfg.session
        self.node_rules = MachineRules(
            grace_s=o.grace,
            idle_timeout_s=o.idle_timeout,
            max_length_s=o.max_length,
            cooldown_s=o.cooldown,
            hold_s=o.hold_for,
            progress_every_s=o.progress_every,
            never_cut_busy=o.never_cut_busy,
        )

    # -- start and end ----------------------------------------------------------------

    def start(
        self,
        uid: str,
        member_id: str,
        name: str,
        project_id: str | None,
        now: datetime,
        staff: bool,
        *,
        tap: Tap | None = None,
        credit_limit_s: float | None = None,
    ) -> bool:
        """Open a session and switch on; False (power off) if it cannot be journaled."""
        mono = self.mono()
        session = OpenSession(
            str(uuid.uuid4()),
            member_id,
            name,
            uid,
            project_id,
            now,
            mono,
            busy=BusyMeter(mono, self.machine.activity == Activity.BUSY),
            last_active=mono,
            credit_limit_s=credit_limit_s,
        )
        # Journal first: if we crash between these two lines the relay is still off and
        # the restart closes a zero-length session; the reverse order could leave power on
        # with no record of who had it. The tap goes in the same commit (one disk wait).
        if not self.recorder.append(
            SessionStarted(
                session_id=session.session_id,
                machine=self.cfg.machine_id,
                member_id=member_id,
                badge_uid=uid,
                project_id=project_id,
                started_at=now,
                staff_present=staff,
            ),
            state={"open_session": session.to_state(mono, now)},
            before=[tap] if tap is not None else None,
            defer=False,
        ):
            return False
        self.current = session
        self._last_heartbeat = mono
        try:
            self.relay.on()
        except Exception:
            log.exception("relay failed to switch on; ending the session")
            self.end("relay_error")
            raise
        log.info("session %s started for %s (%s)", session.session_id, name, member_id)
        return True

    def end(self, reason: str) -> None:
        """Power off first, then journal the end (metered up to now)."""
        self.relay.off()
        session = self.current
        if session is None:
            return
        mono, now = self.mono(), self.trust.now()
        duration = session.metered(mono)
        state = session.to_state(mono, now)
        state["jobs"] = session.jobs
        ended = self.recorder.append(
            self.ended_event(state, session.started_at, now, duration, reason),
            state={"open_session": None},
            defer=False,
        )
        self.current = None
        if ended:
            log.info("session %s ended (%s) after %.1f s", session.session_id, reason, duration)

    def cut(self) -> None:
        """The journal failed with the relay now off: the session cannot go on unrecorded.

        Its journal state still says "open, last seen at the last heartbeat": once the
        journal can be written again it is closed there (``close_recorded``), as after a
        power cut.
        """
        session, self.current = self.current, None
        if session is not None:
            log.error(
                "session %s of %s ended with the relay off: the journal cannot "
                "record it; it will be closed at its last recorded time",
                session.session_id,
                session.member_name,
            )

    def close_recorded(self, reason: str) -> str | None:
        """End the session the journal says is open, at its last recorded time.

        Raises :class:`JournalUnavailable` like the journal (it runs in the recovery).
        """
        state = self.recorder.journal.get_state("open_session")
        if not state:
            return None
        started = parse_iso(state["started_at"], "open_session.started_at")
        ended = parse_iso(state.get("last_seen_at") or state["started_at"], "last_seen_at")
        duration = float(state.get("metered_s", 0.0))
        end = self.ended_event(state, started, ended, duration, reason)
        self.recorder.write(end, state={"open_session": None})
        log.info(
            "session %s closed (%s) at %s after %.0f s",
            state["session_id"],
            reason,
            iso(ended),
            duration,
        )
        return str(state["session_id"])

    def ended_event(
        self,
        state: dict[str, Any],
        started: datetime,
        ended: datetime,
        duration: float,
        reason: str,
    ) -> SessionEnded:
        duration = round(duration, 3)
        split: dict[str, Any] = {}
        if self.machine.followed:
            # Only a node that follows its machine knows busy time; without a controller
            # the split is unknown (null), which a busy/idle tariff bills as busy.
            busy = min(float(state.get("busy_s") or 0.0), duration)
            busy_min, idle_min = split_minutes(duration, busy)
            split = dict(
                busy_s=round(busy, 3),
                idle_s=round(duration - busy, 3),
                busy_minutes=busy_min,
                idle_minutes=idle_min,
            )
        return SessionEnded(
            session_id=state["session_id"],
            machine=self.cfg.machine_id,
            member_id=state["member_id"],
            badge_uid=state["badge_uid"],
            project_id=state.get("project_id"),
            started_at=started,
            ended_at=ended,
            duration_s=duration,
            billable_minutes=billable_minutes(duration),
            end_reason=reason,
            jobs=int(state.get("jobs") or 0),
            material_g=_grams(state.get("material_g")),
            **split,
        )

    # -- session rules ----------------------------------------------------------------

    def hub_rules(self) -> MachineRules | None:
        """The session rules the hub set for the machine, from a snapshot still fresh
        (None without one: a stale or absent snapshot's rules are never used)."""
        snap = self.trust.fresh_snapshot(self.cfg.max_snapshot_age)
        return snap.machine.session if snap is not None else None

    def rules(self) -> session_rules.SessionRules:
        """The rules in force now, resolved at every check: a rule the hub changes
        applies to the open session at the next step (``session_rules.in_force``)."""
        snap = self.trust.snapshot
        kind = snap.machine.kind if snap else "other"
        return session_rules.in_force(kind, hub=self.hub_rules(), node=self.node_rules)

    def progress_every(self) -> float:
        return session_rules.progress_every(self.hub_rules(), self.cfg.session.progress_every)

    def permissive_rules(self) -> list[permissives.Permissive]:
        """The configured permissives with their drop rules resolved for the machine's class."""
        snap = self.trust.snapshot
        kind = snap.machine.kind if snap else "other"
        return [
            permissives.resolve(
                kind, name=p.name, input=p.input, on_drop=p.on_drop, hold_s=p.hold_for
            )
            for p in self.cfg.permissives
        ]

    def interlock(self) -> permissives.Permissive | None:
        """The first permissive not known to be closed now (None: all closed, or none)."""
        if not self.cfg.permissives:
            return None
        return permissives.blocking(self.permissive_rules(), self.machine.permissives)

    def _view(self, session: OpenSession) -> session_rules.SessionView:
        return session_rules.SessionView(
            started=session.started_mono,
            badged_out=session.badged_out,
            activity=self.machine.activity,
            last_active=session.last_active,
            job_running=self.machine.job_running,
            job_ended=session.job_ended,
            credit_limit_s=session.credit_limit_s,
            interlock=self.interlock(),
            stop=session.stop,
        )

    def badge_out(self) -> None:
        session = self.current
        assert session is not None
        if session.badged_out is not None:
            return  # already badged out, power kept for the job: nothing more to do
        session.badged_out = self.mono()
        verdict = session_rules.evaluate(self.rules(), self._view(session), self.mono())
        if verdict.verdict == session_rules.Verdict.END:
            self.end(verdict.reason)
        else:
            log.info(
                "badge-out by %s: power kept while the machine is busy or for the grace period",
                session.member_name,
            )

    def apply_rules(self) -> bool:
        """Act on the session's rules (idle, too long, credit spent, a permissive off...).

        True if something changed: the session ended, or a hold was asked for (power
        then stays on until the hold's deadline, when the rules end the session).
        """
        session = self.current
        assert session is not None
        mono = self.mono()
        view = self._view(session)
        verdict = session_rules.evaluate(self.rules(), view, mono)
        if verdict.verdict == session_rules.Verdict.KEEP:
            return False
        if verdict.verdict == session_rules.Verdict.SAFE_STOP_THEN_END:
            self._ask_hold(session, verdict, view.interlock)
            if verdict.hold_s > 0:
                session.stop = session_rules.Stop(verdict.reason, mono, verdict.hold_s)
                return True
        elif verdict.reason == permissives.PERMISSIVE_OFF and view.interlock is not None:
            log.warning(
                "session %s: permissive %s is off; switching off",
                session.session_id,
                view.interlock.name,
            )
        self.end(verdict.reason)
        return True

    def _ask_hold(
        self,
        session: OpenSession,
        verdict: session_rules.Ruling,
        interlock: permissives.Permissive | None,
    ) -> None:
        why = (
            f"permissive {interlock.name} is off"
            if verdict.reason == permissives.PERMISSIVE_OFF and interlock is not None
            else f"{verdict.reason.replace('_', ' ')} reached"
        )
        if not self.machine.followed:
            log.warning(
                "session %s: %s; no controller to ask to hold, switching off in %.0f s",
                session.session_id,
                why,
                verdict.hold_s,
            )
            return
        log.warning(
            "session %s: %s; asking the controller to hold, switching off in %.0f s",
            session.session_id,
            why,
            verdict.hold_s,
        )
        try:
            self.machine.safe_stop()
        except Exception:
            log.exception("asking the controller to hold failed; switching off as planned")

    # -- metering ---------------------------------------------------------------------

    def machine_reported(self, activity: Activity, mono: float, edge: float | None = None) -> None:
        """Meter busy time, and note activity for the idle timeout.

        ``edge`` is when a change the report confirms really began (a debounced current
        sensor's first sample over or under its threshold): busy time runs from there.
        """
        session = self.current
        if session is not None and session.busy is not None:
            session.busy.update(mono, activity == Activity.BUSY, edge)
            if activity in (Activity.BUSY, Activity.PAUSED):
                session.last_active = mono

    def job_started(self) -> str | None:
        """A job started: it belongs to the open session, if any (counted at its end)."""
        session = self.current
        if session is None:
            return None
        session.jobs += 1
        return session.session_id

    def add_material(self, session_id: str | None, grams: float) -> None:
        """A job of the open session ended having used ``grams`` of material; recorded
        in the journal's session state at once, so a power cut keeps it."""
        session = self.current
        if session is None or session.session_id != session_id:
            return
        session.material_g = round((session.material_g or 0.0) + grams, 2)
        self.recorder.set_state({"open_session": session.to_state(self.mono(), self.trust.now())})

    def job_owner(self, session_id: str | None, *, ended: bool, mono: float) -> OpenSession | None:
        """The open session if the job is its own; a job's end counts as activity."""
        session = self.current
        if session is None or session.session_id != session_id:
            return None
        if ended:
            session.job_ended = mono
            session.last_active = mono
        return session

    def heartbeat_due(self) -> bool:
        return (
            self.current is not None
            and self.mono() - self._last_heartbeat >= self.cfg.heartbeat.total_seconds()
        )

    def heartbeat(self) -> None:
        """Record the session's last known time, so a power cut bills up to here."""
        assert self.current is not None
        mono = self.mono()
        self._last_heartbeat = mono
        state: dict[str, Any] = {"open_session": self.current.to_state(mono, self.trust.now())}
        floor = self.trust.floor_text(mono)
        if floor is not None:
            state["time_floor"] = floor  # same commit: no extra write
        self.recorder.set_state(state)


def _grams(value: Any) -> float | None:
    """The journal state's material, bounded as the contract wants it (a corrupted or
    hand-edited journal must not stop the session from closing)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        return None
    return round(min(float(value), MAX_GRAMS), 2)
