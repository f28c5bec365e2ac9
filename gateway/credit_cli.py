"""``fabgate credit``: top up a member's prepaid credit and read balances.

Writes to the hub database directly (WAL lets it run beside a live hub); the ledger's
trigger bumps the catalogue version, so the hub republishes snapshots and a topped-up
member can use a machine that requires credit at the next tap.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from gateway.billing.money import format_money, parse_amount
from gateway.config import load_hub_config
from gateway.core.clock import utcnow
from gateway.hub.store import HubStore


def add_parser(subparsers: Any) -> None:
    s = subparsers.add_parser("credit", help="prepaid credit: top up, list balances")
    s.add_argument("--config", required=True, help="the hub's configuration file")
    sub = s.add_subparsers(dest="credit_command", required=True)
    a = sub.add_parser("add", help="add (or, negative, correct) a member's credit")
    a.add_argument("member")
    a.add_argument("amount", help="in euros, e.g. 20 or 12.50")
    a.add_argument("--note", default="")
    a.add_argument("--by", default=None, help="who recorded it")
    sub.add_parser("show", help="balances of every member with credit activity")
    s.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    cfg = load_hub_config(args.config)
    with HubStore(cfg.database) as store:
        if args.credit_command == "add":
            try:
                cents = parse_amount(args.amount)
            except ValueError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 2
            known = store.conn.execute("SELECT 1 FROM members WHERE id = ?",
                                       (args.member,)).fetchone()
            if not known:
                print(f"error: no member {args.member!r}", file=sys.stderr)
                return 2
            store.add_credit(args.member, cents, at=utcnow(), note=args.note, by=args.by)
            print(f"{args.member}: {format_money(cents)} added, balance "
                  f"{format_money(store.balance(args.member))}")
            return 0
        rows = store.conn.execute(
            "SELECT DISTINCT member_id FROM credit_ledger ORDER BY member_id").fetchall()
        for (member,) in rows:
            balance = store.balance(member)
            flag = "  (negative: a print outlived the credit)" if balance < 0 else ""
            print(f"{member:<24} {format_money(balance):>12}{flag}")
    return 0
