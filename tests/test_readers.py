"""Simulated reader and tap debouncing: one card held is one tap."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from gateway.config import ReaderConfig
from gateway.drivers.factory import make_reader
from gateway.drivers.readers.base import BadgeReader, TapDebouncer
from gateway.drivers.readers.simulated import SimulatedReader, send_tap
from tests.support.clock import FakeMono


def test_simulated_reader_returns_each_card_once_then_nothing() -> None:
    reader = SimulatedReader()
    assert isinstance(reader, BadgeReader)
    assert reader.poll() is None
    reader.present("de:ad:be:ef")
    assert reader.poll() == "DEADBEEF"
    assert reader.poll() is None
    assert reader.poll() is None


def test_simulated_reader_separates_queued_cards_with_an_absence() -> None:
    reader = SimulatedReader()
    reader.present("DEADBEEF")
    reader.present("DEADBEEF")
    reader.present("01020304")
    assert [reader.poll() for _ in range(6)] == [
        "DEADBEEF",
        None,
        "DEADBEEF",
        None,
        "01020304",
        None,
    ]


def test_simulated_reader_rejects_bad_uid_at_present() -> None:
    with pytest.raises(ValueError):
        SimulatedReader().present("not a uid")


def test_simulated_reader_is_thread_safe() -> None:
    reader = SimulatedReader()
    uids = [f"{i:08X}" for i in range(400)]
    start = threading.Barrier(4)

    def feed(part: list[str]) -> None:
        start.wait()
        for uid in part:
            reader.present(uid)

    threads = [threading.Thread(target=feed, args=(uids[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seen = [uid for uid in (reader.poll() for _ in range(1000)) if uid]
    assert sorted(seen) == uids


def test_simulated_reader_close_drops_queue() -> None:
    reader = SimulatedReader()
    reader.present("DEADBEEF")
    with reader:
        pass
    assert reader.poll() is None
    reader.present("DEADBEEF")  # a late simulated tap during shutdown is dropped
    assert reader.poll() is None


def test_held_card_is_one_tap() -> None:
    clock = FakeMono()
    deb = TapDebouncer(2.0, clock=clock)
    taps = []
    # An RC522 sees a held card on every other poll, at 10 Hz, for 5 s.
    for i in range(50):
        taps.append(deb.feed("DEADBEEF" if i % 2 == 0 else None))
        clock.now += 0.1
    assert [t for t in taps if t] == ["DEADBEEF"]
    assert taps[0] == "DEADBEEF"


def test_same_card_counts_again_only_after_hold_off_absence() -> None:
    clock = FakeMono()
    deb = TapDebouncer(2.0, clock=clock)
    assert deb.feed("DEADBEEF") == "DEADBEEF"
    clock.now += 1.9
    assert deb.feed(None) is None
    assert deb.feed("DEADBEEF") is None  # back too soon: still the same tap
    clock.now += 1.99
    assert deb.feed("DEADBEEF") is None  # the absence restarts from the last sighting
    clock.now += 2.0
    assert deb.feed(None) is None
    assert deb.feed("DEADBEEF") == "DEADBEEF"


def test_different_card_counts_at_once() -> None:
    clock = FakeMono()
    deb = TapDebouncer(2.0, clock=clock)
    assert deb.feed("DEADBEEF") == "DEADBEEF"
    clock.now += 0.1
    assert deb.feed("01020304") == "01020304"
    clock.now += 0.1
    assert deb.feed("DEADBEEF") is None  # A was away only 0.2 s


def test_debouncer_with_simulated_reader_counts_spaced_taps() -> None:
    clock = FakeMono()
    deb = TapDebouncer(2.0, clock=clock)
    reader = SimulatedReader()
    reader.present("DEADBEEF")
    first = [deb.feed(reader.poll()) for _ in range(3)]
    clock.now += 2.5
    reader.present("DEADBEEF")
    second = [deb.feed(reader.poll()) for _ in range(3)]
    assert first == ["DEADBEEF", None, None]
    assert second == ["DEADBEEF", None, None]


def test_debouncer_rejects_negative_hold_off() -> None:
    with pytest.raises(ValueError):
        TapDebouncer(-1)


def test_make_reader() -> None:
    assert isinstance(make_reader(ReaderConfig(driver="simulated")), SimulatedReader)
    with pytest.raises(ValueError, match="unknown reader driver"):
        make_reader(ReaderConfig(driver="pn532"))


def test_only_a_reader_software_can_feed_offers_an_injector() -> None:
    class CardOnly(BadgeReader):
        def poll(self) -> str | None:
            return None

        def close(self) -> None:
            pass

    assert CardOnly().injector is None
    reader = SimulatedReader()
    injector = reader.injector
    assert injector is not None
    injector.present("de:ad:be:ef")
    assert reader.poll() == "DEADBEEF"


def test_a_simulated_reader_built_from_config_listens_on_its_socket(tmp_path: Path) -> None:
    path = tmp_path / "node.tap"
    reader = make_reader(ReaderConfig(driver="simulated", socket=path))
    try:
        send_tap(path, "01020304")
        deadline = time.monotonic() + 10
        got = reader.poll()
        while got is None and time.monotonic() < deadline:
            time.sleep(0.01)  # polled as the node polls it, until the datagram arrives
            got = reader.poll()
        assert got == "01020304"
    finally:
        reader.close()
    assert not path.exists()  # closing the reader closes its socket
