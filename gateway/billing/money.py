"""Money as text, from and to integer cents: the one place amounts are written or read.

Amounts are integer cents everywhere in the gateway (no float ever touches money);
these functions are the only conversions. People read :func:`format_money` (with the
euro sign and the language's separators), files get :func:`amount_text` (a bare decimal
number a spreadsheet reads), and :func:`parse_amount` reads what a person typed.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

LANGUAGES = ("fr", "en")
# Amounts are stored in SQLite integers (signed 64-bit).
_MAX_CENTS = 2**63 - 1


def _split(cents: int) -> tuple[str, int, int]:
    whole, rest = divmod(abs(int(cents)), 100)
    return ("-" if cents < 0 else ""), whole, rest


def format_money(cents: int, lang: str = "fr") -> str:
    """``1250`` -> ``12,50 €`` or ``€12.50``, with a no-break space before the sign."""
    sign, whole, rest = _split(cents)
    if lang == "fr":
        grouped = f"{whole:,}".replace(",", "\u202f")
        return f"{sign}{grouped},{rest:02d}\u00a0€"
    if lang == "en":
        return f"{sign}€{whole:,}.{rest:02d}"
    raise ValueError(f"lang must be one of {', '.join(LANGUAGES)}, got {lang!r}")


def amount_text(cents: int, decimal: str = ".") -> str:
    """``1250`` -> ``12.50`` (``decimal=","``: ``12,50``): exact from integer cents, for
    files; no thousands separator, no currency sign."""
    sign, whole, rest = _split(cents)
    return f"{sign}{whole}{decimal}{rest:02d}"


def parse_amount(text: str) -> int:
    """``"12.50"`` or ``"12,50"`` (euros) -> ``1250``; ValueError for anything else,
    including fractions of a cent and amounts no database column can hold."""
    try:
        value = Decimal(text.replace(",", "."))
    except InvalidOperation as exc:
        raise ValueError(f"{text!r} is not an amount in euros (e.g. 20 or 12.50)") from exc
    if not value.is_finite():
        raise ValueError(f"{text!r} is not an amount in euros (e.g. 20 or 12.50)")
    cents = value * 100
    if cents != cents.to_integral_value():
        raise ValueError(f"{text!r} has fractions of a cent")
    if abs(cents) > _MAX_CENTS:
        raise ValueError(f"{text!r} is too large an amount")
    return int(cents)
