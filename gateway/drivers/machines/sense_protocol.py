"""The sense board's line protocol, version 2 (``firmware/sense-board/PROTOCOL.md``).

Both sides of the wire in one place: what the host driver parses and sends
(:mod:`gateway.drivers.machines.current`), and what the board prints and answers, which
the simulator (:mod:`gateway.drivers.simulators.current`) plays. The firmware's C code
(``firmware/sense-board/sense_logic.c``) does the board's half; the test suite compiles it
and checks that both halves agree byte for byte, so a change to one that the other does
not follow fails a test rather than a machine.

Every line the board prints ends in ``*HH``: the CRC-8/SMBUS (polynomial 0x07) of the
text before the ``*``, in hexadecimal. A CRC rather than NMEA's XOR because an XOR misses
two swapped characters and any error that flips the same bit twice, and a long USB cable
next to a laser's power supply makes exactly that kind of noise; it costs the board eight
shifts per byte.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = [
    "BANNER",
    "CommandReader",
    "MAX_COMMAND",
    "MAX_LINE",
    "PROTOCOL_MAJOR",
    "PROTOCOL_VERSION",
    "centiamps",
    "crc8",
    "format_current",
    "format_hello",
    "format_permissive",
    "format_version",
    "major_of",
    "parse_command",
    "parse_line",
    "reply",
    "seal",
]

PROTOCOL_MAJOR = 2
PROTOCOL_VERSION = "2.0"
BANNER = "fabgate-sense"
MAX_LINE = 80  # a board line, checksum and newline included
MAX_COMMAND = 24  # a host command, without its newline

# What parse_line returns: (kind, value), kinds below; None for what a host just skips.
ParsedLine = tuple[str, Any]
BAD_CHECKSUM: ParsedLine = ("BAD", None)


def crc8(data: bytes) -> int:
    """CRC-8/SMBUS: polynomial 0x07, initial 0, no reflection; ``b"123456789"`` -> 0xF4."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def seal(text: str) -> bytes:
    """``text`` as a protocol line: ``text*HH\\n``."""
    raw = text.encode("ascii")
    return raw + b"*%02X\n" % crc8(raw)


def _unseal(text: str) -> str | None:
    """The text before a matching ``*HH``, or None (no checksum, or a wrong one)."""
    if len(text) < 3 or text[-3] != "*":
        return None
    if not all(c in "0123456789abcdefABCDEF" for c in text[-2:]):
        return None
    expected = int(text[-2:], 16)
    body = text[:-3]
    if crc8(body.encode("ascii")) != expected:
        return None
    return body


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


def _index(text: str) -> int | None:
    return int(text) if text.isdigit() and len(text) <= 2 else None


def parse_line(line: bytes) -> ParsedLine | None:
    """One board line -> ``(kind, value)``; :data:`BAD_CHECKSUM`; or None to skip.

    Kinds: ``I`` (channel, amps), ``P`` (input, closed), ``HELLO`` protocol version,
    ``VERSION`` (firmware, protocol, board id), ``PONG``, ``ERR`` word, and ``LEGACY``
    for a protocol-1 banner (no checksum), so a host can name an old board instead of
    just hearing nothing it accepts. Never raises: half lines at open, bootloader noise
    and bit errors are what a serial link delivers, and none is a reason to stop.
    Unknown keywords with a good checksum are skipped (a later minor version's lines).
    """
    try:
        text = line.decode("ascii").strip()
    except UnicodeDecodeError:
        return BAD_CHECKSUM
    if not text or text.startswith("#"):
        return None
    body = _unseal(text)
    if body is None:
        parts = text.split()
        if len(parts) == 3 and parts[:2] == ["HELLO", BANNER] and "*" not in text:
            return "LEGACY", parts[2]
        return BAD_CHECKSUM
    parts = body.split(" ")
    kind = parts[0]
    if kind in ("I", "P") and len(parts) == 3:
        index = _index(parts[1])
        if index is None:
            return None
        if kind == "P":
            return ("P", (index, parts[2] == "1")) if parts[2] in ("0", "1") else None
        amps = _number(parts[2])
        return None if amps is None else ("I", (index, amps))
    if kind == "HELLO" and len(parts) == 3 and parts[1] == BANNER:
        return "HELLO", parts[2]
    if kind == "VERSION" and len(parts) == 4:
        return "VERSION", (parts[1], parts[2], parts[3])
    if kind == "PONG" and len(parts) == 1:
        return "PONG", None
    if kind == "ERR" and len(parts) == 2:
        return "ERR", parts[1]
    return None


def major_of(version: str) -> int | None:
    head = version.split(".", 1)[0]
    return int(head) if head.isdigit() else None


# -- the board's half (the simulator's; sense_logic.c is the firmware's) --------------


def format_current(channel: int, centiamps: int) -> bytes:
    return seal(f"I {channel} {centiamps // 100}.{centiamps % 100:02d}")


def centiamps(amps: float) -> int:
    """Hundredths of an amp, rounded half up as the firmware does; never negative."""
    return int(amps * 100 + 0.5) if amps > 0 else 0


def format_permissive(index: int, closed: bool) -> bytes:
    return seal(f"P {index} {1 if closed else 0}")


def format_hello(version: str = PROTOCOL_VERSION) -> bytes:
    return seal(f"HELLO {BANNER} {version}")


def format_version(firmware: str, board_id: str, protocol: str = PROTOCOL_VERSION) -> bytes:
    return seal(f"VERSION {firmware} {protocol} {board_id}")


def parse_command(line: bytes) -> str:
    """A host command line -> ``NONE``, ``PING``, ``VERSION``, ``BAD_CHECKSUM`` or ``UNKNOWN``.

    The checksum is optional (a person types ``PING`` at a serial monitor), but when
    there is one it must match, exactly as ``sense_parse_command`` in the firmware.
    """
    text = line[:-1] if line.endswith(b"\r") else line
    if not text:
        return "NONE"
    if len(text) >= 3 and text[-3:-2] == b"*":
        if not all(c in b"0123456789abcdefABCDEF" for c in text[-2:]):
            return "BAD_CHECKSUM"
        expected = int(text[-2:].decode("ascii"), 16)
        if crc8(text[:-3]) != expected:
            return "BAD_CHECKSUM"
        text = text[:-3]
    if text == b"PING":
        return "PING"
    if text == b"VERSION?":
        return "VERSION"
    return "UNKNOWN"


class CommandReader:
    """Bytes from the host gathered into command lines, as ``sense_rx_feed`` does.

    A line longer than :data:`MAX_COMMAND` is dropped whole, up to its newline: a half
    command must never run.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self._discarding = False

    def feed(self, data: bytes) -> list[bytes]:
        lines: list[bytes] = []
        for byte in data:
            if byte == 0x0A:
                if not self._discarding:
                    lines.append(bytes(self._buf))
                self._buf.clear()
                self._discarding = False
            elif self._discarding:
                continue
            elif len(self._buf) >= MAX_COMMAND:
                self._buf.clear()
                self._discarding = True
            else:
                self._buf.append(byte)
        return lines


def reply(command: str, *, firmware: str, board_id: str, protocol: str = PROTOCOL_VERSION) -> bytes:
    """The board's answer to a parsed command (b"" for an empty line)."""
    if command == "PING":
        return seal("PONG")
    if command == "VERSION":
        return format_version(firmware, board_id, protocol)
    if command == "BAD_CHECKSUM":
        return seal("ERR checksum")
    if command == "UNKNOWN":
        return seal("ERR unknown")
    return b""
