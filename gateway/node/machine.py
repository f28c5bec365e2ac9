"""What the machine is doing, as its controller reports it: activity, detail and jobs.

A controller driver reports from its own thread; the reports wait in a queue the loop
drains, so every change to a session (busy time, job ownership, the session rules that
read the activity) happens on the loop thread (docs/design.md, "Machines"). Kept apart
from the sessions because a machine works with or without one: a job started while
nobody is badged in still gets journaled, and belongs to no session.
"""

from __future__ import annotations

import logging
import math
import queue
import uuid
from collections.abc import Callable
from typing import Any

from gateway.config import NodeConfig
from gateway.contract import (
    MAX_DETAIL,
    MAX_NAME,
    MAX_TIME_LEFT_S,
    ContractError,
    Job,
    decode_sim_job,
)
from gateway.core.activity import EDGE_AGE, PERMISSIVES, Activity, MachineReport
from gateway.drivers.machines.base import MachineController
from gateway.drivers.simulators.machine import SimulatedMachine
from gateway.node.recorder import Recorder, clip
from gateway.node.sessions import Sessions
from gateway.policies.jobs import ENDING, JobEvent, JobTracker
from gateway.policies.material import filament_grams

log = logging.getLogger(__name__)


class MachineWatch:
    """The machine's last reported state, its jobs, and the controller that reports them.

    ``report`` is what the controller calls (any thread); everything else is the loop's.
    Without a controller the activity stays unknown and no job is ever seen.
    """

    def __init__(
        self,
        cfg: NodeConfig,
        recorder: Recorder,
        *,
        controller: MachineController | None,
        simulated: SimulatedMachine | None,
        mono: Callable[[], float],
        wake: Callable[[], None],
    ) -> None:
        self.machine_id = cfg.machine_id
        self.material = cfg.material
        self.recorder = recorder
        self.controller = controller
        self.simulated = simulated
        self.mono = mono
        self._wake = wake
        self.activity = Activity.UNKNOWN
        self.detail = ""
        # The permissive inputs of the last report (input -> closed); a report without
        # them (the sensor failing, a driver without inputs) leaves them all unknown.
        self.permissives: dict[int, bool] = {}
        self.jobs = JobTracker(
            new_id=lambda: str(uuid.uuid4()), progress_every_s=cfg.session.progress_every
        )
        self.job_session: dict[str, str | None] = {}  # job id -> session that started it
        self._session_open: bool | None = None  # what the controller was last told
        self._reports: queue.SimpleQueue[MachineReport] = queue.SimpleQueue()
        if controller is not None:
            controller.subscribe(self.report)

    @property
    def followed(self) -> bool:
        """A controller reports this machine (so busy time is known)."""
        return self.controller is not None

    @property
    def job_running(self) -> bool:
        return self.jobs.running

    def report(self, report: MachineReport) -> None:
        """A controller report (its thread): queued for the loop."""
        self._reports.put(report)

    def start(self) -> None:
        if self.controller is not None:
            self.controller.start()

    def close(self) -> None:
        if self.controller is not None:
            self.controller.close()
        if self.simulated is not None:
            self.simulated.close()

    def session_is(self, session_open: bool) -> None:
        """Tell the controller whether a session is open (its sender interlock), on change."""
        if self.controller is not None and session_open != self._session_open:
            self._session_open = session_open
            self.controller.set_session_open(session_open)

    def safe_stop(self) -> None:
        """Ask the controller to stop the machine safely (before the power goes)."""
        if self.controller is not None:
            self.controller.safe_stop()

    # -- the loop's side --------------------------------------------------------------

    def drain(self, sessions: Sessions) -> bool:
        """Handle the waiting reports; True if what the status shows has changed."""
        changed = False
        while True:
            try:
                report = self._reports.get_nowait()
            except queue.Empty:
                return changed
            changed |= self._on_report(report, sessions)

    def _on_report(self, report: MachineReport, sessions: Sessions) -> bool:
        mono = self.mono()
        previous = (self.activity, self.detail, self.permissives)
        self.activity, self.detail = report.activity, report.detail
        self.permissives = _permissives(report.data.get(PERMISSIVES))
        sessions.machine_reported(report.activity, mono, _edge(report.data.get(EDGE_AGE), mono))
        changed = previous != (self.activity, self.detail, self.permissives)
        self.jobs.progress_every_s = sessions.progress_every()  # the hub may change it
        for event in self.jobs.feed(report, mono):
            self._journal_job(event, sessions, mono)
            changed = True
        return changed

    def _journal_job(self, event: JobEvent, sessions: Sessions, mono: float) -> None:
        if event.kind == "started":
            self.job_session[event.job_id] = sessions.job_started()
        session_id = self.job_session.get(event.job_id)
        ended = event.kind in ENDING
        if ended:
            self.job_session.pop(event.job_id, None)
        owner = sessions.job_owner(session_id, ended=ended, mono=mono)
        grams = self._grams(event)
        if ended and grams is not None:
            # The session the job belongs to pays for its material, even when the job
            # ends after a badge-out (the session is kept open until then).
            sessions.add_material(session_id, grams)
        self.recorder.append(
            Job(
                job_id=event.job_id,
                event=str(event.kind),
                session_id=session_id,
                machine=self.machine_id,
                member_id=owner.member_id if owner else None,
                project_id=owner.project_id if owner else None,
                name=clip(event.name, MAX_NAME),
                progress=None
                if event.progress is None
                else min(100.0, max(0.0, round(event.progress, 1))),
                time_left_s=None
                if event.time_left_s is None
                else min(max(0.0, event.time_left_s), MAX_TIME_LEFT_S),
                material_g=grams,
                detail=clip(event.detail, MAX_DETAIL) or "",
            )
        )
        log.info(
            "job %s %s (%s%%)",
            event.job_id[:8],
            event.kind,
            "?" if event.progress is None else f"{event.progress:.0f}",
        )
        self._wake()

    def _grams(self, event: JobEvent) -> float | None:
        """The job's filament so far in grams, if the controller measures it and the
        node's configuration says what is loaded."""
        density = self.material.density
        if event.filament_mm is None or density is None:
            return None
        return filament_grams(
            event.filament_mm, diameter_mm=self.material.diameter_mm, density_g_cm3=density
        )

    def job_status(self) -> dict[str, Any] | None:
        """The running job as the status shows it."""
        job = self.jobs.job
        if job is None:
            return None
        return {
            "job_id": job.job_id,
            "name": job.name,
            "paused": job.paused,
            "progress": None if job.progress is None else round(job.progress, 1),
            "session_id": self.job_session.get(job.job_id),
        }

    def on_sim_job(self, payload: bytes) -> None:
        """A job asked of the simulated machine (the demo's and tests' way to start one)."""
        try:
            name, seconds = decode_sim_job(payload)
        except ContractError as exc:
            log.warning("ignored a malformed simulated job: %s", exc)
            return
        assert self.simulated is not None
        log.info("simulated machine starts job %r for %.0f s", name, seconds)
        self.simulated.start_job(name, seconds)


def _edge(age: object, mono: float) -> float | None:
    """The real start of the change a report confirms, on our clock (None: now)."""
    if isinstance(age, bool) or not isinstance(age, int | float):
        return None
    if not math.isfinite(age) or age < 0:
        return None
    return mono - float(age)


def _permissives(value: object) -> dict[int, bool]:
    """The report's permissive inputs; anything malformed is left out, i.e. unknown."""
    if not isinstance(value, dict):
        return {}
    return {
        k: v
        for k, v in value.items()
        if isinstance(k, int) and not isinstance(k, bool) and isinstance(v, bool)
    }
