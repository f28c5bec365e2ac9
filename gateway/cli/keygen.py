"""``fabgate keygen --out FILE``: the hub's Ed25519 snapshot signing key (and its .pub)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gateway.contract.signing import write_keypair


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="private key path; .pub is written beside it")


def run(args: argparse.Namespace) -> int:
    private = Path(args.out)
    if private.exists():
        print(f"error: {private} exists; refusing to overwrite a signing key", file=sys.stderr)
        return 1
    write_keypair(private, private.with_suffix(".pub"))
    print(f"wrote {private} (keep it on the hub) and {private.with_suffix('.pub')} (for nodes)")
    return 0
