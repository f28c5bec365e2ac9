"""The interface every machine-controller driver implements, whatever link it speaks.

Drivers differ only in how they learn what the machine does, so each implements
:class:`MachineController` and reports :class:`~gateway.core.activity.MachineReport`
snapshots through a callback; turning a stream of reports into job events is pure code
(``gateway.policies.jobs``), shared by every driver.

Drivers never touch the relay. ``safe_stop()`` asks the controller itself to stop
(feed hold, cancel) and is only ever used where the session rules allow it; it is not
an emergency stop.
"""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable

from gateway.core.activity import Activity, MachineReport

log = logging.getLogger(__name__)


ReportCallback = Callable[[MachineReport], None]


class MachineController(ABC):
    """A driver: started once, reports through ``on_report`` from its own thread."""

    def __init__(self) -> None:
        self._callbacks: list[ReportCallback] = []
        self._last: MachineReport = MachineReport(Activity.UNKNOWN, detail="not started")
        self._lock = threading.Lock()

    def subscribe(self, callback: ReportCallback) -> None:
        self._callbacks.append(callback)

    @property
    def last_report(self) -> MachineReport:
        with self._lock:
            return self._last

    def _emit(self, report: MachineReport) -> None:
        """Drivers call this for every observation; a failing subscriber affects no other."""
        with self._lock:
            self._last = report
        for cb in list(self._callbacks):
            try:
                cb(report)
            except Exception:
                log.exception("a subscriber of %s failed on a report", type(self).__name__)

    def set_session_open(self, session_open: bool) -> None:
        """The node says whether a session is open; a driver that relays a G-code sender
        refuses its motion lines without one (GRBL). Others ignore it."""
        return

    @abstractmethod
    def start(self) -> None:
        """Open the link and begin polling in a background thread; never blocks long."""

    @abstractmethod
    def safe_stop(self) -> None:
        """Ask the controller to stop the job the way its makers intend (hold, cancel)."""

    @abstractmethod
    def close(self) -> None:
        """Stop polling and release the link; idempotent."""
