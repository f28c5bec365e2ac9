"""Tariffs: pricing rules, selection, VAT, prepaid caps and the config list's errors."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from gateway.billing.money import format_money
from gateway.billing.tariffs import (
    Tariff,
    TariffError,
    explain,
    max_session_s,
    parse_tariffs,
    price_session,
    round_half_up,
    select_tariff,
    vat,
)

PARIS = ZoneInfo("Europe/Paris")
ALWAYS = datetime(2000, 1, 1, tzinfo=UTC)
NBSP = "\u00a0"


def tariff(**kw: Any) -> Tariff:
    kw.setdefault("valid_from", ALWAYS)
    if "busy_rate" not in kw and "idle_rate" not in kw:
        kw.setdefault("rate", 60)
    return Tariff(**kw)


# --------------------------------------------------------------------------- price list


def test_price_list_laser_060_per_minute_of_use() -> None:
    laser = tariff(rate=None, busy_rate=60, idle_rate=0)
    price = price_session(laser, duration_s=1800, busy_s=1040)
    assert (price.total, price.busy_minutes, price.idle_minutes) == (1080, 18, 13)
    assert explain(price, "fr") == f"18{NBSP}min en marche × 0,60{NBSP}€"
    assert explain(price, "en") == "18 busy min × €0.60"


def test_price_list_laser_075_per_minute_plus_1250_startup() -> None:
    laser = tariff(rate=None, busy_rate=75, idle_rate=0, startup=1250)
    price = price_session(laser, duration_s=3000, busy_s=2530)
    assert (price.time, price.startup, price.total) == (3225, 1250, 4475)
    assert explain(price, "fr") == (
        f"43{NBSP}min en marche × 0,75{NBSP}€ + 12,50{NBSP}€ de mise en route"
    )
    assert explain(price, "en") == "43 busy min × €0.75 + €12.50 start-up"


@pytest.mark.parametrize("duration", [0.0, 1.0, 9.999])
def test_price_list_sessions_under_10_s_are_free(duration: float) -> None:
    t = tariff(rate=60, startup=1250, free_under_s=10, material_per_gram=Decimal(5))
    price = price_session(t, duration_s=duration, material_g=12)
    assert price.free and price.total == price.startup == price.material == 0
    assert explain(price, "fr") == f"gratuit{NBSP}: session de moins de 10{NBSP}s"
    assert explain(price, "en") == "free: session under 10 s"


def test_ten_seconds_exactly_is_paid() -> None:
    t = tariff(rate=60, startup=1250, free_under_s=10)
    price = price_session(t, duration_s=10.0)
    assert not price.free and price.total == 60 + 1250


# --------------------------------------------------------------------------- pricing rules


def test_busy_and_idle_are_each_rounded_up() -> None:
    # 65 s busy and 65 s idle: two started minutes each, where the session is 3 minutes.
    price = price_session(tariff(rate=None, busy_rate=5, idle_rate=1), duration_s=130, busy_s=65)
    assert (price.busy_minutes, price.idle_minutes, price.billable_minutes) == (2, 2, 4)
    assert price.total == 2 * 5 + 2 * 1


def test_unit_applies_to_each_part() -> None:
    price = price_session(
        tariff(rate=None, busy_rate=10, idle_rate=2, unit=15), duration_s=1200, busy_s=60
    )
    assert (price.busy_minutes, price.idle_minutes) == (15, 30)
    assert explain(price, "en") == "15 busy min × €0.10 + 30 idle min × €0.02 (in 15-min steps)"


def test_busy_time_missing_bills_the_whole_session_as_busy() -> None:
    price = price_session(tariff(rate=None, busy_rate=10, idle_rate=0), duration_s=600)
    assert (price.busy_minutes, price.idle_minutes, price.total) == (10, 0, 100)


def test_busy_time_is_clamped_to_the_session() -> None:
    t = tariff(rate=None, busy_rate=10, idle_rate=1)
    assert price_session(t, duration_s=600, busy_s=900).total == 100
    assert price_session(t, duration_s=600, busy_s=-5).total == 10


def test_minimum_tops_up_the_time_part() -> None:
    t = tariff(rate=2, startup=30, minimum=100, material_per_gram=Decimal(5))
    price = price_session(t, duration_s=720, material_g=2)
    assert (price.time, price.startup, price.material, price.total) == (70, 30, 10, 110)
    assert explain(price, "fr") == (
        f"12{NBSP}min × 0,02{NBSP}€ + 0,30{NBSP}€ de mise en route"
        f" → minimum 1,00{NBSP}€ + 0,10{NBSP}€ de matière"
    )


@pytest.mark.parametrize(
    ("grams", "cents"),
    [
        (0.1, 1),  # 0.5 -> 1, though the float 0.1 is a hair above 0.1
        (0.3, 2),  # 1.5 -> 2, though the float 0.3 is a hair below 0.3
        (37.4, 187),
        (Decimal("0.09"), 0),
        (Decimal("0.7"), 4),  # 3.5 -> 4
    ],
)
def test_material_rounds_half_up_on_the_written_grams(grams: Any, cents: int) -> None:
    t = tariff(rate=0, material_per_gram=Decimal(5))
    assert price_session(t, duration_s=60, material_g=grams).material == cents


def test_no_tariff_is_free() -> None:
    price = price_session(None, duration_s=600)
    assert price.free and price.total == 0 and price.billable_minutes == 10
    assert explain(price, "en") == "free: no tariff applies"


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_non_finite_inputs_are_refused(bad: float) -> None:
    with pytest.raises(ValueError):
        price_session(tariff(), duration_s=bad)
    with pytest.raises(ValueError):
        price_session(tariff(rate=None, busy_rate=1, idle_rate=0), duration_s=60, busy_s=bad)
    with pytest.raises(ValueError):
        price_session(tariff(), duration_s=60, material_g=bad)


@pytest.mark.parametrize(
    "kw",
    [
        {"rate": None},
        {"busy_rate": 5, "idle_rate": 0},
        {"rate": None, "busy_rate": 5},
        {"startup": -1},
        {"rate": 1.5},
        {"unit": 0},
        {"vat_rate": Decimal(1)},
        {"valid_from": datetime(2026, 1, 1)},
        {"material_per_gram": Decimal(-1)},
    ],
)
def test_tariff_refuses_inconsistent_values(kw: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Tariff(**{"valid_from": ALWAYS, "rate": 60, **kw})


def test_rounding_and_money_formatting() -> None:
    assert [round_half_up(Decimal(x)) for x in ("0.5", "1.49", "-0.5", "2.5")] == [1, 1, -1, 3]
    assert format_money(123456, "fr") == f"1\u202f234,56{NBSP}€"
    assert format_money(-5, "en") == "-€0.05"
    with pytest.raises(ValueError):
        format_money(5, "de")


durations = st.floats(min_value=0, max_value=48 * 3600, allow_nan=False)
cents = st.integers(min_value=0, max_value=5000)
units = st.sampled_from([1, 2, 5, 15, 30])


@given(duration=durations, rate=cents, startup=cents, minimum=cents, unit=units)
def test_never_bills_less_than_the_metered_time(
    duration: float, rate: int, startup: int, minimum: int, unit: int
) -> None:
    t = tariff(rate=rate, startup=startup, minimum=minimum, unit=unit)
    price = price_session(t, duration_s=duration)
    assert price.total >= math.ceil(duration / 60) * rate
    assert price.total >= max(minimum, startup)
    assert price.total == price.time + price.startup + price.material


@st.composite
def any_tariff(draw: st.DrawFn) -> Tariff:
    kw: dict[str, Any] = {
        "startup": draw(cents),
        "minimum": draw(cents),
        "unit": draw(units),
        "free_under_s": draw(st.sampled_from([0, 10, 90])),
        "material_per_gram": Decimal(draw(st.integers(0, 20))),
    }
    if draw(st.booleans()):
        kw["rate"] = draw(cents)
    else:
        kw.update(rate=None, busy_rate=draw(cents), idle_rate=draw(cents))
    return tariff(**kw)


@given(
    t=any_tariff(), a=durations, b=durations, busy=durations, grams=st.decimals(0, 500, places=1)
)
def test_amount_is_monotonic_in_duration(
    t: Tariff, a: float, b: float, busy: float, grams: Decimal
) -> None:
    short, long = sorted((a, b))
    busy = min(busy, short)
    p_short = price_session(t, duration_s=short, busy_s=busy, material_g=grams)
    p_long = price_session(t, duration_s=long, busy_s=busy, material_g=grams)
    assert p_short.total <= p_long.total


# --------------------------------------------------------------------------- selection


@given(
    offset=st.integers(min_value=-3 * 3600, max_value=3 * 3600),
    length=st.integers(min_value=1, max_value=4 * 3600),
)
def test_tariff_change_at_midnight_prices_by_the_start(offset: int, length: int) -> None:
    midnight = datetime(2026, 1, 1, tzinfo=PARIS)
    old = tariff(valid_from=datetime(2025, 1, 1, tzinfo=PARIS), rate=40)
    new = tariff(valid_from=midnight, rate=50)
    start = midnight + timedelta(seconds=offset)
    chosen = select_tariff(
        [new, old], machine="laser-1", group="laser", category="adherent", at=start
    )
    assert chosen is (old if start < midnight else new)
    assert chosen is not None
    expected = math.ceil(length / 60) * chosen.rate
    assert price_session(chosen, duration_s=length).total == expected


def test_most_specific_tariff_wins() -> None:
    y2025 = datetime(2025, 1, 1, tzinfo=PARIS)
    y2026 = datetime(2026, 1, 1, tzinfo=PARIS)
    general = tariff(valid_from=y2026, rate=10, name="general 2026")
    by_group = tariff(valid_from=y2025, groups=("laser",), rate=20, name="laser")
    by_group_cat = tariff(
        valid_from=y2025,
        groups=("laser",),
        categories=("adherent",),
        rate=30,
        name="laser adherent",
    )
    by_machine = tariff(valid_from=y2025, machines=("laser-2",), rate=40, name="laser-2")
    all_tariffs = [general, by_group, by_group_cat, by_machine]
    at = datetime(2026, 6, 1, tzinfo=PARIS)

    def pick(machine: str, group: str, category: str) -> str | None:
        found = select_tariff(all_tariffs, machine=machine, group=group, category=category, at=at)
        return found.name if found else None

    assert pick("laser-1", "laser", "adherent") == "laser adherent"
    assert pick("laser-1", "laser", "professionnel") == "laser"  # a newer general loses
    assert pick("laser-2", "laser", "adherent") == "laser-2"  # machine beats category
    assert pick("cnc-1", "cnc", "adherent") == "general 2026"
    assert (
        select_tariff(
            all_tariffs,
            machine="cnc-1",
            group="cnc",
            category="adherent",
            at=datetime(2025, 6, 1, tzinfo=PARIS),
        )
        is None
    )


def test_latest_of_equally_specific_tariffs_wins_and_future_ones_wait() -> None:
    older = tariff(valid_from=datetime(2025, 1, 1, tzinfo=UTC), rate=1)
    newer = tariff(valid_from=datetime(2026, 1, 1, tzinfo=UTC), rate=2)
    future = tariff(valid_from=datetime(2027, 1, 1, tzinfo=UTC), rate=3)
    chosen = select_tariff(
        [newer, future, older],
        machine="m",
        group="g",
        category="c",
        at=datetime(2026, 5, 1, tzinfo=UTC),
    )
    assert chosen is newer


def test_select_tariff_refuses_a_naive_instant() -> None:
    with pytest.raises(ValueError):
        select_tariff([tariff()], machine="m", group="g", category="c", at=datetime(2026, 1, 1))


# --------------------------------------------------------------------------- VAT

rates = st.sampled_from([Decimal("0.20"), Decimal("0.10"), Decimal("0.055"), Decimal("0")])
lines_st = st.lists(st.tuples(st.integers(-100_000, 100_000), rates), max_size=30)


@given(lines=lines_st, groups=st.lists(st.integers(0, 4), min_size=30, max_size=30))
def test_splitting_lines_into_groups_keeps_the_total(
    lines: list[tuple[int, Decimal]], groups: list[int]
) -> None:
    whole = vat(lines)
    parts: dict[int, list[tuple[int, Decimal]]] = {}
    for line, group in zip(lines, groups, strict=False):
        parts.setdefault(group, []).append(line)
    by_group = [vat(part) for part in parts.values()]
    for rate, (ht, _) in whole.items():
        assert ht == sum(totals[rate][0] for totals in by_group if rate in totals)
    # VAT is computed on the sums: feeding group subtotals as lines changes nothing.
    subtotals = [(ht, rate) for totals in by_group for rate, (ht, _) in totals.items()]
    assert vat(subtotals) == whole


def test_vat_is_rounded_once_per_rate_on_the_sum() -> None:
    assert vat([(333, Decimal("0.20"))] * 3) == {Decimal("0.20"): (999, 200)}
    assert vat([(1000, Decimal("0.055")), (100, Decimal("0.20")), (-1000, Decimal("0.055"))]) == {
        Decimal("0.055"): (0, 0),
        Decimal("0.20"): (100, 20),
    }
    assert vat([(-999, Decimal("0.20"))]) == {Decimal("0.20"): (-999, -200)}  # credit note


def test_vat_refuses_floats_for_money() -> None:
    with pytest.raises(ValueError):
        vat([(9.99, Decimal("0.20"))])  # type: ignore[list-item]


# --------------------------------------------------------------------------- prepaid cap


def _time_cost(t: Tariff, duration: float, busy: float | None = None) -> int:
    price = price_session(t, duration_s=duration, busy_s=busy)
    return price.total - price.material


@given(t=any_tariff(), balance=st.integers(-1000, 200_000))
def test_cap_is_the_longest_session_the_balance_pays(t: Tariff, balance: int) -> None:
    cap = max_session_s(t, balance)
    balance = max(balance, 0)  # a debt pays for nothing, and free time stays free
    if cap is None:
        assert _time_cost(t, 10 * 24 * 3600.0, busy=3600) <= balance
        return
    if cap > 0 or _time_cost(t, 0.0) <= balance:  # 0.0 also means "not even a start"
        assert _time_cost(t, cap) <= balance
    if not t.split:  # with busy/idle rates the cap is safe for every split, so not tight
        assert _time_cost(t, math.nextafter(cap, math.inf)) > balance


@given(t=any_tariff(), balance=st.integers(0, 200_000), share=st.floats(0, 1))
def test_cap_holds_whatever_the_busy_share(t: Tariff, balance: int, share: float) -> None:
    cap = max_session_s(t, balance)
    assume(cap is not None and (cap > 0 or _time_cost(t, 0.0) <= balance))
    assert cap is not None
    assert _time_cost(t, cap, busy=cap * share) <= balance


def test_cap_examples() -> None:
    assert max_session_s(tariff(rate=50), 500) == 600
    assert max_session_s(tariff(rate=50, startup=100, unit=15), 800) == 0.0
    assert max_session_s(tariff(rate=50, startup=100, unit=15), 1600) == 1800
    assert max_session_s(tariff(rate=50, minimum=1000), 999) == 0.0
    # 30 min with busy just over 15 min: 30 busy + 15 idle min, 300 + 30 cents.
    assert max_session_s(tariff(rate=None, busy_rate=10, idle_rate=2, unit=15), 330) == 1800
    assert max_session_s(tariff(rate=0), 0) is None
    assert max_session_s(None, 0) is None
    assert max_session_s(tariff(rate=50, startup=1250, free_under_s=10), 100) == math.nextafter(
        10, 0
    )
    assert max_session_s(tariff(rate=None, busy_rate=60, idle_rate=0), 600) == 600


# --------------------------------------------------------------------------- configuration


def test_parse_tariffs_reads_the_documented_example() -> None:
    [t] = parse_tariffs(
        [
            {
                "name": "Laser adhérents",
                "valid_from": date(2026, 1, 1),
                "groups": ["laser"],
                "categories": ["adherent"],
                "rate": 60,
                "startup": 0,
                "unit": 1,
                "free_under": "10s",
                "vat_rate": 0.20,
            }
        ],
        tz="Europe/Paris",
    )
    assert t.valid_from == datetime(2026, 1, 1, tzinfo=PARIS)
    assert t.valid_from.utcoffset() == timedelta(hours=1)
    assert (t.groups, t.categories, t.rate, t.free_under_s) == (("laser",), ("adherent",), 60, 10)
    assert t.vat_rate == Decimal("0.2") and isinstance(t.vat_rate, Decimal)


def test_parse_tariffs_accepts_offsets_strings_and_split_rates() -> None:
    tariffs = parse_tariffs(
        [
            {
                "valid_from": "2026-01-01T08:00:00+01:00",
                "busy_rate": 75,
                "idle_rate": 0,
                "startup": 1250,
                "free_under": "1m30s",
                "material_per_gram": "0.05",
                "machines": "laser-1",
            },
            {"valid_from": "2026-07-01", "rate": 50, "vat_rate": "0.055", "minimum": None},
        ],
        tz="Europe/Paris",
    )
    assert tariffs[0].valid_from == datetime(2026, 1, 1, 7, tzinfo=UTC)
    assert tariffs[0].free_under_s == 90 and tariffs[0].machines == ("laser-1",)
    assert tariffs[0].material_per_gram == Decimal("0.05")
    assert tariffs[1].valid_from == datetime(2026, 7, 1, tzinfo=PARIS)  # summer: +02:00
    assert tariffs[1].vat_rate == Decimal("0.055") and tariffs[1].minimum == 0


VALID = {"valid_from": date(2026, 1, 1), "rate": 60}


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ({"unit": 0}, "tariffs[2].unit: expected a positive whole number of minutes, got 0"),
        ({"startup": -100}, "tariffs[2].startup: expected a whole number of cents, 0 or more"),
        ({"startup": 12.5}, "tariffs[2].startup: expected a whole number of cents"),
        ({"rate": True}, "tariffs[2].rate: expected a whole number of cents"),
        ({"vat_rate": 20}, "tariffs[2].vat_rate: expected a fraction from 0 to below 1"),
        ({"vat_rate": -0.1}, "tariffs[2].vat_rate: expected a fraction from 0 to below 1"),
        ({"vat_rate": "twenty"}, "tariffs[2].vat_rate: expected a fraction"),
        ({"startp": 5}, "tariffs[2].startp: expected a known key; did you mean 'startup'?"),
        ({"rate": None}, "tariffs[2]: expected a `rate`, or a `busy_rate` and an `idle_rate`"),
        ({"busy_rate": 5, "idle_rate": 0}, "tariffs[2].rate: expected either `rate` or"),
        ({"rate": None, "busy_rate": 5}, "tariffs[2].idle_rate: expected a value"),
        ({"valid_from": None}, "tariffs[2].valid_from: expected a value (this key is required)"),
        ({"valid_from": datetime(2026, 1, 1, 8)}, "tariffs[2].valid_from: expected a date"),
        ({"valid_from": "next monday"}, "tariffs[2].valid_from: expected a date"),
        ({"free_under": "10 parsecs"}, "tariffs[2].free_under: expected a duration"),
        ({"free_under": -1}, "tariffs[2].free_under: expected a duration"),
        ({"material_per_gram": -1}, "tariffs[2].material_per_gram: expected a number of cents"),
        ({"machines": [""]}, "tariffs[2].machines[0]: expected a machine"),
        ({"groups": {"laser": 1}}, "tariffs[2].groups: expected a list of groups, got 'a mapping'"),
        (
            {"categories": ["adherant"]},
            "tariffs[2].categories[0]: expected a known category; did you mean 'adherent'?",
        ),
        ({"name": 5}, "tariffs[2].name: expected text, got 5"),
    ],
)
def test_parse_tariffs_errors_name_the_key_path(item: dict[str, Any], message: str) -> None:
    items = [dict(VALID, machines=["laser-1"]), dict(VALID, groups=["laser"]), {**VALID, **item}]
    with pytest.raises(TariffError) as caught:
        parse_tariffs(items, tz="Europe/Paris", categories=("adherent", "professionnel"))
    assert str(caught.value).startswith(message)
    assert isinstance(caught.value, ValueError)
    assert caught.value.key.startswith("tariffs[2]")


def test_parse_tariffs_refuses_ties_and_non_lists() -> None:
    with pytest.raises(
        TariffError,
        match=r"^hub\.tariffs\[1\]: expected a tariff that does "
        r"not tie with hub\.tariffs\[0\]",
    ):
        parse_tariffs(
            [dict(VALID, groups=["laser", "cnc"]), dict(VALID, groups=["cnc"])],
            "hub.tariffs",
            tz="Europe/Paris",
        )
    # Same instant, different category: no tie.
    assert len(parse_tariffs([VALID, dict(VALID, categories=["adherent"])], tz="Europe/Paris")) == 2
    with pytest.raises(TariffError, match=r"^tariffs: expected a list of tariffs"):
        parse_tariffs({"rate": 1}, tz="Europe/Paris")  # type: ignore[arg-type]
    with pytest.raises(TariffError, match=r"^tariffs\[0\]: expected a mapping"):
        parse_tariffs(["rate: 60"], tz="Europe/Paris")  # type: ignore[list-item]
    with pytest.raises(ValueError, match="time zone"):
        parse_tariffs([VALID], tz="Mars/Olympus")
