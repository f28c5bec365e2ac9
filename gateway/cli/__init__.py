"""The ``fabgate`` command line: one entry point for hub, node, demo and tools.

Each command is a module of this package with ``add_arguments(parser)`` and
``run(args) -> int``: argument parsing and printing only, the work is a call into the
library. Only the module of the command being run is imported (the others give their
one-line help from :data:`COMMANDS`): a node is installed without Flask or sqlite-utils,
and ``fabgate node`` must not import the hub's commands to parse its own arguments.

argparse, not click: the commands were argparse already and tests call ``main(argv)``
and get the exit status back; click would have to become a dependency of the node (it
comes with Flask, which the node does not install) and a ``--config`` valid at every
level is no simpler to declare in click than here (``common.config_option``).
"""

from __future__ import annotations

import argparse
import contextlib
import faulthandler
import importlib
import io
import logging
import os
import sys

from gateway import __version__
from gateway.cli.common import missing_config
from gateway.config import ConfigError

# name -> (module, one-line help), in the order `fabgate --help` lists them.
COMMANDS: dict[str, tuple[str, str]] = {
    "hub": ("gateway.cli.hub", "run the hub (MQTT ingest, snapshots, web)"),
    "node": ("gateway.cli.node", "run a machine node"),
    "demo": ("gateway.cli.demo", "hub, broker and four simulated machines, or --init a site"),
    "sim": ("gateway.cli.sim", "tap a badge on a simulated node, or run a simulated machine"),
    "check-config": (
        "gateway.cli.check_config",
        "validate hub or node configuration files, or seed files",
    ),
    "keygen": ("gateway.cli.keygen", "create the hub's Ed25519 snapshot signing key"),
    "export": (
        "gateway.cli.export",
        "export usage or invoices for accounting (CSV, French CSV, JSON)",
    ),
    "credit": ("gateway.cli.credit", "prepaid credit: top up, list balances"),
    "audit": ("gateway.cli.audit", "the audit log: verify its hash chain"),
    "user": ("gateway.cli.user", "web accounts: add one, set a password"),
    "import": (
        "gateway.cli.seed_import",
        "import a seed file (members, badges, projects, certifications)",
    ),
    "backup": ("gateway.cli.backup", "consistent, checked copy of the live hub database"),
    "restore": ("gateway.cli.restore", "put a backup in place of the (stopped) hub's database"),
    "reprice": ("gateway.cli.reprice", "install the tariffs, price sessions again"),
    "commission": (
        "gateway.cli.commission",
        "run the hardware-in-the-loop checks on a bench rig and write the report",
    ),
    "retention": (
        "gateway.cli.retention",
        "delete what is past its retention (dry run unless --apply)",
    ),
    "deploy": (
        "gateway.cli.deploy",
        "write a site's installation files: the Mosquitto settings, ACL and passwords",
    ),
}

# A library a command needs -> the extra that installs it, for a clear error on an
# install made for another role (`pip install fablab-gateway[node]` has no Flask).
EXTRA_OF = {
    "flask": "hub",
    "werkzeug": "hub",
    "argon2": "hub",
    "sqlite_utils": "hub",
    "amqtt": "demo",
    "gpiozero": "node",
    "serial": "node",
    "mfrc522": "pi",
    "lgpio": "pi",
}


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("amqtt", "transitions", "werkzeug"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def command_of(argv: list[str]) -> str | None:
    """The command named in ``argv``: the first word that is not an option (the global
    options take no value), or None (``fabgate --help``, ``--version``, a typo)."""
    for word in argv:
        if not word.startswith("-"):
            return word if word in COMMANDS else None
    return None


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole ``fabgate`` parser, with ``command``'s own arguments filled in."""
    p = argparse.ArgumentParser(
        prog="fabgate", description="fablab-gateway: hub, node, demo and tools in one command."
    )
    p.add_argument("--version", action="version", version=f"fabgate {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        s = sub.add_parser(name, help=help_text, description=help_text)
        if name == command:
            module = importlib.import_module(module_name)
            module.add_arguments(s)
            s.set_defaults(func=module.run)
    return p


def _missing_extra(exc: ModuleNotFoundError, command: str | None) -> int:
    extra = EXTRA_OF.get((exc.name or "").split(".")[0])
    if extra is None:
        raise exc
    print(
        f"error: `fabgate {command}` needs {exc.name}, which this installation lacks; "
        f"it comes with the {extra!r} extra: pip install 'fablab-gateway[{extra}]'",
        file=sys.stderr,
    )
    return 2


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = command_of(argv)
    try:
        parser = build_parser(command)
    except ModuleNotFoundError as exc:
        return _missing_extra(exc, command)
    args = parser.parse_args(argv)
    unconfigured = missing_config(args)
    if unconfigured is not None:
        unconfigured.error("the following arguments are required: --config")
    _setup_logging(args.verbose)
    # A stuck process killed by the systemd watchdog (SIGABRT) prints every thread's
    # traceback: the only way to learn where it hung.
    with contextlib.suppress(AttributeError, ValueError, io.UnsupportedOperation):
        faulthandler.enable()  # not when stderr has no file descriptor (tests)
    if args.command == "demo":
        os.environ.setdefault("GPIOZERO_PIN_FACTORY", "mock")
    try:
        return args.func(args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:
        return _missing_extra(exc, command)
