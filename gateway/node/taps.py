"""What a badge tap does: the special taps first, then the access policy, then the session.

The path every tap takes, in one place: a badge UID from the reader, a decision from the
pure access policy (``gateway/policies/access.py``) on the held snapshot and the
trusted time, then a session start (journal before relay), a badge-out or a denial,
and the staff presence a staff member's tap implies. A tap while the journal cannot be
written is denied (``journal_unavailable``) and kept in memory: no journal, no power.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from gateway.config import NodeConfig
from gateway.contract import StaffPresence, Tap
from gateway.core.ids import normalise_uid
from gateway.core.snapshot import MemberGrant
from gateway.node.certify import CertifyDesk
from gateway.node.recorder import Recorder
from gateway.node.sessions import Sessions
from gateway.node.trust import Trust
from gateway.policies.access import Action, Decision, MachineState, Reason, decide
from gateway.policies.presence import presence_until, staff_present, staff_toggle

log = logging.getLogger(__name__)


class TapHandler:
    """Turns each tap into its decision and what follows from it; loop thread only.

    ``local_presence_until`` is the staff presence this node's own taps set (the hub's
    is in the snapshot). ``expect`` ties a simulated tap's id to the next tap of its UID.
    """

    def __init__(
        self,
        cfg: NodeConfig,
        *,
        trust: Trust,
        recorder: Recorder,
        sessions: Sessions,
        certify: CertifyDesk,
        publish_status: Callable[[], None],
        wake: Callable[[], None],
    ) -> None:
        self.max_snapshot_age = cfg.max_snapshot_age
        self.trust = trust
        self.recorder = recorder
        self.sessions = sessions
        self.certify = certify
        self._publish_status = publish_status
        self._wake = wake
        self.local_presence_until: datetime | None = None
        self._tap_ids: dict[str, str] = {}

    def expect(self, uid: str, tap_id: str) -> None:
        """A simulated tap's id: its tap event carries it, so a test or the demo finds it."""
        self._tap_ids[uid] = tap_id

    def handle(self, raw_uid: str) -> Decision | None:
        try:
            uid = normalise_uid(raw_uid)
        except ValueError:
            log.warning("reader returned %r, which is not a badge UID; ignored", raw_uid)
            return None
        now = self.trust.now()
        tap_id = self._tap_ids.pop(uid, None)
        if not self.recorder.ok:
            return self._deny_unrecorded(uid, tap_id)
        if self.certify.special_tap(uid, now, tap_id):
            self._publish_status()
            self._wake()
            return None
        session = self.sessions.current
        interlock = self.sessions.interlock()
        state = MachineState(
            session_member_id=session.member_id if session else None,
            session_badge_uid=session.badge_uid if session else None,
            interlock=interlock.name if interlock else None,
        )
        snap = self.trust.snapshot
        present = staff_present(snap, self.local_presence_until, now)
        decision = decide(
            snap,
            badge_uid=uid,
            now=now,
            staff_present=present,
            state=state,
            max_snapshot_age=self.max_snapshot_age,
            snapshot_age=self.trust.snapshot_age(),
        )
        member = decision.member
        tap = Tap(
            uid=uid,
            member_id=member.member_id if member else None,
            action=str(decision.action),
            reason=decision.wire_reason,
            tap_id=tap_id,
            certify_mode=self.certify.entering,
        )
        if decision.action == Action.START and member:
            credit = member.credit_s if snap and snap.machine.requires_credit else None
            if not self.sessions.start(
                uid,
                member.member_id,
                member.name,
                member.project_id,
                now,
                present,
                tap=tap,
                credit_limit_s=credit,
            ):
                self.certify.after_tap(None, uid)
                return self._deny_unrecorded(uid, tap_id, member=member)
        else:
            self.recorder.append(tap)
            if decision.action == Action.END:
                self.sessions.badge_out()
            elif (
                decision.reason == Reason.OUT_OF_SERVICE
                and snap
                and snap.machine.out_of_service_reason
            ):
                log.info(
                    "tap %s denied: %s (%s)",
                    uid,
                    decision.reason,
                    snap.machine.out_of_service_reason,
                )
            else:
                log.info("tap %s denied: %s", uid, decision.wire_reason)
        if member:
            self._staff_presence(decision, now)
        self.certify.after_tap(member, uid)
        self._publish_status()
        self._wake()
        return decision

    def _deny_unrecorded(
        self, uid: str, tap_id: str | None, *, member: MemberGrant | None = None
    ) -> Decision:
        """A tap while the journal cannot be written: denied, kept for the journal."""
        snap = self.trust.snapshot
        if member is None and snap is not None:
            member = snap.member_for_badge(uid)
        decision = Decision(Action.DENY, Reason.JOURNAL_UNAVAILABLE, member)
        tap = Tap(
            uid=uid,
            member_id=member.member_id if member else None,
            action=str(decision.action),
            reason=str(decision.reason),
            tap_id=tap_id,
        )
        self.recorder.defer(tap.TYPE, tap.to_data(), self.trust.now())
        log.warning("tap %s denied: %s (the journal cannot be written)", uid, decision.reason)
        self._publish_status()
        return decision

    def _staff_presence(self, decision: Decision, now: datetime) -> None:
        assert decision.member is not None
        locally = self.local_presence_until is not None and self.local_presence_until > now
        change = staff_toggle(decision.member, decision, locally)
        if change is None:
            return
        until = None
        snap = self.trust.snapshot
        if change and snap:
            until = presence_until(snap.opening_hours, snap.timezone, now)
        self.local_presence_until = until
        self.recorder.append(
            StaffPresence(member_id=decision.member.member_id, present=change, until=until)
        )
