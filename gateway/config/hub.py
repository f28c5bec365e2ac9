"""The hub's configuration file: site, broker, database, web, catalogue and tariffs."""

from __future__ import annotations

import dataclasses
import re
from datetime import time, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from gateway.billing import identifiers
from gateway.billing.tariffs import Tariff, TariffError, parse_tariffs
from gateway.config import common
from gateway.config.loader import DURATION_TEXT, Doc, Section, parse_duration, suggest, unique
from gateway.config.models import (
    BOARD_NAMES,
    CATEGORY_CODE,
    CATEGORY_CODE_TEXT,
    EMAIL_SECURITY,
    HUB_DATABASE,
    HUB_SIGNING_KEY,
    LANGUAGES,
    MACHINE_KINDS,
    VAT_EXEMPTION_293B,
    AccountingConfig,
    AlertsConfig,
    ApiToken,
    EmailConfig,
    GroupConfig,
    HubConfig,
    InvoicingConfig,
    Keep,
    MachineConfig,
    RetentionConfig,
    SellerConfig,
    WebhookConfig,
    default_of,
)
from gateway.core.levels import CERTIFY_LEVELS, Level
from gateway.core.snapshot import WEEKDAYS, parse_opening_hours
from gateway.policies.alerts import AlertRules

_HUB_TOP = (
    "site",
    "timezone",
    "language",
    "mqtt",
    "hub",
    "web",
    "api_tokens",
    "opening_hours",
    "groups",
    "machines",
    "tariffs",
    "invoicing",
    "accounting",
    "retention",
    "alerts",
)
_HUB_KEYS = ("database", "signing_key", "snapshot_validity", "snapshot_refresh", "seed")
_GROUP_KEYS = ("id", "name", "default_validity_months", "lapse_months")
_MACHINE_KEYS = (
    "id",
    "name",
    "kind",
    "group",
    "min_level",
    "out_of_service",
    "requires_credit",
    "certify_level",
    "node",
)
_MIN_TOKEN = 16
_RETENTION_KEYS = tuple(f.name for f in dataclasses.fields(RetentionConfig))
_CALENDAR = re.compile(r"^\s*(\d+)\s*(months?|mois|years?|ans?)\s*$")
KEEP_TEXT = f"a retention such as '3 months', '10 years', '18 months' or {DURATION_TEXT}"
# Below this an access-control log would be gone before anyone could look into an
# incident; above it no record of a tiers-lieu has a reason to be kept.
_MIN_KEEP_DAYS = 1
_MAX_KEEP_MONTHS = 50 * 12


def parse_keep(value: object) -> Keep:
    """``"3 months"`` -> ``Keep(months=3)``, ``"10 years"`` -> 120 months, ``"90d"`` ->
    90 days; ValueError for anything else."""
    if isinstance(value, str):
        match = _CALENDAR.match(value.lower())
        if match:
            n = int(match.group(1))
            return Keep(months=n * 12 if match.group(2).startswith(("y", "an")) else n)
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return Keep(extra=parse_duration(value))
    raise ValueError(f"{value!r} is not a retention")


def _retention(top: Section) -> RetentionConfig:
    sec = top.section("retention", _RETENTION_KEYS)
    values: dict[str, Keep] = {}
    for key in _RETENTION_KEYS:
        raw = sec.raw(key, None)
        if raw is None:
            continue
        try:
            keep = parse_keep(raw)
        except ValueError:
            sec.fail(key, KEEP_TEXT, raw)
        days = keep.months * 28 + keep.extra.total_seconds() / 86400
        if days < _MIN_KEEP_DAYS or keep.months > _MAX_KEEP_MONTHS:
            sec.fail(key, "a retention from one day to 50 years", raw)
        values[key] = keep
    return RetentionConfig(**values)


def _timezone(top: Section) -> str:
    name = top.text("timezone", what="an IANA timezone name such as Europe/Paris")
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        top.fail(
            "timezone",
            "an IANA timezone name such as Europe/Paris"
            + suggest(name, sorted(available_timezones())),
            name,
        )
    return name


def _opening_hours(top: Section) -> dict[int, tuple[tuple[time, time], ...]]:
    sec = top.section("opening_hours", WEEKDAYS)
    hours: dict[int, tuple[tuple[time, time], ...]] = {}
    for day, slots in sec.data.items():
        if slots is None:
            continue
        try:
            parsed = parse_opening_hours({day: slots})
        except (ValueError, TypeError) as exc:
            sec.fail(day, "a list of 'HH:MM-HH:MM' slots (quoted), close after open", str(exc))
        day_slots = parsed[WEEKDAYS.index(day)]
        for (_, end), (start, _) in zip(day_slots, day_slots[1:], strict=False):
            if end == time(0) or start < end:
                sec.fail(day, "slots that do not overlap", slots)
        hours.update(parsed)
    return hours


def _api_tokens(top: Section) -> list[ApiToken]:
    tokens: list[ApiToken] = []
    names: dict[str, str] = {}
    secrets: dict[str, str] = {}
    for sec in top.sections("api_tokens", ("name", "token"), required=("name", "token")):
        name = sec.id("name")
        token = sec.text("token")
        if len(token) < _MIN_TOKEN or any(c.isspace() for c in token):
            # got is left out on purpose: never print a secret into a log.
            sec.fail(
                "token",
                f"a secret of at least {_MIN_TOKEN} characters without spaces "
                f"(this one has {len(token)}; `openssl rand -hex 24` makes one)",
            )
        unique(sec, "name", name, names, "token name")
        if token in secrets:
            sec.fail("token", f"a token different from the one at {secrets[token]}")
        secrets[token] = sec.at("token")
        tokens.append(ApiToken(name=name, token=token))
    return tokens


def _groups(top: Section) -> list[GroupConfig]:
    groups: list[GroupConfig] = []
    group_ids: dict[str, str] = {}
    for sec in top.sections("groups", _GROUP_KEYS, required=("id",)):
        gid = sec.id("id")
        unique(sec, "id", gid, group_ids, "group id")
        groups.append(
            GroupConfig(
                id=gid,
                name=sec.text("name", gid),
                default_validity_months=sec.integer(
                    "default_validity_months",
                    default_of(GroupConfig, "default_validity_months"),
                    1,
                    600,
                ),
                lapse_months=sec.integer("lapse_months", None, 1, 600)
                if sec.raw("lapse_months", None) is not None
                else None,
            )
        )
    return groups


def _machines(top: Section, group_ids: list[str]) -> list[MachineConfig]:
    machines: list[MachineConfig] = []
    machine_ids: dict[str, str] = {}
    node_ids: dict[str, str] = {}
    for sec in top.sections("machines", _MACHINE_KEYS, required=("id", "kind", "group")):
        mid = sec.id("id")
        unique(sec, "id", mid, machine_ids, "machine id")
        # The hub believes a node only about its machine, so one node serves one machine.
        node_id = sec.id("node", mid)
        unique(sec, "node", node_id, node_ids, "node id (a node serves one machine)")
        group = sec.id("group")
        if group not in group_ids:
            known = ", ".join(group_ids) or "none defined"
            sec.fail(
                "group",
                f"the id of a group under `groups:` ({known}){suggest(group, group_ids)}",
                group,
            )
        machines.append(
            MachineConfig(
                id=mid,
                name=sec.text("name", mid),
                kind=sec.choice("kind", MACHINE_KINDS),
                group=group,
                min_level=sec.integer(
                    "min_level",
                    default_of(MachineConfig, "min_level"),
                    Level.SUPERVISED,
                    Level.TRAINER,
                    " (1 supervised, 2 autonomous, 3 trainer; level 0 is "
                    "'not certified' and never opens a machine)",
                ),
                out_of_service=sec.flag(
                    "out_of_service", default_of(MachineConfig, "out_of_service")
                ),
                requires_credit=sec.flag(
                    "requires_credit", default_of(MachineConfig, "requires_credit")
                ),
                certify_level=sec.integer(
                    "certify_level",
                    default_of(MachineConfig, "certify_level"),
                    min(CERTIFY_LEVELS),
                    max(CERTIFY_LEVELS),
                    " (trainers grant level 1 or 2 at the machine)",
                ),
                node=node_id if node_id != mid else None,
            )
        )
    return machines


_INVOICING_KEYS = ("seller", "payment_days", "payment_terms", "late_penalties", "iban", "bic")
_SELLER_KEYS = (
    "name",
    "address",
    "postcode",
    "city",
    "country",
    "siret",
    "vat_number",
    "vat_exempt",
    "legal_form",
    "email",
    "phone",
    "logo",
)
_ACCOUNTING_KEYS = ("journal", "customer", "revenue", "vat", "vat_by_rate", "revenue_by_rate")
_COUNTRY = re.compile(r"^[A-Z]{2}$")
_BIC = re.compile(r"^[A-Z]{6}[A-Z0-9]{2}([A-Z0-9]{3})?$")
_ACCOUNT = re.compile(r"^[0-9][0-9A-Z]{2,15}$")
_JOURNAL = re.compile(r"^[A-Z0-9]{1,8}$")
_LOGO_TYPES = (".png", ".jpg", ".jpeg", ".svg")


def _seller(sec: Section, tariffs: list[Tariff]) -> SellerConfig:
    raw_address = sec.raw("address")
    lines = [raw_address] if isinstance(raw_address, str) else raw_address
    if (
        not isinstance(lines, list)
        or not lines
        or not all(isinstance(x, str) and x.strip() for x in lines)
    ):
        sec.fail("address", "the street address: a text or a list of lines", raw_address)
    siret = identifiers.compact(str(sec.raw("siret")))
    if not identifiers.siret_valid(siret):
        sec.fail("siret", "a SIRET: 14 digits with a valid check digit", sec.raw("siret"))
    exempt = sec.flag("vat_exempt", default_of(SellerConfig, "vat_exempt"))
    vat_number = sec.raw("vat_number", None)
    if vat_number is not None:
        vat_number = identifiers.compact(str(vat_number))
        if not identifiers.vat_valid(vat_number):
            sec.fail(
                "vat_number",
                "an intra-community VAT number (FR + 2-digit key + SIREN) with its right key",
                sec.raw("vat_number"),
            )
        if vat_number.startswith("FR") and vat_number[4:] != siret[:9]:
            sec.fail(
                "vat_number",
                f"the VAT number of the SIRET's SIREN {siret[:9]} "
                f"({identifiers.vat_fr_of(siret[:9])})",
                vat_number,
            )
    elif not exempt:
        sec.fail(
            "vat_number",
            "the seller's VAT number, or `vat_exempt: true` for a seller under the VAT "
            f"threshold (its invoices then say: {VAT_EXEMPTION_293B})",
        )
    if exempt:
        taxed = next((t for t in tariffs if t.vat_rate != 0), None)
        if taxed is not None:
            sec.fail(
                "vat_exempt",
                "false, or tariffs without VAT: a seller under the VAT threshold charges "
                f"none, but the tariff {taxed.name or taxed.valid_from.date()!s} has "
                f"vat_rate {taxed.vat_rate}",
                True,
            )
    logo = sec.file_path("logo", None)
    if logo is not None:
        if logo.suffix.lower() not in _LOGO_TYPES:
            sec.fail("logo", "a PNG, JPEG or SVG file", str(logo))
        if not logo.is_file():
            sec.fail("logo", "an existing image file (relative to this file)", str(logo))
    email = sec.raw("email", None)
    if email is not None and (not isinstance(email, str) or "@" not in email):
        sec.fail("email", "an email address", email)
    phone = sec.raw("phone", None)
    country = sec.text(
        "country",
        default_of(SellerConfig, "country"),
        pattern=_COUNTRY,
        what="an ISO 3166 country code of two capital letters (FR)",
    )
    postcode = sec.raw("postcode")
    if country == "FR" and not (isinstance(postcode, str) and re.fullmatch(r"\d{5}", postcode)):
        sec.fail("postcode", 'a French postcode of 5 digits, quoted ("01000")', postcode)
    return SellerConfig(
        name=sec.text("name"),
        address=tuple(x.strip() for x in lines),
        postcode=str(postcode).strip(),
        city=sec.text("city"),
        country=country,
        siret=siret,
        vat_number=vat_number,
        vat_exempt=exempt,
        legal_form=sec.text("legal_form", None),
        email=email,
        phone=None if phone is None else str(phone),
        logo=logo,
    )


def _invoicing(top: Section, tariffs: list[Tariff]) -> InvoicingConfig | None:
    if top.data.get("invoicing") is None:
        return None
    sec = top.section("invoicing", _INVOICING_KEYS, required=("seller",))
    seller = _seller(sec.section("seller", _SELLER_KEYS, required=_SELLER_REQUIRED), tariffs)
    iban = sec.raw("iban", None)
    if iban is not None:
        iban = identifiers.compact(str(iban))
        if not identifiers.iban_valid(iban):
            sec.fail("iban", "an IBAN with its right check digits (FR76 ...)", sec.raw("iban"))
    bic = sec.raw("bic", None)
    if bic is not None:
        bic = identifiers.compact(str(bic))
        if not _BIC.fullmatch(bic):
            sec.fail("bic", "a BIC of 8 or 11 letters and digits", sec.raw("bic"))
    return InvoicingConfig(
        seller=seller,
        payment_days=sec.integer(
            "payment_days",
            default_of(InvoicingConfig, "payment_days"),
            0,
            60,
            " (French law caps payment terms at 60 days)",
        ),
        payment_terms=sec.text("payment_terms", None),
        late_penalties=sec.text("late_penalties", default_of(InvoicingConfig, "late_penalties")),
        iban=iban,
        bic=bic,
    )


_SELLER_REQUIRED = ("name", "address", "postcode", "city", "siret")


def _rate_accounts(sec: Section, key: str) -> tuple[tuple[Decimal, str], ...]:
    raw = sec.raw(key, None)
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        sec.fail(key, 'a mapping of VAT rates to accounts ("0.20": "445712")', raw)
    out = []
    for rate_text, account in raw.items():
        try:
            rate = Decimal(str(rate_text))
        except InvalidOperation:
            rate = Decimal(-1)
        if not rate.is_finite() or not 0 <= rate < 1:
            sec.fail(f"{key}.{rate_text}", "a VAT rate between 0 and 1 such as 0.20", rate_text)
        if not isinstance(account, str | int) or not _ACCOUNT.fullmatch(str(account)):
            sec.fail(f"{key}.{rate_text}", "an account number such as 445712", account)
        out.append((rate, str(account)))
    return tuple(out)


def _accounting(top: Section) -> AccountingConfig:
    sec = top.section("accounting", _ACCOUNTING_KEYS)

    def account(key: str, prefix: str, what: str) -> str:
        value = sec.raw(key, None)
        if value is None:
            return str(default_of(AccountingConfig, key))
        text = str(value)
        if not _ACCOUNT.fullmatch(text) or not text.startswith(prefix):
            sec.fail(key, f"{what}: an account number starting with {prefix}", value)
        return text

    vat_by_rate = _rate_accounts(sec, "vat_by_rate")
    for rate, acc in vat_by_rate:
        if not acc.startswith("4457"):
            sec.fail(f"vat_by_rate.{rate}", "a VAT collected account starting with 4457", acc)
    revenue_by_rate = _rate_accounts(sec, "revenue_by_rate")
    for rate, acc in revenue_by_rate:
        if not acc.startswith("7"):
            sec.fail(f"revenue_by_rate.{rate}", "a revenue account starting with 7", acc)
    return AccountingConfig(
        journal=sec.text(
            "journal",
            default_of(AccountingConfig, "journal"),
            pattern=_JOURNAL,
            what="a journal code of 1 to 8 capital letters or digits (VE)",
        ),
        customer=account("customer", "411", "the customers account"),
        revenue=account("revenue", "7", "the revenue account"),
        vat=account("vat", "4457", "the VAT collected account"),
        vat_by_rate=vat_by_rate,
        revenue_by_rate=revenue_by_rate,
    )


_ALERT_KEYS = (
    "check_every",
    "node_offline_after",
    "backlog_above",
    "backlog_for",
    "ingest_stalled_after",
    "snapshot_age_ratio",
    "refusals_above",
    "refusals_window",
    "retry_min",
    "retry_max",
    "email",
    "webhook",
)
_EMAIL_KEYS = ("host", "port", "security", "username", "password", "from", "to", "timeout")
_WEBHOOK_KEYS = ("url", "secret_header", "secret", "timeout")
# One address, no display name: what an SMTP envelope needs (RFC 5321 mailbox, roughly).
_ADDRESS = re.compile(r"^[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+$")
_ADDRESS_TEXT = "an e-mail address such as alerts@example.org"
_HEADER = re.compile(r"^[A-Za-z0-9-]{1,64}$")
_TIMEOUT_MAX = timedelta(minutes=2)


def _timeout(sec: Section, default: float) -> float:
    value = sec.duration("timeout", timedelta(seconds=default))
    if value > _TIMEOUT_MAX:
        # The alert loop waits for one channel at a time: it must not look stuck.
        sec.fail("timeout", "a duration of at most 2m", sec.raw("timeout", None))
    return value.total_seconds()


def _email(top: Section) -> EmailConfig | None:
    if top.data.get("email") is None:
        return None
    sec = top.section("email", _EMAIL_KEYS, required=("host", "from", "to"))
    security = sec.choice("security", EMAIL_SECURITY, default_of(EmailConfig, "security"))
    default_port = {"starttls": 587, "ssl": 465, "none": 25}[security]
    sender = sec.text("from", what=_ADDRESS_TEXT, pattern=_ADDRESS)
    to: list[str] = []
    raw_to = sec.raw("to")
    if isinstance(raw_to, str):
        sec.fail("to", "a list of e-mail addresses, such as [ops@example.org]", raw_to)
    for path, item in sec.items("to"):
        if not isinstance(item, str) or not _ADDRESS.fullmatch(item):
            doc = sec.doc
            doc.fail(path, _ADDRESS_TEXT, item)
        to.append(item)
    if not to:
        sec.fail("to", "at least one e-mail address")
    username = sec.text("username", None)
    password = sec.text("password", None)
    if password is not None and username is None:
        sec.fail("username", "a username, since alerts.email.password is set")
    if username is not None and password is None:
        sec.fail("password", "a password, since alerts.email.username is set")
    return EmailConfig(
        host=sec.text("host", what="the SMTP server's host name"),
        port=sec.integer("port", default_port, 1, 65535),
        security=security,
        username=username,
        password=password,
        sender=sender,
        to=tuple(to),
        timeout=_timeout(sec, default_of(EmailConfig, "timeout")),
    )


def _webhook(top: Section) -> WebhookConfig | None:
    if top.data.get("webhook") is None:
        return None
    sec = top.section("webhook", _WEBHOOK_KEYS, required=("url",))
    what = "an http:// or https:// URL, such as https://chat.example.org/hooks/fabgate"
    url = sec.text("url", what=what)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        sec.fail("url", what, url)
    header = sec.text(
        "secret_header",
        default_of(WebhookConfig, "secret_header"),
        pattern=_HEADER,
        what="an HTTP header name of letters, digits and '-'",
    )
    secret = sec.text("secret", None)
    return WebhookConfig(
        url=url,
        secret=secret,
        secret_header=header,
        timeout=_timeout(sec, default_of(WebhookConfig, "timeout")),
    )


def _alerts(top: Section) -> AlertsConfig:
    sec = top.section("alerts", _ALERT_KEYS)
    rules = AlertRules()
    base = AlertsConfig()
    retry_min = sec.duration("retry_min", base.retry_min)
    retry_max = sec.duration("retry_max", base.retry_max)
    if retry_max < retry_min:
        sec.fail(
            "retry_max",
            f"a duration no shorter than retry_min ({retry_min})",
            sec.raw("retry_max", None),
        )
    return AlertsConfig(
        rules=AlertRules(
            node_offline_after=sec.duration("node_offline_after", rules.node_offline_after),
            backlog_above=sec.integer("backlog_above", rules.backlog_above, 0, 10**9),
            backlog_for=sec.duration("backlog_for", rules.backlog_for),
            ingest_stalled_after=sec.duration("ingest_stalled_after", rules.ingest_stalled_after),
            snapshot_age_ratio=sec.number("snapshot_age_ratio", rules.snapshot_age_ratio, 0, 1),
            refusals_above=sec.integer("refusals_above", rules.refusals_above, 0, 10**9),
            refusals_window=sec.duration("refusals_window", rules.refusals_window),
        ),
        check_every=sec.duration("check_every", base.check_every),
        retry_min=retry_min,
        retry_max=retry_max,
        email=_email(sec),
        webhook=_webhook(sec),
    )


def hub_from(doc: Doc) -> HubConfig:
    top = doc.root(_HUB_TOP, required=("site", "timezone"))
    if "hub" not in top.data:
        doc.fail(
            "hub",
            "a `hub:` mapping (database, signing_key, ...): without it this file "
            "is not a hub configuration",
        )
    site = common.site(top)
    timezone = _timezone(top)
    language = top.choice("language", LANGUAGES, default_of(HubConfig, "language"))
    mqtt = common.mqtt(top, site, "fabgate-hub")

    hub = top.section("hub", _HUB_KEYS)
    validity = hub.duration("snapshot_validity", default_of(HubConfig, "snapshot_validity"))
    refresh = hub.duration("snapshot_refresh", default_of(HubConfig, "snapshot_refresh"))
    if refresh >= validity:
        # Nodes would hold an expired snapshot between two publications.
        hub.fail(
            "snapshot_refresh",
            f"a duration shorter than snapshot_validity ({validity})",
            hub.raw("snapshot_refresh", None),
        )

    web = top.section("web", ("host", "port", "secure_cookies", "trust_proxy", "board_names"))
    tokens = _api_tokens(top)
    groups = _groups(top)
    machines = _machines(top, [g.id for g in groups])
    try:
        tariffs = parse_tariffs(
            top.data.get("tariffs") or [],
            tz=timezone,
            machines=[m.id for m in machines],
            groups=[g.id for g in groups],
        )
    except TariffError as exc:
        doc.fail(exc.key, exc.expected, exc.got)
    for i, tariff in enumerate(tariffs):
        for code in tariff.categories:
            if not CATEGORY_CODE.fullmatch(code):
                doc.fail(f"tariffs[{i}].categories", CATEGORY_CODE_TEXT, code)
    invoicing = _invoicing(top, tariffs)
    accounting = _accounting(top)
    return HubConfig(
        tariffs=tuple(tariffs),
        invoicing=invoicing,
        accounting=accounting,
        file=doc.file,
        site=site,
        timezone=timezone,
        language=language,
        mqtt=mqtt,
        database=hub.file_path("database", HUB_DATABASE),
        signing_key=hub.file_path("signing_key", HUB_SIGNING_KEY),
        snapshot_validity=validity,
        snapshot_refresh=refresh,
        web_host=web.text("host", default_of(HubConfig, "web_host")),
        web_port=web.integer("port", default_of(HubConfig, "web_port"), 0, 65535),
        web_secure_cookies=web.flag("secure_cookies", default_of(HubConfig, "web_secure_cookies")),
        web_trust_proxy=web.flag("trust_proxy", default_of(HubConfig, "web_trust_proxy")),
        board_names=web.choice("board_names", BOARD_NAMES, default_of(HubConfig, "board_names")),
        retention=_retention(top),
        api_tokens=tuple(tokens),
        opening_hours=_opening_hours(top),
        groups=tuple(groups),
        machines=tuple(machines),
        seed=hub.file_path("seed", None),
        alerts=_alerts(top),
    )


def load_hub_config(path: str | Path) -> HubConfig:
    """Read and validate a hub file; ConfigError (file, line, key path) on any mistake."""
    return hub_from(Doc(path))
