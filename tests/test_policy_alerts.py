"""The alert policy, pure: property tests over random observations and delivery outcomes.

Each run drives observe -> due -> delivered/failed as the hub's loop does, with a
channel that fails when hypothesis says, and checks what each channel heard.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from gateway.policies.alerts import (
    FIRE,
    NODE_OFFLINE,
    RECOVER,
    AlertRules,
    Condition,
    Delivery,
    NodeFacts,
    Observation,
    delivered,
    due,
    failed,
    node_observations,
    observe,
    settled,
)

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)
KEYS = [(NODE_OFFLINE, "a"), (NODE_OFFLINE, "b")]
CHANNELS = ["email", "webhook"]
HOLD = {NODE_OFFLINE: timedelta(seconds=20)}
RETRY = dict(retry_min=timedelta(seconds=5), retry_max=timedelta(seconds=40))

# One round: seconds since the last, which keys hold, which channels work.
rounds = st.lists(
    st.tuples(
        st.integers(0, 30),
        st.sets(st.sampled_from(KEYS)),
        st.sets(st.sampled_from(CHANNELS)),
    ),
    max_size=60,
)


def run(steps):  # noqa: ANN001, ANN202
    """Play the rounds; return what each (key, channel) heard (action, round), and the
    time and conditions of each round."""
    conditions: dict = {}
    deliveries: dict = {}
    heard: dict = {}
    history = []
    now = T0
    for i, (dt, holding, working) in enumerate(steps):
        now += timedelta(seconds=dt)
        observed = {k: Observation(k in holding, "x") for k in KEYS}
        conditions = observe(conditions, observed, now, HOLD)
        for n in due(conditions, deliveries, CHANNELS, now):
            slot = (n.key, n.channel)
            if n.channel in working:
                deliveries[slot] = delivered(n)
                heard.setdefault(slot, []).append((n.action, i))
            else:
                deliveries[slot] = failed(deliveries.get(slot), n, now, "down", **RETRY)
        deliveries = settled(deliveries, conditions, CHANNELS)
        history.append((now, holding, dict(conditions)))
    return heard, history, conditions, deliveries


@given(rounds)
def test_a_channel_hears_fire_and_recover_in_turn_starting_with_fire(steps) -> None:
    heard, *_ = run(steps)
    for actions in heard.values():
        kinds = [a for a, _ in actions]
        assert kinds == [FIRE, RECOVER] * (len(kinds) // 2) + [FIRE] * (len(kinds) % 2)


@given(rounds)
def test_a_fire_is_heard_only_while_the_condition_has_held_for_its_hold(steps) -> None:
    heard, history, *_ = run(steps)
    for (key, _channel), actions in heard.items():
        for action, i in actions:
            now, _holding, conditions = history[i]
            cond = conditions.get(key)
            if action == FIRE:
                assert cond is not None and cond.firing and cond.active
                assert now - cond.since >= HOLD[NODE_OFFLINE]
            else:
                assert cond is None or not cond.firing


@given(rounds, st.integers(0, 30))
def test_once_channels_work_every_channel_ends_knowing_the_truth(steps, quiet) -> None:
    # After the random rounds, the same observation over and over with every channel up
    # (and time passing beyond any retry): each channel ends told the current state.
    last = steps[-1][1] if steps else set()
    tail = [(41, last, set(CHANNELS))] * (3 + quiet % 3)
    heard, _history, conditions, deliveries = run(steps + tail)
    for key in KEYS:
        firing = key in conditions and conditions[key].firing
        for channel in CHANNELS:
            told = deliveries.get((key, channel), Delivery(False)).announced
            assert told == firing


@given(st.lists(st.booleans(), max_size=40))
def test_a_condition_that_never_lasts_its_hold_is_never_sent(flaps) -> None:
    conditions: dict = {}
    now = T0
    for active in flaps:
        now += timedelta(seconds=5)
        # on for at most 15 s in a row: below the 20 s hold
        conditions = observe(conditions, {KEYS[0]: Observation(active)}, now, HOLD)
        if not active:
            conditions = observe(conditions, {KEYS[0]: Observation(False)}, now, HOLD)
        else:
            now += timedelta(seconds=10)
            conditions = observe(conditions, {KEYS[0]: Observation(False)}, now, HOLD)
        assert due(conditions, {}, CHANNELS, now) == []


def test_a_failed_notice_waits_its_back_off_and_doubles_it() -> None:
    cond = {KEYS[0]: Condition(True, T0, True, "x", T0)}
    (notice,) = due(cond, {}, ["email"], T0)
    d = failed(None, notice, T0, "down", **RETRY)
    assert d.retry_at == T0 + timedelta(seconds=5) and not d.announced
    assert due(cond, {(KEYS[0], "email"): d}, ["email"], T0 + timedelta(seconds=4)) == []
    d2 = failed(d, notice, T0 + timedelta(seconds=5), "down", **RETRY)
    assert d2.retry_at == T0 + timedelta(seconds=15)
    for _ in range(10):
        d2 = failed(d2, notice, T0, "down", **RETRY)
    assert d2.retry_at == T0 + RETRY["retry_max"]


def test_an_alert_nobody_observes_any_more_recovers() -> None:
    firing = {KEYS[0]: Condition(True, T0, True, "x", T0)}
    told = {(KEYS[0], "email"): Delivery(True)}
    after = observe(firing, {}, T0 + timedelta(seconds=1), HOLD)
    assert [n.action for n in due(after, told, ["email"], T0)] == [RECOVER]


def _node(**kw) -> NodeFacts:  # noqa: ANN003
    base = dict(
        node="n",
        machine="n",
        online=True,
        last_seen=T0,
        heartbeat_s=15.0,
        backlog=0,
        snapshot_age_s=10.0,
        snapshot_max_age_s=1000.0,
        holds_snapshot=True,
    )
    base.update(kw)
    return NodeFacts(**base)


def test_node_observations_from_facts() -> None:
    rules = AlertRules()
    later = T0 + timedelta(seconds=46)
    obs = node_observations([_node()], {}, later, rules, started_at=T0)
    assert obs[(NODE_OFFLINE, "n")].active and obs[(NODE_OFFLINE, "n")].since == T0
    fresh = node_observations([_node()], {}, T0 + timedelta(seconds=44), rules, started_at=T0)
    assert not fresh[(NODE_OFFLINE, "n")].active
    never = node_observations([_node(last_seen=None)], {}, T0, rules, started_at=T0)
    assert never[(NODE_OFFLINE, "n")].active  # held from the hub's start
    old = node_observations([_node(snapshot_age_s=790.0)], {}, later, rules, started_at=T0)
    assert old[("snapshot_age", "n")].active  # 790 + 46 s >= 0.8 x 1000
    undated = node_observations([_node(snapshot_age_s=None)], {}, T0, rules, started_at=T0)
    assert undated[("snapshot_age", "n")].active
    none_held = node_observations([_node(holds_snapshot=False)], {}, T0, rules, started_at=T0)
    assert not none_held[("snapshot_age", "n")].active
    busy = node_observations([_node(backlog=101)], {"n": 1}, T0, rules, started_at=T0)
    assert busy[("journal_backlog", "n")].active and busy[("refusals", "n")].active
