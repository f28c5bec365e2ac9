"""``fabgate restore --config hub.yaml --from BACKUP``: put a backup in place of the database.

The hub must be stopped (``systemctl stop fabgate-hub``): the restore takes the hub's
lock and refuses otherwise. The database it replaces is kept beside it, never deleted.
After ``systemctl start fabgate-hub`` the hub starts a new snapshot epoch, so the nodes
accept its snapshots although their version numbers went back (docs/operations.md).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gateway.cli.backup import describe
from gateway.cli.common import config_option
from gateway.config import load_hub_config
from gateway.core.clock import utcnow
from gateway.hub.backup import BackupError, restore_database


def add_arguments(s: argparse.ArgumentParser) -> None:
    config_option(s)
    s.add_argument("--from", dest="backup", required=True, metavar="BACKUP", help="backup file")


def run(args: argparse.Namespace) -> int:
    cfg = load_hub_config(args.config)
    try:
        report, aside = restore_database(Path(args.backup), cfg.database, at=utcnow())
    except BackupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"restored {args.backup} -> {describe(report)}")
    if aside is not None:
        print(f"the database it replaced is kept as {aside}")
    print("start the hub again: it begins a new snapshot epoch, which its nodes accept")
    return 0
