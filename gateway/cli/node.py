"""``fabgate node --config node.yaml``: one machine's node, relay off until a badge allows.

Builds the node's parts from its configuration (relay, reader, machine controller,
public key) and hands them to the agent; whatever fails while building switches the
relay off again before the error goes up.
"""

from __future__ import annotations

import argparse
import logging

from gateway.cli.common import config_option, stop_on_signals
from gateway.config import NodeConfig, load_node_config

log = logging.getLogger("fabgate")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    config_option(parser, what="the node's configuration file")


def run(args: argparse.Namespace) -> int:
    return run_node(load_node_config(args.config))


def run_node(cfg: NodeConfig) -> int:
    from gateway.drivers.controllers import make_controller
    from gateway.drivers.readers import SimulatedReader, make_reader
    from gateway.drivers.relay import make_relay
    from gateway.drivers.tap_socket import TapSocket
    from gateway.node import NodeAgent
    from gateway.permissions import load_public_key

    relay = make_relay(cfg.relay, allow_boot_pull=cfg.relay.allow_boot_pull)
    sim = None
    try:
        reader = make_reader(cfg.reader)
        controller, sim = make_controller(cfg.controller)
        agent = NodeAgent(cfg, relay=relay, reader=reader,
                          public_key=load_public_key(cfg.hub_public_key),
                          controller=controller, simulated_machine=sim)
    except BaseException:
        relay.close()
        if sim is not None:
            sim.close()
        raise
    stop_on_signals(agent.stopping)
    control = None
    if isinstance(reader, SimulatedReader) and cfg.reader.socket:
        control = TapSocket(cfg.reader.socket, reader)
    log.info("node %s for machine %s started; relay off", cfg.node_id, cfg.machine_id)
    from gateway.sdnotify import notify

    # systemd (Type=notify): the relay is set up and off, the agent is built. The node
    # loop itself pings the watchdog (gateway.sdnotify.ping_watchdog).
    notify(f"READY=1\nSTATUS=node {cfg.node_id}: running, relay off")
    try:
        agent.run()
    finally:
        if control:
            control.close()
    return 0
