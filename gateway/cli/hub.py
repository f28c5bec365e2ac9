"""``fabgate hub --config hub.yaml``: MQTT ingest, snapshot publishing and the web app."""

from __future__ import annotations

import argparse
import sys
import threading

from gateway.cli.common import config_option, stop_on_signals
from gateway.config import load_hub_config
from gateway.hub.lock import HubAlreadyRunning
from gateway.hub.service import HubService
from gateway.web import hub_web_app


def add_arguments(parser: argparse.ArgumentParser) -> None:
    config_option(parser)


def run(args: argparse.Namespace) -> int:
    cfg = load_hub_config(args.config)
    stop = threading.Event()
    stop_on_signals(stop)
    service = HubService(cfg, web_app=hub_web_app)
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
