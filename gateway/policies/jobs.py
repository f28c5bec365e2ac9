"""Turning a driver's stream of reports into job events: pure, shared by every driver.

Controllers differ in what they know (OctoPrint names the file and its progress, GRBL
only says Run or Idle, a current clamp only says busy), but the events a fablab wants are
the same: a job started, progressed, paused, resumed, and finished, failed or was
cancelled. Keeping this here, with time passed in, makes the rules testable without a
machine and identical across drivers.

Progress events are throttled: one is emitted when the whole percent has increased *and*
at least ``progress_every_s`` has passed since the last one, so a fast job does not flood
the broker and a slow one still reports every percent.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from gateway.core.activity import Activity, MachineReport


class JobEventKind(StrEnum):
    STARTED = "started"
    PROGRESS = "progress"
    PAUSED = "paused"
    RESUMED = "resumed"
    FINISHED = "finished"
    FAILED = "failed"
    CANCELLED = "cancelled"


ENDING = frozenset({JobEventKind.FINISHED, JobEventKind.FAILED, JobEventKind.CANCELLED})


@dataclass(frozen=True)
class JobEvent:
    kind: JobEventKind
    job_id: str
    name: str | None
    progress: float | None
    detail: str = ""
    time_left_s: float | None = None
    filament_mm: float | None = None  # extruded by the job so far (its total at its end)


@dataclass
class _Job:
    job_id: str
    name: str | None
    progress: float | None = None
    filament_mm: float | None = None
    paused: bool = False
    last_progress_at: float = -math.inf
    last_percent: int = -1


@dataclass
class JobTracker:
    """Feed it every report with the (monotonic) time; it returns the job events."""

    new_id: Callable[[], str]
    progress_every_s: float = 5.0
    job: _Job | None = field(default=None, init=False)

    @property
    def running(self) -> bool:
        return self.job is not None

    def feed(self, report: MachineReport, now: float) -> list[JobEvent]:
        a = report.activity
        if a == Activity.UNKNOWN:
            return []  # link trouble says nothing about the job: keep it as it was
        job = self.job
        if job is not None:
            _note_filament(job, report)
        says_job = report.data.get("job")
        if says_job is False:
            # The driver knows better than the activity: a GRBL jog or homing cycle is
            # busy, but not a job; a job it says is over is over.
            if job is None:
                return []
            if a in (Activity.ALARM, Activity.ERROR):
                return [self._end(JobEventKind.FAILED, report)]
            cancelled = "cancel" in report.detail.lower()
            return [
                self._end(JobEventKind.CANCELLED if cancelled else JobEventKind.FINISHED, report)
            ]
        if job is None:
            if a in (Activity.BUSY, Activity.PAUSED):
                return self._start(report, now)
            return []
        if report.job_name and not job.name:
            job.name = report.job_name
        if a == Activity.BUSY:
            events = []
            if job.paused:
                job.paused = False
                events.append(self._event(JobEventKind.RESUMED, report))
            return events + self._progress(report, now)
        if a == Activity.PAUSED:
            if job.paused:
                return []
            job.paused = True
            return [self._event(JobEventKind.PAUSED, report)]
        if a in (Activity.ALARM, Activity.ERROR):
            return [self._end(JobEventKind.FAILED, report)]
        # IDLE: the job is over; how it ended is what the driver said.
        cancelled = "cancel" in report.detail.lower()
        return [self._end(JobEventKind.CANCELLED if cancelled else JobEventKind.FINISHED, report)]

    def _start(self, report: MachineReport, now: float) -> list[JobEvent]:
        self.job = _Job(self.new_id(), report.job_name)
        _note_filament(self.job, report)
        events = [self._event(JobEventKind.STARTED, report)]
        if report.activity == Activity.PAUSED:
            self.job.paused = True
            events.append(self._event(JobEventKind.PAUSED, report))
        else:
            self._progress(report, now)  # remember the starting percent, no extra event
            self.job.last_progress_at = now
        return events

    def _progress(self, report: MachineReport, now: float) -> list[JobEvent]:
        job = self.job
        assert job is not None
        if report.progress is None:
            return []
        job.progress = report.progress
        percent = int(math.floor(report.progress))
        if percent <= job.last_percent or now - job.last_progress_at < self.progress_every_s:
            return []
        job.last_percent = percent
        job.last_progress_at = now
        return [self._event(JobEventKind.PROGRESS, report)]

    def _end(self, kind: JobEventKind, report: MachineReport) -> JobEvent:
        event = self._event(kind, report)
        self.job = None
        return event

    def _event(self, kind: JobEventKind, report: MachineReport) -> JobEvent:
        job = self.job
        assert job is not None
        progress = report.progress if report.progress is not None else job.progress
        if kind == JobEventKind.FINISHED and progress is not None:
            progress = 100.0
        return JobEvent(
            kind,
            job.job_id,
            job.name,
            progress,
            report.detail,
            report.time_left_s,
            job.filament_mm,
        )


def _note_filament(job: _Job, report: MachineReport) -> None:
    """A job's filament counter never goes back: keep the largest reading, so a report
    without it, or a stale one, cannot lose what was measured."""
    mm = report.filament_mm
    if mm is not None and math.isfinite(mm) and mm >= 0:
        job.filament_mm = max(job.filament_mm or 0.0, mm)
