"""Retention: the hub deletes each kind of record once it is older than the config says.

Real SQLite files, node events through the real ingest, and ``now`` handed in: the same
history is looked at a month later, three months later, 400 days later and ten years
later, and each time exactly what is past its retention goes. The audit log keeps a
verifiable chain across a purge (a checkpoint the next entry vouches for), and tampering
with what is left, or with the checkpoint, is still seen.
"""

from __future__ import annotations

import io
import sqlite3
from contextlib import redirect_stdout
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from gateway.cli import main
from gateway.config import (
    ConfigError,
    GroupConfig,
    Keep,
    MachineConfig,
    MqttConfig,
    RetentionConfig,
    load_hub_config,
)
from gateway.contract import Envelope
from gateway.core.clock import iso, utcnow
from gateway.core.months import add_months
from gateway.core.sdnotify import Watchdog
from gateway.core.supervise import Supervisor
from gateway.hub import accounts, audit, members, retention, sessions
from gateway.hub.catalogue import sync_catalogue
from gateway.hub.db import HubStore
from gateway.hub.events.ingest import ingest_envelopes
from gateway.hub.service import (
    RETENTION_EVERY_S,
    RETENTION_FIRST_S,
    RETENTION_RETRY_S,
    HubService,
)
from tests.support import builders
from tests.support.clock import AheadMono, FakeClock
from tests.support.harness import poll_until
from tests.support.mosquitto import MosquittoProcess

GROUPS = (GroupConfig("laser", "Laser"),)
MACHINES = (
    MachineConfig("laser1", "Laser", "laser", "laser"),
    MachineConfig("cnc1", "CNC", "cnc", "laser"),
)
T0 = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
UID = "04AB12CD"


def tap(node: str, seq: int, at: datetime, action: str, reason: str) -> Envelope:
    return Envelope.new(
        node=node,
        seq=seq,
        boot="b",
        type="tap",
        time=at,
        data={"uid": UID, "member_id": "m1", "action": action, "reason": reason},
    )


def boot(node: str, seq: int, at: datetime) -> Envelope:
    return Envelope.new(
        node=node, seq=seq, boot="b", type="node.boot", time=at, data={"version": "t"}
    )


def make_hub(path: Path) -> HubStore:
    store = HubStore(path)
    sync_catalogue(store, list(GROUPS), list(MACHINES))
    with store.atomic():
        members.add_member(
            store,
            "m1",
            name="Alice Martin",
            category="adherent",
            status="active",
            membership_end=None,
            staff=False,
            email="alice@example.org",
        )
        members.add_badge(store, UID, "m1")
    return store


def history(store: HubStore) -> None:
    """Taps, a denial, a session, a boot and a refused message at T0; a tap 80 days
    later; audit entries at T0 and five years on; a log-in failure at T0."""
    session = builders.session_events("S1", T0, 600, "m1", "laser1", seq=3)
    forged = builders.session_events("S-forged", T0, 60, "m1", "laser1", seq=1)[0]
    forged = Envelope.new(
        node="cnc1", seq=1, boot="b", type=forged.type, time=T0, data=forged.data
    )  # cnc1 speaking for laser1: refused
    ingest_envelopes(
        store,
        [
            tap("laser1", 1, T0, "start", "allowed"),
            tap("laser1", 2, T0, "deny", "not_certified"),
            *session,
            boot("laser1", 5, T0),
            forged,
        ],
        T0,
    )
    later = T0 + timedelta(days=80)
    ingest_envelopes(store, [tap("laser1", 6, later, "deny", "in_use")], later)
    for i in range(3):
        audit.record(store, "fab", "role.granted", "m1", {"i": i}, at=T0 + timedelta(minutes=i))
    audit.record(store, "fab", "role.revoked", "m1", {}, at=add_months(T0, 60))
    accounts.authenticate(store, "alice@example.org", "wrong password", "192.0.2.7", T0)


def counts(report: retention.Report) -> dict[str, int]:
    return {f"{ln.category}: {ln.what}": ln.count for ln in report.lines}


def table_count(store: HubStore, table: str, where: str = "1") -> int:
    return int(store.conn.execute(f"SELECT count(*) FROM {table} WHERE {where}").fetchone()[0])


@pytest.fixture
def store(tmp_path: Path, cheap_passwords: None) -> HubStore:
    s = make_hub(tmp_path / "hub.sqlite")
    history(s)
    return s


def test_each_kind_goes_when_its_retention_is_over_and_not_before(store: HubStore) -> None:
    keep = RetentionConfig()  # the defaults: 3 months, 12 months, 10 years
    clock = FakeClock(T0 + timedelta(days=30))
    before = {t: table_count(store, t) for t in ("events", "rejected_messages", "audit_log")}
    assert before == {"events": 7, "rejected_messages": 1, "audit_log": 4}

    # A month on: nothing is old enough, and a dry run never deletes anyway.
    report = retention.run(store, keep, clock.wall(), apply=False)
    assert report.total == 0 and not any(counts(report).values())

    # Three months and a day on: the access-control logs of T0 are due, not the rest.
    clock.wall_now = add_months(T0, 3) + timedelta(days=1)
    dry = counts(retention.run(store, keep, clock.wall(), apply=False))
    assert dry["taps: tap events"] == 1
    assert dry["denials: denied taps"] == 1  # the one of T0; the one 80 days later stays
    assert dry["refusals: refused node messages"] == 1
    assert dry["denials: log-in failure counters"] == 2  # one per email, one per address
    assert dry["node_events: other node events"] == 0
    assert dry["sessions: closed sessions"] == 0 and dry["audit: audit entries"] == 0
    assert table_count(store, "events") == 7  # the dry run deleted nothing

    applied = retention.run(store, keep, clock.wall(), apply=True)
    assert counts(applied) == dry and applied.total == 5
    assert table_count(store, "events", "type = 'tap'") == 1  # the later denial
    assert table_count(store, "events", "type != 'tap'") == 4  # session x2, boot, forged
    assert table_count(store, "rejected_messages") == 0
    assert table_count(store, "login_throttle") == 0
    assert sessions.totals(store)["sessions"] == 1
    (entry,) = [e for e in audit.entries(store) if e["action"] == audit.RETENTION_APPLIED]
    assert entry["at"] == iso(clock.wall())
    assert entry["details"]["taps.tap events"] == 1
    # Nothing left to do at the same instant, and nothing more written to the log.
    assert retention.run(store, keep, clock.wall(), apply=True).total == 0
    assert table_count(store, "audit_log") == 5

    # The clock 400 days ahead: the raw node events and the later denial go; the
    # session, the accounting record, stays.
    clock.wall_now = T0 + timedelta(days=400)
    applied = retention.run(store, keep, clock.wall(), apply=True)
    assert counts(applied)["node_events: other node events"] == 4
    assert counts(applied)["denials: denied taps"] == 1
    assert table_count(store, "events") == 0
    assert sessions.totals(store) == {"sessions": 1, "seconds": 600.0, "billable_minutes": 10}
    assert audit.verify(store) == []

    # Ten years and a day on: the session and the audit entries of T0 go; the chain
    # still verifies from its checkpoint.
    clock.wall_now = add_months(T0, 120) + timedelta(days=1)
    applied = retention.run(store, keep, clock.wall(), apply=True)
    assert counts(applied)["sessions: closed sessions"] == 1
    assert counts(applied)["audit: audit entries"] == 3
    assert sessions.totals(store)["sessions"] == 0
    assert audit.verify(store) == []
    seq, _ = audit.checkpoint(store) or (0, "")
    assert seq == 3
    kept = [e["action"] for e in reversed(audit.entries(store))]
    assert kept == [
        "role.revoked",  # recorded five years after T0: kept
        audit.RETENTION_APPLIED,
        audit.RETENTION_APPLIED,
        audit.AUDIT_PURGED,
        audit.RETENTION_APPLIED,
    ]


def test_an_open_session_is_never_purged(store: HubStore) -> None:
    started = builders.session_events("S-open", T0, 60, "m1", "cnc1", seq=1)[0]
    started = Envelope.new(
        node="cnc1", seq=9, boot="b", type=started.type, time=T0, data=started.data
    )
    ingest_envelopes(store, [started], T0)
    retention.run(store, RetentionConfig(), add_months(T0, 121), apply=True)
    assert table_count(store, "sessions", "status = 'open'") == 1
    assert table_count(store, "sessions", "status = 'closed'") == 0


def test_retention_from_the_config_file(tmp_path: Path) -> None:
    base = {"site": "demo-lab", "timezone": "Europe/Paris", "hub": {"database": "./hub.db"}}
    path = tmp_path / "hub.yaml"
    path.write_text(yaml.safe_dump(base))
    assert load_hub_config(path).retention == RetentionConfig()
    assert RetentionConfig().taps == Keep(months=3) and RetentionConfig().audit == Keep(months=120)

    path.write_text(
        yaml.safe_dump(
            {**base, "retention": {"taps": "6 months", "sessions": "12 years", "refusals": "30d"}}
        )
    )
    cfg = load_hub_config(path).retention
    assert cfg.taps == Keep(months=6) and cfg.sessions == Keep(months=144)
    assert cfg.refusals == Keep(extra=timedelta(days=30))
    assert cfg.denials == Keep(months=3)  # left out: the default
    assert cfg.taps.cutoff(datetime(2026, 8, 31, tzinfo=UTC)) == datetime(2026, 2, 28, tzinfo=UTC)

    for bad, expected in (
        ({"taps": "soon"}, "'3 months'"),
        ({"taps": "0d"}, "from one day to 50 years"),
        ({"audit": "80 years"}, "from one day to 50 years"),
        ({"tapz": "3 months"}, "known key"),
    ):
        path.write_text(yaml.safe_dump({**base, "retention": bad}))
        with pytest.raises(ConfigError) as err:
            load_hub_config(path)
        assert f"retention.{next(iter(bad))}" in str(err.value) and expected in str(err.value)


# -- the audit log's checkpoint ---------------------------------------------------------


@pytest.fixture
def log(tmp_path: Path) -> HubStore:
    s = HubStore(tmp_path / "audit.sqlite")
    for i in range(5):
        audit.record(s, "fab", "role.granted", f"m{i}", {"i": i}, at=T0 + timedelta(days=i))
    return s


def test_a_purge_keeps_the_chain_verifiable_from_its_checkpoint(log: HubStore) -> None:
    hashes = {e["seq"]: e for e in audit.entries(log)}
    assert audit.purge_before(log, iso(T0 + timedelta(days=2)), actor="retention") == 2
    assert [e["seq"] for e in reversed(audit.entries(log))] == [3, 4, 5, 6]
    assert audit.checkpoint(log) is not None and audit.checkpoint(log)[0] == 2  # type: ignore[index]
    assert audit.verify(log) == []
    purged = audit.entries(log, limit=1)[0]
    assert purged["action"] == audit.AUDIT_PURGED and purged["details"]["through_seq"] == 2
    assert hashes[3]["seq"] == 3
    # The log goes on from there as before.
    audit.record(log, "fab", "role.revoked", "m1")
    assert audit.verify(log) == [] and audit.head(log)[0] == 7  # type: ignore[index]


def test_entries_above_the_checkpoint_cannot_be_deleted(log: HubStore) -> None:
    audit.purge_before(log, iso(T0 + timedelta(days=2)), actor="retention")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"), log.conn:
        log.conn.execute("DELETE FROM audit_log WHERE seq = 3")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"), log.conn:
        log.conn.execute("UPDATE audit_log SET actor = 'x' WHERE seq = 4")


def test_deleting_past_the_checkpoint_or_moving_it_is_seen(log: HubStore) -> None:
    audit.purge_before(log, iso(T0 + timedelta(days=2)), actor="retention")
    entry3 = log.conn.execute("SELECT hash FROM audit_log WHERE seq = 3").fetchone()[0]
    with log.conn:  # whoever holds the file can drop the trigger
        log.conn.execute("DROP TRIGGER audit_log_no_delete")
        log.conn.execute("DELETE FROM audit_log WHERE seq = 3")
    problems = audit.verify(log)
    assert any("entry 4" in p for p in problems), problems
    # Moving the checkpoint over the hole does not help: the audit.purged entry, inside
    # the chain, still names entry 2.
    with log.conn:
        log.conn.execute(
            "UPDATE meta SET value = ? WHERE key = 'audit_checkpoint'",
            (audit.canonical({"seq": 3, "hash": entry3}),),
        )
    problems = audit.verify(log)
    assert problems and "checkpoint (entry 3)" in problems[0], problems


def test_purging_every_entry_leaves_a_chain_that_goes_on(log: HubStore) -> None:
    assert audit.purge_before(log, iso(T0 + timedelta(days=30)), actor="retention") == 5
    assert [e["seq"] for e in audit.entries(log)] == [6]
    audit.record(log, "fab", "role.granted", "m9")
    assert audit.verify(log) == [] and audit.head(log)[0] == 7  # type: ignore[index]
    # A purge with nothing before the cutoff changes nothing and writes nothing.
    assert audit.purge_before(log, iso(T0), actor="retention") == 0
    assert audit.head(log)[0] == 7  # type: ignore[index]


# -- the command -----------------------------------------------------------------------


def test_fabgate_retention_is_a_dry_run_unless_applied(
    tmp_path: Path, cheap_passwords: None
) -> None:
    db = tmp_path / "data" / "hub.db"
    db.parent.mkdir()
    now = utcnow()  # the command reads the real clock: data placed around it
    with make_hub(db) as store:
        ingest_envelopes(
            store,
            [tap("laser1", 1, now - timedelta(days=200), "deny", "not_certified")],
            now - timedelta(days=200),
        )
        ingest_envelopes(store, [tap("laser1", 2, now, "start", "allowed")], now)
    config = tmp_path / "hub.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "site": "demo-lab",
                "timezone": "Europe/Paris",
                "hub": {"database": "./data/hub.db"},
                "groups": [{"id": "laser"}],
                "machines": [
                    {"id": "laser1", "kind": "laser", "group": "laser"},
                    {"id": "cnc1", "kind": "cnc", "group": "laser"},
                ],
            }
        )
    )
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["retention", "--config", str(config)]) == 0
    text = out.getvalue()
    assert "denials: denied taps" in text and ": 1 to delete" in text
    assert "kept 3 months" in text and "dry run: 1 record(s) would be deleted" in text
    with HubStore(db) as store:
        assert table_count(store, "events") == 2
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["retention", "--apply", "--config", str(config)]) == 0
    assert "retention applied: 1 record(s) deleted" in out.getvalue()
    with HubStore(db) as store:
        assert table_count(store, "events") == 1  # today's tap stays
        (entry,) = [e for e in audit.entries(store) if e["action"] == audit.RETENTION_APPLIED]
        assert entry["actor"] == "cli"


# -- the hub's daily job ---------------------------------------------------------------


def test_the_hub_runs_retention_daily_and_a_failure_does_not_stop_it(
    tmp_path: Path,
    mosquitto: MosquittoProcess,
    cheap_passwords: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    db = tmp_path / "hub.sqlite"
    with make_hub(db) as store:
        history(store)
    cfg = builders.hub_config(
        tmp_path,
        db,
        groups=GROUPS,
        machines=MACHINES,
        mqtt=MqttConfig(url=mosquitto.url, prefix="fablab/rgpd/", client_id="fabgate-hub"),
    )
    wall = FakeClock(T0 + timedelta(days=30))
    mono = AheadMono()
    svc = HubService(
        cfg,
        mono=mono,
        wall=wall.wall,
        watchdog=Watchdog(env={}),
        supervisor=Supervisor(mono=mono, backoff_min=0.05),
    )
    svc.start()
    try:
        # Nothing before the first run, a minute after start; then nothing is due yet.
        assert svc.retention["last_run"] is None
        mono.advance(RETENTION_FIRST_S)
        poll_until(lambda: svc.retention["last_run"] == iso(wall.wall()), what="first run")
        assert svc.retention["deleted"] == 0

        # A day later, on a clock three months and a day past T0: the logs of T0 go.
        wall.wall_now = add_months(T0, 3) + timedelta(days=1)
        mono.advance(RETENTION_EVERY_S)
        poll_until(lambda: svc.retention["last_run"] == iso(wall.wall()), what="daily run")
        assert svc.retention["deleted"] == 5 and svc.retention["error"] is None
        with HubStore(db) as store:
            assert table_count(store, "events", "type = 'tap'") == 1

        # A run that fails is logged and tried again an hour later; the hub goes on.
        def broken(*args: object, **kw: object) -> retention.Report:
            raise sqlite3.OperationalError("disk I/O error")

        monkeypatch.setattr(retention, "run", broken)
        wall.wall_now = T0 + timedelta(days=400)
        mono.advance(RETENTION_EVERY_S)
        poll_until(lambda: svc.retention["error"] is not None, what="a failed run")
        assert "disk I/O error" in svc.retention["error"]
        loop = svc.supervisor.health()["retention"]
        assert loop.alive and loop.restarts == 0
        assert all(h.alive for h in svc.supervisor.health().values())
        monkeypatch.undo()
        mono.advance(RETENTION_RETRY_S)
        poll_until(lambda: svc.retention["error"] is None, what="the retry")
        assert svc.retention["deleted"] == 5  # the 400-day run: 4 node events, 1 denial
        assert svc.stats["retention_runs"] == 3 and svc.stats["retention_failed"] == 1
    finally:
        svc.stop()
