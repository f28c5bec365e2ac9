"""Snapshots are ordered by (epoch, version); the hub moves its epoch on at every start."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.contract.signing import (
    SnapshotRejected,
    generate_key,
    parse_snapshot,
    sign_snapshot,
    verify_snapshot,
)
from gateway.core.snapshot import MachineInfo, Snapshot
from gateway.hub.db import HubStore
from gateway.hub.snapshots import advance_epoch, snapshot_epoch

T0 = datetime(2026, 11, 25, 18, 0, tzinfo=UTC)


def snap(version: int, epoch: int) -> Snapshot:
    return Snapshot(
        site="t",
        version=version,
        epoch=epoch,
        issued_at=T0,
        valid_until=T0 + timedelta(days=7),
        machine=MachineInfo("laser-1", "Laser", "laser", "laser"),
        timezone="Europe/Paris",
    )


@pytest.fixture(scope="module")
def key():
    return generate_key()


def verify(key, s: Snapshot, **held: int | None) -> Snapshot:  # noqa: ANN001
    return verify_snapshot(
        sign_snapshot(s, key), key.public_key(), now=T0, machine_id="laser-1", **held
    )


def test_a_higher_epoch_wins_whatever_its_version(key) -> None:
    assert verify(key, snap(3, 200), current_version=900, current_epoch=100).order == (200, 3)


@pytest.mark.parametrize(("version", "epoch"), [(900, 100), (899, 100), (1000, 99)])
def test_same_or_lower_epoch_needs_a_higher_version(key, version: int, epoch: int) -> None:
    with pytest.raises(SnapshotRejected) as raised:
        verify(key, snap(version, epoch), current_version=900, current_epoch=100)
    assert raised.value.reason == "older"
    assert verify(key, snap(901, 100), current_version=900, current_epoch=100).version == 901


def test_a_held_snapshot_without_epoch_is_epoch_zero(key) -> None:
    assert verify(key, snap(1, 5), current_version=50).epoch == 5
    with pytest.raises(SnapshotRejected):
        verify(key, snap(50, 0), current_version=50)


def test_the_epoch_is_signed(key) -> None:
    msg = json.loads(sign_snapshot(snap(1, 100), key))
    body = json.loads(base64.b64decode(msg["payload"]))
    assert body["epoch"] == 100
    body["epoch"] = 10**12  # a broker replaying an old snapshot as "newest" must fail
    msg["payload"] = base64.b64encode(json.dumps(body).encode()).decode()
    with pytest.raises(SnapshotRejected) as raised:
        verify_snapshot(json.dumps(msg), key.public_key(), now=T0, machine_id="laser-1")
    assert raised.value.reason == "forged"


def test_a_snapshot_from_before_epochs_still_reads(key) -> None:
    d = snap(7, 0).to_dict()
    del d["epoch"]
    assert Snapshot.from_dict(d).order == (0, 7)
    with pytest.raises(SnapshotRejected):
        parse_snapshot({**d, "epoch": "soon"})
    assert replace(snap(1, 1), epoch=2).order == (2, 1)


def test_the_epoch_moves_on_at_every_start_even_with_a_clock_behind(tmp_path: Path) -> None:
    with HubStore(tmp_path / "hub.db") as store:
        first = advance_epoch(store, T0)
        assert first == int(T0.timestamp())
        # Restarted within the same second, or with a clock set back: still one more.
        assert advance_epoch(store, T0) == first + 1
        assert advance_epoch(store, T0 - timedelta(days=30)) == first + 2
        # A later start takes the clock.
        later = T0 + timedelta(days=1)
        assert advance_epoch(store, later) == int(later.timestamp())
        assert snapshot_epoch(store) == int(later.timestamp())


def test_a_restored_database_issues_a_later_epoch(tmp_path: Path) -> None:
    import shutil

    db = tmp_path / "hub.db"
    with HubStore(db) as store:
        old = advance_epoch(store, T0)
    shutil.copy(db, tmp_path / "backup.db")
    with HubStore(db) as store:
        newer = advance_epoch(store, T0 + timedelta(hours=1))
    with HubStore(tmp_path / "backup.db") as restored:
        assert snapshot_epoch(restored) == old
        assert advance_epoch(restored, T0 + timedelta(hours=2)) > newer
