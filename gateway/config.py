"""Configuration files: hub, node and seed YAML, loaded into typed, validated objects.

A typo in a config file on a Pi in a workshop is found by someone who did not write it,
so every error names the file, the key path and what was expected (``ConfigError``).
Relative paths in a file are relative to that file's directory.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import yaml

from gateway.contract import default_prefix
from gateway.mqtt import RECONNECT_MAX_S, RECONNECT_MIN_S
from gateway.permissions import WEEKDAYS, parse_opening_hours
from gateway.policies.tariffs import Tariff, TariffError, parse_tariffs
from gateway.uids import normalise_uid

CATEGORIES = ("grand_public", "adherent", "professionnel", "scolaire", "association")
MACHINE_KINDS = ("laser", "cnc", "printer", "embroidery", "other")


class ConfigError(ValueError):
    """``<file>[:<line>]: <key.path>: expected <what>, got <value>``."""

    def __init__(self, file: str | Path, key: str, expected: str, got: object = None,
                 *, line: int | None = None) -> None:
        self.file = str(file)
        self.key = key
        self.expected = expected
        self.got = got
        self.line = line  # 1-based line in the file, when the YAML position is known
        place = f"{self.file}:{line}" if line else self.file
        where = f"{place}: {key}" if key else place
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
    reconnect_min: float = RECONNECT_MIN_S  # seconds before the first reconnection attempt
    reconnect_max: float = RECONNECT_MAX_S  # ceiling of the doubling back-off


@dataclass(frozen=True)
class GroupConfig:
    id: str
    name: str
    default_validity_months: int = 24
    lapse_months: int | None = None  # certifications lapse after this long without use


@dataclass(frozen=True)
class MachineConfig:
    id: str
    name: str
    kind: str  # one of MACHINE_KINDS
    group: str  # a GroupConfig id
    min_level: int = 2
    out_of_service: bool = False
    requires_credit: bool = False  # taps need a positive prepaid balance
    certify_level: int = 2  # the level a trainer grants by certifying at this machine
    node: str | None = None  # the node that serves it (None: the node id is the machine id)

    @property
    def node_id(self) -> str:
        return self.node or self.id


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
    tariffs: tuple[Tariff, ...] = ()
    # Session cookies only over TLS (set it when the hub is served over https).
    web_secure_cookies: bool = False
    # Behind one reverse proxy: trust its X-Forwarded-For/Proto (client address for the
    # log-in lock-out, https for cookies). Never without a proxy: clients could forge them.
    web_trust_proxy: bool = False


@dataclass(frozen=True)
class RelayConfig:
    driver: str = "gpio"
    pin: int = 17
    active_high: bool = True
    # The board has its own pull resistor that holds the input at OFF during boot, so the
    # Pi's boot-time pull on this pin does not matter (see drivers.relay.check_boot_level).
    allow_boot_pull: bool = False


@dataclass(frozen=True)
class ReaderConfig:
    driver: str = "simulated"  # "simulated" or "rc522"
    poll_hz: float = 10.0
    hold_off: float = 2.0  # seconds a card must be away before it counts as a new tap
    spi_bus: int = 0
    spi_device: int = 0
    rst_pin: int = 25
    # Simulated readers only: a Unix datagram socket that accepts UIDs, so a tap can reach
    # the node when the broker is down (tests, bench rigs).
    socket: Path | None = None


CONTROLLER_DRIVERS = ("none", "grbl", "marlin", "octoprint", "current")
CURRENT_SOURCES = ("serial", "mcp3008")


@dataclass(frozen=True)
class ControllerConfig:
    """How the node follows what its machine does (``driver: none`` follows nothing)."""

    driver: str = "none"
    port: str | None = None  # grbl, marlin, current with source serial
    baudrate: int = 115200
    poll_interval: float | None = None  # None: the driver's own default
    url: str | None = None  # octoprint
    api_key: str | None = None  # octoprint
    source: str = "serial"  # current: serial sense board or mcp3008
    channel: int = 0  # current: ADC or sense-board channel
    # current with source mcp3008: SPI chip select. 1 (CE1, GPIO 7) because an RC522
    # reader usually takes CE0 on the same bus.
    spi_device: int = 1
    threshold_on: float = 0.5  # current: amps above which the machine may be busy
    threshold_off: float = 0.3  # current: amps below which it may be idle
    on_after: float = 3.0  # current: seconds above threshold_on before busy
    off_after: float = 10.0  # current: seconds below threshold_off before idle
    # current with source mcp3008: amps per ADC count. 0.195 is an SCT-013-000 (2000 turns)
    # over a 33 ohm burden read by a 10-bit ADC at 3.3 V (see policies.current.burden_scale).
    scale: float = 0.195
    simulate: bool = False  # run our simulator of this controller inside the node


@dataclass(frozen=True)
class SessionConfig:
    """Overrides of the per-machine-kind session rules (None: the kind's default)."""

    grace: float | None = None
    idle_timeout: float | None = None  # 0 in the file means "never"
    max_length: float | None = None  # 0 in the file means "no limit"
    cooldown: float | None = None
    never_cut_busy: bool | None = None
    progress_every: float = 5.0


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
    controller: ControllerConfig = field(default_factory=ControllerConfig)
    session: SessionConfig = field(default_factory=SessionConfig)


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


RELAY_DRIVERS = ("gpio",)
READER_DRIVERS = ("simulated", "rc522")
LANGUAGES = ("fr", "en")
MEMBER_STATUSES = ("active", "suspended")

# GPIO 0-8 have their pull-up enabled at power-on: a relay wired there would switch the
# machine on for the seconds between boot and the node agent taking the pin.
BOOT_HIGH_PINS = range(0, 9)
MAX_GPIO = 27
# SPI pins per (bus, device): a relay on one of them would fight the RC522 reader.
_SPI_PINS = {0: (9, 10, 11), 1: (19, 20, 21)}
_SPI_CE = {(0, 0): 8, (0, 1): 7, (1, 0): 18, (1, 1): 17, (1, 2): 16}

# Ids travel in MQTT topics and Mosquitto ACL patterns, where "/", "+" and "#" break things.
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_ID_TEXT = "an id of letters, digits, '.', '_' or '-' (at most 64, no spaces or '/')"
_SITE = re.compile(r"^[a-z0-9-]+$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_MIN_TOKEN = 16

_DURATION_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_DURATION_PART = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([smhd])\s*")
_DURATION_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
_DURATION_TEXT = "a duration such as '15s', '10m', '72h', '7d', '1h30m' or a number of seconds"


def parse_duration(value: str | int | float | timedelta) -> timedelta:
    """``"72h"`` -> ``timedelta(hours=72)``; ValueError for anything else.

    Units keep config files readable where seconds would hide the order of magnitude
    (``604800`` versus ``7d``); bare numbers stay accepted as seconds.
    """
    if isinstance(value, timedelta):
        if value < timedelta(0):
            raise ValueError(f"negative duration {value}")
        return value
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration")
    try:
        if isinstance(value, int | float):
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{value!r} is not a non-negative number of seconds")
            return timedelta(seconds=value)
        if not isinstance(value, str):
            raise ValueError(f"{value!r} is not a duration")
        text = value.strip().lower()
        if _DURATION_NUMBER.fullmatch(text):
            return timedelta(seconds=float(text) if "." in text else int(text))
        total = timedelta(0)
        pos = 0
        seen: set[str] = set()
        for match in _DURATION_PART.finditer(text):
            if match.start() != pos or match.group(2) in seen:
                break
            seen.add(match.group(2))
            number = match.group(1)
            amount = float(number) if "." in number else int(number)
            total += timedelta(**{_DURATION_UNITS[match.group(2)]: amount})
            pos = match.end()
        if not seen or pos != len(text):
            raise ValueError(f"{value!r} is not {_DURATION_TEXT}")
        return total
    except OverflowError as exc:
        raise ValueError(f"{value!r} is too long a duration") from exc


# --------------------------------------------------------------------------- YAML reading

_MISSING: Any = object()


def _parent(key: str) -> str:
    match = re.match(r"^(.*?)(?:\.[^.\[\]]+|\[\d+\])$", key)
    return match.group(1) if match else ""


def _child(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def _suggest(word: str, options: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _one_of(options: Sequence[str]) -> str:
    return "one of " + ", ".join(options)


class _Doc:
    """One YAML file: its data, its directory, and the line of every key path.

    Line numbers come from the composed node tree, so errors found after loading (an
    unknown group, a duplicate id) can still point at the line to fix.
    """

    def __init__(self, path: str | Path) -> None:
        self.file = Path(path)
        self.base = self.file.resolve().parent
        self.lines: dict[str, int] = {}
        self.data = self._read()

    def _read(self) -> Any:
        try:
            text = self.file.read_text(encoding="utf-8")
        except FileNotFoundError as exc:
            raise ConfigError(self.file, "", "an existing file", "file not found") from exc
        except UnicodeDecodeError as exc:
            raise ConfigError(self.file, "", "UTF-8 text", str(exc)) from exc
        except OSError as exc:
            raise ConfigError(self.file, "", "a readable file", exc.strerror) from exc
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return None
            self._index(node, "", set())
            return loader.construct_document(node)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            context = exc.context
            if context and exc.context_mark and exc.context_mark is not mark:
                # An unclosed bracket is noticed lines later: name where it was opened.
                context += f" opened at line {exc.context_mark.line + 1}"
            problem = "; ".join(p for p in (context, exc.problem) if p)
            raise ConfigError(self.file, "", "valid YAML", problem or str(exc),
                              line=mark.line + 1 if mark else None) from exc
        except yaml.YAMLError as exc:
            raise ConfigError(self.file, "", "valid YAML", str(exc)) from exc
        except ConfigError:
            raise
        except ValueError as exc:  # e.g. a timestamp like 2025-13-40
            raise ConfigError(self.file, "", "valid YAML values", str(exc)) from exc
        finally:
            loader.dispose()

    def _index(self, node: yaml.Node, path: str, seen: set[int]) -> None:
        if id(node) in seen:  # aliases: index a shared node once, never loop
            return
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            first: dict[str, int] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode) or key_node.value == "<<":
                    continue
                key_path = _child(path, key_node.value)
                line = key_node.start_mark.line + 1
                if key_node.value in first:
                    # PyYAML would silently keep the last one: the first is then dead text.
                    raise ConfigError(self.file, key_path,
                                      f"each key once (already at line {first[key_node.value]})",
                                      line=line)
                first[key_node.value] = line
                self.lines[key_path] = line
                self._index(value_node, key_path, seen)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                item_path = _child(path, i)
                self.lines[item_path] = item.start_mark.line + 1
                self._index(item, item_path, seen)

    def line_of(self, key: str) -> int | None:
        while key:
            if key in self.lines:
                return self.lines[key]
            key = _parent(key)
        return None

    def fail(self, key: str, expected: str, got: object = None) -> NoReturn:
        raise ConfigError(self.file, key, expected, got, line=self.line_of(key))

    def root(self, keys: Sequence[str], required: Sequence[str] = ()) -> _Section:
        if not isinstance(self.data, dict):
            self.fail("", "a YAML mapping of " + ", ".join(keys),
                      type(self.data).__name__ if self.data is not None else "an empty file")
        return _Section(self, "", self.data, keys, required)


class _Section:
    """A mapping in a config file, read key by key with type checks.

    Unknown keys are refused on construction: a misspelt optional key would otherwise be
    ignored and its default silently used. ``null`` means "use the default".
    """

    def __init__(self, doc: _Doc, path: str, value: Any, keys: Sequence[str],
                 required: Sequence[str] = ()) -> None:
        self.doc = doc
        self.path = path
        if not isinstance(value, dict):
            doc.fail(path, "a mapping with keys " + ", ".join(keys), _shown(value))
        for key in value:
            if not isinstance(key, str):
                doc.fail(path, f"text keys ({', '.join(keys)})", key)
            if key not in keys:
                doc.fail(_child(path, key),
                         f"a known key{_suggest(key, keys)} (known here: {', '.join(keys)})")
        for key in required:
            if value.get(key) is None:
                doc.fail(_child(path, key), "a value (this key is required)")
        self.data: dict[str, Any] = value

    def at(self, key: str) -> str:
        return _child(self.path, key)

    def fail(self, key: str, expected: str, got: object = None) -> NoReturn:
        self.doc.fail(self.at(key), expected, got)

    def raw(self, key: str, default: Any = _MISSING) -> Any:
        value = self.data.get(key)
        if value is None:
            if default is _MISSING:
                self.fail(key, "a value (this key is required)")
            return default
        return value

    def text(self, key: str, default: Any = _MISSING, *, pattern: re.Pattern[str] | None = None,
            what: str = "a non-empty string") -> Any:
        value = self.raw(key, default)
        if value is default and default is not _MISSING:
            return value
        if not isinstance(value, str) or not value.strip():
            self.fail(key, what, _shown(value))
        if pattern is not None and not pattern.fullmatch(value):
            self.fail(key, what, value)
        return value

    def id(self, key: str, default: Any = _MISSING) -> Any:
        return self.text(key, default, pattern=_ID, what=_ID_TEXT)

    def integer(self, key: str, default: Any, lo: int, hi: int, why: str = "") -> int:
        value = self.raw(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            self.fail(key, f"an integer from {lo} to {hi}{why}", _shown(value))
        return value

    def number(self, key: str, default: float, lo: float, hi: float) -> float:
        value = self.raw(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or not (
                lo < value <= hi):
            self.fail(key, f"a number above {lo:g} and at most {hi:g}", _shown(value))
        return float(value)

    def flag(self, key: str, default: bool) -> bool:
        value = self.raw(key, default)
        if not isinstance(value, bool):
            self.fail(key, "true or false", _shown(value))
        return value

    def choice(self, key: str, options: Sequence[str], default: Any = _MISSING) -> Any:
        value = self.raw(key, default)
        if not isinstance(value, str) or value not in options:
            hint = _suggest(value, options) if isinstance(value, str) else ""
            self.fail(key, _one_of(options) + hint, _shown(value))
        return value

    def duration(self, key: str, default: str | timedelta) -> timedelta:
        value = self.raw(key, default)
        try:
            result = parse_duration(value)
        except ValueError:
            self.fail(key, _DURATION_TEXT, _shown(value))
        if result <= timedelta(0):
            self.fail(key, "a duration longer than zero", value)
        return result

    def file_path(self, key: str, default: Any = _MISSING) -> Any:
        value = self.text(key, default, what="a file path")
        if value is None:
            return None
        # Relative to the config file, not to the working directory of whoever runs it:
        # the same file must mean the same paths under systemd and in a shell.
        return (self.doc.base / Path(value).expanduser()).resolve()

    def section(self, key: str, keys: Sequence[str], required: Sequence[str] = ()) -> _Section:
        value = self.data.get(key)
        return _Section(self.doc, self.at(key), {} if value is None else value, keys, required)

    def items(self, key: str) -> Iterator[tuple[str, Any]]:
        value = self.data.get(key)
        if value is None:
            return
        if not isinstance(value, list):
            self.fail(key, "a list", _shown(value))
        for i, item in enumerate(value):
            yield _child(self.at(key), i), item

    def sections(self, key: str, keys: Sequence[str],
                 required: Sequence[str] = ()) -> Iterator[_Section]:
        for path, item in self.items(key):
            yield _Section(self.doc, path, item, keys, required)


def _shown(value: Any) -> Any:
    """What to print after "got": a type name for containers, the value for scalars."""
    if value is None:
        return "null"
    if isinstance(value, dict | list):
        return f"a {'mapping' if isinstance(value, dict) else 'list'}"
    return value


def _unique(sec: _Section, key: str, value: str, seen: dict[str, str], what: str) -> None:
    if value in seen:
        sec.fail(key, f"a unique {what}: {value!r} is already used at {seen[value]}", value)
    seen[value] = sec.at(key)


# --------------------------------------------------------------------------- shared parts

_MQTT_KEYS = ("url", "prefix", "username", "password", "client_id", "reconnect_min",
              "reconnect_max")
_RECONNECT_CEILING = timedelta(hours=1)
_DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}
_URL_TEXT = "mqtt://host[:port] or mqtts://host[:port] (default ports 1883 and 8883)"


def _site(top: _Section) -> str:
    return top.text("site", pattern=_SITE,
                   what="a site name of lower-case letters, digits and '-' (used in MQTT topics)")


def _mqtt(top: _Section, site: str, default_client_id: str) -> MqttConfig:
    sec = top.section("mqtt", _MQTT_KEYS)
    url = sec.text("url", "mqtt://127.0.0.1:1883", what=_URL_TEXT)
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        sec.fail("url", _URL_TEXT + "; the port must be 1 to 65535", url)
    if (scheme not in _DEFAULT_PORTS or not parts.hostname or parts.username is not None
            or parts.path not in ("", "/") or parts.query or parts.fragment or port == 0):
        hint = "; put credentials in mqtt.username and mqtt.password" if parts.username else ""
        sec.fail("url", _URL_TEXT + hint, url)
    host = parts.hostname
    port = port or _DEFAULT_PORTS[scheme]
    shown_host = f"[{host}]" if ":" in host else host
    prefix = sec.text("prefix", default_prefix(site))
    if any(c in prefix for c in "+#\0") or prefix.startswith("/") or "//" in prefix:
        sec.fail("prefix", "a topic prefix without '+', '#', a leading '/' or empty levels",
                 prefix)
    if not prefix.endswith("/"):
        prefix += "/"
    username = sec.text("username", None)
    password = sec.text("password", None)
    if password is not None and username is None:
        sec.fail("username", "a username, since mqtt.password is set")
    client_id = sec.text("client_id", default_client_id)
    if any(c in client_id for c in "+#/ "):
        sec.fail("client_id", "a client id without '+', '#', '/' or spaces", client_id)
    reconnect_min = sec.duration("reconnect_min", timedelta(seconds=RECONNECT_MIN_S))
    reconnect_max = sec.duration("reconnect_max", timedelta(seconds=RECONNECT_MAX_S))
    if reconnect_max > _RECONNECT_CEILING:
        sec.fail("reconnect_max", "a duration of at most 1h", sec.raw("reconnect_max", None))
    if reconnect_max < reconnect_min:
        sec.fail("reconnect_max", f"a duration no shorter than reconnect_min ({reconnect_min})",
                 sec.raw("reconnect_max", None))
    return MqttConfig(url=f"{scheme}://{shown_host}:{port}", host=host, port=port,
                      tls=scheme == "mqtts", prefix=prefix, username=username,
                      password=password, client_id=client_id,
                      reconnect_min=reconnect_min.total_seconds(),
                      reconnect_max=reconnect_max.total_seconds())


# --------------------------------------------------------------------------- hub

_HUB_TOP = ("site", "timezone", "language", "mqtt", "hub", "web", "api_tokens",
            "opening_hours", "groups", "machines", "tariffs")
_HUB_KEYS = ("database", "signing_key", "snapshot_validity", "snapshot_refresh", "seed")
_GROUP_KEYS = ("id", "name", "default_validity_months", "lapse_months")
_MACHINE_KEYS = ("id", "name", "kind", "group", "min_level", "out_of_service", "requires_credit",
                 "certify_level", "node")


def _timezone(top: _Section) -> str:
    name = top.text("timezone", what="an IANA timezone name such as Europe/Paris")
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        top.fail("timezone", "an IANA timezone name such as Europe/Paris"
                 + _suggest(name, sorted(available_timezones())), name)
    return name


def _opening_hours(top: _Section) -> dict[int, tuple[tuple[time, time], ...]]:
    sec = top.section("opening_hours", WEEKDAYS)
    hours: dict[int, tuple[tuple[time, time], ...]] = {}
    for day, slots in sec.data.items():
        if slots is None:
            continue
        try:
            parsed = parse_opening_hours({day: slots})
        except (ValueError, TypeError) as exc:
            sec.fail(day, "a list of 'HH:MM-HH:MM' slots (quoted), close after open",
                     str(exc))
        day_slots = parsed[WEEKDAYS.index(day)]
        for (_, end), (start, _) in zip(day_slots, day_slots[1:], strict=False):
            if end == time(0) or start < end:
                sec.fail(day, "slots that do not overlap", slots)
        hours.update(parsed)
    return hours


def _hub_from(doc: _Doc) -> HubConfig:
    top = doc.root(_HUB_TOP, required=("site", "timezone"))
    if "hub" not in top.data:
        doc.fail("hub", "a `hub:` mapping (database, signing_key, ...): without it this file "
                 "is not a hub configuration")
    site = _site(top)
    timezone = _timezone(top)
    language = top.choice("language", LANGUAGES, "fr")
    mqtt = _mqtt(top, site, "fabgate-hub")

    hub = top.section("hub", _HUB_KEYS)
    validity = hub.duration("snapshot_validity", "7d")
    refresh = hub.duration("snapshot_refresh", "1h")
    if refresh >= validity:
        # Nodes would hold an expired snapshot between two publications.
        hub.fail("snapshot_refresh", f"a duration shorter than snapshot_validity ({validity})",
                 hub.raw("snapshot_refresh", "1h"))

    web = top.section("web", ("host", "port", "secure_cookies", "trust_proxy"))
    tokens: list[ApiToken] = []
    names: dict[str, str] = {}
    secrets: dict[str, str] = {}
    for sec in top.sections("api_tokens", ("name", "token"), required=("name", "token")):
        name = sec.id("name")
        token = sec.text("token")
        if len(token) < _MIN_TOKEN or any(c.isspace() for c in token):
            # got is left out on purpose: never print a secret into a log.
            sec.fail("token", f"a secret of at least {_MIN_TOKEN} characters without spaces "
                     f"(this one has {len(token)}; `openssl rand -hex 24` makes one)")
        _unique(sec, "name", name, names, "token name")
        if token in secrets:
            sec.fail("token", f"a token different from the one at {secrets[token]}")
        secrets[token] = sec.at("token")
        tokens.append(ApiToken(name=name, token=token))

    groups: list[GroupConfig] = []
    group_ids: dict[str, str] = {}
    for sec in top.sections("groups", _GROUP_KEYS, required=("id",)):
        gid = sec.id("id")
        _unique(sec, "id", gid, group_ids, "group id")
        groups.append(GroupConfig(
            id=gid, name=sec.text("name", gid),
            default_validity_months=sec.integer("default_validity_months", 24, 1, 600),
            lapse_months=sec.integer("lapse_months", None, 1, 600)
            if sec.raw("lapse_months", None) is not None else None))

    machines: list[MachineConfig] = []
    machine_ids: dict[str, str] = {}
    node_ids: dict[str, str] = {}
    for sec in top.sections("machines", _MACHINE_KEYS, required=("id", "kind", "group")):
        mid = sec.id("id")
        _unique(sec, "id", mid, machine_ids, "machine id")
        # The hub believes a node only about its machine, so one node serves one machine.
        node_id = sec.id("node", mid)
        _unique(sec, "node", node_id, node_ids, "node id (a node serves one machine)")
        group = sec.id("group")
        if group not in group_ids:
            known = ", ".join(group_ids) or "none defined"
            sec.fail("group", f"the id of a group under `groups:` ({known})"
                     f"{_suggest(group, list(group_ids))}", group)
        machines.append(MachineConfig(
            id=mid, name=sec.text("name", mid), kind=sec.choice("kind", MACHINE_KINDS),
            group=group,
            min_level=sec.integer("min_level", 2, 1, 3,
                              " (1 supervised, 2 autonomous, 3 trainer; level 0 is "
                              "'not certified' and never opens a machine)"),
            out_of_service=sec.flag("out_of_service", False),
            requires_credit=sec.flag("requires_credit", False),
            certify_level=sec.integer("certify_level", 2, 1, 2,
                                      " (trainers grant level 1 or 2 at the machine)"),
            node=node_id if node_id != mid else None))

    try:
        tariffs = parse_tariffs(top.data.get("tariffs") or [], tz=timezone,
                                machines=[m.id for m in machines],
                                groups=[g.id for g in groups], categories=CATEGORIES)
    except TariffError as exc:
        doc.fail(exc.key, exc.expected, exc.got)
    return HubConfig(
        tariffs=tuple(tariffs),
        file=doc.file, site=site, timezone=timezone, language=language, mqtt=mqtt,
        database=hub.file_path("database", "./data/hub.db"),
        signing_key=hub.file_path("signing_key", "./keys/hub-signing.pem"),
        snapshot_validity=validity, snapshot_refresh=refresh,
        web_host=web.text("host", "127.0.0.1"), web_port=web.integer("port", 8080, 0, 65535),
        web_secure_cookies=web.flag("secure_cookies", False),
        web_trust_proxy=web.flag("trust_proxy", False),
        api_tokens=tuple(tokens), opening_hours=_opening_hours(top),
        groups=tuple(groups), machines=tuple(machines), seed=hub.file_path("seed", None))


def load_hub_config(path: str | Path) -> HubConfig:
    """Read and validate a hub file; ConfigError (file, line, key path) on any mistake."""
    return _hub_from(_Doc(path))


# --------------------------------------------------------------------------- node

_NODE_TOP = ("site", "mqtt", "node", "relay", "reader", "controller", "session")
_CONTROLLER_KEYS = ("driver", "port", "baudrate", "poll_interval", "url", "api_key", "source",
                    "channel", "threshold_on", "threshold_off", "on_after", "off_after",
                    "simulate", "scale", "spi_device")
_SESSION_KEYS = ("grace", "idle_timeout", "max_length", "cooldown", "never_cut_busy",
                 "progress_every")
_NODE_KEYS = ("id", "machine", "journal", "hub_public_key", "max_snapshot_age", "heartbeat")
_RELAY_KEYS = ("driver", "pin", "active_high", "allow_boot_pull")
_READER_KEYS = ("driver", "poll_hz", "hold_off", "spi_bus", "spi_device", "rst_pin", "socket")


def _node_from(doc: _Doc) -> NodeConfig:
    top = doc.root(_NODE_TOP, required=("site",))
    if not isinstance(top.data.get("node"), dict):
        doc.fail("node", "a `node:` mapping with at least `machine:`",
                 _shown(top.data.get("node")) if "node" in top.data else None)
    site = _site(top)
    node = top.section("node", _NODE_KEYS, required=("machine",))
    machine_id = node.id("machine")
    node_id = node.id("id", machine_id)

    rel = top.section("relay", _RELAY_KEYS)
    pin = rel.integer("pin", 17, 0, MAX_GPIO, " (BCM GPIO number)")
    active_high = rel.flag("active_high", True)
    allow_boot_pull = rel.flag("allow_boot_pull", False)
    if not allow_boot_pull and active_high and pin in BOOT_HIGH_PINS:
        rel.fail("pin", "GPIO 9 or above for an active-high relay: GPIO 0-8 are pulled high "
                 "at boot on a Raspberry Pi and would switch the machine on until the node "
                 "starts (set relay.allow_boot_pull: true only if the board has its own "
                 "pull-down)", pin)
    if not allow_boot_pull and not active_high and pin not in BOOT_HIGH_PINS:
        rel.fail("pin", "GPIO 4, 5 or 6 for an active-low relay: GPIO 9-27 are pulled low "
                 "at boot and would switch an active-low relay on until the node starts "
                 "(set relay.allow_boot_pull: true only if the board has its own pull-up)",
                 pin)
    relay = RelayConfig(driver=rel.choice("driver", RELAY_DRIVERS, "gpio"), pin=pin,
                        active_high=active_high, allow_boot_pull=allow_boot_pull)

    rd = top.section("reader", _READER_KEYS)
    driver = rd.choice("driver", READER_DRIVERS, "simulated")
    hold_off = rd.duration("hold_off", "2s")
    spi_bus = rd.integer("spi_bus", 0, 0, 1)
    spi_device = rd.integer("spi_device", 0, 0, 2 if spi_bus == 1 else 1)
    rst_pin = rd.integer("rst_pin", 25, 0, MAX_GPIO, " (BCM GPIO number)")
    socket = rd.file_path("socket", None)
    if socket is not None and driver != "simulated":
        rd.fail("socket", "no `socket` with a real reader (it is for simulated readers only)",
                str(socket))
    reader = ReaderConfig(driver=driver, poll_hz=rd.number("poll_hz", 10.0, 0, 100),
                          hold_off=hold_off.total_seconds(), spi_bus=spi_bus,
                          spi_device=spi_device, rst_pin=rst_pin, socket=socket)
    if driver == "rc522":
        spi = (*_SPI_PINS[spi_bus], _SPI_CE[spi_bus, spi_device])
        if pin in spi:
            rel.fail("pin", f"a GPIO not used by the RC522 on SPI bus {spi_bus} "
                     f"(GPIO {', '.join(map(str, spi))})", pin)
        if pin == rst_pin:
            rel.fail("pin", f"a GPIO other than reader.rst_pin ({rst_pin})", pin)
        if rst_pin in spi:
            rd.fail("rst_pin", f"a GPIO not used by SPI bus {spi_bus} "
                    f"(GPIO {', '.join(map(str, spi))})", rst_pin)

    controller = _controller(top)
    session = _session(top)
    return NodeConfig(
        controller=controller, session=session,
        file=doc.file, site=site, node_id=node_id, machine_id=machine_id,
        journal=node.file_path("journal", f"./data/{node_id}-journal.db"),
        hub_public_key=node.file_path("hub_public_key", "./keys/hub-signing.pub"),
        max_snapshot_age=node.duration("max_snapshot_age", "72h"),
        heartbeat=node.duration("heartbeat", "15s"),
        mqtt=_mqtt(top, site, f"fabgate-node-{node_id}"), relay=relay, reader=reader)


def _seconds_or_none(sec: _Section, key: str) -> float | None:
    """An optional duration where 0 is meaningful (no grace, never, no limit)."""
    value = sec.raw(key, None)
    if value is None:
        return None
    try:
        seconds = parse_duration(value).total_seconds()
    except ValueError:
        sec.fail(key, _DURATION_TEXT, _shown(value))
    if seconds < 0:
        sec.fail(key, "a duration of zero or more", value)
    return seconds


def _controller(top: _Section) -> ControllerConfig:
    c = top.section("controller", _CONTROLLER_KEYS)
    driver = c.choice("driver", CONTROLLER_DRIVERS, "none")
    simulate = c.flag("simulate", False)
    source = c.choice("source", CURRENT_SOURCES, "serial")
    needs_port = driver in ("grbl", "marlin") or (driver == "current" and source == "serial")
    port = c.text("port", None, what="a serial port such as /dev/ttyUSB0")
    if needs_port and port is None and not simulate:
        c.fail("port", f"a serial port for the {driver} controller (e.g. /dev/ttyUSB0)")
    url = c.text("url", None, what="an http:// or https:// URL")
    if url is not None and not url.startswith(("http://", "https://")):
        c.fail("url", "an http:// or https:// URL", url)
    api_key = c.text("api_key", None, what="an OctoPrint API key")
    if driver == "octoprint" and not simulate and (url is None or api_key is None):
        c.fail("url" if url is None else "api_key", "the OctoPrint url and api_key")
    poll = _seconds_or_none(c, "poll_interval")
    on = c.number("threshold_on", 0.5, 0, 1000)
    off = c.number("threshold_off", min(0.3, on), 0, 1000)
    if off > on:
        c.fail("threshold_off", f"at most threshold_on ({on:g} A)", off)
    return ControllerConfig(
        driver=driver, port=port, baudrate=c.integer("baudrate", 115200, 1200, 4_000_000),
        poll_interval=poll, url=url, api_key=api_key, source=source,
        channel=c.integer("channel", 0, 0, 7), threshold_on=on, threshold_off=off,
        on_after=c.duration("on_after", "3s").total_seconds(),
        off_after=c.duration("off_after", "10s").total_seconds(), simulate=simulate,
        scale=c.number("scale", 0.195, 0, 1000), spi_device=c.integer("spi_device", 1, 0, 1))


def _session(top: _Section) -> SessionConfig:
    s = top.section("session", _SESSION_KEYS)
    never = s.raw("never_cut_busy", None)
    if never is not None and not isinstance(never, bool):
        s.fail("never_cut_busy", "true or false", _shown(never))
    return SessionConfig(
        grace=_seconds_or_none(s, "grace"), idle_timeout=_seconds_or_none(s, "idle_timeout"),
        max_length=_seconds_or_none(s, "max_length"), cooldown=_seconds_or_none(s, "cooldown"),
        never_cut_busy=never,
        progress_every=s.duration("progress_every", "5s").total_seconds())


def load_node_config(path: str | Path) -> NodeConfig:
    """Read and validate a node file; ConfigError (file, line, key path) on any mistake."""
    return _node_from(_Doc(path))


def load_any(path: str | Path) -> HubConfig | NodeConfig | Seed:
    """Load a hub, node or seed file, told apart by its top-level keys: ``hub:``,
    ``node:``, or (a seed file) ``members:``, ``projects:`` or ``certifications:``.

    ``fabgate check-config`` takes any file, so the file itself has to say what it is.
    """
    doc = _Doc(path)
    data = doc.data
    if not isinstance(data, dict):
        doc.root(("hub", "node"))  # raises: not a mapping
    if "hub" in data and "node" in data:
        doc.fail("", "either a top-level `hub:` or a `node:` mapping, not both")
    if "hub" in data:
        return _hub_from(doc)
    if "node" in data:
        return _node_from(doc)
    if any(key in data for key in _SEED_TOP):
        return _seed_from(doc)
    raise ConfigError(doc.file, "", "a top-level `hub:` mapping (hub configuration), "
                      "`node:` mapping (node configuration) or `members:` list (seed file); "
                      "this file has none of them")


# --------------------------------------------------------------------------- seed

_SEED_TOP = ("members", "projects", "certifications")
_MEMBER_KEYS = ("id", "name", "category", "status", "membership_end", "staff", "email",
                "badges", "current_project")
_PROJECT_KEYS = ("id", "member", "name")
_CERT_KEYS = ("member", "group", "level", "certified_by", "certified_at", "expires")
_TIME_TEXT = "a date (2025-09-20) or a time with its timezone (2025-09-20T18:30:00Z)"


def _date(sec: _Section, key: str) -> date | None:
    value = sec.raw(key, None)
    if isinstance(value, str):
        try:
            value = date.fromisoformat(value.strip())
        except ValueError:
            sec.fail(key, "a date such as 2026-06-30", value)
    if value is not None and (isinstance(value, datetime) or not isinstance(value, date)):
        sec.fail(key, "a date such as 2026-06-30", _shown(value))
    return value


def _datetime(sec: _Section, key: str, default: Any = _MISSING) -> datetime | None:
    value = sec.raw(key, default)
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            sec.fail(key, _TIME_TEXT, value)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            # A wall time without a zone would be read differently by each machine.
            sec.fail(key, _TIME_TEXT + "; this time has no timezone", str(value))
        return value.astimezone(UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    sec.fail(key, _TIME_TEXT, _shown(value))


def _member_ref(sec: _Section, key: str, members: dict[str, str], *, optional: bool = False
                ) -> str | None:
    ref = sec.id(key, None if optional else _MISSING)
    if ref is not None and ref not in members:
        sec.fail(key, "the id of a member under `members:`" + _suggest(ref, list(members)),
                 ref)
    return ref


def _seed_from(doc: _Doc) -> Seed:
    top = doc.root(_SEED_TOP)
    member_ids: dict[str, str] = {}
    badge_owner: dict[str, str] = {}
    members: list[tuple[_Section, SeedMember]] = []
    for sec in top.sections("members", _MEMBER_KEYS, required=("id", "name", "category")):
        mid = sec.id("id")
        _unique(sec, "id", mid, member_ids, "member id")
        badges: list[str] = []
        for path, raw in sec.items("badges"):
            if not isinstance(raw, str):
                doc.fail(path, "a badge UID as a quoted string such as \"04A1CE01\" "
                         "(unquoted, YAML may read it as a number)", _shown(raw))
            try:
                uid = normalise_uid(raw)
            except ValueError:
                doc.fail(path, "a badge UID: 4 to 10 bytes of hex such as 04A1CE01", raw)
            if uid in badge_owner:
                doc.fail(path, f"a badge not already given ({uid} is at {badge_owner[uid]})",
                         raw)
            badge_owner[uid] = path
            badges.append(uid)
        email = sec.text("email", None, pattern=_EMAIL, what="an e-mail address")
        members.append((sec, SeedMember(
            id=mid, name=sec.text("name"), category=sec.choice("category", CATEGORIES),
            status=sec.choice("status", MEMBER_STATUSES, "active"),
            membership_end=_date(sec, "membership_end"), staff=sec.flag("staff", False),
            email=email, badges=tuple(badges),
            current_project=sec.id("current_project", None))))

    projects: list[SeedProject] = []
    project_owner: dict[str, str] = {}
    project_ids: dict[str, str] = {}
    for sec in top.sections("projects", _PROJECT_KEYS, required=("id", "member", "name")):
        pid = sec.id("id")
        _unique(sec, "id", pid, project_ids, "project id")
        owner = _member_ref(sec, "member", member_ids)
        assert owner is not None
        project_owner[pid] = owner
        projects.append(SeedProject(id=pid, member=owner, name=sec.text("name")))

    for sec, member in members:
        project = member.current_project
        if project is not None and project_owner.get(project) != member.id:
            mine = [p for p, owner in project_owner.items() if owner == member.id]
            sec.fail("current_project", f"the id of one of {member.id}'s projects under "
                     f"`projects:` ({', '.join(mine) or 'none'})", project)

    certs: list[SeedCertification] = []
    cert_seen: dict[str, str] = {}
    for sec in top.sections("certifications", _CERT_KEYS,
                            required=("member", "group", "level", "certified_at")):
        member = _member_ref(sec, "member", member_ids)
        assert member is not None
        group = sec.id("group")
        _unique(sec, "group", f"{member}/{group}", cert_seen, "member/group pair")
        certified_at = _datetime(sec, "certified_at")
        assert certified_at is not None
        expires = _datetime(sec, "expires", None)
        if expires is not None and expires <= certified_at:
            sec.fail("expires", "a time after certified_at", sec.raw("expires"))
        certs.append(SeedCertification(
            member=member, group=group,
            level=sec.integer("level", _MISSING, 0, 3,
                          " (0 none, 1 supervised, 2 autonomous, 3 trainer)"),
            certified_by=_member_ref(sec, "certified_by", member_ids, optional=True),
            certified_at=certified_at, expires=expires))

    return Seed(file=doc.file, members=tuple(m for _, m in members),
                projects=tuple(projects), certifications=tuple(certs))


def load_seed(path: str | Path) -> Seed:
    """Read and validate a seed file (members, badges, projects, certifications).

    Certification groups are not checked here: the seed does not know the hub's groups,
    the store does when it imports.
    """
    return _seed_from(_Doc(path))
