"""Backups can be restored: a checked online copy, and a restored hub the nodes believe."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.core.clock import utcnow
from gateway.demo.site import init_site
from gateway.drivers.readers.simulated import send_tap
from gateway.hub.backup import BackupError, backup_database, check_database, restore_database
from gateway.hub.backup_rotation import (
    Retention,
    backup_name,
    parse_backup_name,
    rotation_files,
    to_delete,
)
from gateway.hub.db import HubStore
from gateway.hub.lock import HubLock
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

    # Disaster, then the documented restore: stop the hub, `fabgate restore`, start it.
    refused = fabgate("restore", "--config", str(site.files.hub_config), "--from", str(backup))
    assert refused.returncode == 1 and "needs the hub stopped" in refused.stderr
    site.hub.stop()
    r = fabgate("restore", "--config", str(site.files.hub_config), "--from", str(backup))
    assert r.returncode == 0, r.stderr
    kept = [p for p in db.parent.iterdir() if ".before-restore-" in p.name]
    assert [
        p
        for p in kept
        if p.name.startswith("hub.db.before-restore-") and not p.name.endswith(("-wal", "-shm"))
    ]
    assert not Path(f"{db}-wal").exists()
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


def _small_db(path: Path) -> Path:
    with HubStore(path) as store:
        store.conn.execute(
            "INSERT INTO members (id, name, category) VALUES ('m-1', 'Ada', 'adherent')"
        )
        store.conn.commit()
    return path


def test_restore_checks_the_backup_first_and_keeps_the_replaced_database(tmp_path: Path) -> None:
    live = _small_db(tmp_path / "hub.db")
    backup = tmp_path / "copy.db"
    backup_database(live, backup)
    with closing(sqlite3.connect(live)) as c, c:
        c.execute("UPDATE members SET name = 'changed after the backup'")
    damaged = tmp_path / "damaged.db"
    damaged.write_bytes(b"SQLite format 3\x00" + b"\x00" * 200)
    with pytest.raises(BackupError):
        restore_database(damaged, live, at=datetime(2026, 3, 1, tzinfo=UTC))
    with closing(sqlite3.connect(live)) as c:
        assert c.execute("SELECT name FROM members").fetchone()[0] == "changed after the backup"

    report, aside = restore_database(backup, live, at=datetime(2026, 3, 1, 12, tzinfo=UTC))
    assert report.members == 1 and aside == tmp_path / "hub.db.before-restore-20260301T120000Z"
    with closing(sqlite3.connect(live)) as c, closing(sqlite3.connect(aside)) as old:
        assert c.execute("SELECT name FROM members").fetchone()[0] == "Ada"
        assert old.execute("SELECT name FROM members").fetchone()[0] == "changed after the backup"
    assert live.stat().st_mode & 0o077 == 0


def test_restore_is_refused_while_a_hub_holds_the_database(tmp_path: Path) -> None:
    live = _small_db(tmp_path / "hub.db")
    backup = tmp_path / "copy.db"
    backup_database(live, backup)
    lock = HubLock(live)
    lock.acquire()
    try:
        with pytest.raises(BackupError, match="needs the hub stopped"):
            restore_database(backup, live, at=datetime(2026, 3, 1, tzinfo=UTC))
    finally:
        lock.release()


def test_the_timer_backup_writes_a_dated_copy_and_rotates_old_ones(tmp_path: Path) -> None:
    site = tmp_path / "site"
    files = init_site(site)
    _small_db(site / "hub.db")
    directory = tmp_path / "backups"
    directory.mkdir()
    now = utcnow()
    # Sixty daily backups from before today, all but the kept ones to be rotated out.
    old = [backup_name(now - timedelta(days=d)) for d in range(1, 61)]
    for name in old:
        (directory / name).write_bytes(b"old")
    (directory / "notes.txt").write_text("not a backup: never touched")
    r = fabgate(
        "backup",
        "--config",
        str(files.hub_config),
        "--dir",
        str(directory),
        "--keep-daily",
        "3",
        "--keep-weekly",
        "2",
        "--keep-monthly",
        "2",
    )
    assert r.returncode == 0, r.stderr
    left = rotation_files(directory)
    assert (directory / "notes.txt").exists()
    assert to_delete(left, Retention(3, 2, 2)) == []
    assert len(left) <= 3 + 2 + 2 and len(left) >= 3
    newest = max(left, key=lambda n: parse_backup_name(n) or now)
    assert check_database(directory / newest).members == 1
    assert "rotated out" in r.stdout


def test_rotation_refuses_to_keep_nothing() -> None:
    with pytest.raises(ValueError):
        Retention(0, 0, 0)
    with pytest.raises(ValueError):
        Retention(-1, 1, 1)


STAMPS = st.lists(
    st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1)).map(
        lambda t: t.replace(microsecond=0, tzinfo=UTC)
    ),
    max_size=80,
    unique=True,
)


@given(
    stamps=STAMPS, daily=st.integers(0, 10), weekly=st.integers(0, 6), monthly=st.integers(0, 13)
)
def test_rotation_keeps_the_newest_of_each_recent_day_week_and_month(
    stamps: list[datetime], daily: int, weekly: int, monthly: int
) -> None:
    if daily + weekly + monthly == 0:
        daily = 1
    keep = Retention(daily, weekly, monthly)
    names = [backup_name(t) for t in stamps] + ["notes.txt", "hub.db"]
    gone = set(to_delete(names, keep))
    kept = [t for t in stamps if backup_name(t) not in gone]
    assert not gone & {"notes.txt", "hub.db"}
    if stamps:
        assert max(stamps) in kept  # the newest backup is never deleted
    assert len(kept) <= 1 + daily + weekly + monthly
    days = sorted({t.date() for t in stamps}, reverse=True)[:daily]
    for day in days:  # the newest of each of the last `daily` days is kept
        assert max(t for t in stamps if t.date() == day) in kept
    # Rotating what is left deletes nothing more: the rotation is stable.
    assert to_delete([backup_name(t) for t in kept], keep) == []
