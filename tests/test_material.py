"""Filament to grams: the arithmetic every printer node bills material with."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.policies.material import DEFAULT_DENSITIES, MAX_GRAMS, filament_grams


def test_a_metre_of_pla_weighs_three_grams() -> None:
    # π × 0.875² mm² × 1000 mm = 2405.3 mm³ = 2.405 cm³, × 1.24 g/cm³ = 2.98 g.
    assert filament_grams(1000, diameter_mm=1.75, density_g_cm3=1.24) == 2.98
    # 2.85 mm filament: 6.379 cm³ per metre, PETG at 1.27.
    assert filament_grams(1000, diameter_mm=2.85, density_g_cm3=1.27) == 8.10
    assert DEFAULT_DENSITIES["PLA"] == 1.24


def test_nonsense_lengths_are_no_material_and_bad_settings_are_errors() -> None:
    for length in (0, -5, math.nan, math.inf):
        assert filament_grams(length, diameter_mm=1.75, density_g_cm3=1.24) == 0.0
    with pytest.raises(ValueError, match="diameter"):
        filament_grams(10, diameter_mm=0, density_g_cm3=1.24)
    with pytest.raises(ValueError, match="density"):
        filament_grams(10, diameter_mm=1.75, density_g_cm3=math.nan)
    assert filament_grams(1e12, diameter_mm=1.75, density_g_cm3=1.24) == MAX_GRAMS


@given(
    a=st.floats(0, 1e6),
    b=st.floats(0, 1e6),
    d=st.floats(0.5, 5),
    rho=st.floats(0.5, 3),
)
def test_grams_grow_with_length_and_add_up(a: float, b: float, d: float, rho: float) -> None:
    ga = filament_grams(a, diameter_mm=d, density_g_cm3=rho)
    gb = filament_grams(b, diameter_mm=d, density_g_cm3=rho)
    gab = filament_grams(a + b, diameter_mm=d, density_g_cm3=rho)
    assert 0 <= ga <= MAX_GRAMS
    if a <= b:
        assert ga <= gb
    # Two jobs weigh what one job of both lengths weighs, within the rounding.
    if gab < MAX_GRAMS:
        assert abs(ga + gb - gab) <= 0.011
