"""A consistent copy of a live hub database, checked before it is called a backup.

SQLite's online backup API (``sqlite3.Connection.backup``) copies the database as one
read transaction sees it: in WAL mode that never blocks the running hub's writers, and
the copy is what the database was at one instant, never a half-written mix (which is
what ``cp`` of a live ``hub.db`` without its ``-wal`` file gives). The copy is written
beside the target, switched to a single self-contained file (``journal_mode=DELETE``,
no ``-wal`` to forget), opened again and checked with ``PRAGMA integrity_check``; only
then is it renamed into place. It holds members' personal data and password hashes, so
it is created readable by its owner only.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from gateway.hub.lock import HubAlreadyRunning, HubLock

__all__ = [
    "BackupError",
    "BackupReport",
    "backup_database",
    "check_database",
    "restore_database",
]


class BackupError(RuntimeError):
    """The backup could not be made or did not pass its check; nothing was left behind."""


@dataclass(frozen=True)
class BackupReport:
    path: Path
    size: int
    integrity: str
    data_version: int
    snapshot_version: int
    snapshot_epoch: int
    members: int
    sessions: int


def _meta(conn: sqlite3.Connection, key: str) -> int:
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    except sqlite3.DatabaseError:
        return 0
    return int(row[0]) if row else 0


def _count(conn: sqlite3.Connection, table: str) -> int:
    try:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    except sqlite3.DatabaseError:
        return 0


def check_database(path: Path) -> BackupReport:
    """Open ``path`` read-only and run ``PRAGMA integrity_check``; BackupError if not ok."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise BackupError(f"{path}: cannot open it as SQLite: {exc}") from exc
    try:
        result = [r[0] for r in conn.execute("PRAGMA integrity_check")]
        if result != ["ok"]:
            raise BackupError(f"{path}: integrity check failed: {'; '.join(result[:5])}")
        if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'meta'").fetchone() is None:
            raise BackupError(f"{path}: not a fabgate hub database (no meta table)")
        return BackupReport(
            path=path,
            size=path.stat().st_size,
            integrity="ok",
            data_version=_meta(conn, "data_version"),
            snapshot_version=_meta(conn, "snapshot_version"),
            snapshot_epoch=_meta(conn, "snapshot_epoch"),
            members=_count(conn, "members"),
            sessions=_count(conn, "sessions"),
        )
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{path}: {exc}") from exc
    finally:
        conn.close()


def backup_database(source: Path, out: Path, *, overwrite: bool = False) -> BackupReport:
    """Copy the live database ``source`` to ``out`` and check the copy."""
    source, out = Path(source), Path(out)
    if not source.exists():
        raise BackupError(f"{source}: no such database")
    if out.exists() and not overwrite:
        raise BackupError(f"{out} exists; refusing to overwrite a backup")
    if out.resolve() == source.resolve():
        raise BackupError("the backup must not be the database itself")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.partial-{os.getpid()}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)  # an empty file is an empty database; SQLite keeps its mode
        # Read-write open (only read from): a read-only one cannot always join a WAL.
        src = sqlite3.connect(source, timeout=30)
        dst = sqlite3.connect(tmp)
        try:
            src.execute("PRAGMA busy_timeout = 30000")
            src.backup(dst)  # all pages in one step: one consistent read transaction
            dst.execute("PRAGMA journal_mode = DELETE")
            dst.commit()
        finally:
            dst.close()
            src.close()
        report = check_database(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, out)
        _fsync_dir(out.parent)
    except sqlite3.Error as exc:
        raise BackupError(f"backup of {source} failed: {exc}") from exc
    finally:
        for leftover in (tmp, tmp.with_name(tmp.name + "-journal")):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()
    return BackupReport(**{**report.__dict__, "path": out})


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def restore_database(
    backup: Path, database: Path, *, at: datetime
) -> tuple[BackupReport, Path | None]:
    """Put ``backup`` in place of ``database``; return its report and where the old one went.

    Refused while a hub runs on ``database`` (its lock is held): a hub writing into a
    file being replaced would lose the restore or corrupt it. The backup is checked
    before anything moves. The current database, with its ``-wal`` and ``-shm`` (a WAL
    left beside a restored file would be replayed into it), is kept aside as
    ``<name>.before-restore-<UTC time>``, never deleted: a restore over the wrong file
    can be undone. The restored file's snapshot epoch is bumped by the hub at its next
    start, which is what makes the nodes accept its lower-numbered snapshots.
    """
    backup, database = Path(backup), Path(database)
    report = check_database(backup)
    if backup.resolve() == database.resolve():
        raise BackupError("the backup and the database are the same file")
    lock = HubLock(database)
    try:
        lock.acquire()
    except HubAlreadyRunning as exc:
        raise BackupError(f"{exc}; a restore needs the hub stopped") from None
    try:
        database.parent.mkdir(parents=True, exist_ok=True)
        aside: Path | None = None
        if database.exists():
            stamp = at.strftime("%Y%m%dT%H%M%SZ")
            aside = database.with_name(f"{database.name}.before-restore-{stamp}")
            if aside.exists():
                raise BackupError(f"{aside} exists; wait a second and try again")
            os.replace(database, aside)
        for suffix in ("-wal", "-shm"):
            old = Path(f"{database}{suffix}")
            if old.exists():
                if aside is not None:
                    os.replace(old, Path(f"{aside}{suffix}"))
                else:
                    old.unlink()
        tmp = database.with_name(f".{database.name}.restoring-{os.getpid()}")
        try:
            shutil.copyfile(backup, tmp)
            os.chmod(tmp, 0o600)
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
            check_database(tmp)
            os.replace(tmp, database)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        _fsync_dir(database.parent)
    finally:
        lock.release()
    return BackupReport(**{**report.__dict__, "path": database}), aside
