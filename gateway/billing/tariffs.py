"""Tariffs: which price list applies to a session, and what the session costs.

Pure code: no clock, no I/O, so the hub, the invoices and the node's prepaid cap all
compute the same amounts from the same inputs. Money is integer euro cents; anything
finer (a VAT rate, a price per gram) is a ``Decimal``, and rounding is half-up on
``Decimal`` values. Floats only come in as measured seconds or grams and are turned
into exact numbers before any arithmetic, so an invoice never depends on binary
floating-point artefacts.

A session is priced by the tariff in force when it *started*: a session running over a
price change at midnight is billed as the member expected when they badged in.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gateway.billing.money import LANGUAGES, format_money
from gateway.policies.metering import MINUTE_S, billable_minutes

__all__ = [
    "Price",
    "Tariff",
    "TariffError",
    "explain",
    "max_session_s",
    "parse_tariffs",
    "price_session",
    "round_half_up",
    "select_tariff",
    "ties",
    "vat",
]


def round_half_up(value: Decimal | int) -> int:
    """Whole cents, half away from zero: the rounding a member checks with a calculator.

    Away from zero (not towards +inf) so that a credit note is the exact mirror of the
    invoice it cancels.
    """
    return int(Decimal(value).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _exact(value: Decimal | float | int, what: str) -> Decimal:
    """A float as the decimal a person wrote (37.4 g is 37.4, not 37.39999...)."""
    if isinstance(value, bool):
        raise ValueError(f"{what} must be a number, got {value!r}")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{what} must be a finite number, got {value!r}")
        result = Decimal(repr(value))
    else:
        raise ValueError(f"{what} must be a number, got {value!r}")
    if not result.is_finite():
        raise ValueError(f"{what} must be a finite number, got {value!r}")
    return result


def _round_to_unit(minutes: int, unit: int) -> int:
    return -(-minutes // unit) * unit


@dataclass(frozen=True)
class Tariff:
    """One line of the price list, checked on construction.

    A tariff is either a single ``rate`` for every minute, or a ``busy_rate`` and an
    ``idle_rate`` for machines that report when they work (a laser billed on burn time):
    never both, so a config can't leave the reader guessing which one applies.
    """

    valid_from: datetime  # aware; in force from this instant
    machines: tuple[str, ...] = ()  # machine ids it applies to ...
    groups: tuple[str, ...] = ()  # ... or certification groups; both empty: every machine
    categories: tuple[str, ...] = ()  # member categories; empty: every category
    rate: int | None = None  # cents per billable minute (busy and idle alike)
    busy_rate: int | None = None  # cents per busy minute (machine reports busy time)
    idle_rate: int | None = None  # cents per idle minute
    startup: int = 0  # cents per session
    minimum: int = 0  # minimum of time price + startup (before material)
    unit: int = 1  # rounding unit in minutes (1, 5, 15 ...)
    free_under_s: float = 0  # sessions shorter than this cost nothing at all
    material_per_gram: Decimal = field(default=Decimal(0))  # cents per gram (filament ...)
    vat_rate: Decimal = Decimal("0.20")
    name: str = ""

    def __post_init__(self) -> None:
        label = f"tariff {self.name!r}" if self.name else "tariff"
        if not isinstance(self.valid_from, datetime) or self.valid_from.utcoffset() is None:
            raise ValueError(f"{label}: valid_from must be a timezone-aware datetime")
        split = self.busy_rate is not None or self.idle_rate is not None
        if self.rate is None and not split:
            raise ValueError(f"{label}: needs a rate, or a busy_rate and an idle_rate")
        if self.rate is not None and split:
            raise ValueError(f"{label}: a rate or busy_rate/idle_rate, not both")
        if split and (self.busy_rate is None or self.idle_rate is None):
            raise ValueError(f"{label}: busy_rate and idle_rate go together")
        for key in ("rate", "busy_rate", "idle_rate", "startup", "minimum"):
            value = getattr(self, key)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 0
            ):
                raise ValueError(f"{label}: {key} must be whole cents, 0 or more, got {value!r}")
        if isinstance(self.unit, bool) or not isinstance(self.unit, int) or self.unit < 1:
            raise ValueError(f"{label}: unit must be a positive whole number of minutes")
        if not math.isfinite(self.free_under_s) or self.free_under_s < 0:
            raise ValueError(f"{label}: free_under_s must be a duration of 0 s or more")
        per_gram = _exact(self.material_per_gram, "material_per_gram")
        if per_gram < 0:
            raise ValueError(f"{label}: material_per_gram must be 0 or more")
        object.__setattr__(self, "material_per_gram", per_gram)
        vat_rate = _exact(self.vat_rate, "vat_rate")
        if not 0 <= vat_rate < 1:
            raise ValueError(f"{label}: vat_rate must be from 0 to below 1 (20 % is 0.20)")
        object.__setattr__(self, "vat_rate", vat_rate)
        for key in ("machines", "groups", "categories"):
            object.__setattr__(self, key, tuple(getattr(self, key)))

    @property
    def split(self) -> bool:
        """Busy and idle minutes are priced apart."""
        return self.rate is None


@dataclass(frozen=True)
class Price:
    """A priced session, with what an invoice line needs to explain itself.

    ``time`` includes any top-up to the tariff's ``minimum``, so that
    ``total == time + startup + material`` always holds. Minutes are those the tariff's
    rounding gives, even for a free session, so the usage behind a zero is still shown.
    """

    time: int
    startup: int
    material: int
    total: int
    billable_minutes: int
    busy_minutes: int | None  # None unless the tariff prices busy and idle minutes apart
    idle_minutes: int | None
    tariff: Tariff | None
    free: bool  # nothing charged: shorter than free_under_s, or no tariff applies


# --------------------------------------------------------------------------- selection


def _scope_rank(tariff: Tariff, machine: str, group: str) -> int | None:
    if machine in tariff.machines:
        return 2
    if group in tariff.groups:
        return 1
    if not tariff.machines and not tariff.groups:
        return 0
    return None


def select_tariff(
    tariffs: Iterable[Tariff], *, machine: str, group: str, category: str, at: datetime
) -> Tariff | None:
    """The tariff a session starting ``at`` is priced by, or None if none applies.

    Specificity wins over recency: a laser tariff from last year still beats a general
    tariff published this month, because a lab that raises its general prices has not
    meant to drop its laser price. The order is machine > group > any, then
    category-specific > any; among equally specific tariffs in force, the latest.
    """
    if at.utcoffset() is None:
        raise ValueError("at must be timezone-aware: a naive time is ambiguous at a DST change")
    best: Tariff | None = None
    best_key: tuple[int, int, datetime] | None = None
    for tariff in tariffs:
        if tariff.valid_from > at:
            continue
        scope = _scope_rank(tariff, machine, group)
        if scope is None:
            continue
        if tariff.categories and category not in tariff.categories:
            continue
        key = (scope, 1 if tariff.categories else 0, tariff.valid_from)
        if best_key is None or key > best_key:
            best, best_key = tariff, key
    return best


# --------------------------------------------------------------------------- pricing


def _minutes_between(duration_s: float, busy_s: float) -> int:
    """Started minutes of ``duration - busy``, exactly: float subtraction could round."""
    idle = Fraction(duration_s) - Fraction(busy_s)
    return math.ceil(idle / MINUTE_S) if idle > 0 else 0


def price_session(
    tariff: Tariff | None,
    *,
    duration_s: float,
    busy_s: float | None = None,
    material_g: Decimal | float = 0,
) -> Price:
    """What a session costs, before VAT.

    With busy/idle rates, busy and idle seconds are each rounded up to a started minute,
    then each to the tariff's unit: a member is never billed less machine time than it
    ran, on either part. A machine that reported no busy time (``busy_s=None``) is billed
    as busy throughout, as a plain rate would. ``busy_s`` is clamped to the session.
    """
    if busy_s is not None and not math.isfinite(busy_s):
        raise ValueError(f"busy time must be a finite number of seconds, got {busy_s}")
    grams = _exact(material_g, "material")
    if grams < 0:
        raise ValueError(f"material must be 0 g or more, got {material_g!r}")
    metered = billable_minutes(duration_s)  # also rejects a non-finite duration
    if tariff is None:
        return Price(0, 0, 0, 0, metered, None, None, None, free=True)

    busy_minutes: int | None = None
    idle_minutes: int | None = None
    if tariff.split:
        assert tariff.busy_rate is not None and tariff.idle_rate is not None
        busy = duration_s if busy_s is None else min(max(busy_s, 0.0), max(duration_s, 0.0))
        busy_minutes = _round_to_unit(billable_minutes(busy), tariff.unit)
        idle_minutes = _round_to_unit(_minutes_between(duration_s, busy), tariff.unit)
        minutes = busy_minutes + idle_minutes
        time_price = tariff.busy_rate * busy_minutes + tariff.idle_rate * idle_minutes
    else:
        assert tariff.rate is not None
        minutes = _round_to_unit(metered, tariff.unit)
        time_price = tariff.rate * minutes

    if duration_s < tariff.free_under_s:
        return Price(0, 0, 0, 0, minutes, busy_minutes, idle_minutes, tariff, free=True)
    time_price = max(time_price, tariff.minimum - tariff.startup)
    material = round_half_up(grams * tariff.material_per_gram)
    total = time_price + tariff.startup + material
    return Price(
        time_price,
        tariff.startup,
        material,
        total,
        minutes,
        busy_minutes,
        idle_minutes,
        tariff,
        free=False,
    )


def vat(lines: Iterable[tuple[int, Decimal]]) -> dict[Decimal, tuple[int, int]]:
    """Per VAT rate: ``(sum HT, VAT)``, the VAT rounded once on the sum.

    Rounding per line would make an invoice's VAT depend on how its lines were grouped
    (three lines of 3,33 € at 20 % give 0,66 € one way and 0,67 € the other); the tax
    is due on the invoice's total per rate. Rates come back in increasing order.
    """
    sums: dict[Decimal, int] = {}
    for amount, rate in lines:
        if isinstance(amount, bool) or not isinstance(amount, int):
            raise ValueError(f"an invoice line is whole cents, got {amount!r}")
        exact_rate = _exact(rate, "VAT rate")
        if not 0 <= exact_rate < 1:
            raise ValueError(f"a VAT rate is from 0 to below 1, got {rate!r}")
        sums[exact_rate] = sums.get(exact_rate, 0) + amount
    return {rate: (total, round_half_up(total * rate)) for rate, total in sorted(sums.items())}


def max_session_s(tariff: Tariff | None, balance: int) -> float | None:
    """The longest session a prepaid ``balance`` pays for; None when time costs nothing.

    Material is not counted: the cap is for machines stopped on time (laser, CNC); a
    print is never cut. With busy and idle rates, the cap holds whatever the split turns
    out to be: the worst case bills the dearer rate throughout, plus one unit of the
    cheaper rate for the two parts each being rounded up. If no paid length fits but
    short sessions are free, the answer is just under ``free_under_s``; 0.0 otherwise.
    A negative balance (a print that overran) pays for nothing, but free time stays free.
    """
    if tariff is None:
        return None
    balance = max(balance, 0)
    if tariff.split:
        assert tariff.busy_rate is not None and tariff.idle_rate is not None
        dear = max(tariff.busy_rate, tariff.idle_rate)
        cheap = min(tariff.busy_rate, tariff.idle_rate)
    else:
        assert tariff.rate is not None
        dear, cheap = tariff.rate, 0
    fixed = max(tariff.minimum, tariff.startup)  # what even a zero-length session costs
    free_edge = math.nextafter(tariff.free_under_s, 0.0) if tariff.free_under_s > 0 else 0.0
    if dear == 0:
        return None if fixed <= balance else free_edge
    if fixed > balance:
        return free_edge
    # Whole units n >= 1 cost startup + unit * (dear * n + cheap), floored by the minimum.
    # The minimum fits (checked above), so only the metered part bounds n.
    units = (balance - tariff.startup - tariff.unit * cheap) // (tariff.unit * dear)
    longest = float(MINUTE_S * tariff.unit * max(units, 0))
    return max(longest, free_edge)


# --------------------------------------------------------------------------- explanation


def _seconds(value: float, lang: str) -> str:
    text = f"{value:g}"
    return text.replace(".", ",") if lang == "fr" else text


_WORDS = {
    "fr": {
        "no_tariff": "gratuit\u00a0: aucun tarif ne s'applique",
        "free": "gratuit\u00a0: session de moins de {s}\u00a0s",
        "minutes": "{n}\u00a0min × {rate}",
        "busy": "{n}\u00a0min en marche × {rate}",
        "idle": "{n}\u00a0min à l'arrêt × {rate}",
        "unit": " (par tranches de {u}\u00a0min)",
        "startup": "{amount} de mise en route",
        "minimum": " → minimum {amount}",
        "material": "{amount} de matière",
    },
    "en": {
        "no_tariff": "free: no tariff applies",
        "free": "free: session under {s} s",
        "minutes": "{n} min × {rate}",
        "busy": "{n} busy min × {rate}",
        "idle": "{n} idle min × {rate}",
        "unit": " (in {u}-min steps)",
        "startup": "{amount} start-up",
        "minimum": " → {amount} minimum",
        "material": "{amount} material",
    },
}


def explain(price: Price, lang: str = "fr") -> str:
    """One line an invoice prints under the amount, so a member can redo the sum.

    ``43 min × 0,75 € + 12,50 € de mise en route``. Material shows as an amount only:
    the grams are the session's, not the price's.
    """
    if lang not in _WORDS:
        raise ValueError(f"lang must be one of {', '.join(LANGUAGES)}, got {lang!r}")
    words = _WORDS[lang]
    tariff = price.tariff
    if tariff is None:
        return words["no_tariff"]
    if price.free:
        return words["free"].format(s=_seconds(tariff.free_under_s, lang))

    def money(cents: int) -> str:
        return format_money(cents, lang)

    parts: list[str] = []
    if tariff.split:
        assert tariff.busy_rate is not None and tariff.idle_rate is not None
        assert price.busy_minutes is not None and price.idle_minutes is not None
        parts.append(words["busy"].format(n=price.busy_minutes, rate=money(tariff.busy_rate)))
        if tariff.idle_rate:
            parts.append(words["idle"].format(n=price.idle_minutes, rate=money(tariff.idle_rate)))
        metered = tariff.busy_rate * price.busy_minutes + tariff.idle_rate * price.idle_minutes
    else:
        assert tariff.rate is not None
        parts.append(words["minutes"].format(n=price.billable_minutes, rate=money(tariff.rate)))
        metered = tariff.rate * price.billable_minutes
    if tariff.unit > 1:
        parts[-1] += words["unit"].format(u=tariff.unit)
    if price.startup:
        parts.append(words["startup"].format(amount=money(price.startup)))
    text = " + ".join(parts)
    if price.time > metered:
        text += words["minimum"].format(amount=money(tariff.minimum))
    if price.material:
        text += " + " + words["material"].format(amount=money(price.material))
    return text


# --------------------------------------------------------------------------- configuration


class TariffError(ValueError):
    """``<key.path>: expected <what>[, got <value>]``, the shape of the config's errors.

    The parts are kept so the config loader can re-raise it as its own error with the
    file name and the line of the key.
    """

    def __init__(self, key: str, expected: str, got: object = None) -> None:
        self.key = key
        self.expected = expected
        self.got = got
        tail = f", got {got!r}" if got is not None else ""
        super().__init__(f"{key}: expected {expected}{tail}")


_KEYS = (
    "name",
    "valid_from",
    "machines",
    "groups",
    "categories",
    "rate",
    "busy_rate",
    "idle_rate",
    "startup",
    "minimum",
    "unit",
    "free_under",
    "material_per_gram",
    "vat_rate",
)
_CENTS_TEXT = "a whole number of cents, 0 or more (12,50 € is 1250)"
_DATE_TEXT = (
    "a date (2026-01-01, local midnight) or a date-time with its UTC offset "
    "(2026-01-01T08:00:00+01:00)"
)
_DURATION_PART = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(h|min|m|s)\s*")
_DURATION_NUMBER = re.compile(r"\s*\d+(?:\.\d+)?\s*")
_DURATION_SECONDS = {"h": 3600, "min": 60, "m": 60, "s": 1}
_DURATION_TEXT = "a duration such as '10s', '1m30s' or a number of seconds"


def _suggest(word: str, options: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _shown(value: object) -> object:
    """What to print as "got": a type for containers, the value for scalars."""
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return value


def _cents(path: str, value: object, what: str = _CENTS_TEXT) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise TariffError(path, what, _shown(value))
    return value


def _fraction_text(path: str, value: object, what: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise TariffError(path, what, _shown(value))
    try:
        result = _exact(Decimal(value.strip()) if isinstance(value, str) else value, path)
    except (ValueError, InvalidOperation) as exc:
        raise TariffError(path, what, value) from exc
    return result


def _duration(path: str, value: object) -> float:
    if isinstance(value, bool):
        raise TariffError(path, _DURATION_TEXT, value)
    if isinstance(value, int | float):
        if not math.isfinite(value) or value < 0:
            raise TariffError(path, _DURATION_TEXT + ", 0 or more", value)
        return float(value)
    if not isinstance(value, str):
        raise TariffError(path, _DURATION_TEXT, _shown(value))
    text = value.strip().lower()
    if _DURATION_NUMBER.fullmatch(text):
        return float(text)
    total = 0.0
    pos = 0
    seen: set[int] = set()
    for match in _DURATION_PART.finditer(text):
        scale = _DURATION_SECONDS[match.group(2)]
        if match.start() != pos or scale in seen:
            break
        seen.add(scale)
        total += float(match.group(1)) * scale
        pos = match.end()
    if not seen or pos != len(text):
        raise TariffError(path, _DURATION_TEXT, value)
    return total


def _names(
    path: str, value: object, known: Sequence[str] | None, what: str, one: str
) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise TariffError(path, f"a list of {what}", _shown(value))
    names: dict[str, None] = {}
    for i, item in enumerate(items):
        item_path = f"{path}[{i}]"
        if not isinstance(item, str) or not item.strip():
            raise TariffError(item_path, f"a {one} (text)", _shown(item))
        if known is not None and item not in known:
            raise TariffError(
                item_path,
                f"a known {one}{_suggest(item, known)} ({', '.join(known) or 'none configured'})",
                item,
            )
        names[item] = None
    return tuple(names)


def _instant(path: str, value: object, zone: ZoneInfo) -> datetime:
    if isinstance(value, str):
        text = value.strip()
        try:
            if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
                value = date.fromisoformat(text)
            else:
                value = datetime.fromisoformat(text)
        except ValueError as exc:
            raise TariffError(path, _DATE_TEXT, value) from exc
    if isinstance(value, datetime):
        if value.utcoffset() is None:
            raise TariffError(
                path, _DATE_TEXT + "; this date-time has no offset", value.isoformat()
            )
        return value
    if isinstance(value, date):
        return datetime.combine(value, time(0), zone)
    raise TariffError(path, _DATE_TEXT, _shown(value))


def _cells(tariff: Tariff) -> set[tuple[str, str, str]]:
    """The (scope kind, scope id, category) slots a tariff claims, to find ties."""
    scopes = [("machine", m) for m in tariff.machines] + [("group", g) for g in tariff.groups]
    if not scopes:
        scopes = [("any", "")]
    categories = tariff.categories or ("",)
    return {(kind, ident, cat) for kind, ident in scopes for cat in categories}


def parse_tariffs(
    items: list[dict[str, Any]],
    where: str = "tariffs",
    *,
    tz: str,
    machines: Sequence[str] | None = None,
    groups: Sequence[str] | None = None,
    categories: Sequence[str] | None = None,
) -> list[Tariff]:
    """The ``tariffs:`` list of the hub config, checked; ``TariffError`` names the key.

    Money is whole cents, so ``startup: 12.5`` (meant as euros) is refused rather than
    read as half a cent. A date in ``valid_from`` is midnight in ``tz``, the site's zone.
    ``machines``, ``groups`` and ``categories``, when given, are the ids that exist: a
    tariff naming another one would never apply, silently. Two tariffs in force from the
    same instant that claim the same machine and category are refused, since neither
    would be more specific than the other.
    """
    if items is None:
        return []
    if not isinstance(items, list | tuple):
        raise TariffError(where, "a list of tariffs", _shown(items))
    try:
        zone = ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {tz!r}") from exc
    tariffs: list[Tariff] = []
    for i, item in enumerate(items):
        here = f"{where}[{i}]"
        if not isinstance(item, Mapping):
            raise TariffError(here, "a mapping with keys " + ", ".join(_KEYS), _shown(item))
        for key in item:
            if key not in _KEYS:
                raise TariffError(
                    f"{here}.{key}",
                    f"a known key{_suggest(str(key), _KEYS)} (known here: {', '.join(_KEYS)})",
                )
        tariffs.append(
            _parse_one(
                here,
                {k: v for k, v in item.items() if v is not None},
                zone,
                machines,
                groups,
                categories,
            )
        )
    _refuse_ties(tariffs, where)
    return tariffs


def _parse_one(
    here: str,
    item: dict[str, Any],
    zone: ZoneInfo,
    machines: Sequence[str] | None,
    groups: Sequence[str] | None,
    categories: Sequence[str] | None,
) -> Tariff:
    def at(key: str) -> str:
        return f"{here}.{key}"

    if "valid_from" not in item:
        raise TariffError(at("valid_from"), "a value (this key is required)")
    has_rate = "rate" in item
    has_split = "busy_rate" in item or "idle_rate" in item
    if not has_rate and not has_split:
        raise TariffError(here, "a `rate`, or a `busy_rate` and an `idle_rate`")
    if has_rate and has_split:
        raise TariffError(
            at("rate"), "either `rate` or `busy_rate`/`idle_rate`, not both", item["rate"]
        )
    if has_split:
        for key in ("busy_rate", "idle_rate"):
            if key not in item:
                raise TariffError(
                    at(key), "a value with busy_rate/idle_rate (0 if those minutes are free)"
                )
    name = item.get("name", "")
    if not isinstance(name, str):
        raise TariffError(at("name"), "text", _shown(name))
    unit = item.get("unit", 1)
    if isinstance(unit, bool) or not isinstance(unit, int) or unit < 1:
        raise TariffError(at("unit"), "a positive whole number of minutes", _shown(unit))
    per_gram = _fraction_text(
        at("material_per_gram"),
        item.get("material_per_gram", 0),
        "a number of cents per gram, 0 or more",
    )
    if per_gram < 0:
        raise TariffError(
            at("material_per_gram"),
            "a number of cents per gram, 0 or more",
            item["material_per_gram"],
        )
    vat_text = "a fraction from 0 to below 1 (20 % is 0.20)"
    vat_rate = _fraction_text(at("vat_rate"), item.get("vat_rate", Decimal("0.20")), vat_text)
    if not 0 <= vat_rate < 1:
        raise TariffError(at("vat_rate"), vat_text, item["vat_rate"])
    rates = {
        key: _cents(at(key), item[key]) if key in item else None
        for key in ("rate", "busy_rate", "idle_rate")
    }
    return Tariff(
        valid_from=_instant(at("valid_from"), item["valid_from"], zone),
        machines=_names(at("machines"), item.get("machines", ()), machines, "machines", "machine"),
        groups=_names(at("groups"), item.get("groups", ()), groups, "groups", "group"),
        categories=_names(
            at("categories"), item.get("categories", ()), categories, "categories", "category"
        ),
        rate=rates["rate"],
        busy_rate=rates["busy_rate"],
        idle_rate=rates["idle_rate"],
        startup=_cents(at("startup"), item.get("startup", 0)),
        minimum=_cents(at("minimum"), item.get("minimum", 0)),
        unit=unit,
        free_under_s=_duration(at("free_under"), item.get("free_under", 0)),
        material_per_gram=per_gram,
        vat_rate=vat_rate,
        name=name,
    )


def _refuse_ties(tariffs: Sequence[Tariff], where: str) -> None:
    claimed: dict[tuple[datetime, tuple[str, str, str]], int] = {}
    for i, tariff in enumerate(tariffs):
        for cell in _cells(tariff):
            key = (tariff.valid_from, cell)
            if key in claimed:
                kind, ident, category = cell
                what = f"{kind} {ident!r}" if ident else "every machine"
                whom = f"category {category!r}" if category else "every category"
                raise TariffError(
                    f"{where}[{i}]",
                    f"a tariff that does not tie with {where}[{claimed[key]}] "
                    f"(same valid_from, both for {what} and {whom})",
                )
            claimed[key] = i


def ties(a: Tariff, b: Tariff) -> bool:
    """Both in force from the same instant and claiming a same machine (or group, or
    every machine) and category: neither would be more specific, so a list may not hold
    both (the config loader and the tariff pages refuse it)."""
    return a.valid_from == b.valid_from and bool(_cells(a) & _cells(b))
