"""What the node believes: the signed snapshot it holds and the time the hub signed.

A node decides offline, so both must hold up against a forged or replayed message and a
wrong wall clock (docs/design.md, "Trusted time"). Kept apart from the loop because the
three things tie together: a snapshot is checked against the trusted "now", an accepted
one raises the time floor and starts its monotonic age, and what must survive a restart
(the floor, the snapshot's own bytes) is read back from the journal in one place.

Holds state only; it writes nothing. The loop journals a rejection and the state this
returns (``lasting_state``), so a journal failure is handled where the others are.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gateway.contract import ContractError, parse_iso
from gateway.contract.signing import SnapshotRejected, verify_snapshot
from gateway.core.clock import iso
from gateway.core.snapshot import Snapshot
from gateway.policies import trusted_time
from gateway.policies.access import snapshot_stale

log = logging.getLogger(__name__)


class Trust:
    """The held snapshot (``snapshot``) and the node's trusted "now" (``now()``).

    ``changed`` is called (on the loop thread) when ``clock_behind`` flips, so the
    status says so at once.
    """

    def __init__(
        self,
        public_key: Ed25519PublicKey,
        machine_id: str,
        *,
        wall: Callable[[], datetime],
        mono: Callable[[], float],
        changed: Callable[[], None],
    ) -> None:
        self.public_key = public_key
        self.machine_id = machine_id
        self.wall = wall
        self.mono = mono
        self._changed = changed
        self.snapshot: Snapshot | None = None
        self.clock_behind = False
        self._held_payload: bytes | None = None
        # The newest hub-signed time, and when the held snapshot arrived.
        self._floor: trusted_time.SignedTime | None = None
        self._receipt: trusted_time.Receipt | None = None

    # -- time -------------------------------------------------------------------------

    def now(self) -> datetime:
        """The wall clock, never below the hub-signed bound; flags a clock found behind."""
        wall, mono = self.wall(), self.mono()
        behind = trusted_time.clock_behind(wall, self._floor, mono)
        if behind != self.clock_behind:
            self.clock_behind = behind
            self._changed()
            if behind:
                log.warning(
                    "the wall clock (%s) is behind the time signed by the hub (%s): "
                    "deciding with the signed time; check NTP",
                    iso(wall),
                    iso(self._floor.bound(mono)) if self._floor else "?",
                )
            else:
                log.info("the wall clock has caught up with the time signed by the hub")
        return trusted_time.trusted_now(wall, self._floor, mono)

    def floor_text(self, mono: float) -> str | None:
        """The signed time bound as the journal keeps it (None before any snapshot)."""
        return None if self._floor is None else iso(self._floor.bound(mono))

    def _raise_floor(self, signed_at: datetime, mono: float | None) -> None:
        self._floor = trusted_time.latest(
            self._floor, trusted_time.SignedTime(signed_at, mono), self.mono()
        )

    def snapshot_age(self) -> timedelta | None:
        """The held snapshot's age on the monotonic clock (unknown: older than any limit)."""
        if self.snapshot is None or self._receipt is None:
            return None
        if self._receipt.age is None:
            now = self.now()  # a restart with the clock behind: anchor once it catches up
            if not self.clock_behind:
                self._receipt = trusted_time.receive(self.snapshot.issued_at, now, self.mono())
        return trusted_time.snapshot_age(self._receipt, self.mono())

    def fresh_snapshot(self, max_age: timedelta) -> Snapshot | None:
        """The held snapshot while it may still be believed (the age taps are refused
        at, ``snapshot_too_old``), else None. A held snapshot was verified when accepted;
        this adds that it has not expired since."""
        snap = self.snapshot
        if snap is None or snapshot_stale(snap, self.now(), max_age, self.snapshot_age()):
            return None
        return snap

    # -- snapshots --------------------------------------------------------------------

    def accept(self, payload: bytes) -> Snapshot | None:
        """Hold the snapshot in ``payload``, or raise :class:`SnapshotRejected` saying why.

        None: the retained copy of the snapshot already held, redelivered on reconnect
        (not an alarm). Any other error a crafted payload may provoke is a ``malformed``
        rejection, never an exception that could stop the loop.
        """
        held = self.snapshot
        try:
            snap = verify_snapshot(
                payload,
                self.public_key,
                now=self.now(),
                machine_id=self.machine_id,
                current_version=held.version if held else None,
                current_epoch=held.epoch if held else None,
            )
        except SnapshotRejected as exc:
            if exc.reason == "older" and payload == self._held_payload:
                return None
            raise
        except Exception as exc:
            log.exception("snapshot verification failed unexpectedly")
            raise SnapshotRejected("malformed", f"{type(exc).__name__}: {exc}"[:200]) from exc
        mono = self.mono()
        self.snapshot = snap
        self._held_payload = payload
        self._raise_floor(snap.issued_at, mono)
        self._receipt = trusted_time.receive(snap.issued_at, self.now(), mono)
        log.info(
            "snapshot version %s accepted (%d badges, valid until %s)",
            snap.version,
            len(snap.badges),
            iso(snap.valid_until),
        )
        rules = snap.machine.session
        if (held.machine.session if held else None) != rules:
            log.info(
                "session rules set by the hub: %s",
                ", ".join(f"{k}={v}" for k, v in rules.to_dict().items()) or "none",
            )
        return snap

    def restore(self, floor: Any, held: Any) -> None:
        """After a restart: the floor and snapshot the journal kept (its raw values)."""
        if isinstance(floor, str):
            try:
                self._raise_floor(parse_iso(floor, "time_floor"), None)
            except ContractError as exc:
                log.warning("ignored the recorded time floor: %s", exc)
        if held and self.snapshot is None:
            self._load_held(held.encode())

    def _load_held(self, payload: bytes) -> None:
        try:
            snap = verify_snapshot(
                payload, self.public_key, now=self.now(), machine_id=self.machine_id
            )
        except SnapshotRejected as exc:
            log.warning("held snapshot not usable: %s", exc)
            return
        self.snapshot = snap
        self._held_payload = payload
        self._raise_floor(snap.issued_at, None)
        # The node cannot know how long it was off: with a wall clock behind the signed
        # floor (a Pi without RTC before NTP) the snapshot's age is unknown, so stale.
        now = self.now()
        self._receipt = trusted_time.receive(
            snap.issued_at, None if self.clock_behind else now, self.mono()
        )
        log.info("using held snapshot version %s", snap.version)

    def lasting_state(self) -> dict[str, Any]:
        """What must survive a restart to keep trusting time: the floor, the snapshot."""
        state: dict[str, Any] = {}
        floor = self.floor_text(self.mono())
        if floor is not None:
            state["time_floor"] = floor
        if self._held_payload is not None:
            state["snapshot"] = self._held_payload.decode()
        return state
