"""Every event the loop records, and what the node does when the journal cannot take it.

"No journal, no power" (docs/design.md): a write that fails switches the relay off and
cuts the open session at once, taps are denied and kept in memory, and the journal is
retried with back-off until it takes writes again. That rule is kept here, once, for
every write the loop makes, instead of at each place an event is born. ``Journal``
(``gateway/node/journal.py``) is the durable file; this is its health as the loop sees
it. The journal sender thread reads the journal directly and never comes through here.

A failure switches the relay off here, first; ending the open session and closing the
one the journal recorded are the sessions' business, reached through callbacks the agent
gives (the sessions write through this recorder, so they cannot be built before it).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from datetime import datetime
from typing import Any

from gateway import __version__
from gateway.contract import EventData, NodeBoot
from gateway.drivers.relay import Relay
from gateway.node.journal import Journal, JournalUnavailable
from gateway.node.trust import Trust

log = logging.getLogger(__name__)

# Events that could not be journaled (denials while the journal is unavailable, job
# events, rejected snapshots) wait in memory, oldest dropped first beyond this many.
DEFERRED_MAX = 200
JOURNAL_RETRY_MIN_S = 1.0  # back-off between attempts to reopen a failed journal
JOURNAL_RETRY_MAX_S = 30.0


def clip(text: str | None, limit: int) -> str | None:
    """Controller texts (file names, messages) within the contract's bounds: a long G-code
    path must not get an event refused at the hub."""
    if text is None or len(text) <= limit:
        return text
    return text[: limit - 1] + "\u2026"


class Recorder:
    """The loop's writes to the journal; ``ok`` is False while it cannot be written.

    Loop thread only. The open session is the agent's to reach: ``cut_session`` ends it
    at once when a write fails (the relay already off); ``close_session(reason)`` closes
    the one the journal says is open, at its last recorded time, and returns its id.
    """

    def __init__(
        self,
        journal: Journal,
        *,
        trust: Trust,
        relay: Relay,
        node_id: str,
        boot: str,
        mono: Callable[[], float],
        changed: Callable[[], None],
        cut_session: Callable[[], None],
        close_session: Callable[[str], str | None],
    ) -> None:
        self.journal = journal
        self.trust = trust
        self.relay = relay
        self.node_id = node_id
        self.boot = boot
        self.now = trust.now
        self.mono = mono
        self._changed = changed
        self._cut_session = cut_session
        self._close_session = close_session
        self.ok = False
        self._booted = False  # the start-up recovery and node.boot are in the journal
        self._failing = False  # the failure has been logged; retries are quiet
        self._deferred: deque[tuple[str, dict[str, Any], datetime]] = deque()
        self._dropped = 0
        self._retry_at = mono()
        self._backoff = JOURNAL_RETRY_MIN_S
        self._backlog = 0

    # -- writes -----------------------------------------------------------------------

    def append(
        self,
        event: EventData,
        *,
        state: dict[str, Any] | None = None,
        before: list[EventData] | None = None,
        defer: bool = True,
    ) -> bool:
        """Journal one event; False if the journal is unavailable (the node fails safe).

        Every event is built as its contract type (gateway.contract.events), so a field
        the hub does not expect is a TypeError here, at the source, not a refusal there.

        A failed event is kept in memory for later when ``defer`` is true; never for the
        events whose durability the relay depends on (session start, session end: those
        are closed from the journal's own state when it can be written again).
        """
        at = self.now()
        type_, data = event.TYPE, event.to_data()
        if self.ok:
            try:
                self.journal.append(
                    node=self.node_id,
                    boot=self.boot,
                    type=type_,
                    data=data,
                    time=at,
                    state=state,
                    before=[(e.TYPE, e.to_data()) for e in before or ()],
                )
                return True
            except JournalUnavailable as exc:
                self.down(exc)
        if defer:
            self.defer(type_, data, at)
        return False

    def write(self, event: EventData, *, state: dict[str, Any] | None = None) -> None:
        """Journal one event now or raise :class:`JournalUnavailable` (recovery only)."""
        self.journal.append(
            node=self.node_id,
            boot=self.boot,
            type=event.TYPE,
            time=self.now(),
            data=event.to_data(),
            state=state,
        )

    def set_state(self, values: dict[str, Any]) -> bool:
        if not self.ok:
            return False
        try:
            self.journal.set_states(values)
            return True
        except JournalUnavailable as exc:
            self.down(exc)
            return False

    def defer(self, type_: str, data: dict[str, Any], at: datetime) -> None:
        """Keep an event the journal cannot take yet (bounded: oldest dropped first)."""
        if len(self._deferred) >= DEFERRED_MAX:
            self._deferred.popleft()
            self._dropped += 1
        self._deferred.append((type_, data, at))

    def backlog(self) -> int:
        """Events the hub has not acknowledged yet, counting those waiting in memory."""
        if self.ok:
            try:
                self._backlog = self.journal.count()
            except JournalUnavailable as exc:
                log.warning("could not count the journal's backlog: %s", exc)
        return self._backlog + len(self._deferred)

    # -- failure and recovery ---------------------------------------------------------

    def down(self, exc: Exception) -> None:
        """The journal failed: power off, end the session at once, retry with back-off."""
        if not self._failing:
            log.error(
                "journal unavailable: %s; relay off and taps denied "
                "(journal_unavailable) until it can be written again",
                exc,
            )
            self._failing = True
            self._backoff = JOURNAL_RETRY_MIN_S
        else:
            log.debug("journal still unavailable: %s", exc)
        self.ok = False
        self._retry_at = self.mono() + self._backoff
        self._backoff = min(self._backoff * 2, JOURNAL_RETRY_MAX_S)
        self._changed()
        try:
            self.relay.off()
        finally:
            self._cut_session()

    def retry_due(self) -> bool:
        return not self.ok and self.mono() >= self._retry_at

    def open(self, *, reopen: bool) -> bool:
        """(Re)open the journal and write what waited for it; False while it still fails.

        Before anything else, what the journal says is open is closed at its last
        recorded time: at the first open of this boot, a session a crash or power cut
        left (once the trusted time and snapshot the journal kept are restored), then
        ``node.boot``; after a failure, the session the failure cut.
        """
        try:
            if reopen:
                self.journal.open()
            if not self._booted:
                self.trust.restore(
                    self.journal.get_state("time_floor"), self.journal.get_state("snapshot")
                )
                recovered = self._close_session("node_restart")
                if recovered:
                    log.warning(
                        "session %s was open at restart: relay stays off; closed at "
                        "its last recorded time",
                        recovered,
                    )
                self.write(
                    NodeBoot(version=__version__, recovered_session_id=recovered, relay=False)
                )
                self._booted = True
            elif recovered := self._close_session("journal_error"):
                log.warning("session %s closed at its last recorded time", recovered)
            while self._deferred:
                type_, data, at = self._deferred[0]
                self.journal.append(
                    node=self.node_id, boot=self.boot, type=type_, data=data, time=at
                )
                self._deferred.popleft()
            self.journal.set_states(self.trust.lasting_state())
        except JournalUnavailable as exc:
            self.down(exc)
            return False
        if self._dropped:
            log.warning(
                "%d events could not be kept while the journal was unavailable", self._dropped
            )
            self._dropped = 0
        if self._failing:
            log.warning("journal writable again: taps are decided as usual")
        self._failing = False
        self.ok = True
        self._backoff = JOURNAL_RETRY_MIN_S
        self._changed()
        return True
