"""The taps that are not about power: certifying at the machine, enrolling a badge.

A trainer certifies a member where the training happened: two taps of the trainer open
certify mode, and the next member below the machine's certify level who taps within
``CERTIFY_WINDOW_S`` is certified. An unknown badge tapped while the hub has an
enrolment window open is sent to the hub for the member the window names. Both are
decided here, apart from the access policy, because neither may ever switch the power:
the hub checks each against its own records (a live trainer, a window it opened).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from gateway.config import NodeConfig
from gateway.contract import (
    BadgeEnrolled,
    CertificationGranted,
    ContractError,
    Tap,
    loads_object,
    parse_iso,
)
from gateway.core.levels import Level
from gateway.core.snapshot import MemberGrant
from gateway.node.recorder import Recorder
from gateway.node.trust import Trust

log = logging.getLogger(__name__)

# A trainer enters certify mode by tapping twice: the second tap must come within this
# long after the reader lets the same card count again (reader.hold_off).
CERTIFY_DOUBLE_TAP_S = 3.0
CERTIFY_WINDOW_S = 15.0  # then the trainee taps within this long


class CertifyDesk:
    """Certify mode (``trainer`` while open) and the hub's enrolment window (``enrolment``).

    Loop thread only. ``entering`` is true during the tap that opens certify mode, so
    that tap's event says so (``certify_mode``).
    """

    def __init__(
        self, cfg: NodeConfig, recorder: Recorder, trust: Trust, *, mono: Callable[[], float]
    ) -> None:
        self.machine_id = cfg.machine_id
        self.hold_off = cfg.reader.hold_off
        self.recorder = recorder
        self.trust = trust
        self.mono = mono
        self.trainer: MemberGrant | None = None
        self.until: float | None = None
        self.entering = False
        self.enrolment: dict[str, Any] | None = None
        self._last_trainer_tap: tuple[str, float] | None = None

    def special_tap(self, uid: str, now: datetime, tap_id: str | None) -> bool:
        """True if the tap was a trainee's or an enrolment, journaled here and done."""
        mono = self.mono()
        snap = self.trust.snapshot
        who = snap.member_for_badge(uid) if snap else None
        if self.until is not None and mono > self.until:
            log.info("certify mode ended without a trainee tap")
            self.trainer, self.until = None, None
        trainer = self.trainer
        if (
            trainer is not None
            and who is not None
            and snap is not None
            and who.member_id != trainer.member_id
            and who.level < snap.machine.certify_level
        ):
            # A member already at that level is not a trainee: their tap acts as usual.
            self._certify(uid, tap_id, trainer, who)
            return True
        last = self._last_trainer_tap
        if (
            who is not None
            and snap is not None
            and who.level >= Level.TRAINER
            and who.status == "active"
            and last is not None
            and last[0] == uid
            and mono - last[1] <= self.hold_off + CERTIFY_DOUBLE_TAP_S
        ):
            # The second tap still does what a tap does (usually a badge-out: power never
            # stays on by surprise); certify mode opens on top of it.
            self.trainer, self.until = who, mono + CERTIFY_WINDOW_S
            self.entering = True
            log.info(
                "certify mode for %.0f s: %s may certify the next member who taps",
                CERTIFY_WINDOW_S,
                who.name,
            )
        enrol = self.enrolment
        if who is None and enrol is not None and now < enrol["until"]:
            self.enrolment = None
            self._journal_tap(uid, tap_id, None, "enrol", "enrolment")
            self.recorder.append(
                BadgeEnrolled(request_id=enrol["request_id"], uid=uid, member_id=enrol["member_id"])
            )
            log.info("unknown badge %s sent to the hub for enrolment", uid)
            return True
        return False

    def after_tap(self, member: MemberGrant | None, uid: str) -> None:
        """A tap went the usual way: a trainer's may be the first of a double tap."""
        if member is not None:
            if self.entering:
                self._last_trainer_tap = None
            elif member.level >= Level.TRAINER:
                self._last_trainer_tap = (uid, self.mono())
        self.entering = False

    def _certify(
        self, uid: str, tap_id: str | None, trainer: MemberGrant, trainee: MemberGrant
    ) -> None:
        snap = self.trust.snapshot
        assert snap is not None
        level = snap.machine.certify_level
        self.trainer, self.until = None, None
        self._journal_tap(uid, tap_id, trainee.member_id, "certify", "certified")
        self.recorder.append(
            CertificationGranted(
                trainer_id=trainer.member_id,
                member_id=trainee.member_id,
                group=snap.machine.group,
                level=level,
                machine=self.machine_id,
            )
        )
        log.info(
            "%s certified %s at level %d on %s",
            trainer.name,
            trainee.name,
            level,
            snap.machine.group,
        )

    def _journal_tap(
        self, uid: str, tap_id: str | None, member_id: str | None, action: str, reason: str
    ) -> None:
        self.recorder.append(
            Tap(uid=uid, member_id=member_id, action=action, reason=reason, tap_id=tap_id)
        )

    def on_enrolment(self, payload: bytes) -> None:
        """The hub opens (or, without a request id, closes) an enrolment window."""
        try:
            obj = loads_object(payload, "enrolment request")
            request_id = obj.get("request_id")
            self.enrolment = (
                None
                if not request_id
                else {
                    "request_id": str(request_id),
                    "member_id": obj.get("member_id"),
                    "until": parse_iso(obj.get("until"), "enrolment until"),
                }
            )
        except ContractError as exc:
            log.warning("ignored a malformed enrolment request: %s", exc)
