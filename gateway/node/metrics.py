"""The node's metrics as a node_exporter textfile, rewritten on an interval (off by default).

A Pi already running Prometheus' node_exporter gets the node's own gauges by pointing the
textfile collector (``--collector.textfile.directory``) at the directory of
``metrics.textfile``; no port is opened on the node for it. The file is written whole to
a temporary file beside it and renamed over it, so the collector never reads half a
file. Written by the loop only (it reads the loop's state), at most every
``metrics.every``; a failed write is logged (once until one works again) and never
disturbs the loop. The format is written here (a handful of gauges with one label whose
value is an id: nothing to escape), so a node needs no Prometheus library.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

# name -> help; values are floats, None leaves the metric out (unknown).
HELP = {
    "fabgate_node_relay_on": "1 when the relay is on (the machine has power)",
    "fabgate_node_session_open": "1 while a session is open",
    "fabgate_node_journal_backlog": "Events in the journal the hub has not acknowledged",
    "fabgate_node_journal_ok": "1 when the journal can be written",
    "fabgate_node_snapshot_age_seconds": "Age of the held snapshot (absent: none, or undatable)",
    "fabgate_node_snapshot_max_age_seconds": "Past this age the node denies every tap",
    "fabgate_node_broker_connected": "1 when the node is connected to the MQTT broker",
    "fabgate_node_reader_last_read_timestamp_seconds": "When the badge reader last answered a "
    "poll (Unix time)",
    "fabgate_node_metrics_written_timestamp_seconds": "When this file was written (Unix time)",
}


def render(node: str, values: dict[str, float | None]) -> str:
    lines = []
    for name, value in values.items():
        if value is None:
            continue
        lines.append(f"# HELP {name} {HELP.get(name, name)}")
        lines.append(f"# TYPE {name} gauge")
        lines.append(f'{name}{{node="{node}"}} {float(value)!r}')
    return "\n".join(lines) + "\n"


class MetricsFile:
    def __init__(self, path: Path, every_s: float, mono: Callable[[], float]) -> None:
        self.path = path
        self.every_s = every_s
        self.mono = mono
        self._last = float("-inf")
        self._failing = False

    def due(self) -> bool:
        return self.mono() - self._last >= self.every_s

    def write(self, text: str) -> bool:
        """Replace the file with ``text`` atomically; False (logged) when it cannot."""
        self._last = self.mono()
        tmp: str | None = None
        try:
            fd, tmp = tempfile.mkstemp(prefix=".fabgate-", suffix=".tmp", dir=self.path.parent)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            os.chmod(tmp, 0o644)  # node_exporter runs as its own user
            os.replace(tmp, self.path)
            tmp = None
        except OSError as exc:
            if not self._failing:
                log.warning("cannot write the metrics file %s: %s", self.path, exc)
            self._failing = True
            return False
        finally:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
        if self._failing:
            log.info("metrics file %s written again", self.path)
        self._failing = False
        return True
