"""What the running hub knows of itself and no table holds: its ingest, as it happens.

One ``HubMonitor`` per ``HubService`` (never a module global: several hubs in one test
process must not add into each other's counts). The MQTT thread notes each arrival, the
ingest loop each batch it stored or failed; ``/metrics`` and the alert loop read a
:meth:`HubMonitor.view` at any time. The database holds everything else they show.

Ingest latency is receive -> stored: from the moment paho hands the hub a message to the
commit of the batch that stored it, on the monotonic clock.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from gateway.core.clock import utcnow

# Seconds. Ingest batches commit within milliseconds when well; seconds mean trouble.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@dataclass(frozen=True)
class IngestView:
    received: int
    stored: int
    failed: int
    waiting_s: float | None  # age of the oldest message received and not stored yet
    buckets: tuple[tuple[float, int], ...]  # (upper bound, cumulative count), +Inf last
    latency_sum: float
    latency_count: int


@dataclass(frozen=True)
class MonitorView:
    ingest: IngestView
    published: dict[str, datetime] = field(default_factory=dict)  # machine -> last snapshot
    health: dict[str, Any] = field(default_factory=dict)  # HubService.health()


class HubMonitor:
    """Counters and the latency histogram of one hub's ingest; thread-safe."""

    def __init__(
        self,
        mono: Callable[[], float],
        health: Callable[[], dict[str, Any]] | None = None,
        wall: Callable[[], datetime] = utcnow,
    ) -> None:
        self.mono = mono
        self.wall = wall  # the hub's wall clock: /metrics judges ages on it
        self.health = health
        self._lock = threading.Lock()
        self._received = 0
        self._stored = 0
        self._failed = 0
        self._counts = [0] * (len(LATENCY_BUCKETS) + 1)
        self._sum = 0.0
        self._waiting_since: float | None = None
        self._published: dict[str, datetime] = {}

    def arrived(self) -> float:
        """A message came in (MQTT thread): its receive time, to hand back at commit."""
        now = self.mono()
        with self._lock:
            self._received += 1
            if self._waiting_since is None:
                self._waiting_since = now
        return now

    def batch_done(
        self, received: Sequence[float], stored: int, failed: int, next_waiting: float | None
    ) -> None:
        """A batch was handled: ``stored`` of its messages committed, ``failed`` did not.

        Latency is recorded for the committed ones (the first ``stored`` receive times:
        a batch is handled in arrival order). When anything committed, the oldest
        message still waiting is ``next_waiting`` (the inbox's head, or None); a batch
        that stored nothing leaves the wait running, so an ingest that keeps failing is
        seen as stalled.
        """
        now = self.mono()
        with self._lock:
            self._stored += stored
            self._failed += failed
            for t in received[:stored]:
                latency = max(0.0, now - t)
                self._counts[bisect.bisect_left(LATENCY_BUCKETS, latency)] += 1
                self._sum += latency
            if stored or not failed:
                self._waiting_since = next_waiting
            elif self._waiting_since is None and received:
                self._waiting_since = received[0]

    def published(self, machine: str, at: datetime) -> None:
        with self._lock:
            self._published[machine] = at

    def view(self) -> MonitorView:
        now = self.mono()
        with self._lock:
            cumulative = []
            total = 0
            for bound, n in zip((*LATENCY_BUCKETS, float("inf")), self._counts, strict=True):
                total += n
                cumulative.append((bound, total))
            ingest = IngestView(
                received=self._received,
                stored=self._stored,
                failed=self._failed,
                waiting_s=None if self._waiting_since is None else now - self._waiting_since,
                buckets=tuple(cumulative),
                latency_sum=self._sum,
                latency_count=total,
            )
            published = dict(self._published)
        return MonitorView(ingest, published, self.health() if self.health else {})
