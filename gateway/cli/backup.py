"""``fabgate backup --config hub.yaml --out FILE``: a checked copy of the live hub database.

Run it beside the running hub (cron, a systemd timer); see deploy/README.md for the
restore. The signing key is not in the database: keep a copy of it once, elsewhere.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gateway.cli.common import config_option
from gateway.config import load_hub_config
from gateway.hub.backup import BackupError, backup_database


def add_arguments(s: argparse.ArgumentParser) -> None:
    config_option(s)
    s.add_argument("--out", required=True, help="the backup file to write (must not exist)")


def run(args: argparse.Namespace) -> int:
    cfg = load_hub_config(args.config)
    try:
        report = backup_database(cfg.database, Path(args.out))
    except BackupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(
        f"{report.path}: {report.size} bytes, integrity {report.integrity}, "
        f"{report.members} members, {report.sessions} sessions, data version "
        f"{report.data_version}, snapshot epoch {report.snapshot_epoch} version "
        f"{report.snapshot_version}"
    )
    return 0
