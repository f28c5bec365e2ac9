"""Opening hours and dated closures (holidays, a day off for an event).

The only writer of ``opening_hours``, ``closures`` and ``meta.config_hours``. The weekly
hours came from the hub file only; now they live here, imported from the file at start
by the same rule as the catalogue (``import_hours``: a file that changed since the hub
last read it is applied, otherwise the database keeps what the web set), and edited on
the administration pages. Both tables bump ``data_version`` through their triggers, so
the nodes get the new hours in the next snapshot.

A snapshot carries weekly hours (weekday -> slots), not dates. It is valid for at most
a week and republished at least every ``snapshot_refresh``, so the hub gives it the
hours of the seven days starting today, one per weekday, with the closed ones empty
(``hours_for_week``): within its validity the weekday mapping is exact.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from gateway.core.snapshot import OpeningHours, opening_hours_to_dict
from gateway.hub import audit
from gateway.hub.db import HubStore, meta_text, set_meta

CONFIG_KEY = "config_hours"
HOURS_UPDATED = "hours.updated"
HOURS_IMPORTED = "hours.imported"
CLOSURE_ADDED = "closure.added"
CLOSURE_REMOVED = "closure.removed"
MAX_LABEL = 120
MAX_CLOSURE_DAYS = 366


class HoursError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def weekly_hours(store: HubStore) -> dict[int, tuple[tuple[time, time], ...]]:
    """weekday (0 = Monday) -> sorted (opens, closes) local times."""
    out: dict[int, list[tuple[time, time]]] = {}
    for day, opens, closes in store.conn.execute(
        "SELECT weekday, opens, closes FROM opening_hours ORDER BY weekday, opens"
    ):
        out.setdefault(day, []).append((time.fromisoformat(opens), time.fromisoformat(closes)))
    return {d: tuple(slots) for d, slots in out.items()}


def check_hours(hours: OpeningHours) -> None:
    """Slots that open before they close (``00:00`` closing is midnight) and do not
    overlap; ``HoursError`` naming the weekday otherwise."""
    for day, slots in hours.items():
        if not 0 <= day <= 6:
            raise HoursError("weekday", f"0 (Monday) to 6 (Sunday), got {day}")
        ordered = sorted(slots)
        for a, b in ordered:
            if b != time(0) and b <= a:
                raise HoursError(f"day{day}", f"{a:%H:%M}-{b:%H:%M} closes before it opens")
        for (_, end), (start, _) in zip(ordered, ordered[1:], strict=False):
            if end == time(0) or start < end:
                raise HoursError(f"day{day}", "slots that do not overlap")


def _write_hours(store: HubStore, hours: OpeningHours) -> None:
    store.conn.execute("DELETE FROM opening_hours")
    store.conn.executemany(
        "INSERT INTO opening_hours (weekday, opens, closes) VALUES (?, ?, ?)",
        [
            (day, f"{a:%H:%M}", f"{b:%H:%M}")
            for day, slots in sorted(hours.items())
            for a, b in slots
        ],
    )


def set_weekly_hours(store: HubStore, hours: OpeningHours, *, by: str) -> bool:
    """Replace the weekly hours, audited with before and after; False if unchanged."""
    check_hours(hours)
    with store.atomic():
        before = opening_hours_to_dict(weekly_hours(store))
        after = opening_hours_to_dict(hours)
        if before == after:
            return False
        _write_hours(store, hours)
        audit.record(store, by, HOURS_UPDATED, "opening_hours", {"from": before, "to": after})
    return True


def import_hours(store: HubStore, hours: OpeningHours, *, actor: str = "hub") -> bool:
    """The hub file's ``opening_hours`` into the database when the file changed them
    since the hub last read it (always, the first time); True when applied."""
    digest = hashlib.sha256(
        json.dumps(opening_hours_to_dict(hours), sort_keys=True).encode()
    ).hexdigest()
    with store.atomic():
        if meta_text(store, CONFIG_KEY) == digest:
            return False
        before = opening_hours_to_dict(weekly_hours(store))
        after = opening_hours_to_dict(hours)
        if before != after:
            _write_hours(store, hours)
            audit.record(
                store, actor, HOURS_IMPORTED, "opening_hours", {"from": before, "to": after}
            )
        set_meta(store, CONFIG_KEY, digest)
    return before != after


# -- closures ------------------------------------------------------------------------------


def closures(store: HubStore, *, from_day: date | None = None) -> list[dict[str, Any]]:
    """Closures by first day; with ``from_day`` only those not over by then."""
    where, args = ("WHERE last_day >= ? ", [from_day.isoformat()]) if from_day else ("", [])
    return [
        dict(r)
        for r in store.conn.execute(
            f"SELECT id, first_day, last_day, label FROM closures {where}ORDER BY first_day, id",
            args,
        )
    ]


def add_closure(store: HubStore, first: date, last: date, label: str, *, by: str) -> int:
    """The lab is closed from ``first`` to ``last`` included (local days); audited."""
    label = " ".join(label.split())
    if last < first:
        raise HoursError("last_day", "a last day on or after the first day")
    if (last - first).days >= MAX_CLOSURE_DAYS:
        raise HoursError("last_day", f"a closure of {MAX_CLOSURE_DAYS} days at most")
    if len(label) > MAX_LABEL:
        raise HoursError("label", f"{MAX_LABEL} characters at most")
    with store.atomic():
        cur = store.conn.execute(
            "INSERT INTO closures (first_day, last_day, label) VALUES (?, ?, ?)",
            (first.isoformat(), last.isoformat(), label),
        )
        closure_id = int(cur.lastrowid or 0)
        audit.record(
            store,
            by,
            CLOSURE_ADDED,
            f"closure:{closure_id}",
            {"first_day": first.isoformat(), "last_day": last.isoformat(), "label": label},
        )
    return closure_id


def remove_closure(store: HubStore, closure_id: int, *, by: str) -> bool:
    with store.atomic():
        row = store.conn.execute(
            "SELECT first_day, last_day, label FROM closures WHERE id = ?", (closure_id,)
        ).fetchone()
        if row is None:
            return False
        store.conn.execute("DELETE FROM closures WHERE id = ?", (closure_id,))
        audit.record(store, by, CLOSURE_REMOVED, f"closure:{closure_id}", dict(row))
    return True


def closed_on(store: HubStore, day: date) -> dict[str, Any] | None:
    """The closure covering ``day``, if any."""
    row = store.conn.execute(
        "SELECT id, first_day, last_day, label FROM closures WHERE first_day <= ? "
        "AND last_day >= ? ORDER BY first_day LIMIT 1",
        (day.isoformat(), day.isoformat()),
    ).fetchone()
    return dict(row) if row else None


def hours_for_week(store: HubStore, now: datetime, tz: str) -> OpeningHours:
    """The weekly hours of the seven local days from today, closed days empty: what a
    snapshot (valid a week at most) carries."""
    today = now.astimezone(ZoneInfo(tz)).date()
    weekly = weekly_hours(store)
    shut = {
        (today + timedelta(days=i)).weekday()
        for i in range(7)
        if closed_on(store, today + timedelta(days=i))
    }
    return {d: slots for d, slots in weekly.items() if d not in shut}
