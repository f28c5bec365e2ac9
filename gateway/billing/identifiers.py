"""French business identifiers on invoices: SIRET, intra-community VAT number, IBAN.

A mistyped SIRET or IBAN printed on every invoice of a year is found by the first
accountant or bank that refuses it, months later; each of these numbers carries a check
digit, so the hub configuration is checked when it is read. Pure functions, no
dependency: the node imports the config package too.
"""

from __future__ import annotations

import re

__all__ = ["compact", "iban_valid", "siren_of", "siret_valid", "vat_fr_of", "vat_valid"]

# La Poste's establishments share one SIREN and follow their own rule (digit sum divisible
# by 5), except its head office, which follows Luhn.
_LA_POSTE = "356000000"
_VAT = re.compile(r"^[A-Z]{2}[0-9A-Z]{2,13}$")
_IBAN = re.compile(r"^[A-Z]{2}\d{2}[0-9A-Z]{11,30}$")


def compact(text: str) -> str:
    """Without spaces, dots or dashes, upper-case: how people write them vs. the number."""
    return re.sub(r"[\s.\-]", "", text).upper()


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def siret_valid(siret: str) -> bool:
    """14 digits whose Luhn sum is right (La Poste: the sum of the digits divisible by 5)."""
    s = compact(siret)
    if len(s) != 14 or not s.isdigit():
        return False
    if s.startswith(_LA_POSTE) and s != _LA_POSTE + "00048":
        return sum(int(c) for c in s) % 5 == 0
    return _luhn(s[:9]) and _luhn(s)


def siren_of(siret: str) -> str:
    return compact(siret)[:9]


def vat_fr_of(siren: str) -> str:
    """The French VAT number of a SIREN: ``FR`` + key + SIREN, key = (12 + 3 x (SIREN mod
    97)) mod 97."""
    key = (12 + 3 * (int(siren) % 97)) % 97
    return f"FR{key:02d}{siren}"


def vat_valid(number: str) -> bool:
    """A VAT identifier's shape; a French one (``FR`` + 2 digits + SIREN) also its key."""
    v = compact(number)
    if not _VAT.fullmatch(v):
        return False
    if v.startswith("FR"):
        rest = v[2:]
        if len(rest) != 11 or not rest.isdigit():
            return False
        return vat_fr_of(rest[2:]) == v
    return True


def iban_valid(iban: str) -> bool:
    """ISO 13616: the country and check digits moved to the end, letters as numbers,
    the whole mod 97 is 1."""
    v = compact(iban)
    if not _IBAN.fullmatch(v):
        return False
    moved = v[4:] + v[:4]
    return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1
