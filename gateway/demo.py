"""``fabgate demo``: a whole fablab on one machine, with nothing but Python installed.

It writes a data directory (hub and node configuration, signing keys, fictitious
members), starts a broker (the embedded amqtt one unless ``--broker`` is given), the hub
in this process, and one real ``fabgate node`` subprocess per machine with mock GPIO and
a simulated reader. A scripted scenario then keeps members badging in and out over the
same MQTT path ``fabgate sim tap`` uses, so the pages stay alive.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml

from gateway.config import HubConfig, load_hub_config
from gateway.contract import ContractError, Topics, decode_status, encode_sim_job, encode_sim_tap
from gateway.contract.mqtt import MqttLink
from gateway.core.clock import iso, utcnow

SITE = "demo"
MACHINES = [
    {"id": "laser-1", "name": "Découpe laser (laser-1)", "kind": "laser", "group": "laser",
     "min_level": 2, "pin": 17,
     "controller": {"driver": "grbl", "simulate": True, "poll_interval": "0.25s"}},
    {"id": "cnc-1", "name": "Fraiseuse CNC (cnc-1)", "kind": "cnc", "group": "cnc",
     "min_level": 2, "pin": 22,
     "controller": {"driver": "grbl", "simulate": True, "poll_interval": "0.25s"}},
    {"id": "printer-1", "name": "Imprimante 3D (printer-1)", "kind": "printer",
     "group": "printing", "min_level": 1, "pin": 23,
     "controller": {"driver": "marlin", "simulate": True, "poll_interval": "0.5s"}},
    {"id": "embroidery-1", "name": "Brodeuse numérique (embroidery-1)", "kind": "embroidery",
     "group": "embroidery", "min_level": 2, "pin": 24,
     "controller": {"driver": "current", "simulate": True, "source": "serial",
                    "on_after": "1s", "off_after": "1s", "poll_interval": "0.25s"}},
]
GROUPS = [
    {"id": "laser", "name": "Découpe laser", "default_validity_months": 24},
    {"id": "cnc", "name": "Fraisage CNC", "default_validity_months": 24},
    {"id": "printing", "name": "Impression 3D", "default_validity_months": 36},
    {"id": "embroidery", "name": "Broderie", "default_validity_months": 36},
]
BADGE = {"karim": "04FAB001", "alice": "04A1CE01", "bruno": "04B2B002", "chloe": "04C3C003",
         "diane": "04D4D004", "emile": "04E5E005", "fanny": "04F6F006", "gilles": "04A7A007",
         "stranger": "DEADBEEF"}
# One pass shows every kind of decision and a job on every machine, then everyone badges
# out, the printer's member in the middle of her print (power is kept until it ends).
# ("tap", machine, who) or ("job", machine, name, length in scenario steps).
SCENARIO: list[tuple] = [
    ("tap", "laser-1", "fanny"), ("tap", "laser-1", "emile"), ("tap", "laser-1", "alice"),
    ("job", "laser-1", "boite.lbrn2", 3),
    ("tap", "cnc-1", "stranger"), ("tap", "cnc-1", "gilles"), ("tap", "cnc-1", "bruno"),
    ("job", "cnc-1", "plateau.nc", 4),
    ("tap", "printer-1", "chloe"), ("tap", "embroidery-1", "karim"),
    ("tap", "printer-1", "chloe"), ("job", "printer-1", "robot.gcode", 7),
    ("tap", "embroidery-1", "diane"), ("tap", "embroidery-1", "karim"),
    ("tap", "embroidery-1", "diane"), ("job", "embroidery-1", "ecusson.dst", 3),
    ("tap", "laser-1", "alice"), ("tap", "cnc-1", "bruno"), ("tap", "printer-1", "chloe"),
    ("tap", "embroidery-1", "diane"),
]


# Prices before VAT, in cents, after public fablab price lists: the laser by the minute of
# use with short taps free, professionals by the minute of burn time plus a start-up fee,
# the CNC by the quarter hour, schools print for free.
TARIFFS = [
    {"name": "Laser", "valid_from": "2024-01-01", "groups": ["laser"], "rate": 60,
     "free_under": "10s"},
    {"name": "Laser (professionnels)", "valid_from": "2024-01-01", "groups": ["laser"],
     "categories": ["professionnel"], "busy_rate": 75, "idle_rate": 0, "startup": 1250,
     "free_under": "10s"},
    {"name": "Fraisage CNC", "valid_from": "2024-01-01", "groups": ["cnc"], "rate": 50,
     "unit": 15},
    {"name": "Impression 3D", "valid_from": "2024-01-01", "groups": ["printing"], "rate": 2},
    {"name": "Impression 3D (scolaires)", "valid_from": "2024-01-01", "groups": ["printing"],
     "categories": ["scolaire"], "rate": 0},
    {"name": "Broderie", "valid_from": "2024-01-01", "groups": ["embroidery"], "rate": 10},
]


def _opening_hours() -> dict[str, list[str]]:
    from gateway.demo_year import OPENING_HOURS  # the year generator imports this module

    return {day: list(slots) for day, slots in OPENING_HOURS.items()}


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "fabgate" / "demo"


@dataclass
class DemoFiles:
    data: Path
    hub_config: Path
    node_configs: dict[str, Path]
    token: str


def write_demo_files(data: Path, broker_url: str, web_port: int, *, hold_off: str = "1s",
                     tap_sockets: bool = False,
                     reconnect: tuple[str, str] | None = None) -> DemoFiles:
    """(Re)write the demo's configuration; keys, token and database are kept across runs.

    ``reconnect`` (min, max) sets ``mqtt.reconnect_min``/``reconnect_max`` everywhere.
    """
    mqtt: dict[str, str] = {"url": broker_url}
    if reconnect is not None:
        mqtt.update(reconnect_min=reconnect[0], reconnect_max=reconnect[1])
    data.mkdir(parents=True, exist_ok=True)
    (data / "nodes").mkdir(exist_ok=True)
    token_file = data / "api-token"
    if not token_file.exists():
        token_file.touch(mode=0o600)
        token_file.write_text(secrets.token_urlsafe(24))
    token = token_file.read_text().strip()
    seed = data / "members.yaml"
    seed.write_bytes(resources.files("gateway").joinpath("data/demo-seed.yaml").read_bytes())
    hub = {
        "site": SITE, "timezone": "Europe/Paris", "language": "fr",
        "mqtt": dict(mqtt),
        "hub": {"database": "hub.db", "signing_key": "keys/hub-signing.pem",
                "snapshot_validity": "7d", "snapshot_refresh": "1h", "seed": "members.yaml"},
        "web": {"host": "127.0.0.1", "port": web_port},
        "api_tokens": [{"name": "accounting", "token": token}],
        # The same hours as the generated year of history, so occupancy in the activity
        # report means something. Outside them the live demo still works: autonomous
        # members need no opening hours, and staff presence lasts until midnight.
        "opening_hours": _opening_hours(),
        "groups": GROUPS,
        "tariffs": TARIFFS,
        "machines": [{k: m[k] for k in ("id", "name", "kind", "group", "min_level")}
                     for m in MACHINES],
    }
    hub_path = data / "hub.yaml"
    hub_path.write_text(yaml.safe_dump(hub, sort_keys=False, allow_unicode=True))
    nodes = {}
    for m in MACHINES:
        node = {
            "site": SITE, "mqtt": dict(mqtt),
            "node": {"id": m["id"], "machine": m["id"], "journal": f"../journals/{m['id']}.db",
                     "hub_public_key": "../keys/hub-signing.pub", "max_snapshot_age": "72h",
                     "heartbeat": "5s"},
            "relay": {"driver": "gpio", "pin": m["pin"], "active_high": True},
            "reader": {"driver": "simulated", "poll_hz": 10, "hold_off": hold_off},
            "controller": m["controller"],
            # Short rules so a visitor sees the whole cycle within a minute.
            "session": {"grace": "0s", "cooldown": "3s", "idle_timeout": "10m",
                        "progress_every": "1s"},
        }
        if tap_sockets:
            node["reader"]["socket"] = f"../journals/{m['id']}.tap"
        path = data / "nodes" / f"{m['id']}.yaml"
        path.write_text(yaml.safe_dump(node, sort_keys=False))
        nodes[m["id"]] = path
    return DemoFiles(data, hub_path, nodes, token)


class NodeWatcher:
    """Follows the retained node statuses, to know when every node holds a snapshot."""

    def __init__(self, link: MqttLink, topics: Topics) -> None:
        self.status: dict[str, dict] = {}
        self.changed = threading.Condition()
        link.subscribe(topics.all_node_status, self._on_status)

    def _on_status(self, _topic: str, payload: bytes) -> None:
        try:
            st = decode_status(payload)
        except ContractError:
            return
        with self.changed:
            self.status[st["node"]] = st
            self.changed.notify_all()

    def wait_ready(self, nodes: list[str], timeout: float) -> bool:
        def ready() -> bool:
            return all(self.status.get(n, {}).get("online")
                       and self.status[n].get("snapshot_version") for n in nodes)

        with self.changed:
            return self.changed.wait_for(ready, timeout)


@contextlib.contextmanager
def _broker(url: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    from gateway.broker import EmbeddedBroker

    broker = EmbeddedBroker(port=0)
    broker.start()
    try:
        yield broker.url
    finally:
        broker.stop()


def _start_nodes(files: DemoFiles) -> dict[str, subprocess.Popen]:
    logs = files.data / "logs"
    logs.mkdir(exist_ok=True)
    env = dict(os.environ, GPIOZERO_PIN_FACTORY="mock", PYTHONUNBUFFERED="1")
    procs = {}
    for node, cfg in files.node_configs.items():
        with open(logs / f"{node}.log", "ab") as log:
            procs[node] = subprocess.Popen(
                [sys.executable, "-m", "gateway", "node", "--config", str(cfg)],
                stdout=log, stderr=subprocess.STDOUT, env=env)
    return procs


def _stop_nodes(procs: dict[str, subprocess.Popen]) -> None:
    for p in procs.values():
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs.values():
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()


def run_scenario(link: MqttLink, topics: Topics, stop: threading.Event, step_s: float,
                 once: bool = False) -> int:
    """Tap badges from the script until ``stop``; returns the number of taps sent."""
    sent = 0
    while not stop.is_set():
        for action, machine, *args in SCENARIO:
            if stop.wait(step_s):
                return sent
            if action == "tap":
                link.publish(topics.sim_tap(machine), encode_sim_tap(BADGE[args[0]]))
            else:
                name, steps = args
                link.publish(topics.sim_job(machine), encode_sim_job(name, steps * step_s))
            sent += 1
        if once:
            return sent
    return sent


def print_summary(db_path: Path, since: str) -> None:
    """Usage of this run (sessions started since ``since``), per member."""
    import sqlite_utils

    from gateway.billing.money import format_money

    db = sqlite_utils.Database(db_path)
    rows = list(db.query(
        "SELECT m.name AS member, count(*) AS sessions, sum(s.billable_minutes) AS minutes, "
        "sum(coalesce(s.busy_minutes, 0)) AS busy, sum(coalesce(s.jobs, 0)) AS jobs, "
        "sum(coalesce(s.amount_cents, 0)) AS amount "
        "FROM sessions s JOIN members m ON m.id = s.member_id WHERE s.status = 'closed' "
        "AND s.started_at >= ? GROUP BY m.name ORDER BY m.name", [since]))
    print(f"\ndatabase: {db_path}")
    print("usage of this run by member (closed sessions, billable minutes, of which busy, "
          "jobs, amount before VAT):")
    for r in rows:
        print(f"  {r['member']:<20} {r['sessions']:>4} sessions {r['minutes'] or 0:>6} min "
              f"{r['busy']:>5} busy {r['jobs']:>4} jobs {format_money(r['amount']):>12}")
    total = sum(r["minutes"] or 0 for r in rows)
    print(f"  {'total':<20} {sum(r['sessions'] for r in rows):>4} sessions {total:>6} min "
          f"{sum(r['busy'] for r in rows):>5} busy {sum(r['jobs'] for r in rows):>4} jobs "
          f"{format_money(sum(r['amount'] for r in rows)):>12}")


# Demo log-ins: the fabmanager (who may certify), a trainer, an accountant and a member.
DEMO_ACCOUNTS = [
    ("m-karim", "karim@demo.fablab.invalid", ("fabmanager", "admin"), None),
    ("m-bruno", "bruno@demo.fablab.invalid", ("trainer",), "cnc"),
    ("m-alice", "alice@demo.fablab.invalid", (), None),
]


def _demo_accounts(cfg: HubConfig, data: Path) -> str:
    """Create the demo's accounts once; their shared password is kept in the data dir."""
    from gateway.hub.store import HubStore
    from gateway.web.auth import create_account, grant_role

    path = data / "demo-password"
    if not path.exists():
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(12))
    password = path.read_text().strip()
    with HubStore(cfg.database) as store:
        for member, email, roles, group in DEMO_ACCOUNTS:
            try:
                create_account(store, member, email, actor="demo", password=password)
            except ValueError:
                continue  # made by an earlier run
            for role in roles:
                grant_role(store, member, role, group if role == "trainer" else None,
                           actor="demo")
    return password


def _write_history(cfg: HubConfig, year: int) -> None:
    """A past year of activity, priced, so the reports and invoices have something to show."""
    from gateway.billing.pricing import install_tariffs
    from gateway.demo_year import generate_year
    from gateway.hub.store import HubStore

    generate_year(cfg.database, year)
    with HubStore(cfg.database) as store:
        store.sync_catalogue(cfg.groups, cfg.machines)
        install_tariffs(store, cfg.tariffs, actor="demo")


def run_demo(*, data: Path | None, broker: str | None, port: int,
             duration: float | None, with_history: bool = True) -> int:
    from gateway.hub.service import HubService

    data = (data or default_data_dir()).resolve()
    run_started = iso(utcnow())
    stop = threading.Event()

    def on_signal(_s: int, _f: object) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    with _broker(broker) as url:
        files = write_demo_files(data, url, port)
        cfg = load_hub_config(files.hub_config)
        history = utcnow().year - 1 if with_history else None
        if history and not cfg.database.exists():
            print(f"generating a year ({history}) of demo history in {cfg.database} ...",
                  flush=True)
            _write_history(cfg, history)
        hub = HubService(cfg)
        password = _demo_accounts(cfg, data)
        hub.start()
        procs: dict[str, subprocess.Popen] = {}
        link = MqttLink(url, f"fabgate-demo-{os.getpid()}")
        topics = Topics(cfg.mqtt.prefix)
        watcher = NodeWatcher(link, topics)
        link.start()
        try:
            procs = _start_nodes(files)
            if not watcher.wait_ready(list(files.node_configs), timeout=30):
                print(f"error: the simulated nodes did not come up; see {data / 'logs'}",
                      file=sys.stderr)
                return 1
            (data / "demo.json").write_text(json.dumps(
                {"broker": url, "prefix": topics.prefix, "hub": hub.web_url,
                 "token": files.token, "pid": os.getpid()}))
            logins = ", ".join(f"{e} ({'/'.join(r) or 'member'})"
                               for _m, e, r, _g in DEMO_ACCOUNTS)
            print(f"fabgate demo running\n  hub:      {hub.web_url}\n  broker:   {url}\n"
                  f"  log in:   {logins}\n            password {password}\n"
                  f"  API token (accounting): {files.token}\n  data:     {data}\n"
                  f"  try:      curl -H 'Authorization: Bearer {files.token}' "
                  f"'{hub.web_url}api/v1/usage?group_by=member'\n"
                  f"            fabgate sim tap laser-1 {BADGE['alice']}\n"
                  + (f"  report:   {hub.web_url}report?from={history}-01-01&to={history + 1}"
                     "-01-01 (a generated year of history)\n"
                     f"  invoices: curl -H 'Authorization: Bearer {files.token}' "
                     f"'{hub.web_url}api/v1/invoices?period={history}-12&format=csv-fr'\n"
                     if history else "")
                  + "  stop with Ctrl-C", flush=True)
            step = 3.0 if duration is None else max(0.2, min(3.0, duration / (len(SCENARIO) + 4)))
            scenario = threading.Thread(target=run_scenario, args=(link, topics, stop, step),
                                        daemon=True)
            scenario.start()
            if duration is not None:
                stop.wait(duration)
                stop.set()
            else:
                while not stop.is_set():
                    stop.wait(1.0)
                    dead = [n for n, p in procs.items() if p.poll() is not None]
                    if dead:
                        print(f"error: node(s) {', '.join(dead)} exited; see {data / 'logs'}",
                              file=sys.stderr)
                        return 1
            scenario.join(timeout=5)
        finally:
            stop.set()
            _stop_nodes(procs)
            hub.stop()
            link.stop()
            (data / "demo.json").unlink(missing_ok=True)
    print_summary(cfg.database, run_started)
    return 0
