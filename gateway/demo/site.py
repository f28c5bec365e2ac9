"""The demo site: its machines, groups, members' badges, hours and tariffs, and its files.

``fabgate demo`` and ``fabgate demo --init DIR`` write a data directory from these (hub
and node configuration, signing keys, fictitious members); the year generator
(``gateway.demo.year``), the scripted scenario and the tests build on the same constants,
so this module imports none of them.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Required, TypedDict

import yaml

from gateway.contract.signing import write_keypair


class ControllerSpec(TypedDict, total=False):
    """A node configuration's ``controller:`` section, as the demo writes it."""

    driver: Required[str]
    simulate: bool
    poll_interval: str
    source: str
    on_after: str
    off_after: str


class MachineSpec(TypedDict):
    """A demo machine: its hub catalogue entry, its node's relay pin and controller."""

    id: str
    name: str
    kind: str
    group: str
    min_level: int
    pin: int
    controller: ControllerSpec


class GroupSpec(TypedDict):
    """A hub configuration ``groups:`` entry."""

    id: str
    name: str
    default_validity_months: int


class TariffSpec(TypedDict, total=False):
    """A hub configuration ``tariffs:`` entry (read by ``gateway.billing.tariffs``)."""

    name: Required[str]
    valid_from: Required[str]
    groups: list[str]
    categories: list[str]
    rate: int
    busy_rate: int
    idle_rate: int
    startup: int
    unit: int
    free_under: str
    material_per_gram: int


SITE = "demo"
TIMEZONE = "Europe/Paris"
# Opening hours of the demo site, in the hub configuration's own format: a real fablab's
# week, so that occupancy in the activity report of the generated year means something.
# Outside them the live demo still works: autonomous members need no opening hours, and
# staff presence lasts until midnight.
OPENING_HOURS: dict[str, list[str]] = {
    "tue": ["10:00-13:00", "14:00-20:00"],
    "wed": ["10:00-13:00", "14:00-20:00"],
    "thu": ["10:00-13:00", "14:00-20:00"],
    "fri": ["10:00-13:00", "14:00-22:00"],
    "sat": ["10:00-18:00"],
}
MACHINES: list[MachineSpec] = [
    {
        "id": "laser-1",
        "name": "Découpe laser (laser-1)",
        "kind": "laser",
        "group": "laser",
        "min_level": 2,
        "pin": 17,
        "controller": {"driver": "grbl", "simulate": True, "poll_interval": "0.25s"},
    },
    {
        "id": "cnc-1",
        "name": "Fraiseuse CNC (cnc-1)",
        "kind": "cnc",
        "group": "cnc",
        "min_level": 2,
        "pin": 22,
        "controller": {"driver": "grbl", "simulate": True, "poll_interval": "0.25s"},
    },
    {
        "id": "printer-1",
        "name": "Imprimante 3D (printer-1)",
        "kind": "printer",
        "group": "printing",
        "min_level": 1,
        "pin": 23,
        "controller": {"driver": "marlin", "simulate": True, "poll_interval": "0.5s"},
    },
    {
        "id": "embroidery-1",
        "name": "Brodeuse numérique (embroidery-1)",
        "kind": "embroidery",
        "group": "embroidery",
        "min_level": 2,
        "pin": 24,
        "controller": {
            "driver": "current",
            "simulate": True,
            "source": "serial",
            "on_after": "1s",
            "off_after": "1s",
            "poll_interval": "0.25s",
        },
    },
]
GROUPS: list[GroupSpec] = [
    {"id": "laser", "name": "Découpe laser", "default_validity_months": 24},
    {"id": "cnc", "name": "Fraisage CNC", "default_validity_months": 24},
    {"id": "printing", "name": "Impression 3D", "default_validity_months": 36},
    {"id": "embroidery", "name": "Broderie", "default_validity_months": 36},
]
BADGE = {
    "karim": "04FAB001",
    "alice": "04A1CE01",
    "bruno": "04B2B002",
    "chloe": "04C3C003",
    "diane": "04D4D004",
    "emile": "04E5E005",
    "fanny": "04F6F006",
    "gilles": "04A7A007",
    "stranger": "DEADBEEF",
}
# Prices before VAT, in cents, after public fablab price lists: the laser by the minute of
# use with short taps free, professionals by the minute of burn time plus a start-up fee,
# the CNC by the quarter hour, schools print for free.
TARIFFS: list[TariffSpec] = [
    {
        "name": "Laser",
        "valid_from": "2024-01-01",
        "groups": ["laser"],
        "rate": 60,
        "free_under": "10s",
    },
    {
        "name": "Laser (professionnels)",
        "valid_from": "2024-01-01",
        "groups": ["laser"],
        "categories": ["professionnel"],
        "busy_rate": 75,
        "idle_rate": 0,
        "startup": 1250,
        "free_under": "10s",
    },
    {"name": "Fraisage CNC", "valid_from": "2024-01-01", "groups": ["cnc"], "rate": 50, "unit": 15},
    {
        "name": "Impression 3D",
        "valid_from": "2024-01-01",
        "groups": ["printing"],
        "rate": 2,
        "material_per_gram": 5,  # 50 € the kilogram of filament
    },
    {
        "name": "Impression 3D (scolaires)",
        "valid_from": "2024-01-01",
        "groups": ["printing"],
        "categories": ["scolaire"],
        "rate": 0,
    },
    {"name": "Broderie", "valid_from": "2024-01-01", "groups": ["embroidery"], "rate": 10},
]


# Where ``demo --init`` points the site by default: a broker the technician runs, not the
# embedded one, which lives only as long as a ``fabgate demo`` process.
LOCAL_BROKER = "mqtt://127.0.0.1:1883"
SIGNING_KEY = "keys/hub-signing.pem"
PUBLIC_KEY = "keys/hub-signing.pub"


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "fabgate" / "demo"


@dataclass
class DemoFiles:
    data: Path
    hub_config: Path
    node_configs: dict[str, Path]
    token: str

    @property
    def seed(self) -> Path:
        return self.data / "members.yaml"

    @property
    def signing_key(self) -> Path:
        return self.data / SIGNING_KEY

    @property
    def public_key(self) -> Path:
        return self.data / PUBLIC_KEY

    @property
    def token_file(self) -> Path:
        return self.data / "api-token"

    def written(self) -> list[Path]:
        """Every file of the site, configuration first (what ``demo --init`` reports)."""
        return [
            self.hub_config,
            *self.node_configs.values(),
            self.seed,
            self.token_file,
            self.signing_key,
            self.public_key,
        ]


def write_demo_files(
    data: Path,
    broker_url: str,
    web_port: int,
    *,
    hold_off: str = "1s",
    tap_sockets: bool = False,
    reconnect: tuple[str, str] | None = None,
) -> DemoFiles:
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
        "site": SITE,
        "timezone": TIMEZONE,
        "language": "fr",
        "mqtt": dict(mqtt),
        "hub": {
            "database": "hub.db",
            "signing_key": SIGNING_KEY,
            "snapshot_validity": "7d",
            "snapshot_refresh": "1h",
            "seed": "members.yaml",
        },
        "web": {"host": "127.0.0.1", "port": web_port},
        "api_tokens": [{"name": "accounting", "token": token}],
        "opening_hours": {day: list(slots) for day, slots in OPENING_HOURS.items()},
        "groups": GROUPS,
        "tariffs": TARIFFS,
        # A fictitious seller (its SIRET and VAT number carry valid check digits), so the
        # demo's invoices have PDFs; a real site puts its own (config/hub.yaml).
        "invoicing": {
            "seller": {
                "name": "Fablab de démonstration",
                "legal_form": "Association loi 1901",
                "address": ["1 rue des Ateliers"],
                "postcode": "44000",
                "city": "Nantes",
                "siret": "73282932000074",
                "vat_number": "FR44732829320",
            },
            "payment_days": 30,
        },
        "machines": [
            {
                "id": m["id"],
                "name": m["name"],
                "kind": m["kind"],
                "group": m["group"],
                "min_level": m["min_level"],
            }
            for m in MACHINES
        ],
    }
    hub_path = data / "hub.yaml"
    hub_path.write_text(yaml.safe_dump(hub, sort_keys=False, allow_unicode=True))
    nodes: dict[str, Path] = {}
    for m in MACHINES:
        reader: dict[str, str | int] = {"driver": "simulated", "poll_hz": 10, "hold_off": hold_off}
        if tap_sockets:
            reader["socket"] = f"../journals/{m['id']}.tap"
        node = {
            "site": SITE,
            "mqtt": dict(mqtt),
            "node": {
                "id": m["id"],
                "machine": m["id"],
                "journal": f"../journals/{m['id']}.db",
                "hub_public_key": f"../{PUBLIC_KEY}",
                "max_snapshot_age": "72h",
                "heartbeat": "5s",
            },
            "relay": {"driver": "gpio", "pin": m["pin"], "active_high": True},
            "reader": reader,
            "controller": m["controller"],
            # Short rules so a visitor sees the whole cycle within a minute.
            "session": {
                "grace": "0s",
                "cooldown": "3s",
                "idle_timeout": "10m",
                "progress_every": "1s",
            },
        }
        if m["kind"] == "printer":
            node["material"] = {"loaded": "PLA", "diameter": 1.75}
        path = data / "nodes" / f"{m['id']}.yaml"
        path.write_text(yaml.safe_dump(node, sort_keys=False))
        nodes[m["id"]] = path
    return DemoFiles(data, hub_path, nodes, token)


class SiteExists(Exception):
    """``demo --init`` would overwrite files someone may have edited: it writes nothing."""


def init_site(data: Path, broker_url: str = LOCAL_BROKER, web_port: int = 8080) -> DemoFiles:
    """Write a complete demo site into ``data`` (configs, seed, token, keys), start nothing.

    For a technician who wants to read or edit the files, or to start the hub and the
    nodes one by one against a broker of their own. Unlike ``fabgate demo``, which
    rewrites its configuration at each start, this refuses when any file it would write
    already exists, so edits are never lost; the signing key is made here, not at the
    hub's first start, so the nodes' public key exists before anything runs.
    """
    data = data.resolve()
    planned = DemoFiles(
        data, data / "hub.yaml", {m["id"]: data / "nodes" / f"{m['id']}.yaml" for m in MACHINES}, ""
    )
    existing = [p for p in planned.written() if p.exists() or p.is_symlink()]
    if existing:
        raise SiteExists(
            f"{data} already holds a site ({', '.join(map(str, existing))}); "
            "nothing was written: choose an empty directory"
        )
    files = write_demo_files(data, broker_url, web_port)
    write_keypair(files.signing_key, files.public_key)
    return files
