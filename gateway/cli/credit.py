"""``fabgate credit``: top up a member's prepaid credit and read balances.

Writes to the hub database directly (WAL lets it run beside a live hub); the ledger's
trigger bumps the catalogue version, so the hub republishes snapshots and a topped-up
member can use a machine that requires credit at the next tap.
"""

from __future__ import annotations

import argparse
import sys

from gateway.billing.credit import add_credit, balance, members_with_credit
from gateway.billing.money import format_money, parse_amount
from gateway.cli.common import config_option
from gateway.config import load_hub_config
from gateway.core.clock import utcnow
from gateway.hub import members
from gateway.hub.db import HubStore


def add_arguments(s: argparse.ArgumentParser) -> None:
    sub = s.add_subparsers(dest="credit_command", required=True)
    a = sub.add_parser("add", help="add (or, negative, correct) a member's credit")
    a.add_argument("member")
    a.add_argument("amount", help="in euros, e.g. 20 or 12.50")
    a.add_argument("--note", default="")
    a.add_argument("--by", default=None, help="who recorded it")
    show = sub.add_parser("show", help="balances of every member with credit activity")
    config_option(s, a, show)


def run(args: argparse.Namespace) -> int:
    cfg = load_hub_config(args.config)
    with HubStore(cfg.database) as store:
        if args.credit_command == "add":
            try:
                cents = parse_amount(args.amount)
            except ValueError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 2
            if not members.exists(store, args.member):
                print(f"error: no member {args.member!r}", file=sys.stderr)
                return 2
            add_credit(store, args.member, cents, at=utcnow(), note=args.note, by=args.by)
            print(
                f"{args.member}: {format_money(cents)} added, balance "
                f"{format_money(balance(store, args.member))}"
            )
            return 0
        for member in members_with_credit(store):
            left = balance(store, member)
            flag = "  (negative: a print outlived the credit)" if left < 0 else ""
            print(f"{member:<24} {format_money(left):>12}{flag}")
    return 0
