"""Filament length to grams: what a printer's driver measures, in the unit a tariff bills.

Printers report filament as a length (OctoPrint's job analysis, Marlin's print counter),
but a fablab prices the spool by weight: a tariff's ``material_per_gram``. The weight of a
length of filament is its volume (a cylinder of the filament's diameter) times the
material's density, which differs from one plastic to the next (PLA about 1.24 g/cm³,
PETG 1.27, ABS 1.04). The node's configuration says which material is loaded and the
densities; this module only does the arithmetic, so it is the same on every node and
tested without a printer.
"""

from __future__ import annotations

import math

__all__ = ["DEFAULT_DENSITIES", "MAX_GRAMS", "filament_grams"]

#: g/cm³ of common filaments (manufacturers' datasheets give these within ±2 %).
DEFAULT_DENSITIES: dict[str, float] = {
    "PLA": 1.24,
    "PETG": 1.27,
    "ABS": 1.04,
    "ASA": 1.07,
    "TPU": 1.21,
    "PA": 1.14,
    "PC": 1.20,
}

#: More than a 10 kg spool in one session is a broken counter, not a print.
MAX_GRAMS = 10_000.0


def filament_grams(length_mm: float, *, diameter_mm: float, density_g_cm3: float) -> float:
    """The weight of ``length_mm`` of filament, in grams, rounded to 0.01 g.

    A negative or non-finite length (a counter reset mid-job, a driver's garbage) is no
    filament rather than an error: material is billed only for what was measured.
    """
    if not (diameter_mm > 0 and math.isfinite(diameter_mm)):
        raise ValueError(f"filament diameter must be a positive number of mm, got {diameter_mm}")
    if not (density_g_cm3 > 0 and math.isfinite(density_g_cm3)):
        raise ValueError(f"density must be a positive number of g/cm³, got {density_g_cm3}")
    if not math.isfinite(length_mm) or length_mm <= 0:
        return 0.0
    volume_cm3 = math.pi * (diameter_mm / 2) ** 2 * length_mm / 1000.0
    return round(min(volume_cm3 * density_g_cm3, MAX_GRAMS), 2)
