"""A register-level MFRC522 and ISO 14443-A card, behind fake ``spidev`` and ``RPi.GPIO``.

The point is to run the real ``mfrc522`` package and our driver unchanged in CI, so the
simulator answers at the level they talk: SPI register reads and writes. It models what
that code depends on and what goes wrong on a bench: FIFO, interrupt request bits with
their set/clear write semantics, the CRC coprocessor, Transceive started by StartSend,
the antenna switch, the RST line (a chip held in reset answers zeros), and a card's
ISO 14443-3 state machine (IDLE, READY, ACTIVE, HALT) across two cascade levels.
Written from the NXP MFRC522 datasheet and ISO/IEC 14443-3, not from any driver.
"""

from __future__ import annotations

import sys
import types
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

# Registers (MFRC522 datasheet, section 9)
COMMAND = 0x01
COMM_IEN = 0x02
COMM_IRQ = 0x04
DIV_IRQ = 0x05
ERROR = 0x06
FIFO_DATA = 0x09
FIFO_LEVEL = 0x0A
CONTROL = 0x0C
BIT_FRAMING = 0x0D
TX_CONTROL = 0x14
CRC_RESULT_M = 0x21
CRC_RESULT_L = 0x22
VERSION = 0x37

# Commands
IDLE = 0x00
CALC_CRC = 0x03
TRANSCEIVE = 0x0C
SOFT_RESET = 0x0F

# CommIrqReg / DivIrqReg bits
TX_IRQ = 0x40
RX_IRQ = 0x20
TIMER_IRQ = 0x01
CRC_IRQ = 0x04

# PICC commands
REQA = 0x26
WUPA = 0x52
SEL_CL1 = 0x93
SEL_CL2 = 0x95
HLTA = 0x50
CASCADE_TAG = 0x88

_RESET_VALUES = {COMMAND: 0x20, COMM_IEN: 0x80, COMM_IRQ: 0x14, CONTROL: 0x10, TX_CONTROL: 0x80}


def crc_a(data: bytes | list[int]) -> bytes:
    """ISO 14443-3 CRC_A (reflected CCITT, preset 0x6363), low byte first."""
    crc = 0x6363
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
    return bytes([crc & 0xFF, crc >> 8])


def _bcc(part: bytes) -> int:
    return part[0] ^ part[1] ^ part[2] ^ part[3]


@dataclass
class Card:
    """An ISO 14443-A card with a 4- or 7-byte UID.

    ``corrupt_bcc`` makes every anticollision answer carry a wrong check byte, as a
    garbled read would.
    """

    uid: bytes
    atqa: bytes = b"\x04\x00"
    sak: int = 0x08  # MIFARE Classic 1K
    corrupt_bcc: bool = False
    state: str = "IDLE"
    level: int = 1
    log: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if len(self.uid) not in (4, 7):
            raise ValueError("the simulator models 4- and 7-byte UIDs")

    def _level_bytes(self, level: int) -> bytes:
        if len(self.uid) == 4:
            return self.uid
        return bytes([CASCADE_TAG]) + self.uid[:3] if level == 1 else self.uid[3:]

    def _last_level(self) -> int:
        return 1 if len(self.uid) == 4 else 2

    def receive(self, frame: bytes, last_bits: int) -> bytes | None:
        """One frame from the reader; the card's answer, or None for silence."""
        self.log.append(frame.hex())
        if last_bits == 7 and len(frame) == 1 and frame[0] in (REQA, WUPA):
            if self.state == "IDLE" or (self.state == "HALT" and frame[0] == WUPA):
                self.state, self.level = "READY", 1
                return self.atqa
            # ISO 14443-3: in READY or ACTIVE anything unexpected sends the card back
            # to IDLE without an answer; that is why a held card answers every other REQA.
            if self.state in ("READY", "ACTIVE"):
                self.state = "IDLE"
            return None
        if last_bits != 0:
            return None
        sel = {1: SEL_CL1, 2: SEL_CL2}.get(self.level)
        if self.state == "READY" and frame == bytes([sel, 0x20]):
            part = self._level_bytes(self.level)
            bcc = _bcc(part) ^ (0xFF if self.corrupt_bcc else 0)
            return part + bytes([bcc])
        if self.state == "READY" and len(frame) == 9 and frame[:2] == bytes([sel, 0x70]):
            part = self._level_bytes(self.level)
            if frame[2:7] == part + bytes([_bcc(part)]) and crc_a(frame[:7]) == frame[7:]:
                if self.level < self._last_level():
                    self.level += 1
                    sak = 0x04  # cascade bit: UID not complete
                else:
                    self.state = "ACTIVE"
                    sak = self.sak
                return bytes([sak]) + crc_a([sak])
        if self.state == "ACTIVE" and frame[:2] == bytes([HLTA, 0x00]):
            self.state = "HALT"
            return None
        self.state = "IDLE" if self.state != "HALT" else "HALT"
        return None


class RC522Sim:
    """The reader chip; ``card`` is whatever is in its field (None: nothing)."""

    def __init__(self, *, rst_pin: int = 25, version: int = 0x92) -> None:
        self.rst_pin = rst_pin
        self.version = version
        self.card: Card | None = None
        self.transfers = 0
        self.commands: list[int] = []
        self.powered = False  # follows the RST line through the fake GPIO
        self._soft_reset()

    def _soft_reset(self) -> None:
        self.regs = bytearray(64)
        for reg, value in _RESET_VALUES.items():
            self.regs[reg] = value
        self.regs[VERSION] = self.version
        self.fifo: deque[int] = deque()

    @property
    def antenna_on(self) -> bool:
        return bool(self.regs[TX_CONTROL] & 0x03)

    def set_rst(self, level: int) -> None:
        if level and not self.powered:
            self._soft_reset()  # leaving hard power-down resets the chip
        self.powered = bool(level)

    # -- SPI ---------------------------------------------------------------------

    def xfer(self, data: list[int]) -> list[int]:
        """One SPI transaction: address byte then data bytes (datasheet 8.1.2)."""
        self.transfers += 1
        if not self.powered:
            return [0] * len(data)
        address = (data[0] >> 1) & 0x3F
        if data[0] & 0x80:  # read: each later MOSI byte addresses the next read
            out = [0]
            for nxt in data[1:]:
                out.append(self.read(address))
                address = (nxt >> 1) & 0x3F
            return out
        for value in data[1:]:
            self.write(address, value)
        return [0] * len(data)

    def read(self, reg: int) -> int:
        if reg == FIFO_DATA:
            return self.fifo.popleft() if self.fifo else 0
        if reg == FIFO_LEVEL:
            return len(self.fifo)
        return self.regs[reg]

    def write(self, reg: int, value: int) -> None:
        if reg == FIFO_DATA:
            self.fifo.append(value)
        elif reg == FIFO_LEVEL:
            if value & 0x80:  # FlushBuffer
                self.fifo.clear()
        elif reg in (COMM_IRQ, DIV_IRQ):
            # Bit 7 (Set1/Set2) says whether the marked bits are set or cleared.
            if value & 0x80:
                self.regs[reg] |= value & 0x7F
            else:
                self.regs[reg] &= ~value & 0x7F
        elif reg == COMMAND:
            command = value & 0x0F
            self.regs[COMMAND] = (self.regs[COMMAND] & 0xF0) | command
            self._command(command)  # a soft reset ends back in Idle
        elif reg == BIT_FRAMING:
            self.regs[reg] = value & 0x7F  # StartSend reads back as 0
            if value & 0x80 and self.regs[COMMAND] & 0x0F == TRANSCEIVE:
                self._transceive(value & 0x07)
        elif reg != VERSION:
            self.regs[reg] = value

    def _command(self, command: int) -> None:
        self.commands.append(command)
        if command == SOFT_RESET:
            self._soft_reset()
        elif command == CALC_CRC:
            crc = crc_a(list(self.fifo))
            self.fifo.clear()
            self.regs[CRC_RESULT_L], self.regs[CRC_RESULT_M] = crc[0], crc[1]
            self.regs[DIV_IRQ] |= CRC_IRQ

    def _transceive(self, tx_last_bits: int) -> None:
        frame = bytes(self.fifo)
        self.fifo.clear()
        answer = None
        if self.card is not None and self.antenna_on:
            answer = self.card.receive(frame, tx_last_bits)
        self.regs[ERROR] = 0
        if answer is None:
            # Nothing answers: only the timer (started by TAuto) runs out.
            self.regs[COMM_IRQ] |= TX_IRQ | TIMER_IRQ
            return
        self.fifo.extend(answer)
        self.regs[CONTROL] &= 0xF8  # RxLastBits 0: whole bytes received
        self.regs[COMM_IRQ] |= TX_IRQ | RX_IRQ


class FakeGPIO(types.ModuleType):
    """Enough of ``RPi.GPIO`` for the driver, recording what matters to our tests."""

    BCM = 11
    BOARD = 10
    OUT = 0
    IN = 1
    LOW = 0
    HIGH = 1

    def __init__(self, sims: list[RC522Sim]) -> None:
        super().__init__("RPi.GPIO")
        self._sims = sims
        self.mode: int | None = None
        self.levels: dict[int, int] = {}
        self.cleanup_calls: list[object] = []

    def getmode(self) -> int | None:
        return self.mode

    def setmode(self, mode: int) -> None:
        if self.mode is not None and self.mode != mode:
            raise ValueError("A different mode has already been set!")
        self.mode = mode

    def setwarnings(self, flag: bool) -> None:
        pass

    def setup(self, channel: int, direction: int, initial: int = -1, **_: object) -> None:
        if self.mode is None:
            raise RuntimeError("Please set pin numbering mode using GPIO.setmode")
        self.levels[channel] = initial if direction == self.OUT and initial != -1 else 0
        self._drive(channel)

    def output(self, channel: int, value: int) -> None:
        if channel not in self.levels:
            raise RuntimeError("The GPIO channel has not been set up as an OUTPUT")
        self.levels[channel] = 1 if value else 0
        self._drive(channel)

    def input(self, channel: int) -> int:
        return self.levels.get(channel, 0)

    def cleanup(self, channel: int | list[int] | None = None) -> None:
        self.cleanup_calls.append(channel)
        channels = (
            list(self.levels)
            if channel is None
            else (channel if isinstance(channel, list) else [channel])
        )
        for ch in channels:
            self.levels.pop(ch, None)
            self._drive(ch)
        if channel is None:
            self.mode = None

    def _drive(self, channel: int) -> None:
        pin = channel if self.mode == self.BCM else None
        for sim in self._sims:
            if sim.rst_pin == pin:
                sim.set_rst(self.levels.get(channel, 0))


class FakeSpiDev:
    """``spidev.SpiDev``: one per open; transfers go to the simulator on that bus/device."""

    buses: dict[tuple[int, int], RC522Sim] = {}

    def __init__(self) -> None:
        self.max_speed_hz = 0
        self.mode = 0
        self.sim: RC522Sim | None = None

    def open(self, bus: int, device: int) -> None:
        try:
            self.sim = self.buses[(bus, device)]
        except KeyError:
            raise FileNotFoundError(2, "No such file or directory") from None

    def xfer2(self, data: list[int], *_: object) -> list[int]:
        if self.sim is None:
            raise OSError(9, "Bad file descriptor")
        return self.sim.xfer(list(data))

    def close(self) -> None:
        self.sim = None


@contextmanager
def fake_pi(*sims: RC522Sim, bus: int = 0) -> Iterator[FakeGPIO]:
    """Put fake ``RPi.GPIO`` and ``spidev`` into ``sys.modules`` with ``sims`` on ``bus``.

    Any ``mfrc522`` already imported is set aside and restored afterwards, so the package
    binds to the fakes now and a real Pi run in the same interpreter is not affected.
    """
    gpio = FakeGPIO(list(sims))
    rpi = types.ModuleType("RPi")
    rpi.GPIO = gpio  # type: ignore[attr-defined]
    spidev = types.ModuleType("spidev")
    spi_class = type(
        "SpiDev", (FakeSpiDev,), {"buses": {(bus, device): sim for device, sim in enumerate(sims)}}
    )
    spidev.SpiDev = spi_class  # type: ignore[attr-defined]
    names = ("RPi", "RPi.GPIO", "spidev")
    saved = {
        name: mod
        for name, mod in sys.modules.items()
        if name in names or name == "mfrc522" or name.startswith("mfrc522.")
    }
    for name in saved:
        del sys.modules[name]
    sys.modules.update({"RPi": rpi, "RPi.GPIO": gpio, "spidev": spidev})
    try:
        yield gpio
    finally:
        for name in [
            n for n in sys.modules if n in names or n == "mfrc522" or n.startswith("mfrc522.")
        ]:
            del sys.modules[name]
        sys.modules.update(saved)
