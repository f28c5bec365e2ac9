"""What a configuration file means, as typed objects: one dataclass per section.

Each default is written here once, on its field; the parsers (``gateway.config.hub``,
``.node``, ``.seed``) read it with :func:`default_of` instead of repeating it, so a file
that leaves a key out and an object built in code get the same value.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from gateway.billing.tariffs import Tariff
from gateway.contract.mqtt import RECONNECT_MAX_S, RECONNECT_MIN_S, TlsFiles
from gateway.core.levels import Level
from gateway.core.months import add_months
from gateway.policies.alerts import AlertRules
from gateway.policies.material import DEFAULT_DENSITIES

# Member categories are data (the hub's ``member_categories``, edited on the web): a file
# may name any code of this shape, and the hub creates one it lacks when it imports the
# file (``gateway.hub.categories.ensure_codes``, docs/admin.md).
CATEGORY_CODE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
CATEGORY_CODE_TEXT = (
    "a category code: lower-case letters, digits and _, starting with a letter (40 at most)"
)
MACHINE_KINDS = ("laser", "cnc", "printer", "embroidery", "other")
LANGUAGES = ("fr", "en")
MEMBER_STATUSES = ("active", "suspended")
RELAY_DRIVERS = ("gpio",)
READER_DRIVERS = ("simulated", "rc522")
CONTROLLER_DRIVERS = ("none", "grbl", "marlin", "octoprint", "current")
CURRENT_SOURCES = ("serial", "mcp3008")
# What the public board says about who uses a machine (docs/rgpd.md).
BOARD_NAMES = ("none", "initials", "first_name")
PERMISSIVE_DROP_RULES = ("hold", "off")
PERMISSIVE_INPUTS = 2  # the sense board's permissive inputs, numbered from 0

# Paths a file may leave out, as written in a file: relative to that file's directory.
HUB_DATABASE = "./data/hub.db"
HUB_SIGNING_KEY = "./keys/hub-signing.pem"
NODE_JOURNAL = "./data/{node_id}-journal.db"
NODE_HUB_PUBLIC_KEY = "./keys/hub-signing.pub"


def default_of(cls: Any, name: str) -> Any:
    """The default of field ``name`` of dataclass ``cls`` (a fresh one for factories)."""
    f = cls.__dataclass_fields__[name]
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    raise KeyError(f"{cls.__name__}.{name} has no default")


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
    # mqtts:// only: the CA that signed the broker's certificate (None: the system's CAs),
    # and a client certificate with its key for a broker that asks for one.
    tls_ca: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None

    @property
    def tls_files(self) -> TlsFiles | None:
        """What the link needs for TLS; None for a plain mqtt:// broker."""
        if not self.tls:
            return None
        return TlsFiles(ca=self.tls_ca, cert=self.tls_cert, key=self.tls_key)


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
    min_level: int = int(Level.AUTONOMOUS)
    out_of_service: bool = False
    requires_credit: bool = False  # taps need a positive prepaid balance
    certify_level: int = int(Level.AUTONOMOUS)  # the level a trainer grants at this machine
    node: str | None = None  # the node that serves it (None: the node id is the machine id)

    @property
    def node_id(self) -> str:
        return self.node or self.id


@dataclass(frozen=True)
class ApiToken:
    name: str
    token: str


# The mention French law requires on the invoices of a seller under the VAT threshold
# (franchise en base): no VAT is charged, and the invoice must say why.
VAT_EXEMPTION_293B = "TVA non applicable, art. 293 B du CGI"
# The fixed recovery indemnity owed by a business buyer paying late (code de commerce,
# art. L441-10 and D441-5): always 40 euros, printed on every business invoice.
RECOVERY_FEE_CENTS = 4000


@dataclass(frozen=True, kw_only=True)
class SellerConfig:
    """Who issues the invoices, as the law wants it printed on each one."""

    name: str  # legal name
    address: tuple[str, ...]  # street lines
    postcode: str
    city: str
    siret: str  # 14 digits, checked
    country: str = "FR"  # ISO 3166-1 alpha-2
    vat_number: str | None = None  # intra-community VAT number; required unless exempt
    vat_exempt: bool = False  # franchise en base: the 293 B mention instead of VAT
    legal_form: str | None = None  # e.g. "Association loi 1901"
    email: str | None = None
    phone: str | None = None
    logo: Path | None = None  # PNG, JPEG or SVG printed at the top of each document

    @property
    def siren(self) -> str:
        return self.siret[:9]


@dataclass(frozen=True, kw_only=True)
class InvoicingConfig:
    """The seller and the payment conditions every invoice states."""

    seller: SellerConfig
    payment_days: int = 30  # due date: issue date + this many days (0: on receipt)
    # Free text of the payment terms; None: "Paiement à N jours" / "à réception".
    payment_terms: str | None = None
    # The late-payment penalty rate owed by business buyers, as printed.
    late_penalties: str = "trois fois le taux d'intérêt légal"
    iban: str | None = None  # printed for transfers, and in the Factur-X payment means
    bic: str | None = None


@dataclass(frozen=True, kw_only=True)
class AccountingConfig:
    """Accounts of the sales journal export (plan comptable général)."""

    journal: str = "VE"  # sales journal code
    customer: str = "411000"  # customers (a piece's debit, the payer as auxiliary account)
    revenue: str = "706000"  # services sold (the credit of each line's amount before VAT)
    vat: str = "445710"  # VAT collected, when no account is given for the rate
    # Per VAT rate (exact text such as "0.20"): the VAT and revenue account of that rate.
    vat_by_rate: tuple[tuple[Decimal, str], ...] = ()
    revenue_by_rate: tuple[tuple[Decimal, str], ...] = ()

    def vat_account(self, rate: Decimal) -> str:
        return next((a for r, a in self.vat_by_rate if r == rate), self.vat)

    def revenue_account(self, rate: Decimal) -> str:
        return next((a for r, a in self.revenue_by_rate if r == rate), self.revenue)


@dataclass(frozen=True)
class Keep:
    """How long one kind of record is kept: calendar months (a "3 months" retention is
    the same calendar date three months back, as people and the CNIL count it) plus an
    exact duration for the days and hours a file may add."""

    months: int = 0
    extra: timedelta = timedelta(0)

    def cutoff(self, now: datetime) -> datetime:
        """Records older than this instant are past their retention at ``now``."""
        return add_months(now, -self.months) - self.extra

    def text(self) -> str:
        parts = []
        if self.months:
            years, months = divmod(self.months, 12)
            if years and not months:
                parts.append(f"{years} year{'s' if years > 1 else ''}")
            else:
                parts.append(f"{self.months} month{'s' if self.months > 1 else ''}")
        if self.extra or not parts:
            parts.append(f"{self.extra.days}d" if not self.extra.seconds else str(self.extra))
        return " ".join(parts)


@dataclass(frozen=True)
class RetentionConfig:
    """How long the hub keeps each kind of record (``retention:`` in the hub file).

    The defaults follow the CNIL's guidance for a French public place: access-control
    logs (taps, denials, refused node messages, staff presence, log-in failures) three
    months; the accounting record (sessions and their jobs, the audit log, invoices) ten
    years (Code de commerce, art. L123-22). ``docs/rgpd.md`` says what each covers."""

    taps: Keep = Keep(months=3)
    denials: Keep = Keep(months=3)
    refusals: Keep = Keep(months=3)
    node_events: Keep = Keep(months=12)
    sessions: Keep = Keep(months=120)
    audit: Keep = Keep(months=120)
    invoices: Keep = Keep(months=120)


EMAIL_SECURITY = ("starttls", "ssl", "none")


@dataclass(frozen=True)
class EmailConfig:
    """Where alert e-mails go: an SMTP server (``alerts.email``)."""

    host: str
    sender: str  # the From address (``from`` in the file)
    to: tuple[str, ...]
    port: int = 587
    security: str = "starttls"  # starttls (port 587), ssl (port 465) or none
    username: str | None = None
    password: str | None = None
    timeout: float = 10.0  # seconds for one SMTP conversation


@dataclass(frozen=True)
class WebhookConfig:
    """An HTTP endpoint that gets each alert as a JSON POST (``alerts.webhook``)."""

    url: str
    secret: str | None = None  # sent in ``secret_header``, so the receiver knows us
    secret_header: str = "X-Fabgate-Secret"
    timeout: float = 10.0


@dataclass(frozen=True)
class AlertsConfig:
    """When alerts fire (``rules``), how often they are checked, where they go."""

    rules: AlertRules = field(default_factory=AlertRules)
    check_every: timedelta = timedelta(seconds=10)
    retry_min: timedelta = timedelta(seconds=30)  # a notice that did not go out...
    retry_max: timedelta = timedelta(minutes=30)  # ...is retried, doubling up to this
    email: EmailConfig | None = None
    webhook: WebhookConfig | None = None

    @property
    def channels(self) -> tuple[str, ...]:
        return tuple(name for name, c in (("email", self.email), ("webhook", self.webhook)) if c)


@dataclass(frozen=True, kw_only=True)
class HubConfig:
    file: Path
    site: str
    timezone: str
    mqtt: MqttConfig
    database: Path
    signing_key: Path
    language: str = "fr"  # "fr" or "en"
    snapshot_validity: timedelta = timedelta(days=7)
    snapshot_refresh: timedelta = timedelta(hours=1)
    web_host: str = "127.0.0.1"
    web_port: int = 8080
    api_tokens: tuple[ApiToken, ...] = ()
    opening_hours: dict[int, tuple[tuple[time, time], ...]] = field(default_factory=dict)
    groups: tuple[GroupConfig, ...] = ()
    machines: tuple[MachineConfig, ...] = ()
    seed: Path | None = None
    tariffs: tuple[Tariff, ...] = ()
    # Seller details and payment conditions; None: no invoice PDF can be issued yet.
    invoicing: InvoicingConfig | None = None
    accounting: AccountingConfig = field(default_factory=AccountingConfig)
    # Session cookies only over TLS (set it when the hub is served over https).
    web_secure_cookies: bool = False
    # Behind one reverse proxy: trust its X-Forwarded-For/Proto (client address for the
    # log-in lock-out, https for cookies). Never without a proxy: clients could forge them.
    web_trust_proxy: bool = False
    # The public board shows no member names unless the site opts in: "initials" (A. M.)
    # or "first_name" (Alice). Logged-in pages are not concerned.
    board_names: str = "none"
    retention: RetentionConfig = field(default_factory=RetentionConfig)
    alerts: AlertsConfig = field(default_factory=AlertsConfig)


@dataclass(frozen=True)
class RelayConfig:
    driver: str = "gpio"
    pin: int = 17
    active_high: bool = True
    # The board has its own pull resistor that holds the input at OFF during boot, so the
    # Pi's boot-time pull on this pin does not matter (see gateway.config.pins).
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
    # current with source mcp3008: SPI chip select on bus 0. 1 (CE1, GPIO 7) because an
    # RC522 reader usually takes CE0 on the same bus.
    spi_device: int = 1
    threshold_on: float = 0.5  # current: amps above which the machine may be busy
    threshold_off: float = 0.3  # current: amps below which it may be idle (<= threshold_on)
    on_after: float = 3.0  # current: seconds above threshold_on before busy
    off_after: float = 10.0  # current: seconds below threshold_off before idle
    # current with source mcp3008: amps per ADC count. 0.195 is an SCT-013-000 (2000 turns)
    # over a 33 ohm burden read by a 10-bit ADC at 3.3 V (see policies.current.burden_scale).
    scale: float = 0.195
    simulate: bool = False  # run our simulator of this controller inside the node


@dataclass(frozen=True)
class MaterialConfig:
    """The filament a printer node bills by weight: which one is loaded, its diameter,
    and the densities (g/cm³) that turn the controller's millimetres into grams."""

    loaded: str | None = None  # None: the node reports no material
    diameter_mm: float = 1.75
    densities: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_DENSITIES))

    @property
    def density(self) -> float | None:
        return self.densities.get(self.loaded) if self.loaded else None


@dataclass(frozen=True)
class SenderConfig:
    """The GRBL relay's doors for a G-code sender (LightBurn, UGS, bCNC); off by default.

    ``bind`` defaults to the node itself: a sender on another computer needs the node's
    LAN address (or 0.0.0.0), and then anyone on that network can reach the controller
    (motion only while a session is open; see docs/design.md, "G-code senders").
    """

    tcp_port: int | None = None  # raw TCP, the "network GRBL" senders open
    bind: str = "127.0.0.1"
    pty: Path | None = None  # symlink kept pointing at the node's pty for a local sender

    @property
    def enabled(self) -> bool:
        return self.tcp_port is not None or self.pty is not None


@dataclass(frozen=True)
class SessionConfig:
    """Overrides of the per-machine-kind session rules (None: the kind's default)."""

    grace: float | None = None
    idle_timeout: float | None = None  # 0 in the file means "never"
    max_length: float | None = None  # 0 in the file means "no limit"
    cooldown: float | None = None
    never_cut_busy: bool | None = None
    # At the maximum length (or the credit's end) of a busy laser or CNC: how long power
    # stays on after the controller is asked to hold.
    hold_for: float | None = None
    progress_every: float = 5.0


@dataclass(frozen=True)
class PermissiveConfig:
    """An interlock on one of the sense board's permissive inputs (policies/permissives)."""

    input: int
    name: str  # shown in the deny reason: permissive_off:<name>
    on_drop: str | None = None  # hold or off; None: the machine class's rule
    hold_for: float | None = None  # with hold: seconds before power off; None: the class's


@dataclass(frozen=True)
class NodeMetricsConfig:
    """A node_exporter textfile the node rewrites (``metrics:``; off without a path)."""

    textfile: Path | None = None
    every: timedelta = timedelta(seconds=15)


@dataclass(frozen=True, kw_only=True)
class NodeConfig:
    file: Path
    site: str
    node_id: str
    machine_id: str
    journal: Path
    hub_public_key: Path
    max_snapshot_age: timedelta = timedelta(hours=72)
    heartbeat: timedelta = timedelta(seconds=15)
    mqtt: MqttConfig = field(default_factory=MqttConfig)
    relay: RelayConfig = field(default_factory=RelayConfig)
    reader: ReaderConfig = field(default_factory=ReaderConfig)
    controller: ControllerConfig = field(default_factory=ControllerConfig)
    sender: SenderConfig = field(default_factory=SenderConfig)
    session: SessionConfig = field(default_factory=SessionConfig)
    material: MaterialConfig = field(default_factory=MaterialConfig)
    permissives: tuple[PermissiveConfig, ...] = ()
    metrics: NodeMetricsConfig = field(default_factory=NodeMetricsConfig)


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
    certifications: tuple[SeedCertification, ...] = ()
