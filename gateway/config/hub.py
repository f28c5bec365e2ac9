"""The hub's configuration file: site, broker, database, web, catalogue and tariffs."""

from __future__ import annotations

import dataclasses
import re
from datetime import time
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from gateway.billing.tariffs import TariffError, parse_tariffs
from gateway.config import common
from gateway.config.loader import DURATION_TEXT, Doc, Section, parse_duration, suggest, unique
from gateway.config.models import (
    BOARD_NAMES,
    CATEGORIES,
    HUB_DATABASE,
    HUB_SIGNING_KEY,
    LANGUAGES,
    MACHINE_KINDS,
    ApiToken,
    GroupConfig,
    HubConfig,
    Keep,
    MachineConfig,
    RetentionConfig,
    default_of,
)
from gateway.core.levels import CERTIFY_LEVELS, Level
from gateway.core.snapshot import WEEKDAYS, parse_opening_hours

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
    "retention",
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
            categories=CATEGORIES,
        )
    except TariffError as exc:
        doc.fail(exc.key, exc.expected, exc.got)
    return HubConfig(
        tariffs=tuple(tariffs),
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
    )


def load_hub_config(path: str | Path) -> HubConfig:
    """Read and validate a hub file; ConfigError (file, line, key path) on any mistake."""
    return hub_from(Doc(path))
