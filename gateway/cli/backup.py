"""``fabgate backup``: a checked copy of the live hub database, one file or a rotation.

``--out FILE`` writes one copy. ``--dir DIR`` is what the systemd timer runs
(deploy/systemd/fabgate-backup.timer): a copy named by its UTC time, then the
rotation (the newest per day, week and month, see gateway/hub/backup_rotation.py)
deletes what is no longer kept. Run beside the running hub: the copy never blocks it.
The signing key is not in the database: keep a copy of it once, elsewhere.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gateway.cli.common import config_option
from gateway.config import load_hub_config
from gateway.core.clock import utcnow
from gateway.hub.backup import BackupError, BackupReport, backup_database
from gateway.hub.backup_rotation import Retention, backup_name, rotation_files, to_delete


def add_arguments(s: argparse.ArgumentParser) -> None:
    config_option(s)
    where = s.add_mutually_exclusive_group(required=True)
    where.add_argument("--out", help="the backup file to write (must not exist)")
    where.add_argument(
        "--dir", help="a rotation directory: write hub-<UTC time>.db there, then thin it out"
    )
    s.add_argument("--keep-daily", type=int, default=Retention.daily, metavar="N")
    s.add_argument("--keep-weekly", type=int, default=Retention.weekly, metavar="N")
    s.add_argument("--keep-monthly", type=int, default=Retention.monthly, metavar="N")


def describe(report: BackupReport) -> str:
    return (
        f"{report.path}: {report.size} bytes, integrity {report.integrity}, "
        f"{report.members} members, {report.sessions} sessions, data version "
        f"{report.data_version}, snapshot epoch {report.snapshot_epoch} version "
        f"{report.snapshot_version}"
    )


def run(args: argparse.Namespace) -> int:
    cfg = load_hub_config(args.config)
    try:
        keep = Retention(args.keep_daily, args.keep_weekly, args.keep_monthly)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    directory = Path(args.dir) if args.dir else None
    out = directory / backup_name(utcnow()) if directory else Path(args.out)
    try:
        report = backup_database(cfg.database, out)
    except BackupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(describe(report))
    if directory is not None:
        for name in to_delete(rotation_files(directory), keep):
            (directory / name).unlink(missing_ok=True)
            print(f"rotated out: {directory / name}")
    return 0
