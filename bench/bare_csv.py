"""The bare per-minute CSV: what a short script with the standard library alone does.

The same rows as ``GET /api/v1/usage?granularity=minute&format=csv`` (one per started
minute of each closed session, with the session's stored amount shared over its minutes)
read from the same ``sessions`` table with ``sqlite3`` and written with ``csv.writer``
to ``/dev/null``, one datetime per row: the baseline the hub's export is compared with.
It imports nothing from the gateway on purpose, and has no HTTP in the way, so the ratio
shows what the hub's request, streaming and socket cost on top of plain CSV writing.

``python -m bench.bare_csv DB FROM TO`` (UTC ISO bounds of ``started_at``) prints one
JSON line: ``{"rows": ..., "chars": ..., "seconds": ...}``.
"""

from __future__ import annotations

import csv
import json
import math
import os
import sqlite3
import sys
import time
from datetime import datetime, timedelta

HEADER = [
    "minute_start",
    "session_id",
    "member_id",
    "member_name",
    "project_id",
    "machine_id",
    "seconds",
    "billable_minutes",
    "amount",
]
SQL = (
    "SELECT s.session_id, s.member_id, mb.name, s.project_id, s.machine_id, "
    "s.started_at, s.duration_s, s.amount_cents FROM sessions s "
    "LEFT JOIN members mb ON mb.id = s.member_id WHERE s.status = 'closed' "
    "AND s.started_at >= ? AND s.started_at < ? ORDER BY s.started_at, s.session_id"
)


class Counting:
    """A text sink that counts what it is given and keeps nothing (like /dev/null)."""

    def __init__(self, sink: object) -> None:
        self.sink = sink
        self.chars = 0

    def write(self, text: str) -> int:
        self.chars += len(text)
        return self.sink.write(text)  # type: ignore[attr-defined]


def run(db: str, start: str, end: str) -> dict[str, float]:
    t0 = time.perf_counter()
    con = sqlite3.connect(db)
    rows = 0
    with open(os.devnull, "w", newline="", encoding="utf-8") as devnull:
        out = Counting(devnull)
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(HEADER)
        for sid, member, name, project, machine, started, duration, amount in con.execute(
            SQL, (start, end)
        ):
            first = datetime.fromisoformat(started.replace("Z", "+00:00"))
            count = math.ceil(duration / 60) if duration > 0 else 0
            base, extra = divmod(amount or 0, count) if count else (0, 0)
            for k in range(count):
                when = first + timedelta(minutes=k)
                cents = base + 1 if k < extra else base
                writer.writerow(
                    [
                        when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                        sid,
                        member,
                        name,
                        project,
                        machine,
                        60.0 if k < count - 1 else round(duration - 60 * k, 3),
                        1,
                        f"{cents // 100}.{cents % 100:02d}",
                    ]
                )
                rows += 1
    con.close()
    return {"rows": rows, "chars": out.chars, "seconds": round(time.perf_counter() - t0, 3)}


if __name__ == "__main__":
    print(json.dumps(run(*sys.argv[1:4])))
