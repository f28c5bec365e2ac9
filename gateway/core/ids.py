"""Badge UIDs in one canonical spelling, whatever reader or person wrote them.

Readers disagree on format (``de:ad:be:ef``, ``0xDEADBEEF``, decimal from some USB
readers is *not* handled: a USB reader driver must convert first). The canonical form is
upper-case hex without separators, an even number of digits, 4 to 10 bytes.
"""

from __future__ import annotations

import re

_HEX = re.compile(r"^[0-9A-F]+$")


def normalise_uid(raw: str) -> str:
    """``"de:ad:be:ef"`` -> ``"DEADBEEF"``; ValueError when it cannot be a card UID."""
    if not isinstance(raw, str):
        raise ValueError(f"badge UID must be a string, got {type(raw).__name__}")
    s = raw.strip().upper()
    if s.startswith("0X"):
        s = s[2:]
    s = s.replace(":", "").replace("-", "").replace(" ", "")
    if not s or not _HEX.match(s) or len(s) % 2 or not 8 <= len(s) <= 20:
        raise ValueError(f"{raw!r} is not a badge UID (4 to 10 bytes of hex, e.g. DEADBEEF)")
    return s
