"""Money as text from integer cents, and back: the one family of conversions."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.billing.money import amount_text, format_money, parse_amount

NBSP = "\u00a0"


def test_people_read_amounts_with_the_sign_and_separators() -> None:
    assert format_money(1250) == f"12,50{NBSP}€"
    assert format_money(123456, "en") == "€1,234.56"
    with pytest.raises(ValueError, match="fr, en"):
        format_money(1, "de")


def test_files_get_a_bare_exact_number() -> None:
    assert amount_text(1250) == "12.50"
    assert amount_text(-5, ",") == "-0,05"
    assert amount_text(123456789, ",") == "1234567,89"


@given(st.integers(-(10**12), 10**12))
def test_what_is_written_reads_back(cents: int) -> None:
    assert parse_amount(amount_text(cents)) == cents
    assert parse_amount(amount_text(cents, ",")) == cents


@pytest.mark.parametrize("bad", ["12.345", "douze", "", "inf", "nan", "1e400"])
def test_an_amount_that_is_not_whole_cents_is_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_amount(bad)
