"""``fabgate reprice``: install the configured tariffs and price closed sessions again.

A session's price is stored when it closes (``gateway.billing.pricing``); this command is
the explicit way to change stored prices: after correcting a tariff (the hub does the
same at its next start), or after correcting a member's category, which on its own
re-prices nothing (``--member M --current-categories``). Every run is in the audit log.
Writes the SQLite file directly (WAL lets it run beside a live hub, whose ingest reads
the new tariffs at its next session); billed sessions whose price changed are reversed
and billed again by the next invoice run.
"""

from __future__ import annotations

import argparse
import re
import sys
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from gateway.billing.money import format_money
from gateway.billing.pricing import Repricing, import_tariffs, reprice_sessions
from gateway.cli.common import config_option
from gateway.config import load_hub_config
from gateway.core.clock import iso
from gateway.hub import members
from gateway.hub.db import HubStore


def add_arguments(s: argparse.ArgumentParser) -> None:
    config_option(s)
    s.add_argument(
        "--since",
        help="only sessions started from this date (local midnight) "
        "or ISO date-time with offset; default: every session",
    )
    s.add_argument("--member", help="only this member's sessions")
    s.add_argument(
        "--current-categories",
        action="store_true",
        help="price for the members' categories of today, not those recorded "
        "when each session closed",
    )
    s.add_argument("--by", default="cli", help="who asks (recorded in the audit log)")


def parse_since(text: str, tz: str) -> datetime:
    text = text.strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return datetime.combine(date.fromisoformat(text), time(0), ZoneInfo(tz))
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError(f"--since {text!r}: a date-time needs its UTC offset")
    return value


def _summary(r: Repricing) -> str:
    sign = "+" if r.delta_cents > 0 else ""
    return (
        f"{r.sessions} closed sessions since {iso(r.since) if r.since else 'the first'}:"
        f" {r.changed} changed, {sign}{format_money(r.delta_cents)} "
        f"(tariffs {r.fingerprint[:12]})"
    )


def run(args: argparse.Namespace) -> int:
    cfg = load_hub_config(args.config)
    try:
        since = parse_since(args.since, cfg.timezone) if args.since else None
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    with HubStore(cfg.database) as store:
        if args.member and not members.exists(store, args.member):
            print(f"error: no member {args.member!r}", file=sys.stderr)
            return 2
        # The file's changes since the hub last read it; tariffs set on the web stay.
        installed = import_tariffs(store, cfg.tariffs, actor=args.by, source=str(cfg.file))
        if installed is not None:
            print(f"tariffs changed, re-priced {_summary(installed)}")
        result = reprice_sessions(
            store,
            since,
            member=args.member,
            current_categories=args.current_categories,
            actor=args.by,
            reason="fabgate reprice",
        )
    print(f"re-priced {_summary(result)}")
    return 0
