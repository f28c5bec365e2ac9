"""Badge readers behind one polling interface, and the debouncer that turns reads into taps.

Readers are polled (never block) so the node's loop stays in charge of timing: it can
switch the relay off or send a heartbeat between two polls. A reader reports what is on
it *now*; deciding what counts as a tap is the debouncer's job, so that every reader,
real or simulated, gets the same tap semantics.
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING

from gateway.uids import normalise_uid

if TYPE_CHECKING:
    from gateway.config import ReaderConfig

log = logging.getLogger(__name__)


class BadgeReader(ABC):
    """One badge reader, polled by the node's loop."""

    @abstractmethod
    def poll(self) -> str | None:
        """One non-blocking read: the normalised UID of the card on the reader, or None."""

    @abstractmethod
    def close(self) -> None:
        """Release the hardware; safe to call more than once."""

    def __enter__(self) -> BadgeReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class SimulatedReader(BadgeReader):
    """A reader fed by software (demo, tests, the sim-tap MQTT topic).

    Each presented card is on the reader for exactly one poll and then taken away: the
    poll after a read always returns None, even when more cards are queued, so a
    debouncer sees presence then absence as it would with a real tap. Two taps of the same
    badge still count as two only if the node's clock moves ``hold_off`` on between
    them, exactly as with a real card.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: deque[str] = deque()
        self._card_on_reader = False
        self._closed = False

    def present(self, uid: str) -> None:
        """Queue a tap; callable from any thread (e.g. an MQTT callback)."""
        card = normalise_uid(uid)  # a bad UID fails here, in the caller's hands
        with self._lock:
            if self._closed:
                log.debug("simulated reader closed; dropped tap of %s", card)
                return
            self._queue.append(card)

    def poll(self) -> str | None:
        with self._lock:
            if self._card_on_reader:
                self._card_on_reader = False  # the card is taken away
                return None
            if not self._queue:
                return None
            self._card_on_reader = True
            return self._queue.popleft()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._queue.clear()


class TapDebouncer:
    """A card held on the reader is one tap, however many polls see it.

    Readers see a held card on many polls (an RC522 even loses it on every other poll, see
    ``rc522``), so a UID counts again only after it has been away for ``hold_off``
    seconds, measured from the last poll that saw it. A different UID counts at once. The
    clock must be monotonic: a wall-clock jump (NTP sync on a Pi without RTC) must
    not turn one tap into two or swallow the next one.
    """

    def __init__(self, hold_off: float, clock: Callable[[], float] = time.monotonic) -> None:
        if hold_off < 0:
            raise ValueError(f"hold_off must be >= 0 seconds, got {hold_off}")
        self.hold_off = hold_off
        self._clock = clock
        self._last_seen: dict[str, float] = {}

    def feed(self, uid: str | None) -> str | None:
        """Give one poll result; returns the UID when it is a new tap, else None."""
        now = self._clock()
        # Forget cards gone long enough, so the table stays as small as the reader's field.
        self._last_seen = {
            u: t for u, t in self._last_seen.items() if now - t < self.hold_off}
        if uid is None:
            return None
        is_new = uid not in self._last_seen
        self._last_seen[uid] = now
        return uid if is_new else None


def make_reader(cfg: ReaderConfig) -> BadgeReader:
    """Build the reader a node config asks for: ``simulated`` or ``rc522``."""
    if cfg.driver == "simulated":
        return SimulatedReader()
    if cfg.driver == "rc522":
        from gateway.drivers.rc522 import RC522Reader

        return RC522Reader(bus=cfg.spi_bus, device=cfg.spi_device, rst_pin=cfg.rst_pin)
    raise ValueError(f"unknown reader driver {cfg.driver!r}; expected 'simulated' or 'rc522'")
