"""The hub file's ``invoicing:`` and ``accounting:`` sections: the shipped example loads,
and each mistake a person can make names the file, the key and what was expected."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from gateway.billing import identifiers
from gateway.config import VAT_EXEMPTION_293B, load_hub_config
from tests.test_config import HUB, error_of, variant


def test_the_example_has_seller_details_and_accounts() -> None:
    cfg = load_hub_config(HUB)
    assert cfg.invoicing is not None
    seller = cfg.invoicing.seller
    assert seller.siret == "73282932000074"  # spaces written in the file are dropped
    assert seller.vat_number == "FR44732829320" and not seller.vat_exempt
    assert cfg.invoicing.iban == "FR7630006000011234567890189"
    assert cfg.accounting.customer == "411000"
    assert cfg.accounting.vat_account(Decimal("0.20")) == "445710"


@pytest.mark.parametrize(
    ("old", "new", "key", "expected"),
    [
        (
            'siret: "732 829 320 00074"',
            'siret: "732 829 320 00075"',
            "invoicing.seller.siret",
            "valid check digit",
        ),
        (
            "vat_number: FR44732829320",
            "vat_number: FR45732829320",
            "invoicing.seller.vat_number",
            "right key",
        ),
        (
            "vat_number: FR44732829320",
            "vat_number: FR83404833048",
            "invoicing.seller.vat_number",
            "SIREN 732829320",
        ),
        (
            "vat_number: FR44732829320",
            "vat_number: null",
            "invoicing.seller.vat_number",
            VAT_EXEMPTION_293B,
        ),
        ('postcode: "44000"', "postcode: 4400", "invoicing.seller.postcode", "5 digits"),
        (
            "iban: FR76 3000 6000 0112 3456 7890 189",
            "iban: FR76 3000 6000 0112 3456 7890 188",
            "invoicing.iban",
            "check digits",
        ),
        ("payment_days: 30", "payment_days: 90", "invoicing.payment_days", "60"),
        (
            "    name: Fablab des Dunes ",
            "    nom: Fablab des Dunes ",
            "invoicing.seller.nom",
            "known key",
        ),
        ('customer: "411000"', 'customer: "401000"', "accounting.customer", "411"),
        ('vat: "445710"', 'vat: "706000"', "accounting.vat", "4457"),
        (
            "vat_by_rate: {}",
            'vat_by_rate: {"0.20": "706000"}',
            "accounting.vat_by_rate.0.20",
            "4457",
        ),
    ],
)
def test_a_mistake_names_the_key(
    tmp_path: Path, old: str, new: str, key: str, expected: str
) -> None:
    err = error_of(load_hub_config, variant(tmp_path, HUB, old, new))
    assert err.key == key, str(err)
    assert expected in err.expected, str(err)
    assert err.line is not None


def test_a_seller_under_the_vat_threshold_needs_tariffs_without_vat(tmp_path: Path) -> None:
    exempt = variant(tmp_path, HUB, "    vat_exempt: false", "    vat_exempt: true")
    text = exempt.read_text(encoding="utf-8").replace(
        "    vat_number: FR44732829320\n", "    vat_number: null\n"
    )
    ok = tmp_path / "ok.yaml"
    ok.write_text(text, encoding="utf-8")
    cfg = load_hub_config(ok)
    assert cfg.invoicing is not None and cfg.invoicing.seller.vat_exempt
    taxed = tmp_path / "taxed.yaml"
    taxed.write_text(
        text + "tariffs:\n  - {name: Laser, valid_from: 2026-01-01, rate: 50, vat_rate: 0.20}\n",
        encoding="utf-8",
    )
    err = error_of(load_hub_config, taxed)
    assert err.key == "invoicing.seller.vat_exempt"
    assert "tariff Laser has vat_rate 0.2" in err.expected


def test_without_the_section_there_is_no_seller(tmp_path: Path) -> None:
    text = HUB.read_text(encoding="utf-8")
    bare = tmp_path / "bare.yaml"
    bare.write_text(text[: text.index("# Who issues the invoices")], encoding="utf-8")
    assert load_hub_config(bare).invoicing is None


@pytest.mark.parametrize(
    ("siret", "valid"),
    [
        ("73282932000074", True),
        ("73282932000075", False),
        ("35600000000048", True),
        ("1234", False),
    ],
)
def test_siret_check_digits(siret: str, valid: bool) -> None:
    assert identifiers.siret_valid(siret) is valid


def test_french_vat_numbers_and_ibans() -> None:
    assert identifiers.vat_fr_of("732829320") == "FR44732829320"
    assert identifiers.vat_valid("FR 44 732829320")
    assert not identifiers.vat_valid("FR00732829320")
    assert identifiers.iban_valid("FR76 3000 6000 0112 3456 7890 189")
    assert not identifiers.iban_valid("FR76 3000 6000 0112 3456 7890 198")
