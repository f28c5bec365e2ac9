"""A year of a busy fablab, written straight into a hub database.

Going through MQTT and ingest would take longer than every benchmark together, and the
accounting figures are about reading a year back, not writing it. So the schema comes
from ``HubStore`` (its migrations) and the rows go in with ``executemany`` in one
transaction. The shape is a plausible lab: each machine booked back to back on opening
days from 09:00, sessions of a few minutes to a few hours (mean about 20 minutes, so a
machine is busy 7 to 8 hours a day), members and projects drawn at random, reproducibly.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from math import ceil
from pathlib import Path
from zoneinfo import ZoneInfo

from gateway.hub.db import HubStore

TZ = "Europe/Paris"
YEAR = 2025
KINDS = [
    ("laser", "laser"),
    ("cnc", "cnc"),
    ("printer", "printing"),
    ("embroidery", "embroidery"),
    ("other", "wood"),
]


@dataclass(frozen=True)
class YearShape:
    members: int = 500
    machines: int = 30
    sessions: int = 250_000
    year: int = YEAR


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def machine_list(n: int) -> list[dict[str, object]]:
    return [
        {
            "id": f"{kind}-{i + 1:02d}",
            "name": f"{kind.title()} {i + 1}",
            "kind": kind,
            "group": group,
            "min_level": 2,
        }
        for i in range(n)
        for kind, group in [KINDS[i % len(KINDS)]]
    ]


def groups() -> list[dict[str, object]]:
    return [{"id": g, "name": g.title()} for g in sorted({g for _k, g in KINDS})]


def _durations(rng: random.Random) -> float:
    """Seconds: mostly short jobs, a long tail of long ones, 1 min to 4 h."""
    return min(4 * 3600.0, max(60.0, rng.lognormvariate(6.75, 0.9)))


def generate(
    db: Path, shape: YearShape, *, seed: int = 2025, focus_member: str | None = None
) -> dict[str, int]:
    """Write members, badges, projects, machines, certifications and closed sessions.

    ``focus_member`` (optional) also gets one session a day for the whole year, so a
    single member has a year of data whatever the shape.
    """
    rng = random.Random(seed)
    zone = ZoneInfo(TZ)
    store = HubStore(db)
    machines = machine_list(shape.machines)
    members = [f"m-{i:04d}" for i in range(shape.members)]
    days = (date(shape.year + 1, 1, 1) - date(shape.year, 1, 1)).days
    per_machine_day = shape.sessions / (shape.machines * days)
    rows: list[tuple[object, ...]] = []
    minutes = 0

    def session(machine: str, member: str, start: datetime, duration: float) -> None:
        nonlocal minutes
        end = start + timedelta(seconds=duration)
        billable = ceil(duration / 60)
        busy = round(duration * 0.7, 3)
        busy_min = ceil(busy / 60)
        minutes += billable
        rows.append(
            (
                uuid.UUID(int=rng.getrandbits(128)).hex,
                machine,
                machine,
                member,
                f"{0xC0000000 + int(member[2:]):08X}",
                f"p-{member[2:]}",
                _iso(start),
                _iso(end),
                duration,
                billable,
                "badge_out",
                "closed",
                _iso(start),
                busy,
                round(duration - busy, 3),
                busy_min,
                billable - busy_min,
                1,
            )
        )

    carry = 0.0
    for day in range(days):
        local = datetime(shape.year, 1, 1, 9, 0, tzinfo=zone) + timedelta(days=day)
        local = local.replace(hour=9)  # 09:00 local on both sides of a DST change
        for m in machines:
            carry += per_machine_day
            count, carry = int(carry), carry - int(carry)
            t = local
            for _ in range(count):
                d = _durations(rng)
                session(str(m["id"]), rng.choice(members), t, d)
                t += timedelta(seconds=d + rng.uniform(60, 600))
    while len(rows) < shape.sessions:  # rounding left a few: put them on the last evening
        session(
            str(machines[0]["id"]),
            rng.choice(members),
            datetime(shape.year, 12, 31, 22, 0, tzinfo=zone),
            600.0,
        )
    del rows[shape.sessions :]
    if focus_member:
        for day in range(days):
            start = datetime(shape.year, 1, 1, 20, 0, tzinfo=zone) + timedelta(days=day)
            session(str(machines[0]["id"]), focus_member, start.replace(hour=20), _durations(rng))
    try:
        with store.atomic():
            c = store.conn
            c.executemany(
                "INSERT OR IGNORE INTO groups (id, name) VALUES (?, ?)",
                [(g["id"], g["name"]) for g in groups()],
            )
            c.executemany(
                "INSERT INTO machines (id, name, kind, group_id, min_level) VALUES (?, ?, ?, ?, ?)",
                [(m["id"], m["name"], m["kind"], m["group"], m["min_level"]) for m in machines],
            )
            everyone = members + ([focus_member] if focus_member else [])
            c.executemany(
                "INSERT INTO members (id, name, category, status, membership_end, staff) "
                "VALUES (?, ?, ?, 'active', ?, 0)",
                [
                    (
                        m,
                        f"Member {m[2:]}",
                        "adherent" if i % 5 else "professionnel",
                        f"{shape.year + 1}-12-31",
                    )
                    for i, m in enumerate(everyone)
                ],
            )
            c.executemany(
                "INSERT INTO badges (uid, member_id) VALUES (?, ?)",
                [(f"{0xC0000000 + int(m[2:]):08X}", m) for m in everyone],
            )
            c.executemany(
                "INSERT INTO projects (id, member_id, name) VALUES (?, ?, ?)",
                [(f"p-{m[2:]}", m, f"Project of {m}") for m in everyone],
            )
            c.executemany(
                "INSERT INTO certifications (member_id, group_id, level, certified_at) "
                "VALUES (?, ?, 2, ?)",
                [
                    (m, g["id"], f"{shape.year - 1}-06-01T18:00:00.000Z")
                    for m in everyone
                    for g in groups()
                ],
            )
            c.executemany(
                "INSERT INTO sessions (session_id, node, machine_id, member_id, badge_uid, "
                "project_id, started_at, ended_at, duration_s, billable_minutes, end_reason, "
                "status, first_event_at, busy_s, idle_s, busy_minutes, idle_minutes, jobs) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            # A live board: a third of the machines online and in use right now.
            now = _iso(datetime.now(UTC))
            users = everyone or ["m-none"]
            c.executemany(
                "INSERT INTO machine_state (machine_id, node, online, relay, session_id, "
                "member_id, since, status, updated_at) VALUES (?, ?, 1, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        m["id"],
                        m["id"],
                        int(i % 3 == 0),
                        f"live-{i}" if i % 3 == 0 else None,
                        users[i % len(users)] if i % 3 == 0 else None,
                        now if i % 3 == 0 else None,
                        '{"activity": "busy", "detail": ""}' if i % 3 == 0 else None,
                        now,
                    )
                    for i, m in enumerate(machines)
                ],
            )
    finally:
        store.close()
    return {"sessions": len(rows), "minutes": minutes}
