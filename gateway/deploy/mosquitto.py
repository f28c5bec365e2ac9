"""A site's Mosquitto files, made from its hub configuration.

``fabgate deploy mosquitto --config hub.yaml --out DIR`` writes ``fabgate.conf`` (the
broker settings), ``fabgate.acl`` (who may publish and read which topic) and
``fabgate.passwd`` (one account for the hub and one per node, see
:mod:`gateway.deploy.passwd`). The settings and the ACL are rendered here as text,
without I/O, so the files shipped in ``deploy/mosquitto/`` are this module's output for
``config/hub.yaml`` and a test keeps them so.

Every name that goes into a topic, an ACL line or the password file (the site, each
level of the topic prefix, node and machine ids, the hub's username) is checked first:
a ``+`` or ``#`` would be a wildcard in an ACL line, a ``/`` would let ``%u`` reach
another level, a ``%`` would be substituted, a ``:`` would end a password-file name, and
white space or a control character would split the line. A refusal is a
:class:`~gateway.config.ConfigError` naming the hub file, the line and the key.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from gateway.config import ConfigError, HubConfig
from gateway.config.loader import ID_PATTERN, ID_TEXT, Doc
from gateway.deploy.passwd import Account, AccountsReport, ensure_accounts

CONF_FILE = "fabgate.conf"
ACL_FILE = "fabgate.acl"
PASSWD_FILE = "fabgate.passwd"
# What the shipped example configurations put where a password goes.
PLACEHOLDER = "remplacez-moi"
DEFAULT_HUB_USER = "fabgate-hub"
INSTALL_DIR = PurePosixPath("/etc/mosquitto")
PLAIN_LISTENERS = ("all", "localhost", "none")
PLAIN_PORT = 1883
TLS_PORT = 8883
# The hub's biggest message is one machine's signed snapshot, which lists every member
# with an active badge: measured at 2,000 members, 0.78 MB (one badge, short names) to
# 0.98 MB (two badges, long ids and names). 2 MiB holds about 4,000 members.
MAX_PACKET_SIZE = 2 * 1024 * 1024
MAX_QUEUED_MESSAGES = 10000
AUTOSAVE_INTERVAL_S = 60

# A character that would change what an ACL line or a password-file line means.
_UNSAFE = re.compile(r"[#+/%:\s\x00-\x1f\x7f]")
_UNSAFE_TEXT = "no '#', '+', '/', '%', ':', white space or control characters"


class DeployError(ValueError):
    """A command-line choice that cannot make a working broker (not a config mistake)."""


@dataclass(frozen=True)
class BrokerOptions:
    """The choices the hub configuration does not make: where the files go on the
    broker's machine, its listeners and its TLS files."""

    install_dir: PurePosixPath = INSTALL_DIR
    plain_listener: str | None = None  # None: "all" without TLS, "localhost" with it
    plain_port: int = PLAIN_PORT
    tls_port: int = TLS_PORT
    tls_cert: PurePosixPath | None = None
    tls_key: PurePosixPath | None = None
    tls_ca: PurePosixPath | None = None
    require_client_cert: bool = False
    monitors: tuple[str, ...] = ()

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None

    @property
    def plain(self) -> str:
        if self.plain_listener is not None:
            return self.plain_listener
        return "localhost" if self.tls else "all"

    def check(self) -> None:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise DeployError("--tls-cert and --tls-key go together (the broker's certificate)")
        if not self.tls and (self.tls_ca is not None or self.require_client_cert):
            raise DeployError("--tls-ca and --require-client-cert need --tls-cert and --tls-key")
        if self.require_client_cert and self.tls_ca is None:
            raise DeployError(
                "--require-client-cert needs --tls-ca (the CA of client certificates)"
            )
        if self.plain not in PLAIN_LISTENERS:
            raise DeployError(f"--plain-listener: expected one of {', '.join(PLAIN_LISTENERS)}")
        if self.plain == "none" and not self.tls:
            raise DeployError("--plain-listener none leaves no listener without --tls-cert")
        for name, port in (("--plain-port", self.plain_port), ("--tls-port", self.tls_port)):
            if not 1 <= port <= 65535:
                raise DeployError(f"{name}: expected a port from 1 to 65535, got {port}")
        if self.tls and self.plain != "none" and self.plain_port == self.tls_port:
            raise DeployError("--plain-port and --tls-port must differ")
        paths = {"--install-dir": self.install_dir, "--tls-cert": self.tls_cert}
        paths |= {"--tls-key": self.tls_key, "--tls-ca": self.tls_ca}
        for name, path in paths.items():
            if path is not None and (not path.is_absolute() or _UNSAFE_PATH.search(str(path))):
                raise DeployError(f"{name}: expected an absolute path without spaces, got {path}")
        for monitor in self.monitors:
            if not ID_PATTERN.fullmatch(monitor):
                raise DeployError(f"--monitor: expected {ID_TEXT}, got {monitor!r}")


_UNSAFE_PATH = re.compile(r"[\s\x00-\x1f\x7f]")


@dataclass(frozen=True)
class NodeAccount:
    node: str
    machine: str


@dataclass(frozen=True)
class Site:
    """Who logs in to a site's broker, checked: every name safe in an ACL line."""

    name: str
    prefix: str
    hub_user: str
    nodes: tuple[NodeAccount, ...]
    monitors: tuple[str, ...] = ()
    hub_password: str | None = field(default=None, repr=False)

    def accounts(self) -> list[Account]:
        hub = Account(
            self.hub_user, "the hub", "the hub's configuration (hub.yaml)", self.hub_password
        )
        nodes = [
            Account(n.node, f"node {n.node} (machine {n.machine})", "that node's configuration")
            for n in self.nodes
        ]
        monitors = [
            Account(m, "a read-only monitoring client", "that client's settings")
            for m in self.monitors
        ]
        return [hub, *nodes, *monitors]


def _fail(cfg: HubConfig, key: str, expected: str, got: object) -> ConfigError:
    line = None
    with contextlib.suppress(ConfigError):  # the file changed since: the key still says where
        line = Doc(cfg.file).line_of(key)
    return ConfigError(cfg.file, key, expected, got, line=line)


def site_of(cfg: HubConfig, monitors: Sequence[str] = ()) -> Site:
    """The site's accounts from its hub configuration; ConfigError for a name that
    would break an ACL or password-file line."""
    if _UNSAFE.search(cfg.site):
        raise _fail(cfg, "site", f"a site name with {_UNSAFE_TEXT}", cfg.site)
    levels = cfg.mqtt.prefix.removesuffix("/").split("/")
    if any(not level or _UNSAFE.search(level) for level in levels):
        raise _fail(
            cfg,
            "mqtt.prefix",
            f"topic levels separated by '/', each non-empty with {_UNSAFE_TEXT}",
            cfg.mqtt.prefix,
        )
    hub_user = cfg.mqtt.username or DEFAULT_HUB_USER
    if _UNSAFE.search(hub_user):
        raise _fail(cfg, "mqtt.username", f"a broker username with {_UNSAFE_TEXT}", hub_user)
    machine_ids = {m.id for m in cfg.machines}
    nodes: list[NodeAccount] = []
    for i, machine in enumerate(cfg.machines):
        key = f"machines[{i}].node" if machine.node else f"machines[{i}].id"
        node = machine.node_id
        if _UNSAFE.search(node) or _UNSAFE.search(machine.id):
            raise _fail(cfg, key, f"an id with {_UNSAFE_TEXT}", node)
        if node == hub_user:
            raise _fail(cfg, key, f"a node id other than the hub's username {hub_user!r}", node)
        if node != machine.id and node in machine_ids:
            # The snapshot pattern gives account X machine X's snapshot: this node would
            # read the members allowed on another machine.
            raise _fail(
                cfg,
                key,
                "a node id that is not another machine's id (that node's account would "
                "read that machine's snapshot)",
                node,
            )
        nodes.append(NodeAccount(node, machine.id))
    taken = {hub_user, *(n.node for n in nodes)}
    for monitor in monitors:
        if monitor in taken:
            raise DeployError(f"--monitor {monitor}: already the hub's or a node's account")
        taken.add(monitor)
    # The hub's account takes the password hub.yaml already gives it (so provisioning
    # needs no edit of the operator's file), unless it is the example's placeholder.
    password = cfg.mqtt.password
    if password is not None and PLACEHOLDER in password:
        password = None
    return Site(
        cfg.site, cfg.mqtt.prefix, hub_user, tuple(nodes), tuple(monitors), hub_password=password
    )


def render_acl(site: Site, install_dir: PurePosixPath = INSTALL_DIR) -> str:
    p = site.prefix
    lines = [
        f"# Mosquitto ACL of fablab-gateway site {site.name}: who may publish and read which",
        "# topic. Made by `fabgate deploy mosquitto` from the hub configuration: run it",
        f"# again rather than editing this file. Installed as {install_dir / ACL_FILE}.",
        "#",
        "# %u is the MQTT username. Each node logs in with its node id (the password file",
        "# has one account per node of the hub configuration), so these patterns give it",
        "# its own topics only. Patterns apply to every account, the hub's included.",
        "",
        "# A node publishes its events and its status (and its last will) under its own",
        "# node id, and nothing else...",
        f"pattern write {p}node/%u/event",
        f"pattern write {p}node/%u/status",
        "# ...and reads the hub's acknowledgements of its events...",
        f"pattern read {p}node/%u/ack",
        "# ...the signed permission snapshot of its machine (node id = machine id; the",
        "# `user` blocks below give the others theirs)...",
        f"pattern read {p}machine/%u/snapshot",
        "# ...and the hub's open badge-enrolment window (any node may take it; Mosquitto",
        "# warns at start that this pattern has no %u: it is meant for every account).",
        f"pattern read {p}hub/enrolment",
        "# No node writes under hub/ or machine/ (snapshots come from the hub alone) or",
        "# sim/ (simulated readers and machines listen there only in the demo and on a",
        "# bench, never with this ACL), nor another node's topics.",
    ]
    others = [n for n in site.nodes if n.node != n.machine]
    if others:
        lines += ["", "# Nodes whose id is not their machine's: that machine's snapshot."]
        for n in others:
            lines += [f"user {n.node}", f"topic read {p}machine/{n.machine}/snapshot"]
    lines += [
        "",
        "# The hub reads and writes everything under the site's prefix: it alone publishes",
        "# snapshots, acknowledgements and the enrolment window.",
        f"user {site.hub_user}",
        f"topic readwrite {p}#",
    ]
    if site.monitors:
        lines += ["", "# Monitoring accounts: read everything under the site, write nothing."]
        for monitor in site.monitors:
            lines += [f"user {monitor}", f"topic read {p}#"]
    return "\n".join(lines) + "\n"


def _listeners(opts: BrokerOptions) -> list[str]:
    lines: list[str] = []
    if opts.plain == "all":
        lines += [
            "# Plain MQTT, with passwords, on the workshop's own network. Across a network you",
            "# do not control, use the TLS listener (--tls-cert) and mqtts:// URLs instead.",
            f"listener {opts.plain_port}",
            "use_username_as_clientid true",
        ]
    elif opts.plain == "localhost":
        lines += [
            "# Plain MQTT for clients on this machine only (the hub); nodes use TLS.",
            f"listener {opts.plain_port} 127.0.0.1",
            "use_username_as_clientid true",
        ]
    if opts.tls:
        if lines:
            lines.append("")
        lines += [
            "# MQTT over TLS (mqtts://): the broker's certificate and key; clients check it",
            "# against their mqtt.tls_ca, and the host name in their URL against it.",
            f"listener {opts.tls_port}",
            "use_username_as_clientid true",
            f"certfile {opts.tls_cert}",
            f"keyfile {opts.tls_key}",
        ]
        if opts.tls_ca is not None:
            lines += [
                "# The CA the broker's certificate chain and client certificates come from.",
                f"cafile {opts.tls_ca}",
            ]
        if opts.require_client_cert:
            lines += [
                "# Every client also shows a certificate signed by that CA (mqtt.tls_cert and",
                "# tls_key), besides its password.",
                "require_certificate true",
            ]
    return lines


def render_conf(site: Site, opts: BrokerOptions) -> str:
    install = opts.install_dir
    lines = [
        f"# Mosquitto settings of fablab-gateway site {site.name}. Made by",
        "# `fabgate deploy mosquitto` from the hub configuration: run it again rather than",
        "# editing this file. Installed as /etc/mosquitto/conf.d/fabgate.conf (Debian's",
        "# mosquitto.conf includes conf.d and already sets persistence_location and the",
        "# log; repeating persistence_location here is an error).",
        "",
        "# One set of settings for every listener.",
        "per_listener_settings false",
        "",
        "# Every client logs in: the hub as "
        + site.hub_user
        + ", each node with its node id as username.",
        "allow_anonymous false",
        f"password_file {install / PASSWD_FILE}",
        "",
        f"# Who may publish and read what: {ACL_FILE}.",
        f"acl_file {install / ACL_FILE}",
        "",
        "# The largest MQTT packet anyone may send; a bigger one disconnects its sender. It",
        "# must hold the hub's largest message, a machine's signed snapshot, which lists",
        "# every member with an active badge: measured at 2,000 members, 0.78 MB (one",
        "# badge, short names) to 0.98 MB (two badges, long ids and names), about 400-490",
        "# bytes per member. 2 MiB leaves room for about 4,000 members; a node's events and",
        "# statuses are a few kilobytes.",
        f"max_packet_size {MAX_PACKET_SIZE}",
        "",
        "# Retained snapshots and queued QoS 1 messages survive a broker restart.",
        "persistence true",
        f"autosave_interval {AUTOSAVE_INTERVAL_S}",
        "",
        "# A node offline for a while must not lose its acknowledgements; events themselves",
        "# are kept in the node's journal until acknowledged, so this only avoids re-sending.",
        f"max_queued_messages {MAX_QUEUED_MESSAGES}",
        "",
        "# The listeners. On each, a client's id is its username (use_username_as_clientid,",
        "# a listener's setting whatever per_listener_settings says: before any listener",
        "# line it would open a default one on port 1883). Without it, anyone with any",
        "# account could connect with the hub's or a node's client id and the broker would",
        "# kick the real one off (MQTT session takeover), again and again. So one account",
        "# is one connection: a restarted node takes over its old connection, as it should,",
        "# and two hubs must not share an account (`fabgate hub` also refuses a second hub",
        "# on the same database). Not reloaded on SIGHUP: restart Mosquitto after a change.",
        "",
        *_listeners(opts),
    ]
    return "\n".join(lines) + "\n"


@dataclass
class BrokerFiles:
    conf: Path
    acl: Path
    passwd: Path
    accounts: AccountsReport = field(default_factory=AccountsReport)
    changed: list[Path] = field(default_factory=list)  # settings and ACL rewritten


def write_mosquitto(cfg: HubConfig, out: Path, opts: BrokerOptions) -> BrokerFiles:
    """Write (or bring up to date) a site's broker files in ``out``; idempotent."""
    opts.check()
    site = site_of(cfg, opts.monitors)
    out.mkdir(parents=True, exist_ok=True)
    files = BrokerFiles(out / CONF_FILE, out / ACL_FILE, out / PASSWD_FILE)
    texts = {files.conf: render_conf(site, opts), files.acl: render_acl(site, opts.install_dir)}
    for path, text in texts.items():
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            files.changed.append(path)
    files.accounts = ensure_accounts(files.passwd, site.accounts(), site.name)
    if files.accounts.created:
        files.changed.append(files.passwd)
    return files
