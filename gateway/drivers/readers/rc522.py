"""MFRC522 ("RC522") 13.56 MHz reader on the Pi's SPI bus, through the ``mfrc522`` package.

Why the package is used the way it is:

- ``mfrc522`` imports ``RPi.GPIO`` at import time, which raises off a Pi, so it is imported
  inside ``RC522Reader.__init__`` and nothing else in the gateway needs it.
- Its ``read_id()`` spins without sleeping until a card comes; we only use the one-shot
  request (REQA) + anticollision path, once per ``poll()``. Even so an empty poll costs
  about 2,000 SPI transfers (its wait loop counts register reads, not time), so keep the
  node's poll rate modest (``reader.poll_hz``, 10 Hz by default).
- Its numeric id is not the UID: it packs UID + BCC, and it stops at cascade level 1, so
  a 7-byte UID (NTAG, Ultralight, DESFire) comes back as the cascade tag 0x88 + 3 bytes.
  We take the raw anticollision frame, check the BCC ourselves (a mismatch is a garbled
  read, reported as no card) and, for a cascade tag, select level 1 and run level 2 to get
  the full 7-byte UID. 10-byte UIDs (cascade level 3) are refused with a warning.
- ``Close_MFRC522()`` calls ``GPIO.cleanup()``, which resets every RPi.GPIO pin of the
  process, the relay's included when gpiozero uses RPi.GPIO. ``close()`` therefore
  never calls it: it switches the antenna off, closes the SPI device and cleans up only
  the RST pin (``GPIO.cleanup(rst_pin)``).

A card held on the reader is seen on every *other* poll: after REQA + anticollision the
card waits for SELECT, and the next REQA sends it back to idle without an answer
(ISO/IEC 14443-3). The ``TapDebouncer`` bridges those gaps, which are much shorter
than its hold-off. UIDs are identifiers, not secrets: they can be cloned.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from gateway.drivers.readers.base import BadgeReader

log = logging.getLogger(__name__)

VERSION_REG = 0x37
BIT_FRAMING_REG = 0x0D
CASCADE_TAG = 0x88
SEL_CL2 = 0x95
SAK_UID_INCOMPLETE = 0x04


def uid_from_frame(frame: Sequence[int]) -> bytes | None:
    """The 4 UID bytes of an anticollision answer (UID0-3 + BCC), or None if garbled."""
    if len(frame) != 5 or any(not 0 <= b <= 0xFF for b in frame):
        return None
    bcc = frame[0] ^ frame[1] ^ frame[2] ^ frame[3]
    if bcc != frame[4]:
        return None
    return bytes(frame[:4])


def uid_from_packed(packed: int) -> str | None:
    """Normalised UID from the number ``mfrc522``'s ``SimpleMFRC522`` prints (UID + BCC).

    Useful to enrol badges whose ids were collected with that library's example scripts.
    """
    if not 0 <= packed < 1 << 40:
        return None
    uid = uid_from_frame(packed.to_bytes(5, "big"))
    return uid.hex().upper() if uid is not None else None


class RC522Reader(BadgeReader):
    """An RC522 on SPI ``bus``.``device`` with its RST line on BCM GPIO ``rst_pin``."""

    def __init__(
        self, *, bus: int = 0, device: int = 0, rst_pin: int = 25, spi_hz: int = 1_000_000
    ) -> None:
        try:
            import RPi.GPIO as GPIO
            from mfrc522 import MFRC522
        except (ImportError, RuntimeError) as exc:
            raise RuntimeError(
                "the rc522 reader needs a Raspberry Pi with the 'pi' extra installed "
                f"(mfrc522, RPi.GPIO or rpi-lgpio, spidev): {exc}"
            ) from exc
        self._gpio: Any = GPIO
        self.rst_pin = rst_pin
        self._closed = False
        mode = GPIO.getmode()
        if mode not in (None, GPIO.BCM):
            # mfrc522 reuses the numbering mode already set; in BOARD mode our BCM pin
            # number would drive some other header pin.
            raise RuntimeError(
                "RPi.GPIO is already in BOARD numbering; the gateway uses BCM numbers"
            )
        try:
            self._chip: Any = MFRC522(
                bus=bus, device=device, spd=spi_hz, pin_mode=GPIO.BCM, pin_rst=rst_pin
            )
        except OSError as exc:
            raise RuntimeError(
                f"cannot open SPI bus {bus} device {device} for the RC522 "
                f"(is SPI enabled in raspi-config?): {exc}"
            ) from exc
        version = self._chip.Read_MFRC522(VERSION_REG)
        if version in (0x00, 0xFF):
            # An absent or unpowered chip reads as all zeros or all ones: fail now rather
            # than poll forever and deny every badge as "no card".
            self.close()
            raise RuntimeError(
                f"no RC522 answers on SPI bus {bus} device {device} (version register "
                f"{version:#04x}); check wiring, 3.3 V supply and RST on GPIO {rst_pin}"
            )
        if version not in (0x91, 0x92):
            log.warning("RC522 reports version %#04x (a clone?); carrying on", version)
        # Commissioning reports record which chip answered (0x91: v1.0, 0x92: v2.0).
        log.info("RC522 on SPI bus %d device %d: version register %#04x", bus, device, version)

    def poll(self) -> str | None:
        if self._closed:
            return None
        chip = self._chip
        status, _atqa_bits = chip.MFRC522_Request(chip.PICC_REQIDL)
        if status != chip.MI_OK:
            return None
        status, frame = chip.MFRC522_Anticoll()
        if status != chip.MI_OK:
            return None
        level1 = uid_from_frame(frame)
        if level1 is None:
            return None
        if level1[0] != CASCADE_TAG:
            return level1.hex().upper()
        level2 = self._cascade_level_2(list(frame))
        if level2 is None:
            return None
        return (level1[1:] + level2).hex().upper()

    def _cascade_level_2(self, frame: list[int]) -> bytes | None:
        """Select cascade level 1 and read level 2: the last 4 bytes of a 7-byte UID."""
        chip = self._chip
        sak = chip.MFRC522_SelectTag(frame)
        if not sak & SAK_UID_INCOMPLETE:
            return None
        chip.Write_MFRC522(BIT_FRAMING_REG, 0x00)
        status, answer, _bits = chip.MFRC522_ToCard(chip.PCD_TRANSCEIVE, [SEL_CL2, 0x20])
        if status != chip.MI_OK:
            return None
        level2 = uid_from_frame(answer)
        if level2 is None:
            return None
        if level2[0] == CASCADE_TAG:
            log.warning("a card with a 10-byte UID was presented; not supported")
            return None
        return level2

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._chip.AntennaOff()  # stop the RF field: no card is powered any more
        except Exception:  # closing must go on to release SPI and the RST pin
            log.exception("could not switch the RC522 antenna off")
        finally:
            try:
                self._chip.spi.close()
            finally:
                # Only our pin: GPIO.cleanup() without arguments would reset every pin.
                self._gpio.cleanup(self.rst_pin)
