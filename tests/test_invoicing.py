"""Invoices over a real hub database: drafts, closing, numbering, hash chain, late
sessions and corrections, with property tests on how events reach the hub."""

from __future__ import annotations

import json
import sqlite3
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.billing.invoicing import (
    Invoice,
    build_drafts,
    close_period,
    closed_invoices,
    upsert_organisation,
    verify_chain,
)
from gateway.billing.pricing import install_tariffs
from gateway.billing.tariffs import Tariff, price_session, select_tariff
from gateway.config import GroupConfig, MachineConfig, Seed, SeedMember, SeedProject
from gateway.contract import Envelope
from gateway.core.clock import iso, parse_iso
from gateway.hub.catalogue import sync_catalogue
from gateway.hub.db import HubStore
from gateway.hub.events.ingest import ingest_envelopes
from gateway.hub.members import set_paid_by
from gateway.hub.seed import import_seed
from tests.support.builders import session_events

TZ = "Europe/Paris"
NOV = datetime(2026, 11, 3, 17, 0, 5, tzinfo=UTC)
CLOSED_AT = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)

GROUPS = (
    GroupConfig("laser", "Laser"),
    GroupConfig("cnc", "CNC"),
    GroupConfig("printing", "Impression 3D"),
)
MACHINES = (
    MachineConfig("laser1", "Laser Trotec", "laser", "laser"),
    MachineConfig("cnc1", "CNC", "cnc", "cnc"),
    MachineConfig("printer1", "Prusa", "printer", "printing"),
)
JAN = datetime(2026, 1, 1, tzinfo=UTC)
TARIFFS = (
    Tariff(valid_from=JAN, groups=("laser",), rate=50, name="Laser"),
    Tariff(
        valid_from=JAN, groups=("laser",), categories=("scolaire",), rate=30, name="Laser scolaire"
    ),
    # From December the laser costs more: a session is priced when it started.
    Tariff(
        valid_from=datetime(2026, 11, 30, 23, tzinfo=UTC),
        groups=("laser",),
        rate=60,
        name="Laser 2027",
    ),
    Tariff(
        valid_from=JAN,
        machines=("cnc1",),
        rate=33,
        startup=150,
        unit=5,
        vat_rate=Decimal("0.10"),
        name="CNC",
    ),
    # No tariff for printer1: its sessions are unpriced, never dropped.
)


def make_store(path: Path) -> HubStore:
    store = HubStore(path)
    sync_catalogue(store, list(GROUPS), list(MACHINES))
    import_seed(
        store,
        Seed(
            file=path.with_suffix(".yaml"),
            members=(
                SeedMember("m1", "Alice Martin", "adherent"),
                SeedMember("m2", "Chloé Élève", "scolaire"),
                SeedMember("m3", "Bruno Lefèvre", "adherent"),
            ),
            projects=(SeedProject("p1", "m1", "Lampe"), SeedProject("p2", "m1", "Boîte")),
        ),
    )
    upsert_organisation(store, "lycee", "Lycée Jules Verne", "school", "compta@lycee.fr")
    set_paid_by(store, "m2", "lycee")
    install_tariffs(store, TARIFFS)  # what the hub does at start, from its config
    return store


def independent_amounts(store: HubStore, tariffs: tuple[Tariff, ...] = TARIFFS) -> dict[str, int]:
    """What each closed session costs by the tariff policy alone (no stored price read):
    the reference the stored prices, invoices and exports are checked against."""
    groups = {m.id: m.group for m in MACHINES}
    out = {}
    for r in store.conn.execute(
        "SELECT s.session_id, s.machine_id, s.started_at, s.duration_s, s.busy_s, "
        "m.category FROM sessions s LEFT JOIN members m ON m.id = s.member_id "
        "WHERE s.status = 'closed'"
    ):
        tariff = select_tariff(
            tariffs,
            machine=r["machine_id"],
            group=groups.get(r["machine_id"], ""),
            category=r["category"] or "",
            at=parse_iso(r["started_at"]),
        )
        out[r["session_id"]] = (
            0
            if tariff is None
            else price_session(tariff, duration_s=r["duration_s"], busy_s=r["busy_s"]).total
        )
    return out


NOVEMBER_SESSIONS = [
    ("S1", NOV, 125.5, "m1", "laser1", "p1"),  # 3 min x 50 = 150
    ("S2", NOV + timedelta(hours=1), 600, "m1", "laser1", "p1"),  # 10 min x 50 = 500
    ("S3", NOV + timedelta(days=1), 61, "m1", "laser1", "p2"),  # 2 min x 50 = 100
    ("S4", NOV + timedelta(days=2), 1500, "m2", "laser1", None),  # 25 min x 30 = 750
    ("S5", NOV + timedelta(days=2), 3601, "m1", "cnc1", "p1"),  # 65 min x 33 + 150
    ("S6", NOV + timedelta(days=3), 7200, "m3", "printer1", None),  # no tariff: 0
    # 23:50 Paris on 30 November: November's price although it ends in December.
    ("S7", datetime(2026, 11, 30, 22, 50, tzinfo=UTC), 1200, "m3", "laser1", None),
]


def events_for(sessions: list[tuple]) -> list[Envelope]:
    out: list[Envelope] = []
    for i, (sid, start, duration, member, machine, project) in enumerate(sessions):
        out += session_events(sid, start, duration, member, machine, project, seq=2 * i + 1)
    return out


@pytest.fixture
def store(tmp_path: Path) -> Iterator[HubStore]:
    s = make_store(tmp_path / "hub.sqlite")
    ingest_envelopes(s, events_for(NOVEMBER_SESSIONS), NOV)
    try:
        yield s
    finally:
        s.close()


def by_payer(docs: list[Invoice]) -> dict[tuple[str, str, str], Invoice]:
    return {(d.kind, d.payer_kind, d.payer_id): d for d in docs}


def close(store: HubStore, period: str, at: datetime = CLOSED_AT) -> list[Invoice]:
    return close_period(store, period, by="compta", at=at, tz=TZ)


# -- drafts ------------------------------------------------------------------------------


def test_draft_lines_per_machine_and_project_with_amounts(store: HubStore) -> None:
    docs = by_payer(build_drafts(store, "2026-11", TZ))
    alice = docs["invoice", "member", "m1"]
    lines = {(ln.machine_id, ln.project_id): ln for ln in alice.lines}
    assert set(lines) == {("laser1", "p1"), ("laser1", "p2"), ("cnc1", "p1")}
    assert lines["laser1", "p1"].minutes == 13 and lines["laser1", "p1"].amount_ht == 650
    assert lines["laser1", "p1"].session_ids == ["S1", "S2"]
    assert lines["laser1", "p2"].amount_ht == 100
    # 61 started minutes -> 65 in 5-minute units, 65 x 33 + 150 start-up.
    assert lines["cnc1", "p1"].minutes == 65 and lines["cnc1", "p1"].amount_ht == 2295
    assert lines["cnc1", "p1"].vat_rate == Decimal("0.10")
    # VAT per rate on the sums: 750 x 20 % = 150, 2295 x 10 % = 229.5 -> 230.
    assert alice.vat_breakdown == ((Decimal("0.10"), 2295, 230), (Decimal("0.20"), 750, 150))
    assert (alice.total_ht, alice.total_vat, alice.total_ttc) == (3045, 380, 3425)
    assert alice.status == "draft" and alice.number is None


def test_an_organisation_pays_for_its_members(store: HubStore) -> None:
    docs = by_payer(build_drafts(store, "2026-11", TZ))
    school = docs["invoice", "organisation", "lycee"]
    assert school.payer_name == "Lycée Jules Verne"
    assert school.lines[0].session_ids == ["S4"] and school.total_ht == 750
    assert ("invoice", "member", "m2") not in docs


def test_a_session_without_tariff_is_kept_and_flagged(store: HubStore) -> None:
    bruno = by_payer(build_drafts(store, "2026-11", TZ))["invoice", "member", "m3"]
    printer = next(ln for ln in bruno.lines if ln.machine_id == "printer1")
    assert printer.unpriced and printer.amount_ht == 0 and printer.minutes == 120
    laser = next(ln for ln in bruno.lines if ln.machine_id == "laser1")
    assert not laser.unpriced and laser.amount_ht == 20 * 50  # November's rate


def test_a_session_is_priced_by_the_tariff_in_force_when_it_started(tmp_path: Path) -> None:
    with make_store(tmp_path / "hub.sqlite") as s:
        ingest_envelopes(
            s, session_events("D1", datetime(2026, 12, 5, 10, tzinfo=UTC), 60, "m1", "laser1"), NOV
        )
        (doc,) = build_drafts(s, "2026-12", TZ)
        assert doc.total_ht == 60


# -- closing -----------------------------------------------------------------------------


def test_closing_numbers_chains_and_is_idempotent(store: HubStore) -> None:
    drafts = build_drafts(store, "2026-11", TZ)
    docs = close(store, "2026-11")
    assert [d.number for d in docs] == [f"F2026-{n:06d}" for n in range(1, len(drafts) + 1)]
    assert [(d.payer_id, d.total_ttc) for d in docs] == [(d.payer_id, d.total_ttc) for d in drafts]
    assert docs[0].prev_hash == "0" * 64
    assert all(b.prev_hash == a.hash for a, b in zip(docs, docs[1:], strict=False))
    assert all(d.issued_at == iso(CLOSED_AT) and d.closed_by == "compta" for d in docs)
    again = close(store, "2026-11", at=CLOSED_AT + timedelta(days=3))
    assert [d.to_dict() for d in again] == [d.to_dict() for d in docs]
    assert store.conn.execute("SELECT count(*) FROM invoices").fetchone()[0] == len(docs)
    assert build_drafts(store, "2026-11", TZ) == []
    assert verify_chain(store) == []


def test_numbering_continues_without_gaps_across_periods(store: HubStore) -> None:
    nov = close(store, "2026-11")
    ingest_envelopes(
        store,
        session_events("D1", datetime(2026, 12, 5, 10, tzinfo=UTC), 60, "m1", "laser1", seq=100),
        NOV,
    )
    # An empty January is closed along with February.
    ingest_envelopes(
        store,
        session_events("F1", datetime(2027, 2, 5, 10, tzinfo=UTC), 60, "m1", "laser1", seq=200),
        NOV,
    )
    dec = close(store, "2026-12", at=datetime(2027, 1, 3, tzinfo=UTC))
    feb = close(store, "2027-02", at=datetime(2027, 3, 3, tzinfo=UTC))
    assert dec[0].number == f"F2026-{len(nov) + 1:06d}"
    assert [d.number for d in feb] == ["F2027-000001"]  # a new year starts at 1
    assert [r[0] for r in store.conn.execute("SELECT period FROM periods ORDER BY period")] == [
        "2026-11",
        "2026-12",
        "2027-01",
        "2027-02",
    ]
    assert verify_chain(store) == []


def test_an_earlier_open_month_with_sessions_must_be_closed_first(store: HubStore) -> None:
    ingest_envelopes(
        store,
        session_events("O1", datetime(2026, 10, 5, 10, tzinfo=UTC), 60, "m1", "laser1", seq=100),
        NOV,
    )
    assert all(not ln.late for d in build_drafts(store, "2026-11", TZ) for ln in d.lines)
    with pytest.raises(ValueError, match="close 2026-10 before 2026-11"):
        close(store, "2026-11")
    assert store.conn.execute("SELECT count(*) FROM invoices").fetchone()[0] == 0
    close(store, "2026-10")
    close(store, "2026-11")
    assert verify_chain(store) == []


def test_closed_documents_refuse_updates_and_deletes(store: HubStore) -> None:
    close(store, "2026-11")
    for sql in (
        "UPDATE invoices SET total_ht = 1",
        "DELETE FROM invoices",
        "UPDATE invoice_lines SET amount_ht = 1",
        "DELETE FROM invoiced_sessions",
        "UPDATE periods SET status = 'open'",
    ):
        with pytest.raises(sqlite3.DatabaseError, match="append-only|stays closed"), store.atomic():
            store.conn.execute(sql)
    assert verify_chain(store) == []


@pytest.mark.parametrize(
    "tamper",
    [
        "UPDATE invoices SET total_ht = total_ht + 100 WHERE number = 'F2026-000001'",
        "UPDATE invoices SET content = replace(content, '\"amount_ht\":650', '\"amount_ht\":65')"
        " WHERE number = 'F2026-000001'",
        "UPDATE invoice_lines SET amount_ht = 1 WHERE invoice_number = 'F2026-000002'",
        "DELETE FROM invoiced_sessions WHERE session_id = 'S4'",
        "DELETE FROM invoices WHERE number = 'F2026-000002'",
        "UPDATE invoices SET prev_hash = hash WHERE number = 'F2026-000003'",
    ],
)
def test_tampering_with_a_closed_document_is_detected(store: HubStore, tamper: str) -> None:
    close(store, "2026-11")
    store.conn.execute("PRAGMA foreign_keys = OFF")  # no effect inside a transaction
    with store.atomic():
        for (name,) in store.conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE '%frozen%'"
        ).fetchall():
            store.conn.execute(f"DROP TRIGGER {name}")
        store.conn.execute(tamper)
    assert verify_chain(store) != []


# -- late sessions and corrections ------------------------------------------------------


def test_a_late_session_lands_in_the_open_period_marked_late(store: HubStore) -> None:
    nov = close(store, "2026-11")
    # A node was offline: a 28 November session reaches the hub in December.
    ingest_envelopes(
        store,
        session_events(
            "L1", datetime(2026, 11, 28, 15, tzinfo=UTC), 300, "m1", "laser1", "p1", seq=100
        ),
        CLOSED_AT + timedelta(days=1),
    )
    ingest_envelopes(
        store,
        session_events(
            "D1", datetime(2026, 12, 5, 10, tzinfo=UTC), 60, "m1", "laser1", "p1", seq=200
        ),
        CLOSED_AT + timedelta(days=3),
    )
    (dec,) = build_drafts(store, "2026-12", TZ)
    late = [ln for ln in dec.lines if ln.late]
    assert [ln.session_ids for ln in late] == [["L1"]]
    assert late[0].amount_ht == 5 * 50  # November's price, when it started
    assert [ln.session_ids for ln in dec.lines if not ln.late] == [["D1"]]
    assert [d.to_dict() for d in closed_invoices(store, "2026-11", "2026-11")] == [
        d.to_dict() for d in nov
    ]
    (closed,) = close(store, "2026-12", at=datetime(2027, 1, 2, tzinfo=UTC))
    assert any(ln.late for ln in closed.lines)
    assert verify_chain(store) == []


def net_billed(store: HubStore) -> dict[str, int]:
    return {
        r[0]: r[1]
        for r in store.conn.execute(
            "SELECT session_id, sum(amount) FROM invoiced_sessions GROUP BY session_id"
        )
    }


def test_a_session_moved_to_another_project_gets_a_credit_note(store: HubStore) -> None:
    close(store, "2026-11")
    store.conn.execute("UPDATE sessions SET project_id = 'p2' WHERE session_id = 'S1'")
    store.conn.commit()
    docs = by_payer(build_drafts(store, "2026-12", TZ))
    credit = docs["credit_note", "member", "m1"]
    assert [(ln.project_id, ln.amount_ht, ln.correction) for ln in credit.lines] == [
        ("p1", -150, True)
    ]
    assert credit.total_vat == -30 and credit.total_ttc == -180
    rebill = docs["invoice", "member", "m1"]
    assert [(ln.project_id, ln.amount_ht, ln.correction) for ln in rebill.lines] == [
        ("p2", 150, True)
    ]
    closed = close(store, "2026-12", at=datetime(2027, 1, 2, tzinfo=UTC))
    assert {d.number for d in closed} == {"F2026-000004", "AV2026-000001"}
    assert net_billed(store)["S1"] == 150
    assert build_drafts(store, "2027-01", TZ) == []  # nothing left to correct
    assert verify_chain(store) == []


def test_a_repriced_session_is_credited_and_billed_again(store: HubStore) -> None:
    close(store, "2026-11")
    cheaper = (
        Tariff(
            valid_from=JAN,
            machines=("cnc1",),
            rate=20,
            vat_rate=Decimal("0.10"),
            name="CNC corrigé",
        ),
        *TARIFFS[:3],
    )
    # The corrected price list reaches the hub (at its start) and re-prices explicitly.
    assert install_tariffs(store, cheaper) is not None
    docs = by_payer(build_drafts(store, "2026-12", TZ))
    assert docs["credit_note", "member", "m1"].total_ht == -2295
    assert docs["invoice", "member", "m1"].total_ht == 61 * 20
    close_period(store, "2026-12", by="compta", at=datetime(2027, 1, 2, tzinfo=UTC), tz=TZ)
    assert net_billed(store)["S5"] == 61 * 20
    assert verify_chain(store) == []


def test_a_new_payer_does_not_rewrite_past_invoices(store: HubStore) -> None:
    close(store, "2026-11")
    set_paid_by(store, "m1", "lycee")
    assert build_drafts(store, "2026-12", TZ) == []


# -- properties --------------------------------------------------------------------------


def _fingerprint(docs: list[Invoice]) -> list[dict]:
    return [d.to_dict() for d in docs]


def _drafts_after(batches: list[list[Envelope]]) -> list[dict]:
    with tempfile.TemporaryDirectory() as tmp, make_store(Path(tmp) / "hub.sqlite") as s:
        for batch in batches:
            ingest_envelopes(s, batch, NOV)
        return _fingerprint(build_drafts(s, "2026-11", TZ))


EVENTS = events_for(NOVEMBER_SESSIONS)
EXPECTED = _drafts_after([EVENTS])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    order=st.permutations(range(len(EVENTS))),
    dupes=st.lists(st.integers(0, len(EVENTS) - 1), max_size=6),
    cuts=st.sets(st.integers(1, len(EVENTS) + 5), max_size=4),
)
def test_splitting_reordering_or_duplicating_events_never_changes_an_invoice(
    order: list[int], dupes: list[int], cuts: set[int]
) -> None:
    stream = [EVENTS[i] for i in order] + [EVENTS[i] for i in dupes]
    bounds = [0, *sorted(c for c in cuts if c < len(stream)), len(stream)]
    batches = [stream[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]
    assert _drafts_after(batches) == EXPECTED


session_strategy = st.tuples(
    st.integers(0, 24 * 90),  # hour offset from 1 October 2026
    st.floats(0, 4 * 3600, allow_nan=False),
    st.sampled_from(["m1", "m2", "m3"]),
    st.sampled_from(["laser1", "cnc1", "printer1"]),
    st.sampled_from([None, "p1", "p2"]),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sessions=st.lists(session_strategy, max_size=25), late=st.lists(session_strategy, max_size=5)
)
def test_closing_month_after_month_bills_every_session_once(
    sessions: list[tuple], late: list[tuple]
) -> None:
    base = datetime(2026, 10, 1, tzinfo=UTC)
    rows = [
        (f"S{i}", base + timedelta(hours=h), d, m, mc, p)
        for i, (h, d, m, mc, p) in enumerate(sessions)
    ]
    late_rows = [
        (f"L{i}", base + timedelta(hours=h), d, m, mc, p) for i, (h, d, m, mc, p) in enumerate(late)
    ]
    with tempfile.TemporaryDirectory() as tmp, make_store(Path(tmp) / "hub.sqlite") as s:
        ingest_envelopes(s, events_for(rows), base)
        periods = ["2026-10", "2026-11", "2026-12", "2027-01", "2027-02"]
        for i, period in enumerate(periods):
            at = datetime(2027, 3, 1, tzinfo=UTC) + timedelta(days=i)
            first = close_period(s, period, by="t", at=at, tz=TZ)
            again = close_period(s, period, by="t", at=at, tz=TZ)
            assert _fingerprint(first) == _fingerprint(again)
            if i == 1:  # offline nodes catch up after November was closed
                ingest_envelopes(s, events_for(late_rows), at)
        numbers = [r[0] for r in s.conn.execute("SELECT number FROM invoices ORDER BY seq")]
        for prefix in ("F2026", "F2027", "AV2026", "AV2027"):
            mine = [int(n.rsplit("-", 1)[1]) for n in numbers if n.startswith(prefix + "-")]
            assert mine == list(range(1, len(mine) + 1))
        assert verify_chain(s) == []
        assert net_billed(s) == independent_amounts(s)
        late_ids = [
            sid
            for (ids,) in s.conn.execute("SELECT session_ids FROM invoice_lines WHERE late = 1")
            for sid in json.loads(ids)
        ]
        assert all(sid.startswith("L") for sid in late_ids)
