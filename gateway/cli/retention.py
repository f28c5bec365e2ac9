"""``fabgate retention --config hub.yaml [--apply]``: what is past its retention.

A dry run by default: it prints, per kind of record, the cutoff (the hub config's
``retention:`` counted back from now) and how many records are older, and deletes
nothing. ``--apply`` deletes them, as the hub's daily job does (the same code,
``gateway.hub.retention``), in one transaction and audited. Invoices are only counted:
the hub never deletes a closed invoice.
"""

from __future__ import annotations

import argparse

from gateway.cli.common import config_option
from gateway.config import load_hub_config
from gateway.core.clock import utcnow
from gateway.hub import retention
from gateway.hub.db import HubStore


def add_arguments(s: argparse.ArgumentParser) -> None:
    config_option(s)
    s.add_argument(
        "--apply",
        action="store_true",
        help="delete what is past its retention (default: only show it)",
    )


def run(args: argparse.Namespace) -> int:
    cfg = load_hub_config(args.config)
    with HubStore(cfg.database) as store:
        report = retention.run(store, cfg.retention, utcnow(), apply=args.apply, actor="cli")
    width = max(len(f"{ln.category}: {ln.what}") for ln in report.lines)
    for ln in report.lines:
        label = f"{ln.category}: {ln.what}"
        keep = getattr(cfg.retention, ln.category).text()
        verb = "deleted" if ln.deleted else ("kept" if ln.category == "invoices" else "to delete")
        print(f"{label:<{width}}  older than {ln.cutoff} (kept {keep}): {ln.count} {verb}")
    if args.apply:
        print(f"retention applied: {report.total} record(s) deleted")
    else:
        total = sum(ln.count for ln in report.lines if ln.category != "invoices")
        print(f"dry run: {total} record(s) would be deleted; add --apply to delete them")
    return 0
