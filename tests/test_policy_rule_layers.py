"""Where each session rule comes from: the hub's, else the node file's, else the class's.

Pure policy (``gateway/policies/session_rules.py: in_force``) and the snapshot's typed
``machine.session`` (``gateway/core/snapshot.py``), over generated rule sets: the
resolution order for every rule, and the invariant that no hub rule can make a printer or
an embroidery machine cut a job in progress.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from gateway.core.activity import Activity
from gateway.core.snapshot import RULE_BOUNDS, MachineInfo, MachineRules
from gateway.policies.session_rules import (
    DEFAULT_RULES,
    SessionView,
    Verdict,
    evaluate,
    in_force,
    never_cut_kind,
    progress_every,
)

KINDS = ("laser", "cnc", "printer", "embroidery", "other")
# SessionRules field of each layered rule, and how a layer's value becomes it (0 for the
# idle timeout and the maximum length means never / no limit in a node file).
FIELD = {
    "grace_s": "grace_s",
    "idle_timeout_s": "idle_timeout_s",
    "max_length_s": "max_session_s",
    "cooldown_s": "cooldown_s",
    "hold_s": "hold_s",
}
ZERO_IS_NONE = {"idle_timeout_s", "max_length_s"}


def seconds(name: str) -> st.SearchStrategy[float | None]:
    lo, hi = RULE_BOUNDS[name]
    return st.none() | st.floats(lo, hi, allow_nan=False)


@st.composite
def hub_rules(draw: st.DrawFn) -> MachineRules:
    values: dict[str, Any] = {name: draw(seconds(name)) for name in RULE_BOUNDS}
    values["never_cut_busy"] = draw(st.sampled_from((None, True, False)))
    return MachineRules(**values)


@st.composite
def node_rules(draw: st.DrawFn) -> MachineRules:
    """A node file's layer: any duration of zero or more (0: never, for two of them)."""
    values: dict[str, Any] = {
        name: draw(st.none() | st.just(0.0) | st.floats(0, 10 * 86400, allow_nan=False))
        for name in RULE_BOUNDS
    }
    values["never_cut_busy"] = draw(st.sampled_from((None, True, False)))
    return MachineRules(**values)


def expected(name: str, kind: str, hub: MachineRules | None, node: MachineRules) -> float | None:
    """The order stated by the issue, written out plainly."""
    base = getattr(DEFAULT_RULES[kind], FIELD[name])
    for layer in (hub, node):
        value = getattr(layer, name) if layer is not None else None
        if value is not None:
            if name in ZERO_IS_NONE and value == 0:
                return None
            return value
    return base


@given(st.sampled_from(KINDS), st.none() | hub_rules(), node_rules())
def test_each_rule_is_the_hubs_else_the_nodes_else_the_class_default(
    kind: str, hub: MachineRules | None, node: MachineRules
) -> None:
    rules = in_force(kind, hub=hub, node=node)
    for name, field in FIELD.items():
        want = expected(name, kind, hub, node)
        got = getattr(rules, field)
        if want is None or name in ZERO_IS_NONE:
            assert got == want, name
        else:
            assert got == pytest.approx(want), name
    want_every = hub.progress_every_s if hub and hub.progress_every_s is not None else 5.0
    assert progress_every(hub, 5.0) == want_every


@given(st.sampled_from(KINDS), hub_rules(), node_rules())
@example("printer", MachineRules(never_cut_busy=False), MachineRules())
@example("embroidery", MachineRules(never_cut_busy=False), MachineRules(never_cut_busy=True))
@example("printer", MachineRules(never_cut_busy=True), MachineRules(never_cut_busy=False))
@example("laser", MachineRules(never_cut_busy=False), MachineRules(never_cut_busy=True))
def test_the_hub_cannot_turn_off_never_cut_busy_on_printers_and_embroidery(
    kind: str, hub: MachineRules, node: MachineRules
) -> None:
    rules = in_force(kind, hub=hub, node=node)
    if never_cut_kind(kind):
        # The hub may only make it safer there: its "false" is ignored, and only the
        # node's own file may turn the invariant off.
        assert rules.never_cut_busy is (
            hub.never_cut_busy is True or node.never_cut_busy is not False
        )
        if node.never_cut_busy is not False:
            assert rules.never_cut_busy
    elif hub.never_cut_busy is not None:
        assert rules.never_cut_busy is hub.never_cut_busy


@given(
    st.sampled_from(("printer", "embroidery")),
    hub_rules(),
    st.floats(0, 2 * 86400, allow_nan=False),
    st.sampled_from((Activity.BUSY, Activity.PAUSED)),
)
def test_no_hub_rule_cuts_a_running_print_or_embroidery(
    kind: str, hub: MachineRules, elapsed: float, activity: Activity
) -> None:
    """Any hub rules, any session length, badged out or not: a running job keeps power."""
    rules = in_force(kind, hub=hub, node=MachineRules())
    for badged_out in (None, 1.0):
        view = SessionView(
            started=0.0,
            badged_out=badged_out,
            activity=activity,
            last_active=0.0,
            job_running=True,
        )
        assert evaluate(rules, view, elapsed).verdict is Verdict.KEEP


def test_without_a_usable_snapshot_the_node_file_rules() -> None:
    node = MachineRules(idle_timeout_s=600.0)
    assert in_force("laser", hub=None, node=node).idle_timeout_s == 600.0
    hub = MachineRules(idle_timeout_s=5.0)
    assert in_force("laser", hub=hub, node=node).idle_timeout_s == 5.0


def test_a_shorter_maximum_length_applies_to_an_open_session() -> None:
    """Lowered below the session's age: an idle laser ends, a busy one is held, a busy
    printer keeps going."""
    hub = MachineRules(max_length_s=60.0)
    view = SessionView(
        started=0.0, badged_out=None, activity=Activity.IDLE, last_active=100.0, job_running=False
    )
    assert evaluate(in_force("laser", hub=hub, node=MachineRules()), view, 120.0).reason == (
        "max_length"
    )
    busy = SessionView(
        started=0.0, badged_out=None, activity=Activity.BUSY, last_active=119.0, job_running=True
    )
    held = evaluate(in_force("laser", hub=hub, node=MachineRules()), busy, 120.0)
    assert held.verdict is Verdict.SAFE_STOP_THEN_END
    printing = evaluate(in_force("printer", hub=hub, node=MachineRules()), busy, 120.0)
    assert printing.verdict is Verdict.KEEP


# -- the wire --------------------------------------------------------------------------


@given(hub_rules())
def test_rules_survive_the_snapshot_dict(rules: MachineRules) -> None:
    machine = MachineInfo(id="laser-1", name="Laser", kind="laser", group="laser", session=rules)
    d = machine.to_dict()
    assert ("session" in d) is not rules.empty  # an older node sees nothing new
    assert MachineInfo.from_dict(d).session == rules


@pytest.mark.parametrize("name", sorted(RULE_BOUNDS))
@pytest.mark.parametrize("bad", [-1.0, 1e9, math.nan, math.inf, "15m", True, [1]])
def test_a_rule_out_of_bounds_or_of_the_wrong_type_is_refused(name: str, bad: object) -> None:
    lo, hi = RULE_BOUNDS[name]
    if isinstance(bad, float) and lo <= bad <= hi:
        pytest.skip("in bounds")
    base = MachineInfo(id="m", name="M", kind="laser", group="g").to_dict()
    with pytest.raises(ValueError, match=f"machine.session.{name}"):
        MachineInfo.from_dict({**base, "session": {name: bad}})


@pytest.mark.parametrize("bad", [[], "x", 0, 1])
def test_a_session_that_is_not_an_object_is_refused(bad: object) -> None:
    base = MachineInfo(id="m", name="M", kind="laser", group="g").to_dict()
    with pytest.raises(ValueError, match="machine.session"):
        MachineInfo.from_dict({**base, "session": bad})


def test_never_cut_busy_must_be_a_boolean_and_unknown_rules_are_ignored() -> None:
    base = MachineInfo(id="m", name="M", kind="laser", group="g").to_dict()
    with pytest.raises(ValueError, match="never_cut_busy"):
        MachineInfo.from_dict({**base, "session": {"never_cut_busy": 0}})
    newer = MachineInfo.from_dict({**base, "session": {"grace_s": 5, "warmup_s": 3}})
    assert newer.session == MachineRules(grace_s=5.0)
