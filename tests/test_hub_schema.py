"""The hub's migrations: declared in name order, and that order changes no database.

sqlite-utils applies the migrations of a set in declaration order and records each by
name. ``0005_accounts`` was once declared after 0006 and 0007; it is now declared in name
order. A fresh database must come out the same either way (its tables, indexes, triggers
and their SQL), and a database made under the old order - whole, or stopped before 0005
as one made before the accounts existed - must need nothing, or only what it lacks.
"""

from __future__ import annotations

from pathlib import Path

import sqlite_utils

from gateway.hub.db import HubStore
from gateway.hub.schema import MIGRATIONS, STEPS

# The declaration order before the migrations were put in name order.
HISTORIC_ORDER = (
    "0001_initial",
    "0002_jobs_and_busy_time",
    "0003_billing",
    "0004_prepaid_credit",
    "0006_enrolment_and_lapse",
    "0007_members_joined_at",
    "0005_accounts",
    "0008_usage_indexes",
    "0009_node_status_received_at",
    "0010_trust",
    "0011_stored_prices",
    "0012_sessions_start_order",
    "0015_payments",
    "0017_session_material",
    "0013_rgpd",
    "0016_administration",
    "0014_alerts_and_metrics",
    "0018_machine_rules",
)


def historic_migrations() -> sqlite_utils.Migrations:
    """The same migration set, declared in the historic order."""
    steps = dict(STEPS)
    historic = sqlite_utils.Migrations(MIGRATIONS.name)
    for name in HISTORIC_ORDER:
        historic(name=name)(steps[name])
    return historic


def schema(path: Path) -> set[tuple[str, str, str, str | None]]:
    """Every table, index and trigger with its SQL (root pages and order left out)."""
    db = sqlite_utils.Database(path)
    try:
        return {
            (r[0], r[1], r[2], r[3])
            for r in db.execute(
                "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"
            )
        }
    finally:
        db.close()


def applied(path: Path) -> list[str]:
    db = sqlite_utils.Database(path)
    try:
        return [m.name for m in MIGRATIONS.applied(db)]
    finally:
        db.close()


def test_migrations_are_declared_in_name_order_and_every_one_is_kept() -> None:
    names = [name for name, _ in STEPS]
    assert names == sorted(names)
    assert sorted(names) == sorted(HISTORIC_ORDER)  # no name lost, renamed or added here
    fresh = sqlite_utils.Database(memory=True)
    assert [m.name for m in MIGRATIONS.pending(fresh)] == names


def test_a_fresh_database_is_the_same_in_either_order(tmp_path: Path) -> None:
    HubStore(tmp_path / "now.db").close()
    old = sqlite_utils.Database(tmp_path / "then.db")
    historic_migrations().apply(old)
    old.close()
    now, then = schema(tmp_path / "now.db"), schema(tmp_path / "then.db")
    assert {name for _, name, _, _ in now} >= {
        "members",
        "accounts",
        "audit_log",
        "enrolments",
        "tariffs",
    }
    assert now == then
    assert applied(tmp_path / "now.db") == sorted(HISTORIC_ORDER)
    assert applied(tmp_path / "then.db") == list(HISTORIC_ORDER)


def test_databases_made_under_the_old_order_need_nothing_more(tmp_path: Path) -> None:
    whole = tmp_path / "whole.db"
    db = sqlite_utils.Database(whole)
    historic_migrations().apply(db)
    db.close()
    before = schema(whole)
    HubStore(whole).close()  # applies what is pending: nothing
    assert schema(whole) == before
    assert applied(whole) == list(HISTORIC_ORDER)


def test_a_database_from_before_the_accounts_gets_them_and_ends_the_same(tmp_path: Path) -> None:
    early = tmp_path / "early.db"
    db = sqlite_utils.Database(early)
    historic_migrations().apply(db, stop_before="0005_accounts")
    db.close()
    assert "0005_accounts" not in applied(early)
    assert "0007_members_joined_at" in applied(early)
    HubStore(early).close()
    HubStore(tmp_path / "fresh.db").close()
    assert schema(early) == schema(tmp_path / "fresh.db")
    assert sorted(applied(early)) == sorted(HISTORIC_ORDER)
