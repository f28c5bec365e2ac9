"""The sense board's firmware logic, compiled natively, against the gateway's Python side.

``firmware/sense-board/sense_logic.c`` is the part of the sketch without hardware calls.
Compiled here with the host's gcc into a shared library and called through ctypes, it
must print lines the driver's parser accepts, agree with the Python protocol module on
every checksum, and answer the host's commands exactly as the simulator does, byte for
byte: the simulator is what the rest of the suite (and the bench rig) trusts in place of
a board. The sketch itself is compiled too, against a minimal stand-in for
``Arduino.h``, so a change that breaks it fails here and not at the bench.
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.drivers.machines import sense_protocol as proto
from gateway.drivers.machines.current import PROTOCOL_MAJOR, parse_line
from gateway.drivers.machines.sense_protocol import BAD_CHECKSUM
from gateway.policies.current import rms_amps

ROOT = Path(__file__).resolve().parents[1]
FIRMWARE = ROOT / "firmware" / "sense-board"
GCC = shutil.which("gcc")
GXX = shutil.which("g++")

pytestmark = pytest.mark.skipif(
    GCC is None, reason="gcc is not installed: cannot build the firmware logic natively"
)


class Rx(ctypes.Structure):
    _fields_ = [("buf", ctypes.c_char * 25), ("len", ctypes.c_uint8), ("state", ctypes.c_uint8)]


class Debounce(ctypes.Structure):
    _fields_ = [
        ("known", ctypes.c_uint8),
        ("stable", ctypes.c_uint8),
        ("candidate", ctypes.c_uint8),
        ("since_ms", ctypes.c_uint32),
    ]


class Window(ctypes.Structure):
    _fields_ = [
        ("count", ctypes.c_uint32),
        ("sum", ctypes.c_uint64),
        ("sum_squares", ctypes.c_uint64),
        ("clipped", ctypes.c_uint8),
    ]


COMMANDS = {0: "NONE", 1: "PING", 2: "VERSION", 3: "BAD_CHECKSUM", 4: "UNKNOWN"}


class Firmware:
    """Typed access to the compiled logic; every call returns what the board would send."""

    def __init__(self, lib: ctypes.CDLL) -> None:
        self.lib = lib
        size, u8, u32, cp = ctypes.c_size_t, ctypes.c_uint8, ctypes.c_uint32, ctypes.c_char_p
        lib.sense_crc8.restype = u8
        lib.sense_crc8.argtypes = [cp, size]
        for name, args in (
            ("sense_format_current", [u8, u32]),
            ("sense_format_permissive", [u8, u8]),
            ("sense_format_hello", [cp]),
            ("sense_format_version", [cp, cp]),
            ("sense_format_pong", []),
            ("sense_format_error", [cp]),
            ("sense_format_clipped", [u8]),
        ):
            fn = getattr(lib, name)
            fn.restype = size
            fn.argtypes = [ctypes.c_char_p, size, *args]
        lib.sense_parse_command.restype = ctypes.c_int
        lib.sense_parse_command.argtypes = [cp, size]
        lib.sense_reply.restype = size
        lib.sense_reply.argtypes = [ctypes.c_int, ctypes.c_char_p, size, cp, cp]
        lib.sense_centiamps.restype = u32
        lib.sense_centiamps.argtypes = [ctypes.c_float]
        lib.sense_rx_feed.restype = ctypes.c_int
        lib.sense_rx_feed.argtypes = [ctypes.POINTER(Rx), ctypes.c_char]
        lib.sense_debounce_update.restype = ctypes.c_int
        lib.sense_debounce_update.argtypes = [ctypes.POINTER(Debounce), u8, u32, u32]
        lib.sense_debounce_init.argtypes = [ctypes.POINTER(Debounce), u8, u32]
        lib.sense_window_add.argtypes = [ctypes.POINTER(Window), ctypes.c_uint16, ctypes.c_uint16]
        lib.sense_window_rms_counts.restype = ctypes.c_float
        lib.sense_window_rms_counts.argtypes = [ctypes.POINTER(Window)]

    def call(self, name: str, *args: object, cap: int = 81) -> bytes:
        out = ctypes.create_string_buffer(cap)
        n = getattr(self.lib, name)(out, cap, *args)
        assert out.value == out.raw[:n]  # the length returned is what was written
        return out.raw[:n]

    def crc8(self, data: bytes) -> int:
        return int(self.lib.sense_crc8(data, len(data)))

    def command(self, line: bytes) -> str:
        return COMMANDS[self.lib.sense_parse_command(line, len(line))]

    def reply(self, line: bytes, firmware: bytes = b"2.0.0", board: bytes = b"lab-7") -> bytes:
        cmd = self.lib.sense_parse_command(line, len(line))
        out = ctypes.create_string_buffer(81)
        n = self.lib.sense_reply(cmd, out, 81, firmware, board)
        return out.raw[:n]


@pytest.fixture(scope="module")
def fw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Firmware]:
    out = tmp_path_factory.mktemp("firmware") / "libsense.so"
    assert GCC is not None
    build = subprocess.run(
        [GCC, "-std=c99", "-Wall", "-Wextra", "-Wpedantic", "-Werror", "-O2", "-shared", "-fPIC"]
        + [str(FIRMWARE / "sense_logic.c"), "-o", str(out), "-lm"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert build.returncode == 0, build.stderr
    yield Firmware(ctypes.CDLL(str(out)))


def test_the_firmware_and_the_driver_speak_the_same_protocol_version(fw: Firmware) -> None:
    header = (FIRMWARE / "sense_logic.h").read_text()
    assert f"#define SENSE_PROTOCOL_MAJOR {PROTOCOL_MAJOR}\n" in header
    assert f'#define SENSE_PROTOCOL_TEXT "{proto.PROTOCOL_VERSION}"' in header
    hello = fw.call("sense_format_hello", b"2.0.0")
    assert hello == proto.format_hello()
    assert parse_line(hello) == ("HELLO", proto.PROTOCOL_VERSION)


def test_crc8_check_value_in_both() -> None:
    assert proto.crc8(b"123456789") == 0xF4  # CRC-8/SMBUS's published check value


@settings(max_examples=300)
@given(data=st.binary(max_size=80))
def test_checksums_agree(fw: Firmware, data: bytes) -> None:
    assert fw.crc8(data) == proto.crc8(data)


@settings(max_examples=300)
@given(channel=st.integers(0, 9), centi=st.integers(0, 10_000_000))
def test_current_lines_are_the_simulators_and_the_driver_reads_them(
    fw: Firmware, channel: int, centi: int
) -> None:
    line = fw.call("sense_format_current", channel, centi)
    assert line == proto.format_current(channel, centi)
    assert parse_line(line) == ("I", (channel, centi / 100))
    # A flipped bit anywhere before the newline: rejected (a CRC catches every one).
    for i in range(len(line) - 1):
        for bit in (0x01, 0x02, 0x10):
            mangled = line[:i] + bytes([line[i] ^ bit]) + line[i + 1 :]
            assert parse_line(mangled) == BAD_CHECKSUM, mangled


@settings(max_examples=100)
@given(index=st.integers(0, 9), closed=st.booleans())
def test_permissive_lines(fw: Firmware, index: int, closed: bool) -> None:
    line = fw.call("sense_format_permissive", index, int(closed))
    assert line == proto.format_permissive(index, closed)
    assert parse_line(line) == ("P", (index, closed))


def test_version_pong_error_and_clipped_lines(fw: Firmware) -> None:
    version = fw.call("sense_format_version", b"2.0.0", b"lab-7")
    assert version == proto.format_version("2.0.0", "lab-7")
    assert parse_line(version) == ("VERSION", ("2.0.0", proto.PROTOCOL_VERSION, "lab-7"))
    assert parse_line(fw.call("sense_format_pong")) == ("PONG", None)
    assert parse_line(fw.call("sense_format_error", b"checksum")) == ("ERR", "checksum")
    assert fw.call("sense_format_clipped", 1) == b"# clipped 1\n"
    assert parse_line(b"# clipped 1\n") is None


def test_lines_never_overflow_the_buffer(fw: Firmware) -> None:
    # "I 0 1.23*HH\n" and its NUL need 13 bytes.
    assert fw.call("sense_format_current", 0, 123, cap=8) == b""
    assert fw.call("sense_format_current", 0, 123, cap=12) == b""
    assert fw.call("sense_format_current", 0, 123, cap=13) == proto.format_current(0, 123)
    long_id = b"x" * 90
    assert fw.call("sense_format_version", b"2.0.0", long_id, cap=200) == b""  # over 80


def test_centiamps_round_half_up_and_clamp(fw: Firmware) -> None:
    for amps, centi in ((0.0, 0), (-3.0, 0), (float("nan"), 0), (3.274, 327), (3.276, 328)):
        assert fw.lib.sense_centiamps(amps) == centi
        assert proto.centiamps(amps) == centi


command_text = st.one_of(
    st.sampled_from([b"PING", b"VERSION?", b"", b"PING\r", b"VERSION", b"ping", b"PONG"]),
    st.binary(max_size=30).filter(lambda b: b"\n" not in b),
)


@settings(max_examples=400)
@given(text=command_text, sealed=st.sampled_from(["no", "good", "bad", "lower"]))
def test_commands_are_parsed_and_answered_alike(fw: Firmware, text: bytes, sealed: str) -> None:
    line = text
    if sealed != "no":
        crc = proto.crc8(text)
        if sealed == "bad":
            crc ^= 0x5A
        line = text + (b"*%02x" if sealed == "lower" else b"*%02X") % crc
    assert fw.command(line) == proto.parse_command(line)
    assert fw.reply(line) == proto.reply(
        proto.parse_command(line), firmware="2.0.0", board_id="lab-7"
    )


def test_the_drivers_commands_are_understood(fw: Firmware) -> None:
    """What the driver sends (sealed) and what a person types (bare) both work."""
    assert fw.command(proto.seal("PING")[:-1]) == "PING"
    assert fw.command(proto.seal("VERSION?")[:-1]) == "VERSION"
    assert fw.command(b"PING") == "PING"
    assert parse_line(fw.reply(b"PING")) == ("PONG", None)
    assert parse_line(fw.reply(b"VERSION?*" + b"%02X" % proto.crc8(b"VERSION?"))) == (
        "VERSION",
        ("2.0.0", "2.0", "lab-7"),
    )
    assert fw.reply(b"PING*00") == proto.seal("ERR checksum")
    assert fw.reply(b"HALT") == proto.seal("ERR unknown")


@settings(max_examples=300)
@given(stream=st.binary(max_size=120).map(lambda b: b.replace(b"\x00", b"")))
def test_command_lines_are_gathered_alike(fw: Firmware, stream: bytes) -> None:
    rx = Rx()
    fw.lib.sense_rx_init(ctypes.byref(rx))
    got: list[bytes] = []
    for byte in stream:
        if fw.lib.sense_rx_feed(ctypes.byref(rx), bytes([byte])):
            got.append(rx.buf[: rx.len])
    assert got == proto.CommandReader().feed(stream)
    assert all(len(line) <= proto.MAX_COMMAND for line in got)


@settings(max_examples=200)
@given(
    hold=st.integers(1, 500),
    steps=st.lists(st.tuples(st.integers(0, 300), st.booleans()), min_size=1, max_size=60),
    start=st.integers(0, 2**32 - 1),
)
def test_debounce_reports_only_states_that_held(
    fw: Firmware, hold: int, steps: list[tuple[int, bool]], start: int
) -> None:
    """A state is reported only after it stayed unchanged for ``hold`` ms (also across
    millis() wrapping), each report is a change, and a state held long enough is seen."""
    d = Debounce()
    fw.lib.sense_debounce_init(ctypes.byref(d), 0, start)
    now, raw_since, raw = start, start, False
    reported: bool | None = None
    for dt, value in steps:
        now = (now + dt) % 2**32
        if value != raw:
            raw, raw_since = value, now
        changed = fw.lib.sense_debounce_update(ctypes.byref(d), int(value), now, hold)
        held = (now - raw_since) % 2**32
        if changed:
            assert held >= hold and d.stable == int(value) and reported != value
            reported = value
        elif held >= hold:
            assert reported == value  # held long enough: already reported


def test_rms_matches_the_gateway_rms(fw: Firmware) -> None:
    import math

    samples = [round(512 + 100 * math.sin(2 * math.pi * k / 40)) for k in range(400)]
    w = Window()
    fw.lib.sense_window_reset(ctypes.byref(w))
    for s in samples:
        fw.lib.sense_window_add(ctypes.byref(w), s, 1023)
    assert w.count == 400 and not w.clipped
    ours = fw.lib.sense_window_rms_counts(ctypes.byref(w))
    assert ours == pytest.approx(rms_amps(samples, offset=None, scale=1.0), rel=1e-5)
    fw.lib.sense_window_add(ctypes.byref(w), 1023, 1023)
    assert w.clipped


@pytest.mark.skipif(GXX is None, reason="g++ is not installed: cannot compile the sketch")
def test_the_sketch_compiles_against_the_arduino_api(tmp_path: Path) -> None:
    """The .ino with a stand-in Arduino.h: catches a sketch that no longer builds."""
    stub = tmp_path / "Arduino.h"
    stub.write_text(ARDUINO_STUB)
    sketch = tmp_path / "sketch.cpp"
    sketch.write_text((FIRMWARE / "sense-board.ino").read_text())
    assert GXX is not None
    build = subprocess.run(
        [GXX, "-std=c++11", "-Wall", "-Werror", "-fsyntax-only", f"-I{tmp_path}"]
        + [f"-I{FIRMWARE}", str(sketch)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert build.returncode == 0, build.stderr


# Only the names the sketch uses, with Arduino's signatures; no behaviour.
ARDUINO_STUB = """
#pragma once
#include <stdint.h>
#include <stddef.h>
#include <math.h>
#define A0 14
#define A1 15
#define LOW 0
#define HIGH 1
#define INPUT_PULLUP 2
unsigned long millis(void);
int analogRead(uint8_t pin);
void analogReadResolution(int bits);
int digitalRead(uint8_t pin);
void pinMode(uint8_t pin, uint8_t mode);
struct SerialPort {
  void begin(unsigned long baud);
  int available(void);
  int read(void);
  size_t write(const uint8_t *data, size_t n);
};
extern SerialPort Serial;
"""
