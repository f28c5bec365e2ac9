"""Usage rows: per session, per minute and per local day, grouped, and as CSV."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.billing.usage import columns, to_csv, usage_rows
from gateway.core.clock import iso

T0 = datetime(2026, 11, 25, 18, 0, 10, tzinfo=UTC)


def session(
    sid: str,
    start: datetime,
    duration: float,
    *,
    member: str = "m1",
    project: str | None = "p1",
    machine: str = "laser1",
) -> dict:
    minutes = 0 if duration <= 0 else -(-int(duration * 1000) // 60000)
    return {
        "session_id": sid,
        "member_id": member,
        "member_name": member.upper(),
        "project_id": project,
        "machine_id": machine,
        "started_at": iso(start),
        "ended_at": iso(start + timedelta(seconds=duration)),
        "duration_s": duration,
        "billable_minutes": minutes,
        "status": "closed",
        "node": machine,
    }


SESSIONS = [
    session("A", T0, 125.5),
    session("B", T0 + timedelta(seconds=20), 60, member="m2", project=None),
    session("C", T0 + timedelta(hours=1), 3600, machine="cnc1"),
    session("D", T0 + timedelta(hours=2), 0.2, member="m2", machine="cnc1"),
]


def test_session_rows_one_per_session() -> None:
    rows = list(usage_rows(iter(SESSIONS), "session", (), "Europe/Paris"))
    assert [r["session_id"] for r in rows] == ["A", "B", "C", "D"]
    assert list(rows[0]) == columns("session", ())
    assert rows[0]["member_name"] == "M1" and rows[0]["billable_minutes"] == 3


def test_usage_rows_is_a_generator() -> None:
    def boom():
        yield SESSIONS[0]
        raise AssertionError("consumed too far")

    rows = usage_rows(boom(), "minute", (), "UTC")
    assert next(rows)["session_id"] == "A"


@pytest.mark.parametrize("duration", [0.001, 59.999, 60, 60.001, 125.5, 3600, 7199.75])
def test_minute_rows_count_and_seconds(duration: float) -> None:
    s = session("X", T0, duration)
    rows = list(usage_rows([s], "minute", (), "UTC"))
    assert len(rows) == s["billable_minutes"]
    assert sum(r["seconds"] for r in rows) == pytest.approx(duration)
    assert rows[0]["minute_start"] == iso(T0)
    assert all(r["session_id"] == "X" and r["member_id"] == "m1" for r in rows)


@given(
    st.lists(st.tuples(st.integers(0, 10_000), st.floats(0.001, 20_000)), max_size=12),
    st.sampled_from([(), ("member",), ("project", "machine")]),
)
def test_grouped_minutes_and_days_keep_totals(
    spec: list[tuple[int, float]], group_by: tuple[str, ...]
) -> None:
    sessions = [
        session(f"S{i}", T0 + timedelta(seconds=off), dur, member=f"m{i % 3}", machine=f"x{i % 2}")
        for i, (off, dur) in enumerate(sorted(spec))
    ]
    want_min = sum(s["billable_minutes"] for s in sessions)
    want_sec = sum(s["duration_s"] for s in sessions)
    for gran in ("minute", "day"):
        rows = list(usage_rows(sessions, gran, group_by, "Europe/Paris"))
        assert sum(r["billable_minutes"] for r in rows) == want_min
        assert sum(r["seconds"] for r in rows) == pytest.approx(want_sec, abs=0.01)
        keys = [
            tuple(
                r[c]
                for c in columns(gran, group_by)
                if c not in ("sessions", "seconds", "billable_minutes")
            )
            for r in rows
        ]
        assert len(keys) == len(set(keys))  # one row per (time, group)


def test_day_split_across_local_midnight() -> None:
    # 23:50 Paris (UTC+1 in November) for 30 minutes: 10 minutes on the 25th, 20 on the 26th.
    start = datetime(2026, 11, 25, 22, 50, tzinfo=UTC)
    rows = list(usage_rows([session("N", start, 1800)], "day", (), "Europe/Paris"))
    assert rows == [
        {"day": "2026-11-25", "sessions": 1, "seconds": 600.0, "billable_minutes": 10},
        {"day": "2026-11-26", "sessions": 1, "seconds": 1200.0, "billable_minutes": 20},
    ]
    # The same instant is a single UTC day.
    assert len(list(usage_rows([session("N", start, 1800)], "day", (), "UTC"))) == 1


def test_session_group_by_sums() -> None:
    rows = list(usage_rows(SESSIONS, "session", ("member",), "UTC"))
    assert rows == [
        {
            "member_id": "m1",
            "member_name": "M1",
            "sessions": 2,
            "seconds": 3725.5,
            "billable_minutes": 63,
        },
        {
            "member_id": "m2",
            "member_name": "M2",
            "sessions": 2,
            "seconds": 60.2,
            "billable_minutes": 2,
        },
    ]
    rows = list(usage_rows(SESSIONS, "session", ("machine", "project"), "UTC"))
    by = {(r["machine_id"], r["project_id"]): r for r in rows}
    assert by[("laser1", "p1")]["billable_minutes"] == 3
    assert by[("laser1", None)]["billable_minutes"] == 1
    assert by[("cnc1", "p1")]["sessions"] == 2 and by[("cnc1", "p1")]["seconds"] == 3600.2


def test_minute_group_by_sums_per_calendar_minute() -> None:
    # A (from :10 s) and B (from :30 s) overlap: m1 and m2 are separate groups, and
    # grouped by machine they share the calendar minutes.
    rows = list(usage_rows(SESSIONS[:2], "minute", ("machine",), "UTC"))
    first = rows[0]
    assert first["minute_start"] == iso(T0.replace(second=0))
    assert first["sessions"] == 2 and first["billable_minutes"] == 2
    assert first["seconds"] == 120.0
    assert sum(r["billable_minutes"] for r in rows) == 4


@pytest.mark.parametrize("gran", ["session", "minute", "day"])
@pytest.mark.parametrize(
    "group_by", [(), ("member",), ("project", "machine"), ("machine", "member", "project")]
)
def test_columns_are_the_row_keys(gran: str, group_by: tuple[str, ...]) -> None:
    for row in usage_rows(SESSIONS, gran, group_by, "Europe/Paris"):
        assert list(row) == columns(gran, group_by)


def test_unordered_input_refused_when_bucketing() -> None:
    with pytest.raises(ValueError, match="ordered"):
        list(usage_rows(list(reversed(SESSIONS)), "day", (), "UTC"))


@pytest.mark.parametrize(
    "gran, group", [("hour", ()), ("day", ("colour",)), ("day", ("member", "member"))]
)
def test_bad_parameters(gran: str, group: tuple[str, ...]) -> None:
    with pytest.raises(ValueError):
        usage_rows(SESSIONS, gran, group, "UTC")


def test_csv_is_rfc4180_and_matches_rows() -> None:
    tricky = session("Q", T0, 61, member='o"neil, jr')
    rows = list(usage_rows([tricky, *SESSIONS[1:]], "session", (), "UTC"))
    cols = columns("session", ())
    lines = list(to_csv(rows, cols))
    assert all(line.endswith("\r\n") for line in lines)
    assert lines[0] == ",".join(cols) + "\r\n"
    parsed = list(csv.DictReader(io.StringIO("".join(lines), newline="")))
    assert len(parsed) == len(rows)
    assert parsed[0]["member_name"] == 'O"NEIL, JR'
    assert parsed[1]["project_id"] == ""
    assert [float(p["duration_s"]) for p in parsed] == [r["duration_s"] for r in rows]
