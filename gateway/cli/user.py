"""``fabgate user add|passwd``: web accounts from the command line.

The first admin of a fresh hub cannot be made in the web UI (nobody can log in yet), so
accounts, roles and passwords can be set here, by whoever can read the hub's database.
Passwords are read with ``getpass`` (never echoed, never in shell history) or, for
scripts, as one line on standard input with ``--password-stdin``.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys

from gateway.cli.common import config_option
from gateway.config import load_hub_config
from gateway.hub import accounts, members
from gateway.hub.db import HubStore


def add_arguments(s: argparse.ArgumentParser) -> None:
    sub = s.add_subparsers(dest="user_command", required=True)
    a = sub.add_parser("add", help="create an account for a member, with roles")
    a.add_argument("email")
    a.add_argument("--member", required=True, help="the member id the account belongs to")
    a.add_argument(
        "--role",
        action="append",
        default=[],
        choices=("trainer", "fabmanager", "accountant", "admin"),
        help="a role to grant (repeat for several); every account is a member",
    )
    a.add_argument("--group", help="the certification group of a trainer role")
    a.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from standard input instead of prompting",
    )
    p = sub.add_parser("passwd", help="set an account's password")
    p.add_argument("email")
    p.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from standard input instead of prompting",
    )
    config_option(s, a, p)


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return f"cli:uid{os.getuid()}"


def read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("New password: ")
    if getpass.getpass("Again: ") != first:
        raise ValueError("the two passwords differ")
    return first


def run(args: argparse.Namespace) -> int:
    cfg = load_hub_config(args.config)
    actor = _actor()
    try:
        with HubStore(cfg.database) as store:
            if args.user_command == "add":
                return _add(store, args, actor)
            return _passwd(store, args, actor)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _add(store: HubStore, args: argparse.Namespace, actor: str) -> int:
    if args.group and "trainer" not in args.role:
        raise ValueError("--group goes with --role trainer")
    if "trainer" in args.role and not args.group:
        raise ValueError("--role trainer needs --group (the certification group)")
    email = accounts.normalise_email(args.email)
    row = accounts.find_account(store, member_id=args.member, email=email)
    if row is not None and (row[0] != args.member or row[1] != email):
        raise ValueError(f"member {row[0]!r} already has the account {row[1]!r}")
    if row is None:
        recorded = members.email_of(store, args.member)
        if recorded and recorded.strip().lower() != email:
            print(f"note: the member record of {args.member} says {recorded}", file=sys.stderr)
        password = read_password(args.password_stdin)
        accounts.create_account(store, args.member, email, actor=actor, password=password)
        print(f"account {email} created for member {args.member}")
    for role in args.role:
        group = args.group if role == "trainer" else None
        granted = accounts.grant_role(store, args.member, role, group, actor=actor)
        where = f" on {group}" if group else ""
        print(f"{email}: role {role}{where} {'granted' if granted else 'already held'}")
    return 0


def _passwd(store: HubStore, args: argparse.Namespace, actor: str) -> int:
    email = accounts.normalise_email(args.email)
    member_id = accounts.member_of_email(store, email)
    if member_id is None:
        raise ValueError(f"no account {email!r} (fabgate user add creates one)")
    accounts.set_password(store, member_id, read_password(args.password_stdin), actor=actor)
    print(f"password of {email} set")
    return 0
