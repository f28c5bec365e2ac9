"""Which timestamped backups to keep: the newest few days, weeks and months.

A fablab restores for one of two reasons: yesterday's mistake (a member deleted, a
month closed too early), or a disk that died. Both want the most recent copies; the
first sometimes wants last month's. So the timer's backups are thinned the classic way
(grandfather-father-son): the newest backup of each of the last ``daily`` days, of
each of the last ``weekly`` ISO weeks and of each of the last ``monthly`` months are
kept, everything else goes. The choice is a pure function of the names' timestamps,
so it is tested without files and never depends on the wall clock or on file times
(a restored or copied directory keeps its meaning).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

__all__ = ["BACKUP_NAME", "Retention", "backup_name", "parse_backup_name", "to_delete"]

#: ``hub-20261201T023000Z.db``: UTC, sortable, one per second at most.
BACKUP_NAME = re.compile(r"^hub-(\d{8}T\d{6}Z)\.db$")
_STAMP = "%Y%m%dT%H%M%SZ"


@dataclass(frozen=True)
class Retention:
    daily: int = 7
    weekly: int = 5
    monthly: int = 12

    def __post_init__(self) -> None:
        for name in ("daily", "weekly", "monthly"):
            if getattr(self, name) < 0:
                raise ValueError(f"keep-{name} must be 0 or more")
        if self.daily + self.weekly + self.monthly == 0:
            raise ValueError("keeping no backup at all is not a rotation: keep at least one")


def backup_name(at: datetime) -> str:
    return f"hub-{at.astimezone(UTC).strftime(_STAMP)}.db"


def parse_backup_name(name: str) -> datetime | None:
    """The UTC time in a rotation file name, or None for any other file (left alone)."""
    m = BACKUP_NAME.match(name)
    if m is None:
        return None
    try:
        return datetime.strptime(m.group(1), _STAMP).replace(tzinfo=UTC)
    except ValueError:
        return None


def _keep(stamps: list[datetime], key: str, count: int) -> set[datetime]:
    """The newest stamp of each of the ``count`` most recent buckets."""
    kept: dict[str, datetime] = {}
    for t in sorted(stamps, reverse=True):
        iso = t.isocalendar()
        bucket = t.strftime(key) if key != "week" else f"{iso.year}-W{iso.week:02d}"
        if bucket not in kept:
            if len(kept) == count:
                break
            kept[bucket] = t
    return set(kept.values())


def to_delete(names: Iterable[str], keep: Retention) -> list[str]:
    """The rotation files among ``names`` that ``keep`` lets go, oldest first.

    The newest backup is always kept, whatever the settings; names that are not
    rotation files are never returned.
    """
    stamped = {n: t for n in names if (t := parse_backup_name(n)) is not None}
    stamps = list(stamped.values())
    if not stamps:
        return []
    kept = {max(stamps)}
    kept |= _keep(stamps, "%Y-%m-%d", keep.daily)
    kept |= _keep(stamps, "week", keep.weekly)
    kept |= _keep(stamps, "%Y-%m", keep.monthly)
    return sorted((n for n, t in stamped.items() if t not in kept), key=lambda n: stamped[n])


def rotation_files(directory: Path) -> list[str]:
    if not directory.is_dir():
        return []
    return sorted(p.name for p in directory.iterdir() if parse_backup_name(p.name))
