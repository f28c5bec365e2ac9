"""The loop's inbox: messages other threads received, handled by the loop in arrival order.

The loop owns the state (rule 4 of ``gateway/node/agent.py``): paho's thread must never
change it, so an MQTT handler only puts ``(kind, payload)`` here and returns; each
``step()`` drains the inbox first. One bad message is logged and dropped, never allowed
to stop the loop.
"""

from __future__ import annotations

import logging
import queue
from collections.abc import Callable, Mapping

log = logging.getLogger(__name__)

Message = tuple[str, bytes]


class Inbox:
    """Thread-safe: any thread puts, the loop drains (or, at shutdown, ``get``s)."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[Message] = queue.SimpleQueue()

    def put(self, kind: str, payload: bytes = b"") -> None:
        self._queue.put((kind, payload))

    def get(self, timeout: float) -> Message | None:
        """The next message, waiting at most ``timeout`` seconds (None: none came)."""
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def drain(self, handlers: Mapping[str, Callable[[bytes], None]]) -> None:
        """Handle every message waiting, in order, each by the handler of its kind."""
        while True:
            try:
                kind, payload = self._queue.get_nowait()
            except queue.Empty:
                return
            try:
                handlers[kind](payload)
            except Exception:  # one bad message must not stop the loop
                log.exception("handling a %s message failed; ignored", kind)
