"""Backups can be restored: a checked online copy, and a restored hub the nodes believe."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import threading
from contextlib import closing
from pathlib import Path

import pytest

from gateway.drivers.readers.simulated import send_tap
from gateway.hub.backup import BackupError, backup_database, check_database
from gateway.hub.db import HubStore
from tests.support.harness import BADGE, Observer, Site


def fabgate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args], capture_output=True, text=True, timeout=120
    )


def test_backup_of_a_database_being_written_is_consistent(tmp_path: Path) -> None:
    db = tmp_path / "hub.db"
    HubStore(db).close()
    stop = threading.Event()
    written = []

    def writer() -> None:
        # Each transaction adds a member and its badge: a torn copy would split a pair.
        with HubStore(db) as store:
            i = 0
            while not stop.is_set() or i < 50:
                i += 1
                with store.atomic():
                    store.conn.execute(
                        "INSERT INTO members (id, name, category) VALUES (?, 'x', 'adherent')",
                        (f"m{i}",),
                    )
                    store.conn.execute(
                        "INSERT INTO badges (uid, member_id) VALUES (?, ?)", (f"{i:08X}", f"m{i}")
                    )
                written.append(i)

    t = threading.Thread(target=writer)
    t.start()
    try:
        reports = [backup_database(db, tmp_path / f"b{n}.db") for n in range(5)]
    finally:
        stop.set()
        t.join(30)
    for r in reports:
        assert r.integrity == "ok"
        with closing(sqlite3.connect(r.path)) as c:
            members = c.execute("SELECT count(*) FROM members").fetchone()[0]
            badges = c.execute("SELECT count(*) FROM badges").fetchone()[0]
            assert members == badges
            assert c.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        assert r.path.stat().st_mode & 0o077 == 0  # personal data: owner only
        assert not Path(str(r.path) + "-wal").exists()
    assert not list(tmp_path.glob(".*partial*"))


def test_backup_refuses_to_overwrite_and_a_damaged_copy_fails_its_check(tmp_path: Path) -> None:
    db = tmp_path / "hub.db"
    HubStore(db).close()
    out = tmp_path / "b.db"
    backup_database(db, out)
    with pytest.raises(BackupError, match="refusing to overwrite"):
        backup_database(db, out)
    with pytest.raises(BackupError, match="no such database"):
        backup_database(tmp_path / "absent.db", tmp_path / "c.db")
    damaged = tmp_path / "damaged.db"
    data = bytearray(out.read_bytes())
    page = int.from_bytes(data[16:18], "big")
    data[page : 2 * page] = b"\xff" * page  # trample page 2, the first table's root
    damaged.write_bytes(bytes(data))
    with pytest.raises(BackupError):
        check_database(damaged)
    notours = tmp_path / "other.db"
    sqlite3.connect(notours).execute("CREATE TABLE t (x)").connection.close()
    with pytest.raises(BackupError, match="not a fabgate hub database"):
        check_database(notours)


def _node_version(observer: Observer) -> int:
    return (observer.status.get("laser-1") or {}).get("snapshot_version") or 0


@pytest.mark.integration
def test_a_restored_hub_is_believed_by_its_nodes_and_revokes(
    site: Site, observer: Observer, tmp_path: Path
) -> None:
    site.start_hub()
    site.start_node("laser-1")
    observer.wait_for(lambda: _node_version(observer), what="laser-1 holding a snapshot")
    db = site.files.data / "hub.db"

    backup = tmp_path / "backup" / "hub-backup.db"
    r = fabgate("backup", "--config", str(site.files.hub_config), "--out", str(backup))
    assert r.returncode == 0, r.stderr
    assert "integrity ok" in r.stdout and check_database(backup).members > 0

    # Life goes on after the backup: three changes, three rounds of snapshots.
    for n in range(3):
        before = _node_version(observer)
        with closing(sqlite3.connect(db)) as c, c:
            c.execute("UPDATE members SET name = ? WHERE id = 'm-fanny'", (f"Fanny {n}",))
        observer.wait_for(
            lambda b=before: _node_version(observer) > b, what=f"snapshot after change {n}"
        )
    held = _node_version(observer)

    # Disaster, then the documented restore: stop, copy over (without the old WAL), start.
    site.hub.stop()
    for leftover in (Path(f"{db}-wal"), Path(f"{db}-shm")):
        leftover.unlink(missing_ok=True)
    shutil.copy(backup, tmp_path / "restore.db")
    os.replace(tmp_path / "restore.db", db)
    site.start_hub()
    # The restored database's versions are lower than the node's, but its epoch is later.
    restored = observer.wait_for(
        lambda: (v := _node_version(observer)) < held and v,
        timeout=30,
        what="laser-1 accepting the restored hub's (lower-numbered) snapshot",
    )
    assert not [e for e in observer.events if e.type == "snapshot.rejected"]

    # A revocation made after the restore reaches the node: Alice is refused.
    with closing(sqlite3.connect(db)) as c, c:
        c.execute(
            "UPDATE certifications SET revoked_at = '2026-01-01T00:00:00.000Z' "
            "WHERE member_id = 'm-alice' AND group_id = 'laser'"
        )
    observer.wait_for(
        lambda: _node_version(observer) > restored,
        timeout=30,
        what="the revocation's snapshot at the node",
    )
    send_tap(site.tap_socket("laser-1"), BADGE["alice"])
    tap = observer.wait_event("tap", uid=BADGE["alice"])
    assert (tap.data["action"], tap.data["reason"]) == ("deny", "not_certified")
    assert observer.status["laser-1"]["relay"] is False
