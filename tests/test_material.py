"""Filament to grams: the arithmetic every printer node bills material with."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.billing.tariffs import round_half_up
from gateway.contract import encode_sim_job
from gateway.drivers.readers.simulated import send_tap
from gateway.drivers.simulators.machine import PRINT_FILAMENT_MM_PER_S
from gateway.policies.material import DEFAULT_DENSITIES, MAX_GRAMS, filament_grams
from tests.support.harness import BADGE, Observer, Site
from tests.support.mosquitto import MosquittoProcess


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


@pytest.mark.integration
def test_a_print_weighs_its_filament_and_the_hub_prices_it(
    site: Site, mosquitto: MosquittoProcess
) -> None:
    """Marlin's counter -> the node's grams -> session.ended -> the hub's stored price."""
    obs = Observer(mosquitto.url, "fablab/demo/")
    try:
        site.start_hub()
        site.start_node("printer-1")
        obs.wait_for(
            lambda: (
                (obs.status.get("printer-1") or {}).get("activity") == "idle"
                and obs.status["printer-1"].get("snapshot_version")
            ),
            what="printer-1 idle with a snapshot",
        )
        send_tap(site.tap_socket("printer-1"), BADGE["karim"])
        session = obs.wait_event("session.started", member_id="m-karim")
        obs.publish("fablab/demo/sim/printer-1/job", encode_sim_job("robot.gcode", 4))
        finished = obs.wait_event("job", event="finished", timeout=30)
        send_tap(site.tap_socket("printer-1"), BADGE["karim"])
        ended = obs.wait_event("session.ended", timeout=30)
        obs.wait_acked(ended)

        # 4 s at the simulator's 100 mm/s: 400 mm of 1.75 mm PLA at 1.24 g/cm³ = 1.19 g;
        # Marlin's counter says metres with two decimals (±10 mm, ±0.03 g).
        expected = filament_grams(
            4 * PRINT_FILAMENT_MM_PER_S, diameter_mm=1.75, density_g_cm3=DEFAULT_DENSITIES["PLA"]
        )
        assert finished.data["material_g"] == pytest.approx(expected, abs=0.04)
        assert ended.data["material_g"] == finished.data["material_g"]

        (row,) = [
            s
            for s in site.api("/api/v1/sessions")["sessions"]
            if s["session_id"] == session.data["session_id"]
        ]
        assert row["material_g"] == ended.data["material_g"]
        # Impression 3D: 2 cents a minute and 5 cents a gram (gateway/demo/site.py).
        minutes = row["billable_minutes"]
        grams = Decimal(str(row["material_g"]))
        assert row["amount_cents"] == minutes * 2 + round_half_up(grams * 5)
        assert round_half_up(grams * 5) > 0
    finally:
        obs.close()
