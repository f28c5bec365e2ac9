"""The journal sender: what is in the journal goes to the hub until the hub acknowledges it.

Events are sent from the journal, never from memory, so a dead broker or hub loses
nothing (docs/design.md, rule 2 of ``gateway/node/agent.py``). The sender runs on its
own thread (supervised: a crash is logged and it starts again) so a slow broker never
delays a tap; it reads the journal (locked inside) and publishes. The one thing it
shares with the loop is the in-flight table (event id -> when it was last published),
under a lock: the loop clears it on reconnect and removes what the hub acknowledges.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from gateway.contract import ContractError, decode_ack
from gateway.contract.mqtt import MqttLink
from gateway.core.supervise import Beat
from gateway.node.inbox import Inbox
from gateway.node.journal import Journal, JournalUnavailable
from gateway.node.recorder import Recorder

log = logging.getLogger(__name__)

RESEND_AFTER_S = 10.0  # an event not acknowledged by then is sent again
MAX_IN_FLIGHT = 200  # unacknowledged events published at a time


class Outbox:
    """Sends the journal's unacknowledged events in order, a bounded window at a time."""

    def __init__(
        self,
        journal: Journal,
        recorder: Recorder,
        *,
        link: MqttLink | None,
        topic: str,
        mono: Callable[[], float],
        stopping: threading.Event,
    ) -> None:
        self.journal = journal
        self.recorder = recorder
        self.link = link
        self.topic = topic
        self.mono = mono
        self.stopping = stopping
        self._wake = threading.Event()
        self._sent: dict[str, float] = {}  # event id -> mono time of last publish
        self._lock = threading.Lock()

    def wake(self) -> None:
        """Something new is in the journal (or the link is back): send without waiting."""
        self._wake.set()

    # -- the sender thread ------------------------------------------------------------

    def run(self, beat: Beat) -> None:
        """The sender loop: reads the journal, publishes, touches no loop state."""
        while not self.stopping.is_set():
            beat()
            self._wake.wait(1.0)
            self._wake.clear()
            if self.stopping.is_set():
                return  # shutdown's flush sends what is left
            if self.link is None or not self.link.connected.is_set():
                continue
            try:
                self.send_due()
            except JournalUnavailable as exc:
                log.debug("journal sender: %s", exc)  # the loop reports and retries it

    def send_due(self) -> None:
        """Publish unacknowledged events in order, a bounded window at a time."""
        assert self.link is not None
        now = self.mono()
        with self._lock:
            in_flight = sum(1 for t in self._sent.values() if now - t < RESEND_AFTER_S)
        budget = MAX_IN_FLIGHT - in_flight
        if budget <= 0:
            return
        for ev in self.journal.pending(limit=MAX_IN_FLIGHT * 2):
            if budget <= 0:
                break
            with self._lock:
                last = self._sent.get(ev.id)
                if last is not None and now - last < RESEND_AFTER_S:
                    continue
            if self.link.publish(self.topic, ev.payload, qos=1) is None:
                return
            with self._lock:
                self._sent[ev.id] = now
            budget -= 1

    # -- the loop's side --------------------------------------------------------------

    def on_connected(self) -> None:
        """Whatever was in flight may be lost with the old connection: send it again."""
        with self._lock:
            self._sent.clear()

    def on_ack(self, payload: bytes) -> None:
        """The hub has the events named: they leave the journal (loop thread)."""
        try:
            ids = decode_ack(payload)
        except ContractError as exc:
            log.warning("ignored a malformed acknowledgement: %s", exc)
            return
        with self._lock:
            for i in ids:
                self._sent.pop(i, None)
        if not self.recorder.ok:
            return  # the hub acknowledges again when the events are resent
        try:
            removed = self.journal.ack(ids)
        except JournalUnavailable as exc:
            self.recorder.down(exc)
            return
        log.debug("hub acknowledged %d events (%d removed from the journal)", len(ids), removed)
        self.wake()

    def flush(self, timeout: float, inbox: Inbox) -> bool:
        """At shutdown: give the hub a moment to acknowledge what is left.

        Runs on the real monotonic clock (the loop's may be a test's, standing still).
        Only acknowledgements are taken from the inbox: nothing else matters any more.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if not self.recorder.ok or self.journal.count() == 0:
                    break
                if self.link and self.link.connected.is_set():
                    self.send_due()
            except JournalUnavailable:
                break
            message = inbox.get(timeout=min(0.2, max(0.0, deadline - time.monotonic())))
            if message is not None and message[0] == "ack":
                self.on_ack(message[1])
        try:
            return self.recorder.ok and self.journal.count() == 0
        except JournalUnavailable:
            return False
