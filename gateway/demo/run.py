"""``fabgate demo``: a whole fablab on one machine, with nothing but Python installed.

It writes a data directory (``gateway.demo.site``), starts a broker (the embedded amqtt
one unless ``--broker`` is given), the hub in this process, and one real ``fabgate node``
subprocess per machine with mock GPIO and a simulated reader. The scripted scenario
(``gateway.demo.scenario``) then keeps members badging in and out over the same MQTT path
``fabgate sim tap`` uses, so the pages stay alive.
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
from pathlib import Path
from typing import Any

from gateway.config import HubConfig, load_hub_config
from gateway.contract import ContractError, Topics, decode_status
from gateway.contract.mqtt import MqttLink
from gateway.core.clock import iso, utcnow
from gateway.demo.scenario import SCENARIO, run_scenario
from gateway.demo.site import BADGE, DemoFiles, default_data_dir, write_demo_files
from gateway.web import hub_web_app


class NodeWatcher:
    """Follows the retained node statuses, to know when every node holds a snapshot."""

    def __init__(self, link: MqttLink, topics: Topics) -> None:
        self.status: dict[str, dict[str, Any]] = {}
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
            return all(
                self.status.get(n, {}).get("online") and self.status[n].get("snapshot_version")
                for n in nodes
            )

        with self.changed:
            return self.changed.wait_for(ready, timeout)


@contextlib.contextmanager
def _broker(url: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    from gateway.demo.broker import EmbeddedBroker

    broker = EmbeddedBroker(port=0)
    broker.start()
    try:
        yield broker.url
    finally:
        broker.stop()


def _start_nodes(files: DemoFiles) -> dict[str, subprocess.Popen[bytes]]:
    logs = files.data / "logs"
    logs.mkdir(exist_ok=True)
    env = dict(os.environ, GPIOZERO_PIN_FACTORY="mock", PYTHONUNBUFFERED="1")
    procs = {}
    for node, cfg in files.node_configs.items():
        with open(logs / f"{node}.log", "ab") as log:
            procs[node] = subprocess.Popen(
                [sys.executable, "-m", "gateway", "node", "--config", str(cfg)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
    return procs


def _stop_nodes(procs: dict[str, subprocess.Popen[bytes]]) -> None:
    for p in procs.values():
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs.values():
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()


def print_summary(db_path: Path, since: str) -> None:
    """Usage of this run (sessions started since ``since``), per member."""
    import sqlite_utils

    from gateway.billing.money import format_money

    db = sqlite_utils.Database(db_path)
    rows = list(
        db.query(
            "SELECT m.name AS member, count(*) AS sessions, sum(s.billable_minutes) AS minutes, "
            "sum(coalesce(s.busy_minutes, 0)) AS busy, sum(coalesce(s.jobs, 0)) AS jobs, "
            "sum(coalesce(s.amount_cents, 0)) AS amount "
            "FROM sessions s JOIN members m ON m.id = s.member_id WHERE s.status = 'closed' "
            "AND s.started_at >= ? GROUP BY m.name ORDER BY m.name",
            [since],
        )
    )
    print(f"\ndatabase: {db_path}")
    print(
        "usage of this run by member (closed sessions, billable minutes, of which busy, "
        "jobs, amount before VAT):"
    )
    for r in rows:
        print(
            f"  {r['member']:<20} {r['sessions']:>4} sessions {r['minutes'] or 0:>6} min "
            f"{r['busy']:>5} busy {r['jobs']:>4} jobs {format_money(r['amount']):>12}"
        )
    total = sum(r["minutes"] or 0 for r in rows)
    print(
        f"  {'total':<20} {sum(r['sessions'] for r in rows):>4} sessions {total:>6} min "
        f"{sum(r['busy'] for r in rows):>5} busy {sum(r['jobs'] for r in rows):>4} jobs "
        f"{format_money(sum(r['amount'] for r in rows)):>12}"
    )


# Demo log-ins: the fabmanager (who may certify), a trainer, the accountant (invoices,
# closing months, the sales journal) and a member; the name is how the demo prints them.
DEMO_ACCOUNTS = [
    ("m-karim", "karim@demo.fablab.invalid", ("fabmanager", "admin"), None, "Karim (fabmanager)"),
    ("m-bruno", "bruno@demo.fablab.invalid", ("trainer",), "cnc", "Bruno (formateur CNC)"),
    ("m-camille", "camille@demo.fablab.invalid", ("accountant",), None, "Camille (comptabilité)"),
    ("m-alice", "alice@demo.fablab.invalid", (), None, "Alice (membre)"),
]


ACCOUNTANT = ("m-camille", "Camille Garnier")


def login_lines() -> str:
    """The demo's log-ins as it prints them, one person a line."""
    return "\n".join(f"            {label}: {email}" for _m, email, _r, _g, label in DEMO_ACCOUNTS)


def _demo_accounts(cfg: HubConfig, data: Path) -> str:
    """Create the demo's accounts once; their shared password is kept in the data dir."""
    from gateway.hub.accounts import create_account, grant_role
    from gateway.hub.db import HubStore
    from gateway.hub.members import add_member

    path = data / "demo-password"
    if not path.exists():
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(12))
    password = path.read_text().strip()
    with HubStore(cfg.database) as store:
        # The accountant works at the desk, not at the machines: a member without a badge,
        # made here rather than in the seed (the seed is the lab's members and badges).
        with store.atomic():
            add_member(
                store,
                ACCOUNTANT[0],
                name=ACCOUNTANT[1],
                category="professionnel",
                status="active",
                membership_end=None,
                staff=False,
                email=None,
            )
        for member, email, roles, group, _label in DEMO_ACCOUNTS:
            try:
                create_account(store, member, email, actor="demo", password=password)
            except ValueError:
                continue  # made by an earlier run
            for role in roles:
                grant_role(store, member, role, group if role == "trainer" else None, actor="demo")
    return password


def _write_history(cfg: HubConfig, year: int) -> None:
    """A past year of activity, priced, so the reports and invoices have something to show."""
    from gateway.billing.pricing import import_tariffs
    from gateway.demo.year import generate_year
    from gateway.hub.catalogue import import_catalogue
    from gateway.hub.db import HubStore

    generate_year(cfg.database, year)
    with HubStore(cfg.database) as store:
        import_catalogue(store, cfg.groups, cfg.machines, actor="demo")
        import_tariffs(store, cfg.tariffs, actor="demo", source=str(cfg.file))


def run_demo(
    *,
    data: Path | None,
    broker: str | None,
    port: int,
    duration: float | None,
    with_history: bool = True,
) -> int:
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
            print(
                f"generating a year ({history}) of demo history in {cfg.database} ...", flush=True
            )
            _write_history(cfg, history)
        hub = HubService(cfg, web_app=hub_web_app)
        password = _demo_accounts(cfg, data)
        hub.start()
        procs: dict[str, subprocess.Popen[bytes]] = {}
        link = MqttLink(url, f"fabgate-demo-{os.getpid()}")
        topics = Topics(cfg.mqtt.prefix)
        watcher = NodeWatcher(link, topics)
        link.start()
        try:
            procs = _start_nodes(files)
            if not watcher.wait_ready(list(files.node_configs), timeout=30):
                print(
                    f"error: the simulated nodes did not come up; see {data / 'logs'}",
                    file=sys.stderr,
                )
                return 1
            (data / "demo.json").write_text(
                json.dumps(
                    {
                        "broker": url,
                        "prefix": topics.prefix,
                        "hub": hub.web_url,
                        "token": files.token,
                        "pid": os.getpid(),
                    }
                )
            )
            print(
                f"fabgate demo running\n  hub:      {hub.web_url}\n  broker:   {url}\n"
                f"  log in:\n{login_lines()}\n            password (all of them) {password}\n"
                f"  API token (accounting): {files.token}\n  data:     {data}\n"
                f"  try:      curl -H 'Authorization: Bearer {files.token}' "
                f"'{hub.web_url}api/v1/usage?group_by=member'\n"
                f"            fabgate sim tap laser-1 {BADGE['alice']}\n"
                + (
                    f"  report:   {hub.web_url}report?from={history}-01-01&to={history + 1}"
                    "-01-01 (a generated year of history)\n"
                    f"  invoices: curl -H 'Authorization: Bearer {files.token}' "
                    f"'{hub.web_url}api/v1/invoices?period={history}-12&format=csv-fr'\n"
                    if history
                    else ""
                )
                + "  stop with Ctrl-C",
                flush=True,
            )
            step = 3.0 if duration is None else max(0.2, min(3.0, duration / (len(SCENARIO) + 4)))
            scenario = threading.Thread(
                target=run_scenario, args=(link, topics, stop, step), daemon=True
            )
            scenario.start()
            if duration is not None:
                stop.wait(duration)
                stop.set()
            else:
                while not stop.is_set():
                    stop.wait(1.0)
                    dead = [n for n, p in procs.items() if p.poll() is not None]
                    if dead:
                        print(
                            f"error: node(s) {', '.join(dead)} exited; see {data / 'logs'}",
                            file=sys.stderr,
                        )
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
