"""A node silent for more than three heartbeats is offline, even without its last will."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from gateway.config import GroupConfig, MachineConfig
from gateway.contract import Topics
from gateway.hub.catalogue import sync_catalogue
from gateway.hub.db import HubStore
from gateway.hub.machine_state import machines_live, set_node_status
from gateway.policies.liveness import (
    DEFAULT_HEARTBEAT_S,
    MAX_HEARTBEAT_S,
    heartbeat_of,
    is_silent,
)
from tests.support.harness import Site, poll_until

T0 = datetime(2026, 11, 25, 18, 0, tzinfo=UTC)


def _status(**extra: object) -> dict:
    return {
        "v": 1,
        "node": "laser1",
        "machine": "laser1",
        "online": True,
        "relay": False,
        "session": None,
        "time": "2031-01-01T00:00:00Z",
        **extra,
    }


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, DEFAULT_HEARTBEAT_S),
        ("15", DEFAULT_HEARTBEAT_S),
        (True, DEFAULT_HEARTBEAT_S),
        (float("nan"), DEFAULT_HEARTBEAT_S),
        (15, 15.0),
        (0.01, 1.0),
        (1e9, MAX_HEARTBEAT_S),
    ],
)
def test_heartbeat_comes_from_the_status_bounded(value, expected) -> None:
    status = {} if value is None else {"heartbeat_s": value}
    assert heartbeat_of(status) == expected


def test_silence_is_more_than_three_heartbeats() -> None:
    st = {"heartbeat_s": 10}
    assert not is_silent(T0, st, T0 + timedelta(seconds=30))
    assert is_silent(T0, st, T0 + timedelta(seconds=30.001))
    assert not is_silent(T0, {}, T0 + timedelta(seconds=90))  # default 30 s heartbeat
    assert is_silent(T0, {}, T0 + timedelta(seconds=91))
    assert is_silent(None, st, T0)  # a status the hub never dated


@pytest.fixture
def store(tmp_path: Path):
    s = HubStore(tmp_path / "hub.db")
    sync_catalogue(
        s,
        [GroupConfig(id="laser", name="Laser")],
        [MachineConfig(id="laser1", name="Laser", kind="laser", group="laser")],
    )
    try:
        yield s
    finally:
        s.close()


def _live(store: HubStore, now: datetime) -> dict:
    (m,) = machines_live(store, now=now)
    return m


def test_the_board_judges_silence_on_the_hub_clock(store: HubStore) -> None:
    # The node's own clock says 2031: irrelevant, only the receipt time counts.
    set_node_status(store, "laser1", _status(heartbeat_s=5), received_at=T0)
    m = _live(store, T0 + timedelta(seconds=15))
    assert (m["state"], m["online"], m["silent"]) == ("free", True, False)
    m = _live(store, T0 + timedelta(seconds=16))
    assert (m["state"], m["online"], m["silent"]) == ("offline", False, True)
    assert m["last_seen"] == "2026-11-25T18:00:00.000Z"
    # A new status brings it back.
    set_node_status(store, "laser1", _status(heartbeat_s=5), received_at=T0 + timedelta(seconds=20))
    assert _live(store, T0 + timedelta(seconds=21))["state"] == "free"


def test_a_last_will_is_offline_but_not_silent(store: HubStore) -> None:
    set_node_status(store, "laser1", {"node": "laser1", "online": False}, received_at=T0)
    m = _live(store, T0)
    assert (m["state"], m["silent"]) == ("offline", False)


@pytest.mark.integration
def test_a_frozen_node_shows_offline_in_the_api_and_on_the_board(site: Site, mosquitto) -> None:
    site.start_hub()
    topics = Topics("fablab/demo/")
    # Pretend to be laser-1: one retained online status, then silence (no last will).
    client = paho.Client(
        CallbackAPIVersion.VERSION2, client_id="frozen-laser-1", protocol=paho.MQTTv311
    )
    client.connect(mosquitto.host, mosquitto.port)
    client.loop_start()
    try:
        status = {
            "v": 1,
            "node": "laser-1",
            "machine": "laser-1",
            "online": True,
            "relay": False,
            "session": None,
            "snapshot_version": None,
            "boot": "b1",
            "state": "free",
            "activity": "idle",
            "detail": "",
            "job": None,
            "ending": False,
            "mode": None,
            "heartbeat_s": 1,
            "time": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        }
        client.publish(
            topics.node_status("laser-1"), json.dumps(status).encode(), qos=1, retain=True
        ).wait_for_publish(5)

        def laser() -> dict:
            return {m["machine_id"]: m for m in site.api("/api/v1/machines")["machines"]}["laser-1"]

        seen = poll_until(lambda: (m := laser())["online"] and m, what="laser-1 online")
        assert seen["state"] == "free"
        # The connection stays up (no will is sent); after three heartbeats it is offline.
        off = poll_until(
            lambda: (m := laser())["state"] == "offline" and m,
            timeout=20,
            what="laser-1 offline after three silent heartbeats",
        )
        assert off["silent"] is True and off["online"] is False
        assert client.is_connected()
        board = site.api("/fragments/board?lang=en")
        assert "no news since" in board
    finally:
        client.loop_stop()
        client.disconnect()
