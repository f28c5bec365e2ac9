"""Job events from machine reports, and the session rules per machine class."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from gateway.core.activity import Activity, MachineReport
from gateway.policies import session_rules as sr
from gateway.policies.jobs import JobEventKind, JobTracker
from gateway.policies.metering import BusyMeter, billable_minutes, split_minutes

A = Activity
K = JobEventKind


def tracker(every: float = 5.0) -> JobTracker:
    counter = itertools.count(1)
    return JobTracker(new_id=lambda: f"job-{next(counter)}", progress_every_s=every)


def kinds(t: JobTracker, reports: list[tuple[float, MachineReport]]) -> list[str]:
    return [str(e.kind) for now, r in reports for e in t.feed(r, now)]


def test_a_job_starts_progresses_and_finishes() -> None:
    t = tracker(every=1.0)
    out = kinds(
        t,
        [
            (0, MachineReport(A.IDLE)),
            (1, MachineReport(A.BUSY, job_name="box.gcode", progress=0.0)),
            (1.5, MachineReport(A.BUSY, progress=0.5)),  # same whole percent: nothing
            (3, MachineReport(A.BUSY, progress=1.2)),
            (3.5, MachineReport(A.BUSY, progress=2.0)),  # too soon after the last one
            (5, MachineReport(A.BUSY, progress=2.1)),
            (6, MachineReport(A.IDLE)),
        ],
    )
    assert out == ["started", "progress", "progress", "finished"]


def test_pause_resume_and_cancel() -> None:
    t = tracker()
    out = kinds(
        t,
        [
            (0, MachineReport(A.BUSY)),
            (1, MachineReport(A.PAUSED)),
            (2, MachineReport(A.PAUSED)),
            (3, MachineReport(A.BUSY)),
            (4, MachineReport(A.IDLE, detail="cancelled")),
        ],
    )
    assert out == ["started", "paused", "resumed", "cancelled"]


def test_alarm_fails_the_job_and_unknown_keeps_it() -> None:
    t = tracker()
    assert kinds(
        t, [(0, MachineReport(A.BUSY)), (1, MachineReport(A.UNKNOWN, detail="link lost"))]
    ) == ["started"]
    assert t.running
    assert kinds(t, [(2, MachineReport(A.ALARM, detail="ALARM:1"))]) == ["failed"]
    assert not t.running


def test_driver_job_flag_overrides_activity() -> None:
    """A GRBL jog is busy but no job; the driver's own end of job ends it."""
    t = tracker()
    assert kinds(t, [(0, MachineReport(A.BUSY, data={"job": False}))]) == []
    assert kinds(
        t,
        [
            (1, MachineReport(A.BUSY, data={"job": True})),
            (2, MachineReport(A.BUSY, data={"job": False})),
        ],
    ) == ["started", "finished"]


def test_finished_job_reports_full_progress_and_keeps_its_name() -> None:
    t = tracker()
    t.feed(MachineReport(A.BUSY, job_name="vase.gcode", progress=97.0), 0)
    (end,) = t.feed(MachineReport(A.IDLE), 1)
    assert (end.kind, end.name, end.progress) == (K.FINISHED, "vase.gcode", 100.0)


reports = st.lists(
    st.tuples(
        st.floats(0, 10), st.sampled_from(list(Activity)), st.one_of(st.none(), st.floats(0, 100))
    ),
    max_size=60,
)


@given(reports)
def test_job_events_are_well_formed_in_any_report_stream(stream) -> None:
    t = tracker(every=0.0)
    now, open_job, progress_seen = 0.0, None, {}
    for dt, activity, progress in stream:
        now += dt
        for e in t.feed(MachineReport(activity, progress=progress), now):
            if e.kind == K.STARTED:
                assert open_job is None
                open_job = e.job_id
            else:
                assert e.job_id == open_job  # nothing happens to a job that never started
            if e.kind == K.PROGRESS:
                # progress events never go backwards in whole percent
                assert int(e.progress) > progress_seen.get(e.job_id, -1)
                progress_seen[e.job_id] = int(e.progress)
            if e.kind in (K.FINISHED, K.FAILED, K.CANCELLED):
                open_job = None
    assert t.running == (open_job is not None)


LASER = sr.DEFAULT_RULES["laser"]
PRINTER = sr.DEFAULT_RULES["printer"]


def view(**kw) -> sr.SessionView:
    base = dict(started=0.0, badged_out=None, activity=A.IDLE, last_active=0.0, job_running=False)
    base.update(kw)
    return sr.SessionView(**base)


def test_badge_out_on_idle_machine_ends_after_grace() -> None:
    v = view(badged_out=100.0)
    assert sr.evaluate(LASER, v, 100.0 + LASER.grace_s - 1).verdict == sr.Verdict.KEEP
    assert sr.evaluate(LASER, v, 100.0 + LASER.grace_s) == sr.Ruling(sr.Verdict.END, "badge_out")


def test_laser_job_after_badge_out_keeps_power_until_idle() -> None:
    busy = view(badged_out=100.0, activity=A.BUSY, job_running=True)
    assert sr.evaluate(LASER, busy, 10_000).verdict == sr.Verdict.KEEP
    done = view(badged_out=100.0, job_ended=500.0)
    assert sr.evaluate(LASER, done, 500.0) == sr.Ruling(sr.Verdict.END, "job_finished")


def test_printer_waits_for_the_job_then_cools_down() -> None:
    done = view(badged_out=100.0, job_ended=5000.0)
    assert sr.evaluate(PRINTER, done, 5000.0 + PRINTER.cooldown_s - 1).verdict == sr.Verdict.KEEP
    assert sr.evaluate(PRINTER, done, 5000.0 + PRINTER.cooldown_s).reason == "job_finished"


def test_max_length_stops_a_laser_but_never_a_printer() -> None:
    rules_p = sr.resolve("printer", max_length=3600)
    rules_l = sr.resolve("laser", max_length=3600)
    busy = view(activity=A.BUSY, job_running=True)
    assert sr.evaluate(rules_l, busy, 3600).verdict == sr.Verdict.SAFE_STOP_THEN_END
    assert sr.evaluate(rules_p, busy, 3600).verdict == sr.Verdict.KEEP
    assert sr.evaluate(rules_p, view(), 3600) == sr.Ruling(sr.Verdict.END, "max_length")


def test_idle_timeout_counts_from_the_last_activity() -> None:
    rules = sr.resolve("cnc", idle_timeout=600)
    assert sr.evaluate(rules, view(last_active=1000), 1599).verdict == sr.Verdict.KEEP
    assert sr.evaluate(rules, view(last_active=1000), 1600).reason == "idle_timeout"
    assert (
        sr.evaluate(sr.resolve("cnc", idle_timeout=0, max_length=0), view(), 10**9).verdict
        == sr.Verdict.KEEP
    )  # 0 means never


@given(
    kind=st.sampled_from(["printer", "embroidery"]),
    now=st.floats(0, 1e7),
    badged=st.one_of(st.none(), st.floats(0, 1e7)),
    paused=st.booleans(),
)
def test_printers_and_embroidery_are_never_cut_while_busy(kind, now, badged, paused) -> None:
    rules = sr.resolve(kind, max_length=60, idle_timeout=60)
    v = view(badged_out=badged, activity=A.PAUSED if paused else A.BUSY, job_running=True)
    assert sr.evaluate(rules, v, now).verdict == sr.Verdict.KEEP


@given(duration=st.floats(0, 1e6), busy=st.floats(-10, 1e6))
def test_busy_and_idle_minutes_add_up_to_the_billed_minutes(duration, busy) -> None:
    b, i = split_minutes(duration, busy)
    assert b >= 0 and i >= 0
    assert b + i == billable_minutes(duration)


def test_busy_meter_counts_only_busy_time() -> None:
    m = BusyMeter(0.0)
    m.update(10.0, True)
    m.update(25.0, False)
    m.update(30.0, True)
    assert m.busy_seconds(32.0) == 17.0


def test_spent_credit_stops_a_laser_but_never_a_print() -> None:
    busy = view(activity=A.BUSY, job_running=True, credit_limit_s=600)
    assert sr.evaluate(LASER, busy, 600) == sr.Ruling(
        sr.Verdict.SAFE_STOP_THEN_END, "credit_exhausted", LASER.hold_s
    )
    assert sr.evaluate(PRINTER, busy, 10_000).verdict == sr.Verdict.KEEP
    assert sr.evaluate(PRINTER, view(credit_limit_s=600), 600).reason == "credit_exhausted"


def test_line_progress_without_a_percentage_is_reported_as_lines_grow() -> None:
    """A sender relayed by the node: lines acknowledged, no total, so no percentage."""
    tracker = JobTracker(new_id=lambda: "j1", progress_every_s=5.0)

    def run(lines: int) -> MachineReport:
        return MachineReport(Activity.BUSY, lines_done=lines, detail=f"Run, {lines}/40 lines")

    assert [e.kind for e in tracker.feed(run(3), 0.0)] == ["started"]
    assert tracker.feed(run(9), 2.0) == []  # too soon
    (event,) = tracker.feed(run(12), 6.0)
    assert (event.kind, event.progress, event.detail) == ("progress", None, "Run, 12/40 lines")
    assert tracker.feed(run(12), 12.0) == []  # no new line acknowledged
