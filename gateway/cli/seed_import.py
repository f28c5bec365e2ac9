"""``fabgate import SEED --config hub.yaml``: bring a seed file into a hub's database.

The hub imports its configured seed at every start too; both create only what is missing
(members, badges, projects, certifications, a new member's current project), so nothing
changed on the web is undone. ``--update`` makes the seed win for the records it names
(names, categories, statuses, badge owners, project names, certifications, current
projects) - a deliberate act, never the default. Safe beside a running hub (WAL); the
change bumps ``data_version``, so the hub republishes snapshots by itself.
"""

from __future__ import annotations

import argparse
import sys

from gateway.cli.common import config_option
from gateway.config import load_hub_config, load_seed
from gateway.hub.catalogue import import_catalogue
from gateway.hub.db import HubStore
from gateway.hub.seed import import_seed


def add_arguments(s: argparse.ArgumentParser) -> None:
    s.add_argument("seed", help="the seed file (see config/members.example.yaml)")
    config_option(s)
    s.add_argument(
        "--update",
        action="store_true",
        help="overwrite existing records with the seed's values (default: only "
        "create what is missing)",
    )


def run(args: argparse.Namespace) -> int:
    cfg = load_hub_config(args.config)
    seed = load_seed(args.seed)  # ConfigError: file, line, key and expectation
    groups = {g.id for g in cfg.groups}
    for i, c in enumerate(seed.certifications):
        if c.group not in groups:
            print(
                f"error: {seed.file}: certifications[{i}].group: expected one of the hub's "
                f"groups ({', '.join(sorted(groups))}), got {c.group!r}",
                file=sys.stderr,
            )
            return 2
    with HubStore(cfg.database) as store:
        import_catalogue(store, cfg.groups, cfg.machines)
        report = import_seed(store, seed, update=args.update)
    print(
        f"{seed.file}: {report.summary()}"
        + ("" if args.update else " (existing records kept; --update to overwrite)")
    )
    return 0
