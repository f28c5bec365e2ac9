"""``fabgate deploy mosquitto --config hub.yaml --out DIR``: a site's broker files.

Writes ``fabgate.conf``, ``fabgate.acl`` and ``fabgate.passwd`` in DIR from the hub
configuration (``gateway.deploy.mosquitto``), and ``DIR/credentials/<user>.yaml`` with the
clear password of each account it creates. Run it again after adding a machine: the
settings and the ACL are made anew, existing passwords are kept, new nodes get theirs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path, PurePosixPath

from gateway.cli.common import config_option
from gateway.config import ConfigError, load_hub_config
from gateway.deploy.mosquitto import (
    INSTALL_DIR,
    PLAIN_LISTENERS,
    PLAIN_PORT,
    TLS_PORT,
    BrokerOptions,
    DeployError,
    write_mosquitto,
)


def _absolute(value: str) -> PurePosixPath:
    """A file the broker reads: absolute, since Mosquitto runs from /."""
    return PurePosixPath(Path(value).expanduser().resolve())


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="target", required=True, metavar="TARGET")
    m = sub.add_parser(
        "mosquitto",
        help="Mosquitto settings, ACL and password file of the site",
        description="Write fabgate.conf, fabgate.acl and fabgate.passwd for the site of "
        "the hub configuration into DIR (existing passwords are kept), and "
        "DIR/credentials/<user>.yaml for each new account.",
    )
    config_option(parser, m)
    m.add_argument("--out", required=True, metavar="DIR", help="directory to write the files in")
    m.add_argument(
        "--install-dir",
        default=str(INSTALL_DIR),
        metavar="DIR",
        help="where the broker will read fabgate.passwd and fabgate.acl "
        f"(written into fabgate.conf; default {INSTALL_DIR})",
    )
    m.add_argument(
        "--plain-listener",
        choices=PLAIN_LISTENERS,
        help="plain MQTT listener: on every interface, on 127.0.0.1 only, or none "
        "(default: all, or localhost with --tls-cert)",
    )
    m.add_argument("--plain-port", type=int, default=PLAIN_PORT, metavar="PORT")
    m.add_argument(
        "--tls-cert", metavar="FILE", help="the broker's certificate (PEM): a TLS listener"
    )
    m.add_argument("--tls-key", metavar="FILE", help="the private key of --tls-cert (PEM)")
    m.add_argument(
        "--tls-ca",
        metavar="FILE",
        help="the CA certificate (PEM) of the broker's chain and of client certificates",
    )
    m.add_argument("--tls-port", type=int, default=TLS_PORT, metavar="PORT")
    m.add_argument(
        "--require-client-cert",
        action="store_true",
        help="TLS clients must also show a certificate signed by --tls-ca",
    )
    m.add_argument(
        "--monitor",
        action="append",
        default=[],
        metavar="USER",
        help="a read-only account on everything under the site (repeatable)",
    )


def run(args: argparse.Namespace) -> int:
    cfg = load_hub_config(args.config)
    opts = BrokerOptions(
        install_dir=_absolute(args.install_dir),
        plain_listener=args.plain_listener,
        plain_port=args.plain_port,
        tls_port=args.tls_port,
        tls_cert=_absolute(args.tls_cert) if args.tls_cert else None,
        tls_key=_absolute(args.tls_key) if args.tls_key else None,
        tls_ca=_absolute(args.tls_ca) if args.tls_ca else None,
        require_client_cert=args.require_client_cert,
        monitors=tuple(args.monitor),
    )
    try:
        files = write_mosquitto(cfg, Path(args.out), opts)
    except DeployError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ConfigError:
        raise  # main() prints it: file, line, key
    except (OSError, ValueError) as exc:  # an unreadable password file, a full disk
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for path in (files.conf, files.acl, files.passwd):
        print(f"{'updated' if path in files.changed else 'unchanged'} {path}")
    report = files.accounts
    if report.kept:
        print(f"kept the passwords of: {', '.join(report.kept)}")
    for user in report.from_config:
        print(f"account {user}: its password is the one the hub configuration gives it")
    for user, credentials in report.created:
        print(f"new account {user}: its password is in {credentials} (mode 0600)")
    if report.unknown:
        print(
            f"warning: {files.passwd} also has {', '.join(report.unknown)}, not accounts of "
            "this site: kept; remove them with `mosquitto_passwd -D` if they should go",
            file=sys.stderr,
        )
    return 0
