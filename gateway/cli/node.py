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
    from gateway.contract.signing import load_public_key
    from gateway.drivers.factory import make_controller, make_reader, make_relay
    from gateway.node import NodeAgent

    relay = make_relay(cfg.relay)
    reader = sim = None
    try:
        reader = make_reader(cfg.reader)  # a simulated one also opens its tap socket
        controller, sim = make_controller(cfg.controller, cfg.sender)
        agent = NodeAgent(
            cfg,
            relay=relay,
            reader=reader,
            public_key=load_public_key(cfg.hub_public_key),
            controller=controller,
            simulated_machine=sim,
        )
    except BaseException:
        relay.close()
        if reader is not None:
            reader.close()
        if sim is not None:
            sim.close()
        raise
    stop_on_signals(agent.stopping)
    log.info("node %s for machine %s started; relay off", cfg.node_id, cfg.machine_id)
    from gateway.core.sdnotify import notify

    # systemd (Type=notify): the relay is set up and off, the agent is built. The node
    # loop itself pings the watchdog (gateway.core.sdnotify.ping_watchdog).
    notify(f"READY=1\nSTATUS=node {cfg.node_id}: running, relay off")
    agent.run()  # closes the relay, the reader (and its tap socket) and the controller
    return 0
