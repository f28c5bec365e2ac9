"""One pricing path: sessions priced at close from the hub database's tariffs, stored, and
re-priced only explicitly; every reader (invoices, exports, balances, report) agrees.

Real SQLite files throughout; the reference amounts come from the tariff policy alone
(``independent_amounts``), never from a stored price.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import tempfile
from collections import defaultdict
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import sqlite_utils
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.billing import pricing
from gateway.billing.credit import add_credit, balance
from gateway.billing.exports import usage_export
from gateway.billing.invoicing import Invoice, build_drafts, close_period
from gateway.billing.pricing import (
    EMPTY_FINGERPRINT,
    install_tariffs,
    load_tariffs,
    reprice_sessions,
    stale_sessions,
    stored_fingerprint,
)
from gateway.billing.tariffs import Tariff
from gateway.config import MachineConfig, Seed, SeedMember
from gateway.hub import audit
from gateway.hub.catalogue import sync_catalogue
from gateway.hub.db import HubStore, data_version
from gateway.hub.events.ingest import ingest_envelopes
from gateway.hub.report import activity_report
from gateway.hub.schema import MIGRATIONS
from gateway.hub.seed import import_seed
from tests.support.builders import session_events
from tests.test_exports import cents, hub_config, write_hub_yaml
from tests.test_invoicing import (
    GROUPS,
    JAN,
    NOV,
    TARIFFS,
    TZ,
    events_for,
    independent_amounts,
    make_store,
)

CREDIT = 1_000_000
# laser1 requires prepaid credit, so its sessions are what balances are made of.
CREDIT_MACHINES = (
    MachineConfig("laser1", "Laser Trotec", "laser", "laser", requires_credit=True),
    MachineConfig("cnc1", "CNC", "cnc", "cnc"),
    MachineConfig("printer1", "Prusa", "printer", "printing"),
)


def credit_store(path: Path, tariffs: tuple[Tariff, ...] = TARIFFS) -> HubStore:
    store = make_store(path)
    sync_catalogue(store, list(GROUPS), list(CREDIT_MACHINES))
    install_tariffs(store, tariffs)
    for member in ("m1", "m2", "m3"):
        add_credit(store, member, CREDIT, at=NOV)
    return store


def amounts(store: HubStore) -> dict[str, int | None]:
    return {
        r[0]: r[1]
        for r in store.conn.execute(
            "SELECT session_id, amount_cents FROM sessions WHERE status = 'closed'"
        )
    }


def draft_amounts(docs: list[Invoice]) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for doc in docs:
        for line in doc.lines:
            for sid, _minutes, amount in line.sessions:
                out[sid] += amount
    return dict(out)


def net_billed(store: HubStore) -> dict[str, int]:
    return {
        r[0]: r[1]
        for r in store.conn.execute(
            "SELECT session_id, sum(amount) FROM invoiced_sessions GROUP BY session_id"
        )
    }


def usage_amounts(store: HubStore, granularity: str) -> dict[str, int]:
    """Per session, the amounts of the usage export (JSON, or the per-minute CSV)."""
    start, end = datetime(2026, 9, 1, tzinfo=UTC), datetime(2027, 2, 1, tzinfo=UTC)
    out: dict[str, int] = defaultdict(int)
    if granularity == "session":
        text = "".join(
            usage_export(store, start, end, granularity="session", group_by=(), fmt="json", tz=TZ)
        )
        for row in json.loads(text)["rows"]:
            out[row["session_id"]] += row["amount"]
    else:
        text = "".join(
            usage_export(store, start, end, granularity="minute", group_by=(), fmt="csv", tz=TZ)
        )
        for row in csv.DictReader(io.StringIO(text, newline="")):
            out[row["session_id"]] += cents(row["amount"], "csv")
    return dict(out)


def audit_actions(store: HubStore) -> list[str]:
    return [e["action"] for e in reversed(audit.entries(store, limit=1000))]


# -- where prices come from ------------------------------------------------------------


def test_any_connection_prices_at_ingest_from_the_database_tariffs(tmp_path: Path) -> None:
    db = tmp_path / "hub.sqlite"
    make_store(db).close()  # the hub installed TARIFFS at its start
    with HubStore(db) as store:  # a store that never saw a configuration
        ingest_envelopes(store, session_events("S1", NOV, 125.5, "m1", "laser1"), NOV)
        row = store.conn.execute(
            "SELECT amount_cents, priced_minutes, vat_rate, "
            "price_category, priced_with FROM sessions"
        ).fetchone()
        assert tuple(row) == (150, 3, "0.20", "adherent", stored_fingerprint(store))
    # Another process installs corrected tariffs: an open store's next ingest uses them.
    with HubStore(db) as ingest, HubStore(db) as admin:
        ingest_envelopes(ingest, session_events("S2", NOV, 60, "m1", "laser1", seq=3), NOV)
        dearer = (Tariff(valid_from=JAN, groups=("laser",), rate=70, name="Laser"), *TARIFFS[1:])
        install_tariffs(admin, dearer, actor="admin")
        ingest_envelopes(ingest, session_events("S3", NOV, 60, "m1", "laser1", seq=5), NOV)
        got = amounts(ingest)
    assert got == {"S1": 3 * 70, "S2": 70, "S3": 70}  # S1 and S2 re-priced at install


def test_without_any_tariff_sessions_are_unpriced_not_free(tmp_path: Path) -> None:
    with HubStore(tmp_path / "hub.sqlite") as store:
        sync_catalogue(store, list(GROUPS), list(CREDIT_MACHINES))
        ingest_envelopes(store, session_events("S1", NOV, 600, "m1", "laser1"), NOV)
        assert amounts(store) == {"S1": None}
        assert stale_sessions(store) == 0  # priced, with the empty set
        assert tuple(
            store.conn.execute("SELECT priced_with, priced_minutes FROM sessions").fetchone()
        ) == (EMPTY_FINGERPRINT, 10)
        (doc,) = build_drafts(store, "2026-11", TZ)
        assert doc.lines[0].unpriced and doc.lines[0].amount_ht == 0
        header = next(
            usage_export(
                store,
                NOV,
                NOV + timedelta(days=1),
                granularity="minute",
                group_by=(),
                fmt="csv",
                tz=TZ,
            )
        )
        assert "amount" not in header.splitlines()[0]


def test_tariffs_round_trip_through_the_table_exactly(tmp_path: Path) -> None:
    odd = Tariff(
        valid_from=datetime(2026, 3, 29, 1, 30, tzinfo=UTC),
        machines=("cnc1",),
        categories=("adherent", "scolaire"),
        busy_rate=75,
        idle_rate=3,
        startup=1250,
        minimum=2000,
        unit=15,
        free_under_s=9.5,
        material_per_gram=Decimal("4.25"),
        vat_rate=Decimal("0.055"),
        name="Odd",
    )
    with HubStore(tmp_path / "hub.sqlite") as store:
        install_tariffs(store, (*TARIFFS, odd))
        assert load_tariffs(store) == (*TARIFFS, odd)
        assert stored_fingerprint(store) == pricing.fingerprint((*TARIFFS, odd))


# -- explicit re-pricing ---------------------------------------------------------------


def test_installing_the_same_tariffs_again_changes_nothing(tmp_path: Path) -> None:
    with credit_store(tmp_path / "hub.sqlite") as store:
        ingest_envelopes(
            store,
            events_for(
                [
                    ("S1", NOV, 600, "m1", "laser1", None),
                    ("D1", datetime(2026, 12, 5, 10, tzinfo=UTC), 600, "m1", "laser1", None),
                ]
            ),
            NOV,
        )
        version = data_version(store)
        actions = audit_actions(store)
        assert install_tariffs(store, TARIFFS) is None
        assert audit_actions(store) == actions and data_version(store) == version
        # A tariff from December on: only sessions from then on are looked at again.
        later = (
            *TARIFFS,
            Tariff(
                valid_from=datetime(2026, 12, 1, tzinfo=UTC),
                machines=("laser1",),
                rate=90,
                name="Laser 1 2027",
            ),
        )
        result = install_tariffs(store, later, actor="hub")
        assert result is not None and result.since == datetime(2026, 12, 1, tzinfo=UTC)
        assert (result.sessions, result.changed, result.delta_cents) == (1, 1, 10 * 30)
        assert amounts(store) == {"S1": 500, "D1": 900}
        assert stale_sessions(store) == 0  # S1 was stamped with the new set too
        assert audit_actions(store)[-2:] == ["tariffs.synced", "sessions.repriced"]
        entry = audit.entries(store, limit=1)[0]
        assert entry["actor"] == "hub" and entry["details"]["changed"] == 1
        assert data_version(store) > version  # balances changed: new snapshots
        assert audit.verify(store) == []


def test_a_category_change_reprices_nothing_until_asked(tmp_path: Path) -> None:
    with credit_store(tmp_path / "hub.sqlite") as store:
        # scolaire: 30
        ingest_envelopes(store, session_events("S4", NOV, 1500, "m2", "laser1"), NOV)
        assert amounts(store) == {"S4": 750}
        import_seed(
            store,
            Seed(
                file=tmp_path / "seed.yaml", members=(SeedMember("m2", "Chloé Élève", "adherent"),)
            ),
            update=True,
        )
        # Her next session is priced as an adherent; the closed one keeps its price ...
        ingest_envelopes(
            store, session_events("S8", NOV + timedelta(days=1), 60, "m2", "laser1", seq=3), NOV
        )
        assert amounts(store) == {"S4": 750, "S8": 50}
        assert balance(store, "m2") == CREDIT - 800
        # ... through a tariff change elsewhere and even a full re-pricing ...
        other = (
            *TARIFFS,
            Tariff(valid_from=JAN, machines=("printer1",), rate=2, name="Impression"),
        )
        assert install_tariffs(store, other) is not None
        assert reprice_sessions(store).changed == 0
        assert amounts(store)["S4"] == 750
        assert draft_amounts(build_drafts(store, "2026-11", TZ)) == {"S4": 750, "S8": 50}
        # ... until an operator asks for today's categories.
        result = reprice_sessions(
            store, member="m2", current_categories=True, actor="compta", reason="wrong category"
        )
        assert (result.changed, result.delta_cents) == (1, 25 * 50 - 750)
        assert amounts(store) == {"S4": 1250, "S8": 50}
        assert balance(store, "m2") == CREDIT - 1300
        assert draft_amounts(build_drafts(store, "2026-11", TZ)) == {"S4": 1250, "S8": 50}
        last = audit.entries(store, limit=1)[0]
        assert (last["action"], last["actor"], last["subject"]) == (
            "sessions.repriced",
            "compta",
            "m2",
        )


def test_a_billed_session_repriced_gets_a_credit_note_not_an_edit(tmp_path: Path) -> None:
    with credit_store(tmp_path / "hub.sqlite") as store:
        ingest_envelopes(store, session_events("S5", NOV, 3601, "m1", "cnc1"), NOV)  # 65 x 33 + 150
        (nov,) = close_period(
            store, "2026-11", by="compta", at=datetime(2026, 12, 2, tzinfo=UTC), tz=TZ
        )
        assert nov.total_ht == 2295
        corrected = (
            *TARIFFS[:3],
            Tariff(
                valid_from=JAN,
                machines=("cnc1",),
                rate=30,
                startup=150,
                unit=5,
                vat_rate=Decimal("0.20"),
                name="CNC",
            ),
        )
        install_tariffs(store, corrected)
        docs = {d.kind: d for d in build_drafts(store, "2026-12", TZ)}
        assert docs["credit_note"].total_ht == -2295
        assert docs["credit_note"].lines[0].vat_rate == Decimal("0.10")  # as billed
        assert docs["invoice"].total_ht == 65 * 30 + 150
        assert docs["invoice"].lines[0].vat_rate == Decimal("0.20")  # the stored new rate


def test_sessions_from_before_stored_prices_are_priced_by_the_hub(tmp_path: Path) -> None:
    db = tmp_path / "hub.sqlite"
    legacy = sqlite_utils.Database(db)
    MIGRATIONS.apply(legacy, stop_before="0011_stored_prices")
    legacy.execute("INSERT INTO groups (id, name) VALUES ('laser', 'Laser')")
    legacy.execute(
        "INSERT INTO machines (id, name, kind, group_id) "
        "VALUES ('laser1', 'Laser', 'laser', 'laser')"
    )
    legacy.execute("INSERT INTO members (id, name, category) VALUES ('m2', 'C', 'scolaire')")
    # Priced by whatever tariffs the writing process happened to be opened with.
    legacy.execute(
        "INSERT INTO sessions (session_id, node, machine_id, member_id, "
        "started_at, ended_at, duration_s, billable_minutes, status, "
        "first_event_at, amount_cents) VALUES ('old', 'laser1', 'laser1', 'm2', "
        "'2026-11-03T17:00:05.000Z', '2026-11-03T17:25:05.000Z', 1500, 25, "
        "'closed', '2026-11-03T17:00:05.000Z', 12345)"
    )
    legacy.conn.commit()
    legacy.close()
    with HubStore(db) as store:
        assert amounts(store) == {"old": None}  # not kept, not billed at a guessed VAT
        (doc,) = build_drafts(store, "2026-11", TZ)
        assert doc.lines[0].unpriced
        assert store.conn.execute("SELECT price_category FROM sessions").fetchone()[0] == "scolaire"
        install_tariffs(store, TARIFFS)  # the hub's start
        assert amounts(store) == {"old": 25 * 30}
        assert stale_sessions(store) == 0


def test_the_hub_installs_its_tariffs_at_start(tmp_path: Path) -> None:
    from gateway.hub.service import HubService

    db = tmp_path / "hub.sqlite"
    with HubStore(db) as store:  # sessions from before any tariff
        sync_catalogue(store, list(GROUPS), list(CREDIT_MACHINES))
        ingest_envelopes(store, session_events("S1", NOV, 600, "m1", "laser1"), NOV)
        assert amounts(store) == {"S1": None}
    cfg = hub_config(tmp_path, db)
    cfg = replace(cfg, mqtt=replace(cfg.mqtt, client_id="hub-test"))
    HubService(cfg)  # never started: no broker needed
    with HubStore(db) as store:
        assert load_tariffs(store) == TARIFFS
        assert amounts(store) == {"S1": 500}
        assert "sessions.repriced" in audit_actions(store)


def test_fabgate_reprice(tmp_path: Path) -> None:
    db = tmp_path / "hub.sqlite"
    with make_store(db) as store:
        ingest_envelopes(store, session_events("S4", NOV, 1500, "m2", "laser1"), NOV)
        import_seed(
            store,
            Seed(
                file=tmp_path / "seed.yaml", members=(SeedMember("m2", "Chloé Élève", "adherent"),)
            ),
            update=True,
        )
    config = write_hub_yaml(tmp_path, db)

    def fabgate(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "gateway", "reprice", "--config", str(config), *args],
            capture_output=True,
            text=True,
            timeout=60,
        )

    r = fabgate("--since", "2026-11-01")
    assert r.returncode == 0, r.stderr
    assert "1 closed sessions since 2026-10-31T23:00:00.000Z: 0 changed" in r.stdout
    r = fabgate("--member", "m2", "--current-categories", "--by", "compta")
    assert r.returncode == 0, r.stderr
    assert "1 changed, +5,00" in r.stdout
    with HubStore(db) as store:
        assert amounts(store) == {"S4": 1250}
    assert fabgate("--since", "yesterday").returncode == 2
    assert fabgate("--member", "nobody").returncode == 2


# -- every reader agrees ---------------------------------------------------------------

CORRECTIONS = {
    # the laser rate corrected in place
    "laser rate": (Tariff(valid_from=JAN, groups=("laser",), rate=55, name="Laser"), *TARIFFS[1:]),
    # the CNC's VAT rate and start-up fee corrected
    "cnc vat": (
        *TARIFFS[:3],
        Tariff(
            valid_from=JAN,
            machines=("cnc1",),
            rate=33,
            startup=200,
            unit=5,
            vat_rate=Decimal("0.20"),
            name="CNC",
        ),
    ),
    # a general tariff from mid-November: the printer gets a price from then on
    "new general": (
        *TARIFFS,
        Tariff(valid_from=datetime(2026, 11, 15, tzinfo=UTC), rate=7, free_under_s=30, name="Tout"),
    ),
    # the school price withdrawn
    "no school price": (TARIFFS[0], *TARIFFS[2:]),
}
session_strategy = st.tuples(
    st.integers(0, 24 * 91 - 1),  # hour offset from 1 October 2026
    st.floats(0, 3 * 3600, allow_nan=False),
    st.sampled_from(["m1", "m2", "m3"]),
    st.sampled_from(["laser1", "cnc1", "printer1"]),
)
PERIODS = ("2026-10", "2026-11", "2026-12")


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sessions=st.lists(session_strategy, min_size=1, max_size=12),
    correction=st.sampled_from(sorted(CORRECTIONS)),
    close_october=st.booleans(),
)
def test_after_a_correction_and_a_reprice_every_reader_agrees_to_the_cent(
    sessions: list[tuple], correction: str, close_october: bool
) -> None:
    base = datetime(2026, 10, 1, tzinfo=UTC)
    rows = [
        (f"S{i:02d}", base + timedelta(hours=h), d, m, mc, None)
        for i, (h, d, m, mc) in enumerate(sessions)
    ]
    corrected = CORRECTIONS[correction]
    with tempfile.TemporaryDirectory() as tmp, credit_store(Path(tmp) / "hub.sqlite") as s:
        ingest_envelopes(s, events_for(rows), base)
        if close_october:
            close_period(s, "2026-10", by="t", at=datetime(2026, 11, 2, tzinfo=UTC), tz=TZ)
        install_tariffs(s, corrected)
        want = independent_amounts(s, corrected)
        assert {k: v or 0 for k, v in amounts(s).items()} == want
        # Prepaid balances: the sessions on laser1, the credit machine.
        for member in ("m1", "m2", "m3"):
            spent = sum(
                want[sid] for sid, _t, _d, m, mc, _p in rows if m == member and mc == "laser1"
            )
            assert balance(s, member) == CREDIT - spent
        # The activity report's revenue, per machine and in total.
        report = activity_report(s, date(2026, 9, 1), date(2027, 2, 1), TZ, {})
        assert (report.revenue_cents or 0) == sum(want.values())
        for machine in report.machines:
            assert (machine.revenue_cents or 0) == sum(
                want[sid] for sid, _t, _d, _m, mc, _p in rows if mc == machine.machine_id
            )
        # The usage export, per session and per minute.
        assert usage_amounts(s, "session") == want
        assert usage_amounts(s, "minute") == {
            sid: a for sid, a in want.items() if any(r[0] == sid and r[2] > 0 for r in rows)
        }
        # The invoice drafts, then what closing every month bills, credit notes included.
        if not close_october:
            drafts: dict[str, int] = {}
            for period in PERIODS:
                drafts.update(draft_amounts(build_drafts(s, period, TZ)))
            assert drafts == want
        for i, period in enumerate(PERIODS):
            close_period(s, period, by="t", at=datetime(2027, 1, 5 + i, tzinfo=UTC), tz=TZ)
        assert net_billed(s) == want


def test_readers_refuse_nothing_on_an_unknown_machine(tmp_path: Path) -> None:
    """A node's machine the hub does not know yet is priced by a general tariff, like
    any other, and shows the same amount everywhere (usage is money)."""
    general = (*TARIFFS, Tariff(valid_from=JAN, rate=5, name="Tout"))
    with credit_store(tmp_path / "hub.sqlite", general) as store:
        ingest_envelopes(store, session_events("X1", NOV, 120, "m1", "mystery"), NOV)
        assert amounts(store) == {"X1": 10}
        assert draft_amounts(build_drafts(store, "2026-11", TZ)) == {"X1": 10}
        assert usage_amounts(store, "session") == {"X1": 10}
