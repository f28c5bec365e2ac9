"""Badge readers behind one polling interface, and the debouncer that turns reads into taps.

Readers are polled (never block) so the node's loop stays in charge of timing: it can
switch the relay off or send a heartbeat between two polls. A reader reports what is on
it *now*; deciding what counts as a tap is the debouncer's job, so that every reader,
real or simulated, gets the same tap semantics.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from types import TracebackType
from typing import Protocol

from gateway.core.clock import MonoClock


class TapInjector(Protocol):
    """Puts a tap on a reader from software (the demo's sim-tap topic, a test)."""

    def present(self, uid: str) -> None: ...


class BadgeReader(ABC):
    """One badge reader, polled by the node's loop."""

    @abstractmethod
    def poll(self) -> str | None:
        """One non-blocking read: the normalised UID of the card on the reader, or None."""

    @abstractmethod
    def close(self) -> None:
        """Release the hardware; safe to call more than once."""

    @property
    def injector(self) -> TapInjector | None:
        """Where software may present a card, or None for a reader only a card can feed.

        The node asks this instead of testing for a simulated reader's class, so it
        accepts simulated taps exactly when its reader can take them.
        """
        return None

    def __enter__(self) -> BadgeReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class TapDebouncer:
    """A card held on the reader is one tap, however many polls see it.

    Readers see a held card on many polls (an RC522 even loses it on every other poll, see
    ``rc522``), so a UID counts again only after it has been away for ``hold_off``
    seconds, measured from the last poll that saw it. A different UID counts at once. The
    clock must be monotonic: a wall-clock jump (NTP sync on a Pi without RTC) must
    not turn one tap into two or swallow the next one.
    """

    def __init__(self, hold_off: float, clock: MonoClock = time.monotonic) -> None:
        if hold_off < 0:
            raise ValueError(f"hold_off must be >= 0 seconds, got {hold_off}")
        self.hold_off = hold_off
        self._clock = clock
        self._last_seen: dict[str, float] = {}

    def feed(self, uid: str | None) -> str | None:
        """Give one poll result; returns the UID when it is a new tap, else None."""
        now = self._clock()
        # Forget cards gone long enough, so the table stays as small as the reader's field.
        self._last_seen = {u: t for u, t in self._last_seen.items() if now - t < self.hold_off}
        if uid is None:
            return None
        is_new = uid not in self._last_seen
        self._last_seen[uid] = now
        return uid if is_new else None
