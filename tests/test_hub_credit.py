"""Prepaid credit and pricing at the hub: sessions priced at ingest, balances, snapshots."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.billing.credit import add_credit, balance
from gateway.billing.pricing import install_tariffs
from gateway.billing.tariffs import Tariff
from gateway.config import GroupConfig, MachineConfig
from gateway.hub.catalogue import sync_catalogue
from gateway.hub.db import HubStore, data_version
from gateway.hub.events.ingest import ingest_envelopes
from gateway.hub.seed import import_seed
from gateway.hub.snapshots import build_snapshot
from tests.support.builders import T0, ended, seed

LASER_TARIFF = Tariff(valid_from=datetime(2025, 1, 1, tzinfo=UTC), groups=("laser",), rate=50)
LATER = Tariff(valid_from=T0 + timedelta(hours=1), groups=("laser",), rate=80)


@pytest.fixture
def store(tmp_path: Path):
    s = HubStore(tmp_path / "hub.db")
    sync_catalogue(
        s,
        [GroupConfig("laser", "Laser"), GroupConfig("cnc", "CNC")],
        [
            MachineConfig("laser1", "Laser 1", "laser", "laser", requires_credit=True),
            MachineConfig("laser2", "Laser 2", "laser", "laser", min_level=1),
            MachineConfig("cnc1", "CNC", "cnc", "cnc"),
        ],
    )
    import_seed(s, seed())
    install_tariffs(s, (LASER_TARIFF, LATER))
    yield s
    s.close()


def snap(store: HubStore, machine: str):
    return build_snapshot(
        store,
        machine,
        now=T0,
        version=1,
        validity=timedelta(days=1),
        timezone="Europe/Paris",
        opening_hours={},
        staff_present_until=None,
    )


def test_sessions_are_priced_by_the_tariff_in_force_at_their_start(store: HubStore) -> None:
    ingest_envelopes(store, [ended("s1", 600)], T0)  # 10 min at 0.50
    ingest_envelopes(store, [ended("s2", 600, start=T0 + timedelta(hours=2))], T0)  # later tariff
    ingest_envelopes(store, [ended("s3", 600, machine="cnc1")], T0)  # no tariff: unpriced, not zero
    amounts = {
        r["session_id"]: r["amount_cents"]
        for r in store.conn.execute("SELECT session_id, amount_cents FROM sessions")
    }
    assert amounts == {"s1": 500, "s2": 800, "s3": None}


def test_balance_is_top_ups_minus_sessions_on_credit_machines(store: HubStore) -> None:
    assert balance(store, "m1") == 0
    add_credit(store, "m1", 1000, at=T0, note="top-up", by="s1")
    ingest_envelopes(store, [ended("s1", 600)], T0)  # laser1 requires credit: 500 spent
    ingest_envelopes(store, [ended("s2", 600, machine="laser2")], T0)  # invoiced instead
    assert balance(store, "m1") == 500
    with pytest.raises(TypeError):
        add_credit(store, "m1", 10.5, at=T0)  # type: ignore[arg-type]


def test_snapshot_tells_the_node_how_long_the_balance_lasts(store: HubStore) -> None:
    add_credit(store, "m1", 500, at=T0)
    s = snap(store, "laser1")
    assert s.machine.requires_credit is True
    assert s.members["m1"].credit_s == pytest.approx(600)  # 500 c at 50 c/min
    assert s.members["s1"].credit_s == 0.0  # no credit at all
    assert snap(store, "laser2").members["m1"].credit_s is None  # no credit needed there


def test_a_top_up_reaches_the_nodes(store: HubStore) -> None:
    before = data_version(store)
    add_credit(store, "m1", 500, at=T0)
    assert data_version(store) > before
