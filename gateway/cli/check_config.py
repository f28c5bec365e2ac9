"""``fabgate check-config FILE...``: validate hub, node and seed files before using them.

Every mistake is reported with its file, key and what was expected; the status is 1 if
any file is wrong, so systemd's ``ExecStartPre`` refuses to start on a broken config.
"""

from __future__ import annotations

import argparse
import sys

from gateway.config import ConfigError, HubConfig, Seed, load_any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="*", metavar="FILE")
    parser.add_argument(
        "--config",
        metavar="FILE",
        action="append",
        default=[],
        help="a file to check, as the other commands take it (repeatable)",
    )


def run(args: argparse.Namespace) -> int:
    files = [*args.files, *args.config]
    if not files:
        print("error: name at least one file to check", file=sys.stderr)
        return 2
    status = 0
    for path in files:
        try:
            cfg = load_any(path)
        except ConfigError as exc:
            print(f"error: {exc}", file=sys.stderr)
            status = 1
            continue
        if isinstance(cfg, HubConfig):
            print(
                f"{path}: hub configuration for site {cfg.site!r} with "
                f"{len(cfg.machines)} machines: OK"
            )
        elif isinstance(cfg, Seed):
            print(
                f"{path}: seed file with {len(cfg.members)} members, "
                f"{sum(len(m.badges) for m in cfg.members)} badges, {len(cfg.projects)} "
                f"projects and {len(cfg.certifications)} certifications: OK"
            )
        else:
            print(
                f"{path}: node configuration for node {cfg.node_id!r} "
                f"(machine {cfg.machine_id!r}): OK"
            )
    return status
