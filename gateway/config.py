"""Configuration files: hub, node and seed YAML, loaded into typed, validated objects.

A typo in a config file on a Pi in a workshop is found by someone who did not write it,
so every error names the file, the key path and what was expected (``ConfigError``).
Relative paths in a file are relative to that file's directory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path

CATEGORIES = ("grand_public", "adherent", "professionnel", "scolaire", "association")
MACHINE_KINDS = ("laser", "cnc", "printer", "embroidery", "other")


class ConfigError(ValueError):
    """``<file>: <key.path>: expected <what>, got <value>``."""

    def __init__(self, file: str | Path, key: str, expected: str, got: object = None) -> None:
        self.file = str(file)
        self.key = key
        self.expected = expected
        self.got = got
        where = f"{self.file}: {key}" if key else self.file
        tail = f", got {got!r}" if got is not None else ""
        super().__init__(f"{where}: expected {expected}{tail}")


@dataclass(frozen=True)
class MqttConfig:
    url: str = "mqtt://127.0.0.1:1883"  # mqtt://host:port or mqtts://host:port
    host: str = "127.0.0.1"
    port: int = 1883
    tls: bool = False
    prefix: str = ""  # always ends with "/"; default fablab/<site>/
    username: str | None = None
    password: str | None = None
    client_id: str = ""


@dataclass(frozen=True)
class GroupConfig:
    id: str
    name: str
    default_validity_months: int = 24


@dataclass(frozen=True)
class MachineConfig:
    id: str
    name: str
    kind: str  # one of MACHINE_KINDS
    group: str  # a GroupConfig id
    min_level: int = 2
    out_of_service: bool = False


@dataclass(frozen=True)
class ApiToken:
    name: str
    token: str


@dataclass(frozen=True)
class HubConfig:
    file: Path
    site: str
    timezone: str
    language: str  # "fr" or "en"
    mqtt: MqttConfig
    database: Path
    signing_key: Path
    snapshot_validity: timedelta
    snapshot_refresh: timedelta
    web_host: str
    web_port: int
    api_tokens: tuple[ApiToken, ...]
    opening_hours: dict[int, tuple[tuple[time, time], ...]]
    groups: tuple[GroupConfig, ...]
    machines: tuple[MachineConfig, ...]
    seed: Path | None = None


@dataclass(frozen=True)
class RelayConfig:
    driver: str = "gpio"
    pin: int = 17
    active_high: bool = True


@dataclass(frozen=True)
class ReaderConfig:
    driver: str = "simulated"  # "simulated" or "rc522"
    poll_hz: float = 10.0
    hold_off: float = 2.0  # seconds a card must be away before it counts as a new tap
    spi_bus: int = 0
    spi_device: int = 0
    rst_pin: int = 25


@dataclass(frozen=True)
class NodeConfig:
    file: Path
    site: str
    node_id: str
    machine_id: str
    journal: Path
    hub_public_key: Path
    max_snapshot_age: timedelta
    heartbeat: timedelta
    mqtt: MqttConfig
    relay: RelayConfig
    reader: ReaderConfig


@dataclass(frozen=True)
class SeedMember:
    id: str
    name: str
    category: str
    status: str = "active"  # active | suspended
    membership_end: date | None = None
    staff: bool = False
    email: str | None = None
    badges: tuple[str, ...] = ()  # normalised UIDs
    current_project: str | None = None


@dataclass(frozen=True)
class SeedProject:
    id: str
    member: str
    name: str


@dataclass(frozen=True)
class SeedCertification:
    member: str
    group: str
    level: int
    certified_by: str | None
    certified_at: datetime
    expires: datetime | None


@dataclass(frozen=True)
class Seed:
    file: Path
    members: tuple[SeedMember, ...] = ()
    projects: tuple[SeedProject, ...] = ()
    certifications: tuple[SeedCertification, ...] = field(default_factory=tuple)


# Loaders (implemented below): load_hub_config(path) -> HubConfig,
# load_node_config(path) -> NodeConfig, load_seed(path) -> Seed,
# load_any(path) -> HubConfig | NodeConfig (by the file's top-level `hub:` or `node:` key),
# parse_duration("72h") -> timedelta.
