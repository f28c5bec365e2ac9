"""``fabgate demo``: a whole simulated fablab; ``fabgate demo --init DIR`` writes one only.

The first starts a broker, the hub and four simulated nodes (``gateway.demo.run``). The
second writes the same site's files (configs, keys, seed, token) for someone to read,
edit, or start role by role against a broker of their own, and starts nothing.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from gateway.demo.site import BADGE, LOCAL_BROKER, SiteExists, init_site


def add_arguments(s: argparse.ArgumentParser) -> None:
    s.add_argument(
        "--broker",
        help="mqtt://host:port of a running broker (default: "
        f"embedded; with --init, the broker the site's files name: {LOCAL_BROKER})",
    )
    s.add_argument("--port", type=int, default=8080, help="web port (0 picks a free one)")
    s.add_argument("--data", help="where the demo's files go")
    s.add_argument(
        "--for",
        dest="duration",
        type=float,
        help="run the scripted scenario this many seconds, print a summary, exit",
    )
    s.add_argument(
        "--init",
        metavar="DIR",
        type=Path,
        help="write a demo site's configs, keys and seed into DIR, start nothing",
    )


def run(args: argparse.Namespace) -> int:
    if args.init is not None:
        if args.data or args.duration is not None:
            print(
                "error: --init DIR writes a site and starts nothing: --data and --for "
                "do not go with it",
                file=sys.stderr,
            )
            return 2
        return init(args.init, args.broker or LOCAL_BROKER, args.port)
    from gateway.demo.run import run_demo

    return run_demo(
        data=Path(args.data) if args.data else None,
        broker=args.broker,
        port=args.port,
        duration=args.duration,
    )


def init(data: Path, broker: str, port: int) -> int:
    try:
        files = init_site(data, broker, port)
    except SiteExists as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote a demo site in {files.data}:")
    for path in files.written():
        print(f"  {path.relative_to(files.data)}")
    q = shlex.quote
    first = next(iter(files.node_configs))
    print(
        f"\nstart it, with an MQTT broker listening at {broker} (e.g. Mosquitto):\n"
        f"  fabgate hub --config {q(str(files.hub_config))}\n"
        f"  GPIOZERO_PIN_FACTORY=mock fabgate node --config "
        f"{q(str(files.node_configs[first]))}   # and each of nodes/*.yaml\n"
        f"  fabgate sim tap {first} {BADGE['alice']} --config {q(str(files.hub_config))}\n"
        f"or all of it with its own broker (rewrites the configs' broker address):\n"
        f"  fabgate demo --data {q(str(files.data))}"
    )
    return 0
