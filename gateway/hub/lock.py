"""One hub per database: an exclusive lock beside the database file.

Two hubs on one database would both ingest and both publish snapshots, and under the
shipped broker configuration (client id = username) they would also kick each other off
the broker forever. The second one therefore refuses to start, naming the first. The
lock is an ``flock`` on ``<database>.lock``: the kernel drops it when the process dies,
even by SIGKILL, so a crash never leaves a stale lock behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path


class HubAlreadyRunning(RuntimeError):
    """Another process holds the hub lock of this database."""


class HubLock:
    def __init__(self, database: Path) -> None:
        self.path = Path(f"{database}.lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o640)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise HubAlreadyRunning(
                f"another hub (pid {holder}) is running on {self.path.with_suffix('')}; "
                "stop it first (two hubs on one database would both ingest and publish)"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, 0)
        os.close(self._fd)  # closing drops the flock
        self._fd = None
