"""A node's configuration file: its machine, relay, badge reader, controller and session rules.

Besides each key's own checks, the pins of every device the file sets up are checked
against each other and against the Pi's boot pulls (``gateway.config.pins``): a relay
sharing a pin with the reader or the current sensor would be switched by their traffic.
"""

from __future__ import annotations

import ipaddress
from datetime import timedelta
from pathlib import Path
from typing import Any

from gateway.config import common, pins
from gateway.config.loader import DURATION_TEXT, Doc, Section, parse_duration, shown, unique
from gateway.config.models import (
    CONTROLLER_DRIVERS,
    CURRENT_SOURCES,
    NODE_HUB_PUBLIC_KEY,
    NODE_JOURNAL,
    PERMISSIVE_DROP_RULES,
    PERMISSIVE_INPUTS,
    READER_DRIVERS,
    RELAY_DRIVERS,
    ControllerConfig,
    MaterialConfig,
    NodeConfig,
    NodeMetricsConfig,
    PermissiveConfig,
    ReaderConfig,
    RelayConfig,
    SenderConfig,
    SessionConfig,
    default_of,
)
from gateway.policies.material import DEFAULT_DENSITIES
from gateway.policies.permissives import NAME_PATTERN

_NODE_TOP = (
    "site",
    "mqtt",
    "node",
    "relay",
    "reader",
    "controller",
    "sender",
    "session",
    "permissives",
    "material",
    "metrics",
)
_MATERIAL_KEYS = ("loaded", "diameter", "densities")
_SENDER_KEYS = ("tcp_port", "bind", "pty")
_PERMISSIVE_KEYS = ("input", "name", "on_drop", "hold_for")

_CONTROLLER_KEYS = (
    "driver",
    "port",
    "baudrate",
    "poll_interval",
    "url",
    "api_key",
    "source",
    "channel",
    "threshold_on",
    "threshold_off",
    "on_after",
    "off_after",
    "simulate",
    "scale",
    "spi_device",
)
_SESSION_KEYS = (
    "grace",
    "idle_timeout",
    "max_length",
    "cooldown",
    "never_cut_busy",
    "hold_for",
    "progress_every",
)
_NODE_KEYS = ("id", "machine", "journal", "hub_public_key", "max_snapshot_age", "heartbeat")
_RELAY_KEYS = ("driver", "pin", "active_high", "allow_boot_pull")
_READER_KEYS = ("driver", "poll_hz", "hold_off", "spi_bus", "spi_device", "rst_pin", "socket")
_GPIO_WHY = " (BCM GPIO number)"
# The MCP3008 sits on SPI bus 0 (gpiozero's default port), chip select controller.spi_device.
MCP3008_BUS = 0


def _seconds(cls: type, name: str) -> timedelta:
    return timedelta(seconds=default_of(cls, name))


def _relay(top: Section) -> RelayConfig:
    rel = top.section("relay", _RELAY_KEYS)
    pin = rel.integer("pin", default_of(RelayConfig, "pin"), 0, pins.MAX_GPIO, _GPIO_WHY)
    active_high = rel.flag("active_high", default_of(RelayConfig, "active_high"))
    allow_boot_pull = rel.flag("allow_boot_pull", default_of(RelayConfig, "allow_boot_pull"))
    if not allow_boot_pull and pins.boot_energises(pin, active_high=active_high):
        if active_high:
            rel.fail(
                "pin",
                f"GPIO {pins.ACTIVE_HIGH_PINS[0]} or above for an active-high "
                f"relay: {pins.gpio_text(pins.BOOT_PULL_UP)} are pulled high at boot on a "
                "Raspberry Pi and would switch the machine on until the node starts "
                "(set relay.allow_boot_pull: true only if the board has its own "
                "pull-down)",
                pin,
            )
        rel.fail(
            "pin",
            f"{pins.gpio_text(pins.ACTIVE_LOW_PINS)} for an active-low relay: "
            f"{pins.gpio_text(pins.ACTIVE_HIGH_PINS)} are pulled low at boot and would "
            "switch an active-low relay on until the node starts (set "
            "relay.allow_boot_pull: true only if the board has its own pull-up)",
            pin,
        )
    driver = rel.choice("driver", RELAY_DRIVERS, default_of(RelayConfig, "driver"))
    return RelayConfig(
        driver=driver, pin=pin, active_high=active_high, allow_boot_pull=allow_boot_pull
    )


def _reader(top: Section) -> ReaderConfig:
    rd = top.section("reader", _READER_KEYS)
    driver = rd.choice("driver", READER_DRIVERS, default_of(ReaderConfig, "driver"))
    hold_off = rd.duration("hold_off", _seconds(ReaderConfig, "hold_off"))
    spi_bus = rd.integer("spi_bus", default_of(ReaderConfig, "spi_bus"), 0, len(pins.SPI_BUSES) - 1)
    spi_device = rd.integer(
        "spi_device",
        default_of(ReaderConfig, "spi_device"),
        0,
        len(pins.SPI_BUSES[spi_bus].chip_selects) - 1,
    )
    rst_pin = rd.integer(
        "rst_pin", default_of(ReaderConfig, "rst_pin"), 0, pins.MAX_GPIO, _GPIO_WHY
    )
    socket = rd.file_path("socket", None)
    if socket is not None and driver != "simulated":
        rd.fail(
            "socket",
            "no `socket` with a real reader (it is for simulated readers only)",
            str(socket),
        )
    return ReaderConfig(
        driver=driver,
        poll_hz=rd.number("poll_hz", default_of(ReaderConfig, "poll_hz"), 0, 100),
        hold_off=hold_off.total_seconds(),
        spi_bus=spi_bus,
        spi_device=spi_device,
        rst_pin=rst_pin,
        socket=socket,
    )


def _seconds_or_none(sec: Section, key: str) -> float | None:
    """An optional duration where 0 is meaningful (no grace, never, no limit)."""
    value = sec.raw(key, None)
    if value is None:
        return None
    try:
        seconds = parse_duration(value).total_seconds()
    except ValueError:
        sec.fail(key, DURATION_TEXT, shown(value))
    if seconds < 0:
        sec.fail(key, "a duration of zero or more", value)
    return seconds


def _controller(top: Section) -> ControllerConfig:
    c = top.section("controller", _CONTROLLER_KEYS)

    def d(name: str) -> Any:
        return default_of(ControllerConfig, name)

    driver = c.choice("driver", CONTROLLER_DRIVERS, d("driver"))
    simulate = c.flag("simulate", d("simulate"))
    source = c.choice("source", CURRENT_SOURCES, d("source"))
    needs_port = driver in ("grbl", "marlin") or (driver == "current" and source == "serial")
    port = c.text("port", d("port"), what="a serial port such as /dev/ttyUSB0")
    if needs_port and port is None and not simulate:
        c.fail("port", f"a serial port for the {driver} controller (e.g. /dev/ttyUSB0)")
    url = c.text("url", d("url"), what="an http:// or https:// URL")
    if url is not None and not url.startswith(("http://", "https://")):
        c.fail("url", "an http:// or https:// URL", url)
    api_key = c.text("api_key", d("api_key"), what="an OctoPrint API key")
    if driver == "octoprint" and not simulate and (url is None or api_key is None):
        c.fail("url" if url is None else "api_key", "the OctoPrint url and api_key")
    poll = _seconds_or_none(c, "poll_interval")
    on = c.number("threshold_on", d("threshold_on"), 0, 1000)
    off = c.number("threshold_off", min(d("threshold_off"), on), 0, 1000)
    if off > on:
        c.fail("threshold_off", f"at most threshold_on ({on:g} A)", off)
    return ControllerConfig(
        driver=driver,
        port=port,
        baudrate=c.integer("baudrate", d("baudrate"), 1200, 4_000_000),
        poll_interval=poll,
        url=url,
        api_key=api_key,
        source=source,
        channel=c.integer("channel", d("channel"), 0, 7),
        threshold_on=on,
        threshold_off=off,
        on_after=c.duration("on_after", _seconds(ControllerConfig, "on_after")).total_seconds(),
        off_after=c.duration("off_after", _seconds(ControllerConfig, "off_after")).total_seconds(),
        simulate=simulate,
        scale=c.number("scale", d("scale"), 0, 1000),
        spi_device=c.integer(
            "spi_device", d("spi_device"), 0, len(pins.SPI_BUSES[MCP3008_BUS].chip_selects) - 1
        ),
    )


def _sender(top: Section, controller: ControllerConfig) -> SenderConfig:
    """The sender link: only a GRBL controller has one (the node relays it)."""
    sec = top.section("sender", _SENDER_KEYS)
    tcp_port = sec.raw("tcp_port", None)
    if tcp_port is not None:
        tcp_port = sec.integer("tcp_port", None, 1, 65535, " (a TCP port, e.g. 2323 or 23)")
    bind = sec.text("bind", default_of(SenderConfig, "bind"), what="an IP address")
    try:
        ipaddress.ip_address(bind)
    except ValueError:
        sec.fail(
            "bind",
            "an IP address of the node: 127.0.0.1 (senders on the node only), its "
            "workshop LAN address, or 0.0.0.0 (every network it is on)",
            bind,
        )
    pty_path = sec.file_path("pty", None)
    cfg = SenderConfig(tcp_port=tcp_port, bind=bind, pty=pty_path)
    if cfg.enabled and controller.driver != "grbl":
        sec.fail(
            "tcp_port" if tcp_port is not None else "pty",
            "no sender link unless controller.driver is grbl (the node relays GRBL senders only)",
            tcp_port if tcp_port is not None else str(pty_path),
        )
    if (
        pty_path is not None
        and controller.port is not None
        and Path(controller.port).expanduser().absolute() == pty_path
    ):
        sec.fail("pty", "a path other than controller.port (the node's own port)", str(pty_path))
    return cfg


def _session(top: Section) -> SessionConfig:
    s = top.section("session", _SESSION_KEYS)
    never = s.raw("never_cut_busy", None)
    if never is not None and not isinstance(never, bool):
        s.fail("never_cut_busy", "true or false", shown(never))
    return SessionConfig(
        grace=_seconds_or_none(s, "grace"),
        idle_timeout=_seconds_or_none(s, "idle_timeout"),
        max_length=_seconds_or_none(s, "max_length"),
        cooldown=_seconds_or_none(s, "cooldown"),
        never_cut_busy=never,
        hold_for=_seconds_or_none(s, "hold_for"),
        progress_every=s.duration(
            "progress_every", _seconds(SessionConfig, "progress_every")
        ).total_seconds(),
    )


def _material(top: Section) -> MaterialConfig:
    m = top.section("material", _MATERIAL_KEYS)
    densities = dict(DEFAULT_DENSITIES)
    given = m.raw("densities", None)
    if given is not None:
        if not isinstance(given, dict):
            m.fail(
                "densities", "a mapping of material name to g/cm³, e.g. {PLA: 1.24}", shown(given)
            )
        for name, value in given.items():
            if not isinstance(name, str) or not name.strip() or len(name) > 32:
                m.fail("densities", "material names of 1 to 32 characters", shown(name))
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not 0.3 <= value <= 25
            ):
                m.fail(f"densities.{name}", "a density between 0.3 and 25 g/cm³", shown(value))
            densities[name] = float(value)
    loaded = m.raw("loaded", None)
    if loaded is not None and (not isinstance(loaded, str) or loaded not in densities):
        m.fail(
            "loaded",
            f"null or one of the materials with a density: {', '.join(sorted(densities))}",
            shown(loaded),
        )
    return MaterialConfig(
        loaded=loaded,
        diameter_mm=m.number("diameter", default_of(MaterialConfig, "diameter_mm"), 1.0, 3.5),
        densities=densities,
    )


def _permissives(top: Section, controller: ControllerConfig) -> tuple[PermissiveConfig, ...]:
    """The interlocks; they are read from the sense board, so they need one."""
    found: list[PermissiveConfig] = []
    names: dict[str, str] = {}
    inputs: dict[str, str] = {}
    for p in top.sections("permissives", _PERMISSIVE_KEYS, required=("input", "name")):
        if controller.driver != "current" or controller.source != "serial":
            p.doc.fail(
                "controller.driver",
                "the sense board (driver: current, source: serial): the permissives "
                f"at {p.path} are read from its inputs",
                controller.driver,
            )
        number = p.integer("input", None, 0, PERMISSIVE_INPUTS - 1, " (a sense board input)")
        name = p.text(
            "name",
            pattern=NAME_PATTERN,
            what="a short lower-case name such as water_flow (letters, digits, _; 32 at most)",
        )
        unique(p, "name", name, names, "permissive name")
        unique(p, "input", str(number), inputs, "permissive input")
        on_drop = p.raw("on_drop", None)
        if on_drop is not None:
            on_drop = p.choice("on_drop", PERMISSIVE_DROP_RULES)
        found.append(
            PermissiveConfig(
                input=number, name=name, on_drop=on_drop, hold_for=_seconds_or_none(p, "hold_for")
            )
        )
    return tuple(found)


def _check_pins(
    top: Section, relay: RelayConfig, reader: ReaderConfig, controller: ControllerConfig
) -> None:
    """No two devices on one pin (beyond a bus's shared lines), the relay on none of them.

    Only hardware the node will drive claims pins: a simulated reader or controller
    (``simulate: true``) takes none.
    """
    claims: list[pins.Claim] = []

    def claim(key: str, got: object, new: list[pins.Claim], expected: str) -> None:
        for c in new:
            taken = pins.conflict(claims, c)
            if taken is not None:
                top.doc.fail(key, f"{expected} ({taken.text()})", got)
            claims.append(c)

    # Bus pins first (they are fixed by the wiring), the freely chosen reset line last.
    rc522 = reader.driver == "rc522"
    if rc522:
        claim(
            "reader.spi_device",
            reader.spi_device,
            pins.spi_claims(
                "the RC522 reader",
                "reader.spi_bus and reader.spi_device",
                reader.spi_bus,
                reader.spi_device,
            ),
            "an SPI chip select no other device uses",
        )
    if (
        controller.driver == "current"
        and controller.source == "mcp3008"
        and not controller.simulate
    ):
        claim(
            "controller.spi_device",
            controller.spi_device,
            pins.spi_claims(
                "the MCP3008 current sensor",
                "controller.spi_device",
                MCP3008_BUS,
                controller.spi_device,
            ),
            "an SPI chip select no other device uses",
        )
    if rc522:
        claim(
            "reader.rst_pin",
            reader.rst_pin,
            [pins.Claim(reader.rst_pin, "the RC522 reader", "RST", "reader.rst_pin")],
            "a reset GPIO no other device uses",
        )
    for taken in claims:
        if taken.pin == relay.pin:
            top.doc.fail("relay.pin", f"a GPIO no other device uses ({taken.text()})", relay.pin)


def _metrics(top: Section) -> NodeMetricsConfig:
    sec = top.section("metrics", ("textfile", "every"))
    path = sec.file_path("textfile", None)
    if path is not None and path.suffix != ".prom":
        # node_exporter's textfile collector reads only *.prom files.
        sec.fail(
            "textfile", "a file name ending in .prom (node_exporter reads only those)", path.name
        )
    return NodeMetricsConfig(
        textfile=path, every=sec.duration("every", default_of(NodeMetricsConfig, "every"))
    )


def node_from(doc: Doc) -> NodeConfig:
    top = doc.root(_NODE_TOP, required=("site",))
    if not isinstance(top.data.get("node"), dict):
        doc.fail(
            "node",
            "a `node:` mapping with at least `machine:`",
            shown(top.data.get("node")) if "node" in top.data else None,
        )
    site = common.site(top)
    node = top.section("node", _NODE_KEYS, required=("machine",))
    machine_id = node.id("machine")
    node_id = node.id("id", machine_id)
    relay = _relay(top)
    reader = _reader(top)
    controller = _controller(top)
    _check_pins(top, relay, reader, controller)
    sender = _sender(top, controller)
    session = _session(top)
    return NodeConfig(
        controller=controller,
        sender=sender,
        session=session,
        material=_material(top),
        permissives=_permissives(top, controller),
        file=doc.file,
        site=site,
        node_id=node_id,
        machine_id=machine_id,
        journal=node.file_path("journal", NODE_JOURNAL.format(node_id=node_id)),
        hub_public_key=node.file_path("hub_public_key", NODE_HUB_PUBLIC_KEY),
        max_snapshot_age=node.duration(
            "max_snapshot_age", default_of(NodeConfig, "max_snapshot_age")
        ),
        heartbeat=node.duration("heartbeat", default_of(NodeConfig, "heartbeat")),
        mqtt=common.mqtt(top, site, f"fabgate-node-{node_id}"),
        relay=relay,
        reader=reader,
        metrics=_metrics(top),
    )


def load_node_config(path: str | Path) -> NodeConfig:
    """Read and validate a node file; ConfigError (file, line, key path) on any mistake."""
    return node_from(Doc(path))
