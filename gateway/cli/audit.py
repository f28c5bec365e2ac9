"""``fabgate audit verify``: check the audit log's hash chain in the hub database.

Reads the SQLite file directly (WAL lets it run beside a live hub). Prints the head
(last entry and its hash) so an operator can note it elsewhere: the chain alone cannot
show that its newest entries were cut off, a remembered head can.
"""

from __future__ import annotations

import argparse
import sys

from gateway.cli.common import config_option
from gateway.config import load_hub_config
from gateway.hub import audit
from gateway.hub.db import HubStore


def add_arguments(s: argparse.ArgumentParser) -> None:
    sub = s.add_subparsers(dest="audit_command", required=True)
    v = sub.add_parser("verify", help="report any break in the audit log's hash chain")
    config_option(s, v)


def run(args: argparse.Namespace) -> int:
    cfg = load_hub_config(args.config)
    with HubStore(cfg.database) as store:
        problems = audit.verify(store)
        head = audit.head(store)
    for problem in problems:
        print(f"audit log: {problem}", file=sys.stderr)
    if problems:
        print(f"audit log BROKEN: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    if head is None:
        print("audit log: empty")
    else:
        print(f"audit log intact: {head[0]} entries, head {head[1]}")
    return 0
