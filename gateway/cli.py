"""The ``fabgate`` command line: one entry point for hub, node, demo and tools."""

from __future__ import annotations

import argparse
import contextlib
import faulthandler
import io
import json
import logging
import os
import signal
import sys
import threading
import uuid
from pathlib import Path

from gateway import __version__
from gateway.config import (
    ConfigError,
    HubConfig,
    NodeConfig,
    Seed,
    load_any,
    load_hub_config,
    load_node_config,
)

log = logging.getLogger("fabgate")


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("amqtt", "transitions", "werkzeug"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _stop_on_signals(event: threading.Event) -> None:
    def handler(signum: int, _frame: object) -> None:
        log.info("signal %s: stopping", signal.Signals(signum).name)
        event.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def cmd_check_config(args: argparse.Namespace) -> int:
    status = 0
    for path in args.files:
        try:
            cfg = load_any(path)
        except ConfigError as exc:
            print(f"error: {exc}", file=sys.stderr)
            status = 1
            continue
        if isinstance(cfg, HubConfig):
            print(f"{path}: hub configuration for site {cfg.site!r} with "
                  f"{len(cfg.machines)} machines: OK")
        elif isinstance(cfg, Seed):
            print(f"{path}: seed file with {len(cfg.members)} members, "
                  f"{sum(len(m.badges) for m in cfg.members)} badges, {len(cfg.projects)} "
                  f"projects and {len(cfg.certifications)} certifications: OK")
        else:
            print(f"{path}: node configuration for node {cfg.node_id!r} "
                  f"(machine {cfg.machine_id!r}): OK")
    return status


def cmd_hub(args: argparse.Namespace) -> int:
    from gateway.hub.lock import HubAlreadyRunning
    from gateway.hub.service import HubService

    cfg = load_hub_config(args.config)
    stop = threading.Event()
    _stop_on_signals(stop)
    service = HubService(cfg)
    try:
        service.start()
    except HubAlreadyRunning as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"hub for site {cfg.site!r} serving {service.web_url}", flush=True)
    try:
        stop.wait()
    finally:
        service.stop()
    return 0


def run_node(cfg: NodeConfig) -> int:
    from gateway.contract.signing import load_public_key
    from gateway.drivers.factory import make_controller, make_reader, make_relay
    from gateway.node import NodeAgent

    relay = make_relay(cfg.relay)
    reader = sim = None
    try:
        reader = make_reader(cfg.reader)  # a simulated one also opens its tap socket
        controller, sim = make_controller(cfg.controller)
        agent = NodeAgent(cfg, relay=relay, reader=reader,
                          public_key=load_public_key(cfg.hub_public_key),
                          controller=controller, simulated_machine=sim)
    except BaseException:
        relay.close()
        if reader is not None:
            reader.close()
        if sim is not None:
            sim.close()
        raise
    _stop_on_signals(agent.stopping)
    log.info("node %s for machine %s started; relay off", cfg.node_id, cfg.machine_id)
    from gateway.core.sdnotify import notify

    # systemd (Type=notify): the relay is set up and off, the agent is built. The node
    # loop itself pings the watchdog (gateway.core.sdnotify.ping_watchdog).
    notify(f"READY=1\nSTATUS=node {cfg.node_id}: running, relay off")
    agent.run()  # closes the relay, the reader (and its tap socket) and the controller
    return 0


def cmd_node(args: argparse.Namespace) -> int:
    return run_node(load_node_config(args.config))


def cmd_demo(args: argparse.Namespace) -> int:
    from gateway.demo import run_demo

    return run_demo(data=Path(args.data) if args.data else None, broker=args.broker,
                    port=args.port, duration=args.duration)


def cmd_sim_tap(args: argparse.Namespace) -> int:
    if not args.verbose:
        logging.getLogger("gateway").setLevel(logging.WARNING)
    from gateway.demo import default_data_dir
    from gateway.simtap import tap

    info_path = Path(args.data or default_data_dir()) / "demo.json"
    broker, prefix = args.broker, args.prefix
    if not broker:
        if not info_path.exists():
            print(f"error: no running demo found ({info_path} is missing); start "
                  "`fabgate demo` or pass --broker and --prefix", file=sys.stderr)
            return 2
        info = json.loads(info_path.read_text())
        broker, prefix = info["broker"], prefix or info["prefix"]
    return tap(broker, prefix or "fablab/demo/", args.machine, args.uid, timeout=args.timeout,
               tap_id=str(uuid.uuid4()))


def cmd_keygen(args: argparse.Namespace) -> int:
    from gateway.contract.signing import write_keypair

    private = Path(args.out)
    if private.exists():
        print(f"error: {private} exists; refusing to overwrite a signing key", file=sys.stderr)
        return 1
    write_keypair(private, private.with_suffix(".pub"))
    print(f"wrote {private} (keep it on the hub) and {private.with_suffix('.pub')} (for nodes)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fabgate", description=__doc__)
    p.add_argument("--version", action="version", version=f"fabgate {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("hub", help="run the hub (MQTT ingest, snapshots, web)")
    s.add_argument("--config", required=True)
    s.set_defaults(func=cmd_hub)

    s = sub.add_parser("node", help="run a machine node")
    s.add_argument("--config", required=True)
    s.set_defaults(func=cmd_node)

    s = sub.add_parser("demo", help="hub, broker and four simulated machines")
    s.add_argument("--broker", help="mqtt://host:port of a running broker (default: embedded)")
    s.add_argument("--port", type=int, default=8080, help="web port (0 picks a free one)")
    s.add_argument("--data", help="where the demo's files go")
    s.add_argument("--for", dest="duration", type=float,
                   help="run the scripted scenario this many seconds, print a summary, exit")
    s.set_defaults(func=cmd_demo)

    s = sub.add_parser("sim", help="act on simulated nodes")
    simsub = s.add_subparsers(dest="sim_command", required=True)
    t = simsub.add_parser("tap", help="tap a badge on a simulated node")
    t.add_argument("machine")
    t.add_argument("uid")
    t.add_argument("--data", help="the demo's data directory")
    t.add_argument("--broker", help="mqtt://host:port (default: the running demo's)")
    t.add_argument("--prefix", help="topic prefix (default: the running demo's)")
    t.add_argument("--timeout", type=float, default=5.0)
    t.set_defaults(func=cmd_sim_tap)

    s = sub.add_parser("check-config",
                       help="validate hub or node configuration files, or seed files")
    s.add_argument("files", nargs="+")
    s.set_defaults(func=cmd_check_config)

    s = sub.add_parser("keygen", help="create the hub's Ed25519 snapshot signing key")
    s.add_argument("--out", required=True, help="private key path; .pub is written beside it")
    s.set_defaults(func=cmd_keygen)
    from gateway.export_cli import add_parser as add_export_parser
    add_export_parser(sub)
    from gateway.credit_cli import add_parser as add_credit_parser
    add_credit_parser(sub)
    from gateway.audit_cli import add_parser as add_audit_parser
    add_audit_parser(sub)
    from gateway.user_cli import add_parser as add_user_parser
    add_user_parser(sub)
    from gateway.import_cli import add_parser as add_import_parser
    add_import_parser(sub)
    from gateway.backup_cli import add_parser as add_backup_parser
    add_backup_parser(sub)
    from gateway.reprice_cli import add_parser as add_reprice_parser
    add_reprice_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
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
