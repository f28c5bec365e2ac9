"""When a session ends, per machine class: pure code, monotonic seconds passed in.

The rules a fablab expects, and why:

- **Never cut a printer or an embroidery machine mid-job.** A print cut at 80 % is
  hours of a member's time and material lost, and a hot end left without its fan can
  clog. After badge-out (or at the maximum length) their power stays on until the job
  ends, plus a cool-down, then the session ends.
- **A laser or CNC finishing a job after badge-out keeps power until idle**, then
  switches off. At the maximum session length a laser or CNC *is* stopped: the node asks
  the controller to hold (a GRBL feed hold; a machine followed only by its current has
  no link to ask) and switches off ``hold_s`` later (``session.hold_for``), or as soon
  as the machine is idle; a fablab sets that length for fairness between members and
  for unattended evenings. Switching off the moment the hold is asked would cut the
  motion before it has decelerated and lose the job's position.
- **A permissive that drops** (water flow, fume extraction: ``permissives.py``) ends
  the session: at once on an idle machine or with the ``off`` rule, after a hold of
  its ``hold_s`` with the ``hold`` rule. This applies to every class, printers and
  embroidery machines included: it is an interlock, not a badge-out.
- **A grace period after badge-out** keeps power a little longer (the laser's extraction
  clearing fumes, a member who badged out by mistake tapping back in).
- **An idle timeout** ends a session nobody is using, so a forgotten badge-out does not
  bill an evening or leave a machine powered.

Where each rule comes from (``in_force``): the hub's rule for the machine when its
snapshot sets one, else the node file's, else the machine class's default. The hub may
make a machine *safer* to keep running (``never_cut_busy: true`` anywhere) but never turn
off the "never cut busy" of a printer or an embroidery machine: that invariant is the
class's, and a hub (or a forged, buggy or stale snapshot that slipped through) must not
be able to cut a print at 80 %. Only the node's own file may, as before.

The node is a permission switch, never the machine's emergency stop: nothing here acts
fast enough, or surely enough, to be one.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from gateway.core.activity import Activity
from gateway.core.snapshot import MachineRules
from gateway.policies.permissives import PERMISSIVE_OFF, DropRule, Permissive


@dataclass(frozen=True)
class SessionRules:
    grace_s: float = 0.0
    idle_timeout_s: float | None = None  # None: never end a session for idleness
    max_session_s: float | None = None  # None: no limit
    cooldown_s: float = 0.0  # after a job ends, before power goes off (printers)
    never_cut_busy: bool = False  # printers, embroidery: wait for the job even at max length
    hold_s: float = 0.0  # at a limit, between asking the controller to hold and power off


DEFAULT_RULES: dict[str, SessionRules] = {
    "laser": SessionRules(grace_s=60, idle_timeout_s=15 * 60, max_session_s=3 * 3600, hold_s=10),
    "cnc": SessionRules(grace_s=30, idle_timeout_s=15 * 60, max_session_s=4 * 3600, hold_s=10),
    "printer": SessionRules(
        grace_s=0,
        idle_timeout_s=15 * 60,
        max_session_s=None,
        cooldown_s=5 * 60,
        never_cut_busy=True,
    ),
    "embroidery": SessionRules(
        grace_s=0, idle_timeout_s=15 * 60, max_session_s=None, cooldown_s=0, never_cut_busy=True
    ),
    "other": SessionRules(grace_s=0, idle_timeout_s=30 * 60),
}


class Verdict(StrEnum):
    KEEP = "keep"
    END = "end"  # switch off and close the session
    # Ask the controller to hold now, keep power ``Ruling.hold_s`` more, then END.
    SAFE_STOP_THEN_END = "safe_stop_then_end"


@dataclass(frozen=True)
class Stop:
    """A hold the node asked for: the session ends ``hold_s`` after ``asked_at``."""

    reason: str
    asked_at: float
    hold_s: float

    @property
    def deadline(self) -> float:
        return self.asked_at + self.hold_s


@dataclass(frozen=True)
class SessionView:
    """What the rules need to know about the session, in monotonic seconds."""

    started: float
    badged_out: float | None  # when the member tapped out, if they did
    activity: Activity
    last_active: float  # the last moment the machine was busy (or the session start)
    job_running: bool
    job_ended: float | None = None  # when the last job of this session ended
    credit_limit_s: float | None = None  # longest session the prepaid balance pays for
    interlock: Permissive | None = None  # the first permissive not known to be closed
    stop: Stop | None = None  # a hold asked for, the power still on


@dataclass(frozen=True)
class Ruling:
    """What the rules say about an open session now (not to be confused with an access
    ``Decision`` on a tap, ``gateway.policies.access``)."""

    verdict: Verdict
    # badge_out, job_finished, idle_timeout, max_length, credit_exhausted, permissive_off, ""
    reason: str
    hold_s: float = 0.0  # SAFE_STOP_THEN_END: how long to keep power after asking


KEEP = Ruling(Verdict.KEEP, "")


def _busy(view: SessionView) -> bool:
    return view.job_running or view.activity in (Activity.BUSY, Activity.PAUSED)


def _hold(reason: str, hold_s: float) -> Ruling:
    if hold_s <= 0:
        return Ruling(Verdict.SAFE_STOP_THEN_END, reason)  # ask, and switch off at once
    return Ruling(Verdict.SAFE_STOP_THEN_END, reason, hold_s)


def _interlock(view: SessionView, now: float) -> Ruling | None:
    """A permissive not closed: off now, or a hold that ends no later than its own."""
    permissive = view.interlock
    if permissive is None:
        return None
    # Unknown activity may be a running job (the sensor's link is what failed): held.
    running = _busy(view) or view.activity is Activity.UNKNOWN
    if not running or permissive.on_drop is DropRule.OFF or permissive.hold_s <= 0:
        return Ruling(Verdict.END, PERMISSIVE_OFF)
    if view.stop is not None and view.stop.deadline <= now + permissive.hold_s:
        return KEEP  # a hold already asked for ends sooner: let it
    return _hold(PERMISSIVE_OFF, permissive.hold_s)


def evaluate(rules: SessionRules, view: SessionView, now: float) -> Ruling:
    """Whether the session should end now, and how.

    Once a hold has been asked for (``view.stop``) the session ends at its deadline, or
    as soon as the machine is idle, whatever else happens; only a dropped permissive can
    make it end sooner.
    """
    busy = _busy(view)
    if view.stop is not None and (
        now >= view.stop.deadline or not (busy or view.activity is Activity.UNKNOWN)
    ):
        return Ruling(Verdict.END, view.stop.reason)
    interlock = _interlock(view, now)
    if interlock is not None:
        return interlock
    if view.stop is not None:
        return KEEP
    limits = ((rules.max_session_s, "max_length"), (view.credit_limit_s, "credit_exhausted"))
    for limit, reason in limits:
        if limit is not None and now - view.started >= limit:
            if not busy:
                return Ruling(Verdict.END, reason)
            if not rules.never_cut_busy:
                return _hold(reason, rules.hold_s)
    if view.badged_out is not None:
        if busy:
            return KEEP  # the job finishes under the session that started it
        since = now - view.badged_out
        if view.job_ended is not None and view.job_ended >= view.badged_out:
            # The job outlived the badge-out: power off after the cool-down.
            if now - view.job_ended >= rules.cooldown_s:
                return Ruling(Verdict.END, "job_finished")
            return KEEP
        if since >= rules.grace_s:
            return Ruling(Verdict.END, "badge_out")
        return KEEP
    if busy or rules.idle_timeout_s is None:
        return KEEP
    if now - view.last_active >= rules.idle_timeout_s:
        return Ruling(Verdict.END, "idle_timeout")
    return KEEP


def badge_out_ends_now(rules: SessionRules, view: SessionView) -> bool:
    """A badge-out on an idle machine with no grace ends the session at once."""
    return not _busy(view) and rules.grace_s <= 0


def resolve(
    kind: str,
    *,
    grace: float | None = None,
    idle_timeout: float | None = None,
    max_length: float | None = None,
    cooldown: float | None = None,
    never_cut_busy: bool | None = None,
    hold: float | None = None,
) -> SessionRules:
    """The machine kind's defaults with a node's overrides; 0 means never / no limit."""
    base = DEFAULT_RULES.get(kind, DEFAULT_RULES["other"])

    def pick(value: float | None, default: float | None, zero_is_none: bool) -> float | None:
        if value is None:
            return default
        return None if zero_is_none and value == 0 else value

    return SessionRules(
        grace_s=pick(grace, base.grace_s, False) or 0.0,
        idle_timeout_s=pick(idle_timeout, base.idle_timeout_s, True),
        max_session_s=pick(max_length, base.max_session_s, True),
        cooldown_s=pick(cooldown, base.cooldown_s, False) or 0.0,
        never_cut_busy=base.never_cut_busy if never_cut_busy is None else never_cut_busy,
        hold_s=pick(hold, base.hold_s, False) or 0.0,
    )


def never_cut_kind(kind: str) -> bool:
    """The machine classes whose jobs no limit may cut (printers, embroidery machines)."""
    return DEFAULT_RULES.get(kind, DEFAULT_RULES["other"]).never_cut_busy


def _layer(name: str, hub: MachineRules | None, node: MachineRules) -> float | None:
    value = getattr(hub, name) if hub is not None else None
    return value if value is not None else getattr(node, name)


def in_force(kind: str, *, hub: MachineRules | None, node: MachineRules) -> SessionRules:
    """The rules in force: per rule, the hub's if it sets one, else the node's, else the
    class default (``hub`` None: no usable snapshot, the node decides alone).

    The hub's ``never_cut_busy: false`` is ignored on a class that never cuts a busy
    machine; the node file's own setting still applies there.
    """
    never = hub.never_cut_busy if hub is not None else None
    if never is False and never_cut_kind(kind):
        never = None
    if never is None:
        never = node.never_cut_busy
    return resolve(
        kind,
        grace=_layer("grace_s", hub, node),
        idle_timeout=_layer("idle_timeout_s", hub, node),
        max_length=_layer("max_length_s", hub, node),
        cooldown=_layer("cooldown_s", hub, node),
        never_cut_busy=never,
        hold=_layer("hold_s", hub, node),
    )


def progress_every(hub: MachineRules | None, node_s: float) -> float:
    """How often job progress is reported: the hub's setting, else the node file's."""
    if hub is not None and hub.progress_every_s is not None:
        return hub.progress_every_s
    return node_s
