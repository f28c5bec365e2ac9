"""``fabgate sim``: act on simulated nodes, or play a machine on a serial port.

``sim tap`` taps a badge on a simulated node and reports what the node decided. The tap
travels over MQTT to the node's simulated reader, so it exercises the same path as a
real card: reader, debouncer, policy, relay, journal. The node echoes the tap id in its
``tap`` event, which is how this command finds the answer to *its* tap.

``sim grbl|marlin|sense-board --link PATH`` runs one of the drivers' machine simulators
on a pseudo-terminal and makes PATH a symlink to it, so a technician can point a node
configuration (``controller.port``) or a serial terminal at a machine without hardware.
The link is made here, not by the simulator: an existing file at PATH is never
replaced (only a stale link left by a simulator that was killed), and the link is
removed at Ctrl-C only if it still points at this simulator's terminal.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

from gateway.cli.common import config_option, stop_on_signals
from gateway.config import Seed, load_any
from gateway.contract import EV_TAP, ContractError, Envelope, Topics, encode_sim_tap
from gateway.contract.mqtt import MqttLink
from gateway.demo.site import default_data_dir
from gateway.policies.access import explain

MACHINES = ("grbl", "marlin", "sense-board")
DEFAULT_PREFIX = "fablab/demo/"


def add_arguments(s: argparse.ArgumentParser) -> None:
    sub = s.add_subparsers(dest="sim_command", required=True, metavar="SIM")
    t = sub.add_parser("tap", help="tap a badge on a simulated node")
    t.add_argument("machine")
    t.add_argument("uid")
    t.add_argument("--data", help="the demo's data directory")
    t.add_argument("--broker", help="mqtt://host:port (default: the running demo's)")
    t.add_argument("--prefix", help="topic prefix (default: the running demo's)")
    t.add_argument("--timeout", type=float, default=5.0)
    config_option(
        t, required=False, what="a hub or node configuration to take the broker and prefix from"
    )
    t.set_defaults(sim=run_tap)

    g = sub.add_parser("grbl", help="a GRBL 1.1 controller (laser, CNC) on a serial port")
    g.add_argument(
        "--homing-required",
        action="store_true",
        help="start in Alarm until $H or $X, as with GRBL's homing lock",
    )
    g.add_argument(
        "--line-time",
        type=float,
        default=0.05,
        help="seconds one streamed motion line takes (default 0.05)",
    )
    m = sub.add_parser("marlin", help="a Marlin 3D printer printing from SD on a serial port")
    m.add_argument("--print", dest="print_name", metavar="NAME", help="start an SD print")
    m.add_argument(
        "--seconds", type=float, default=120.0, help="how long that print lasts (default 120)"
    )
    m.add_argument(
        "--busy-probability",
        type=float,
        default=0.0,
        help="share of commands answered late with 'busy' (default 0)",
    )
    b = sub.add_parser("sense-board", help="the current sense board on a serial port")
    b.add_argument(
        "--amps", type=float, default=0.0, help="the current it reports on channel 0 (default 0)"
    )
    b.add_argument(
        "--interval", type=float, default=0.2, help="seconds between two readings (default 0.2)"
    )
    for machine in (g, m, b):
        machine.add_argument(
            "--link",
            type=Path,
            metavar="PATH",
            help="make PATH a symlink to the simulator's terminal",
        )
        machine.set_defaults(sim=run_machine)


def run(args: argparse.Namespace) -> int:
    return int(args.sim(args))


def run_tap(args: argparse.Namespace) -> int:
    if not args.verbose:
        logging.getLogger("gateway").setLevel(logging.WARNING)
    broker, prefix = args.broker, args.prefix
    if hasattr(args, "config"):
        cfg = load_any(args.config)
        if isinstance(cfg, Seed):
            print(
                f"error: {args.config} is a seed file; --config takes a hub or node configuration",
                file=sys.stderr,
            )
            return 2
        broker, prefix = broker or cfg.mqtt.url, prefix or cfg.mqtt.prefix
    if not broker:
        info_path = Path(args.data or default_data_dir()) / "demo.json"
        if not info_path.exists():
            print(
                f"error: no running demo found ({info_path} is missing); start "
                "`fabgate demo`, or pass --config (a hub or node configuration) or "
                "--broker and --prefix",
                file=sys.stderr,
            )
            return 2
        info = json.loads(info_path.read_text())
        broker, prefix = info["broker"], prefix or info["prefix"]
    return tap(
        broker,
        prefix or DEFAULT_PREFIX,
        args.machine,
        args.uid,
        timeout=args.timeout,
        tap_id=str(uuid.uuid4()),
    )


def tap(broker: str, prefix: str, node: str, uid: str, *, timeout: float, tap_id: str) -> int:
    """Exit status: 0 when the node answered (allowed or denied), 2 broker, 3 no answer."""
    topics = Topics(prefix)
    answer: dict[str, object] = {}
    done = threading.Event()
    subscribed = threading.Event()

    def on_event(_topic: str, payload: bytes) -> None:
        try:
            env = Envelope.decode(payload)
        except ContractError:
            return
        if env.type == EV_TAP and env.data.get("tap_id") == tap_id:
            answer.update(env.data)
            done.set()

    link = MqttLink(broker, f"fabgate-simtap-{tap_id[:8]}", on_connect=lambda: subscribed.set())
    link.subscribe(topics.node_events(node), on_event)
    link.start()
    try:
        if not link.wait_connected(timeout) or not subscribed.wait(timeout):
            print(f"error: cannot reach the broker at {broker}", file=sys.stderr)
            return 2
        info = link.publish(topics.sim_tap(node), encode_sim_tap(uid, tap_id))
        if info is None:
            print("error: publishing the tap failed", file=sys.stderr)
            return 2
        if not done.wait(timeout):
            print(
                f"error: node {node!r} did not answer within {timeout:g} s (is it running, "
                "and is its reader simulated?)",
                file=sys.stderr,
            )
            return 3
    finally:
        link.stop()
    action, reason = answer.get("action"), str(answer.get("reason"))
    who = answer.get("member_id") or "unknown badge"
    if action == "start":
        print(f"{node}: allowed for {who}: relay ON, session started")
    elif action == "end":
        print(f"{node}: badge-out by {who}: relay OFF, session ended")
    elif action == "certify_mode":
        print(f"{node}: certify mode for 15 s: {who} may certify the next member who taps")
    elif action == "certify":
        print(f"{node}: {who} certified at this machine")
    elif action == "enrol":
        print(f"{node}: badge sent to the hub for enrolment")
    else:
        try:
            text = explain(reason)
        except ValueError:  # a reason this CLI does not know (a newer node): shown as it is
            text = reason
        print(f"{node}: denied for {who}: {reason} ({text}); relay stays OFF")
    return 0


class LinkRefused(Exception):
    """PATH is something a simulator must not replace."""


def make_link(link: Path, target: str) -> None:
    """Point ``link`` at ``target``, replacing only a link a killed simulator left behind."""
    if link.is_symlink():
        old = os.readlink(link)
        if link.exists() and not old.startswith("/dev/pts/"):
            raise LinkRefused(
                f"{link} is a link to {old}, not a simulator's terminal; "
                "remove it yourself or choose another path"
            )
        link.unlink()
    elif link.exists():
        raise LinkRefused(f"{link} exists and is not a link; choose another path")
    try:
        link.symlink_to(target)
    except OSError as exc:
        raise LinkRefused(f"cannot make {link}: {exc.strerror}") from exc


def remove_link(link: Path, target: str) -> None:
    """Remove ``link`` if it is still ours (someone may have pointed it elsewhere)."""
    with contextlib.suppress(OSError):
        if os.readlink(link) == target:
            link.unlink()


def _start_machine(args: argparse.Namespace) -> Any:
    """The simulator, started, with its terminal's path as ``.port`` (no link of its own)."""
    if args.sim_command == "grbl":
        from gateway.drivers.simulators.grbl import GrblSimulator

        return GrblSimulator(homing_required=args.homing_required, line_time=args.line_time).start()
    if args.sim_command == "marlin":
        from gateway.drivers.simulators.marlin import MarlinSimulator

        printer = MarlinSimulator(busy_probability=args.busy_probability)
        if args.print_name:
            printer.start_sd_print(args.print_name, args.seconds)
        return printer
    from gateway.drivers.simulators.current import SenseBoardSimulator, SimulatedCurrent

    return SenseBoardSimulator([SimulatedCurrent(args.amps)], interval=args.interval)


def run_machine(args: argparse.Namespace, stop: threading.Event | None = None) -> int:
    """Serve the simulator until SIGINT/SIGTERM (or ``stop``), then remove the link."""
    if stop is None:
        stop = threading.Event()
        stop_on_signals(stop)
    sim = _start_machine(args)
    pty = str(sim.port)
    link: Path | None = args.link
    try:
        if link is not None:
            try:
                make_link(link, pty)
            except LinkRefused as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 2
        where = f"{pty}, linked at {link}" if link is not None else pty
        print(f"{args.sim_command} simulator on {where}; Ctrl-C stops it", flush=True)
        stop.wait()
    finally:
        sim.close()
        if link is not None:
            remove_link(link, pty)
    return 0
