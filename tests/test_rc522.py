"""The real ``mfrc522`` package and our driver against a register-level RC522 simulator."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from importlib.util import find_spec

import pytest

from gateway.config import ReaderConfig
from gateway.drivers.factory import make_reader
from gateway.drivers.readers.base import TapDebouncer
from gateway.drivers.readers.rc522 import RC522Reader, uid_from_frame, uid_from_packed
from tests.fakes.rc522_sim import Card, FakeGPIO, RC522Sim, crc_a, fake_pi

# find_spec, not importorskip: importing mfrc522 without the fakes fails on RPi.GPIO.
pytestmark = pytest.mark.skipif(
    find_spec("mfrc522") is None, reason="the 'pi' extra (mfrc522) is not installed"
)


@pytest.fixture
def sim() -> RC522Sim:
    return RC522Sim(rst_pin=25)


@pytest.fixture
def gpio(sim: RC522Sim) -> Iterator[FakeGPIO]:
    with fake_pi(sim) as gpio:
        yield gpio


@pytest.fixture
def reader(gpio: FakeGPIO) -> Iterator[RC522Reader]:
    reader = RC522Reader(bus=0, device=0, rst_pin=25)
    try:
        yield reader
    finally:
        reader.close()


def test_crc_a_vectors() -> None:
    assert crc_a([0x00, 0x00]) == bytes([0xA0, 0x1E])
    assert crc_a([0x12, 0x34]) == bytes([0x26, 0xCF])


def test_simulator_crc_coprocessor_through_mfrc522(reader: RC522Reader) -> None:
    assert reader._chip.CalulateCRC([0x12, 0x34]) == [0x26, 0xCF]


def test_reads_presented_card(sim: RC522Sim, reader: RC522Reader) -> None:
    assert reader.poll() is None
    sim.card = Card(bytes.fromhex("DEADBEEF"))
    assert reader.poll() == "DEADBEEF"
    # The frames the card saw: REQA, then anticollision cascade level 1.
    assert sim.card.log == ["26", "9320"]


def test_no_card_is_none_and_only_times_out(sim: RC522Sim, reader: RC522Reader) -> None:
    before = sim.transfers
    assert reader.poll() is None
    # The package's wait loop counts reads, not time: the cost we document.
    assert sim.transfers - before > 1000


def test_bad_bcc_is_no_read(sim: RC522Sim, reader: RC522Reader) -> None:
    sim.card = Card(bytes.fromhex("DEADBEEF"), corrupt_bcc=True)
    assert reader.poll() is None
    assert reader.poll() is None


def test_our_own_bcc_check() -> None:
    # mfrc522 happens to check the BCC too; this is the check we do not delegate.
    assert uid_from_frame([0xDE, 0xAD, 0xBE, 0xEF, 0x22]) == bytes.fromhex("DEADBEEF")
    assert uid_from_frame([0xDE, 0xAD, 0xBE, 0xEF, 0x23]) is None
    assert uid_from_frame([0xDE, 0xAD, 0xBE, 0xEF]) is None


def test_uid_from_packed_strips_the_bcc() -> None:
    assert uid_from_packed(0xDEADBEEF22) == "DEADBEEF"
    assert uid_from_packed(0xDEADBEEF00) is None
    assert uid_from_packed(-1) is None


def test_seven_byte_uid_completes_cascade_level_2(sim: RC522Sim, reader: RC522Reader) -> None:
    sim.card = Card(bytes.fromhex("04A1B2C3D4E5F6"), atqa=b"\x44\x00", sak=0x00)
    assert reader.poll() == "04A1B2C3D4E5F6"
    log = sim.card.log
    assert log[:2] == ["26", "9320"]
    assert log[2].startswith("937088") and log[3] == "9520"  # select CL1, then read CL2


def test_held_card_reads_every_other_poll_and_is_one_tap(
    sim: RC522Sim, reader: RC522Reader
) -> None:
    sim.card = Card(bytes.fromhex("DEADBEEF"))
    reads = [reader.poll() for _ in range(6)]
    assert reads == ["DEADBEEF", None] * 3
    now = [0.0]
    deb = TapDebouncer(2.0, clock=lambda: now[0])
    taps = []
    for uid in reads:
        taps.append(deb.feed(uid))
        now[0] += 0.1
    assert taps == ["DEADBEEF"] + [None] * 5


def test_removed_card_is_no_longer_read(sim: RC522Sim, reader: RC522Reader) -> None:
    sim.card = Card(bytes.fromhex("01020304"))
    assert reader.poll() == "01020304"
    sim.card = None
    assert reader.poll() is None
    assert reader.poll() is None


def test_close_releases_only_our_pin_and_stops_the_field(
    sim: RC522Sim, gpio: FakeGPIO, reader: RC522Reader
) -> None:
    gpio.setup(17, gpio.OUT, initial=gpio.HIGH)  # someone else's pin, e.g. the relay
    assert sim.antenna_on
    reader.close()
    assert not sim.antenna_on
    assert gpio.cleanup_calls == [25]
    assert gpio.input(17) == 1 and gpio.getmode() == gpio.BCM
    assert reader.poll() is None
    reader.close()
    assert gpio.cleanup_calls == [25]


def test_make_reader_builds_rc522(sim: RC522Sim, gpio: FakeGPIO) -> None:
    reader = make_reader(ReaderConfig(driver="rc522", spi_bus=0, spi_device=0, rst_pin=25))
    try:
        assert isinstance(reader, RC522Reader)
        sim.card = Card(bytes.fromhex("CAFEBABE"))
        assert reader.poll() == "CAFEBABE"
    finally:
        reader.close()


def test_wrong_rst_pin_is_a_clear_error(gpio: FakeGPIO) -> None:
    with pytest.raises(RuntimeError, match="no RC522 answers.*GPIO 24"):
        RC522Reader(rst_pin=24)
    assert gpio.cleanup_calls == [24]


def test_missing_spi_device_is_a_clear_error(gpio: FakeGPIO) -> None:
    with pytest.raises(RuntimeError, match="SPI bus 0 device 1"):
        RC522Reader(device=1)


def test_board_numbering_is_refused(gpio: FakeGPIO) -> None:
    gpio.setmode(gpio.BOARD)
    with pytest.raises(RuntimeError, match="BOARD"):
        RC522Reader()


def test_off_a_pi_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "RPi", None)  # import RPi raises ImportError
    monkeypatch.setitem(sys.modules, "RPi.GPIO", None)
    with pytest.raises(RuntimeError, match="'pi' extra"):
        RC522Reader()
