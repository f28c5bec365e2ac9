"""Every worked billing case of ``tests/data/billing-cases.yaml`` is a test.

The cases are the contract shared with the people who wrote the price list, so none
may be skipped: each case becomes at least one test, and a case, session or expectation
with a key this file does not understand fails its test instead of being ignored.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.billing.tariffs import Tariff, max_session_s, price_session, select_tariff, vat
from gateway.policies.session_rules import DEFAULT_RULES

CASES_FILE = Path(__file__).parent / "data" / "billing-cases.yaml"

# Cases give no valid_from when a single price list applies: it has always been in force.
ALWAYS = datetime(2000, 1, 1, tzinfo=UTC)
SESSION_START = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
MACHINE, GROUP, CATEGORY = "machine-1", "group-1", "adherent"

CASE_KEYS = {
    "name",
    "tariff",
    "tariffs",
    "session",
    "sessions",
    "expect",
    "invoice_lines",
    "vat_rate",
    "balance",
}
TARIFF_KEYS = {
    "valid_from",
    "rate",
    "rate_by_category",
    "busy_rate",
    "idle_rate",
    "startup",
    "minimum",
    "unit",
    "free_under_s",
    "material_per_gram",
    "vat_rate",
}
SESSION_KEYS = {
    "duration_s",
    "busy_s",
    "material_g",
    "start",
    "end",
    "category",
    "machine_kind",
    "job_s",
    "expect",
}
EXPECT_KEYS = {"amount", "max_session_s", "cut", "balance_after", "total_ht", "vat", "total_ttc"}


def _load() -> list[dict[str, Any]]:
    data = yaml.safe_load(CASES_FILE.read_text(encoding="utf-8"))
    assert isinstance(data, dict) and isinstance(data.get("cases"), list), (
        f"{CASES_FILE.name}: expected a mapping with a `cases:` list"
    )
    return data["cases"]


def _params() -> list[Any]:
    """One test per session; a case with no session at all is still one test."""
    params = []
    for n, case in enumerate(_load()):
        name = case.get("name") if isinstance(case, dict) else None
        label = name or f"case {n}"
        sessions = case.get("sessions") if isinstance(case, dict) else None
        if isinstance(sessions, list) and sessions:
            params += [pytest.param(case, s, id=f"{label} [{i}]") for i, s in enumerate(sessions)]
        else:
            session = case.get("session") if isinstance(case, dict) else None
            params.append(pytest.param(case, session, id=label))
    return params


def _unknown(where: str, given: dict[str, Any], known: set[str]) -> None:
    extra = set(given) - known
    if extra:
        pytest.fail(
            f"{where}: keys this test does not understand: {sorted(extra)}; "
            "teach tests/test_billing_cases.py what they mean"
        )


def _instant(value: Any) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    assert moment.utcoffset() is not None, f"{value!r} has no UTC offset"
    return moment


def _tariffs(spec: dict[str, Any]) -> list[Tariff]:
    """A case's tariff; ``rate_by_category`` is one tariff per member category."""
    _unknown("tariff", spec, TARIFF_KEYS)
    common: dict[str, Any] = {
        "valid_from": _instant(spec["valid_from"]) if "valid_from" in spec else ALWAYS,
    }
    for key in ("rate", "busy_rate", "idle_rate", "startup", "minimum", "unit"):
        if key in spec:
            common[key] = spec[key]
    if "free_under_s" in spec:
        common["free_under_s"] = float(spec["free_under_s"])
    for key in ("material_per_gram", "vat_rate"):
        if key in spec:
            common[key] = Decimal(str(spec[key]))
    by_category = spec.get("rate_by_category")
    if by_category is None:
        return [Tariff(**common)]
    return [
        Tariff(**common, rate=rate, categories=(category,))
        for category, rate in by_category.items()
    ]


def _case_tariffs(case: dict[str, Any]) -> list[Tariff]:
    if "tariff" in case and "tariffs" in case:
        pytest.fail("a case gives either `tariff` or `tariffs`")
    if "tariffs" in case:
        return [t for spec in case["tariffs"] for t in _tariffs(spec)]
    if "tariff" in case:
        return _tariffs(case["tariff"])
    pytest.fail("this case has no tariff and is not an invoice: unknown shape")


def _check_invoice(case: dict[str, Any]) -> None:
    expect = case.get("expect")
    assert isinstance(expect, dict), "an invoice case needs `expect`"
    _unknown("expect", expect, {"total_ht", "vat", "total_ttc"})
    rate = Decimal(str(case["vat_rate"]))
    totals = vat((amount, rate) for amount in case["invoice_lines"])
    total_ht = sum(ht for ht, _ in totals.values())
    total_vat = sum(tax for _, tax in totals.values())
    actual = {"total_ht": total_ht, "vat": total_vat, "total_ttc": total_ht + total_vat}
    assert {k: actual[k] for k in expect} == expect


def _check_session(case: dict[str, Any], session: dict[str, Any]) -> None:
    _unknown("session", session, SESSION_KEYS)
    expect = session.get("expect", case.get("expect"))
    if not isinstance(expect, dict) or not expect:
        pytest.fail("a session needs an `expect` mapping, in the session or the case")
    _unknown("expect", expect, EXPECT_KEYS)
    if "total_ht" in expect or "vat" in expect or "total_ttc" in expect:
        pytest.fail("invoice totals expected from a session: unknown shape")

    tariffs = _case_tariffs(case)
    start = _instant(session["start"]) if "start" in session else SESSION_START
    if "duration_s" in session:
        duration = float(session["duration_s"])
    elif "end" in session:
        duration = (_instant(session["end"]) - start).total_seconds()
    elif "job_s" in session:
        duration = float(session["job_s"])
    else:
        duration = None
    category = session.get("category", CATEGORY)
    tariff = select_tariff(tariffs, machine=MACHINE, group=GROUP, category=category, at=start)
    assert tariff is not None, "no tariff selected for the session"

    actual: dict[str, Any] = {}
    needs_price = {"amount", "cut", "balance_after"} & set(expect)
    if needs_price:
        assert duration is not None, "this session needs a duration, end or job_s"
        material = Decimal(str(session.get("material_g", 0)))
        price = price_session(
            tariff, duration_s=duration, busy_s=session.get("busy_s"), material_g=material
        )
        assert price.total == price.time + price.startup + price.material
        actual["amount"] = price.total
    if "max_session_s" in expect or "cut" in expect or "balance_after" in expect:
        if "balance" not in case:
            pytest.fail("a prepaid expectation without the case's `balance`")
        balance = case["balance"]
        cap = max_session_s(tariff, balance)
        actual["max_session_s"] = cap
        if "cut" in expect or "balance_after" in expect:
            kind = session.get("machine_kind")
            if kind not in DEFAULT_RULES:
                pytest.fail(f"machine_kind {kind!r} is not a known machine kind")
            never_cut = DEFAULT_RULES[kind].never_cut_busy
            actual["cut"] = not never_cut and cap is not None and duration > cap
            # An uncut session is billed in full, even past the balance.
            actual["balance_after"] = balance - actual["amount"]
        if cap is not None:
            # The cap is exact: the balance pays for it, and for nothing longer.
            assert price_session(tariff, duration_s=cap).total <= balance
            assert price_session(tariff, duration_s=cap + 1e-6).total > balance
    assert {k: actual[k] for k in expect} == expect


@pytest.mark.parametrize(("case", "session"), _params())
def test_billing_case(case: Any, session: Any) -> None:
    if not isinstance(case, dict):
        pytest.fail(f"a case is a mapping, got {case!r}")
    _unknown("case", case, CASE_KEYS)
    if not case.get("name"):
        pytest.fail("every case needs a `name`")
    if "invoice_lines" in case:
        if session is not None or "tariff" in case or "tariffs" in case:
            pytest.fail("an invoice case with sessions or tariffs: unknown shape")
        _check_invoice(case)
        return
    if not isinstance(session, dict):
        pytest.fail("a case needs `session`, a non-empty `sessions` list or `invoice_lines`")
    _check_session(case, session)


def test_cases_are_all_collected() -> None:
    """Guards the expansion itself: a case with n sessions is n tests, never zero."""
    cases = _load()
    expected = sum(len(c["sessions"]) if c.get("sessions") else 1 for c in cases)
    assert len(_params()) == expected >= len(cases)


def test_cases_file_matches_its_names() -> None:
    names = [c["name"] for c in _load()]
    assert len(names) == len(set(names)), "case names must be unique: they are the test ids"
