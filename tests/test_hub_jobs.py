"""Jobs at the hub: stored once, in any arrival order, and listed with their owners."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.core.clock import iso
from gateway.hub.db import HubStore
from gateway.hub.events.ingest import ingest_envelopes
from gateway.hub.jobs import recent_jobs
from gateway.hub.sessions import recent_sessions
from tests.support.builders import T0, ended, env
from tests.test_hub_store import store

__all__ = ["store"]


def job(
    event: str,
    *,
    progress: float | None = None,
    seconds: float = 0.0,
    job_id: str = "j1",
    name: str | None = "box.gcode",
    seq: int = 10,
):
    return env(
        "job",
        {
            "job_id": job_id,
            "event": event,
            "session_id": "s1",
            "machine": "laser1",
            "member_id": "m1",
            "project_id": "p1",
            "name": name,
            "progress": progress,
            "time_left_s": None,
            "detail": "",
        },
        seq=seq,
        time=T0 + timedelta(seconds=seconds),
    )


STREAM = [
    job("started", progress=0.0, seconds=1, seq=10),
    job("progress", progress=40.0, seconds=20, seq=11),
    job("paused", progress=40.0, seconds=30, seq=12),
    job("resumed", progress=40.0, seconds=40, seq=13),
    job("progress", progress=90.0, seconds=60, seq=14),
    job("finished", progress=100.0, seconds=70, seq=15),
]


def fingerprint(s: HubStore) -> list[tuple]:
    return [
        (
            j["job_id"],
            j["state"],
            j["progress"],
            j["started_at"],
            j["ended_at"],
            j["member_id"],
            j["project_id"],
            j["name"],
            j["member_name"],
        )
        for j in recent_jobs(s)
    ]


def test_job_lifecycle(store: HubStore) -> None:  # noqa: F811
    ingest_envelopes(store, STREAM[:2], T0)
    (running,) = recent_jobs(store)
    assert (running["state"], running["progress"]) == ("running", 40.0)
    assert running["member_name"] == "Alice"
    ingest_envelopes(store, STREAM[2:3], T0)
    assert recent_jobs(store)[0]["state"] == "paused"
    ingest_envelopes(store, STREAM[3:], T0)
    (done,) = recent_jobs(store)
    assert (done["state"], done["progress"]) == ("finished", 100.0)
    assert done["started_at"] == iso(T0 + timedelta(seconds=1))
    assert done["ended_at"] == iso(T0 + timedelta(seconds=70))


@settings(max_examples=40, deadline=None)
@given(order=st.permutations(range(len(STREAM))), dup=st.lists(st.integers(0, 5), max_size=4))
def test_any_order_or_duplication_gives_the_same_job(tmp_path_factory, order, dup) -> None:
    reference = tmp_path_factory.mktemp("ref") / "hub.db"
    with HubStore(reference) as ref:
        ingest_envelopes(ref, STREAM, T0)
        expected = fingerprint(ref)
    path = tmp_path_factory.mktemp("perm") / "hub.db"
    with HubStore(path) as s:
        for i in [*order, *dup]:
            ingest_envelopes(s, [STREAM[i]], T0)
        assert fingerprint(s) == expected


def test_session_end_records_busy_and_idle(store: HubStore) -> None:  # noqa: F811
    e = ended("s9", 3600)
    e.data.update(busy_s=2700.5, idle_s=899.5, jobs=2)
    ingest_envelopes(store, [e], T0)
    (row,) = [r for r in recent_sessions(store) if r["session_id"] == "s9"]
    assert (row["busy_minutes"], row["idle_minutes"], row["jobs"]) == (46, 14, 2)
    assert row["busy_minutes"] + row["idle_minutes"] == row["billable_minutes"]


def test_malformed_job_event_is_kept_with_its_error(store: HubStore) -> None:  # noqa: F811
    bad = job("exploded")
    assert ingest_envelopes(store, [bad], T0) == [bad.id]
    assert recent_jobs(store) == []
    err = store.conn.execute("SELECT error FROM events WHERE event_id = ?", (bad.id,)).fetchone()
    assert "event" in err[0]
