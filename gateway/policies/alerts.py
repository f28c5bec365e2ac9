"""When an alert fires and when it recovers: observations x what was said before -> notices.

Pure: no I/O, every time is a parameter. The hub's alert loop (``gateway.hub.service``)
observes the site, hands the observations and the persisted state
(``gateway.hub.alerts``) to these functions, sends what they say is due and stores what
they return, so a hub restart neither repeats nor forgets an alert.

An alert is one (kind, subject) pair: ``node_offline`` of ``laser-1``, ``ingest_stalled``
of ``hub``. Three steps:

1. :func:`observe`: each observation (the condition holds now or not) updates the
   alert's :class:`Condition`. A condition fires once it has held without a break for its
   kind's *hold* (a node restarting within the hold sends nothing); it recovers as soon as
   it stops holding. An alert nobody observes any more (a machine removed) recovers.
2. :func:`due`: for each channel (e-mail, webhook), a :class:`Notice` is due when what
   the channel was last told (its :class:`Delivery`) differs from the condition: a
   ``fire`` when the alert fires and the channel has not been told, a ``recover`` when it
   no longer fires and the channel was told it did. A channel is told each change once.
3. :func:`delivered` / :func:`failed`: a notice that went out changes what the channel
   was told; one that did not is retried after a back-off (doubling from ``retry_min`` to
   ``retry_max``) without holding up the other channels or alerts.

So a channel hears fire, recover, fire, ... in turn, never two fires without a recovery
between them. A condition that starts and clears while a channel cannot be reached is
not sent to that channel at all (the log has it): what a channel is told is always the
state of the site when it is told.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

NODE_OFFLINE = "node_offline"
JOURNAL_BACKLOG = "journal_backlog"
INGEST_STALLED = "ingest_stalled"
SNAPSHOT_AGE = "snapshot_age"
REFUSALS = "refusals"
KINDS = (NODE_OFFLINE, JOURNAL_BACKLOG, INGEST_STALLED, SNAPSHOT_AGE, REFUSALS)

FIRE = "fire"
RECOVER = "recover"

# The subject of the hub's own alerts, and of refusals from nodes no machine names.
HUB_SUBJECT = "hub"
UNKNOWN_NODE = "(unknown node)"

Key = tuple[str, str]  # (kind, subject)


@dataclass(frozen=True)
class Observation:
    """What is true now. ``since``: when it began, if the data says (a node silent since
    its last status); otherwise the first observation that found it true."""

    active: bool
    detail: str = ""
    since: datetime | None = None


@dataclass(frozen=True)
class Condition:
    """An alert's state, persisted. ``active``: the condition holds (maybe still within
    its hold); ``firing``: it has held long enough, channels are told."""

    active: bool
    since: datetime | None
    firing: bool
    detail: str
    changed_at: datetime  # when ``firing`` last changed (or the condition was first seen)


@dataclass(frozen=True)
class Delivery:
    """What one channel was last told of one alert, and its pending retry."""

    announced: bool  # True: told it fires; False: told it recovered (or never told)
    attempts: int = 0
    retry_at: datetime | None = None
    last_error: str | None = None


@dataclass(frozen=True)
class Notice:
    kind: str
    subject: str
    channel: str
    action: str  # FIRE or RECOVER
    detail: str
    since: datetime | None  # when the condition began (for a fire) or the alert changed

    @property
    def key(self) -> Key:
        return (self.kind, self.subject)


def observe(
    previous: Mapping[Key, Condition],
    observed: Mapping[Key, Observation],
    now: datetime,
    hold: Mapping[str, timedelta],
) -> dict[Key, Condition]:
    """The conditions after this round of observations (an alert not observed: cleared).

    A condition neither holding nor firing is dropped: there is nothing to remember.
    """
    out: dict[Key, Condition] = {}
    for key in set(previous) | set(observed):
        old = previous.get(key)
        obs = observed.get(key, Observation(False))
        if obs.active:
            if old is not None and old.active and old.since is not None:
                since = old.since
            else:
                since = obs.since if obs.since is not None and obs.since <= now else now
            firing = (old is not None and old.firing) or now - since >= hold.get(
                key[0], timedelta(0)
            )
            changed = old.changed_at if old is not None and old.firing == firing else now
            out[key] = Condition(True, since, firing, obs.detail, changed)
        elif old is not None and old.firing:
            out[key] = Condition(False, None, False, obs.detail or old.detail, now)
        # neither holding nor firing: forgotten
    return out


def due(
    conditions: Mapping[Key, Condition],
    deliveries: Mapping[tuple[Key, str], Delivery],
    channels: Sequence[str],
    now: datetime,
) -> list[Notice]:
    """The notices to send now, per channel, oldest change first."""
    notices: list[Notice] = []
    keys = set(conditions) | {k for k, _ in deliveries}
    for key in sorted(keys, key=lambda k: (_changed(conditions.get(k)), k)):
        cond = conditions.get(key)
        firing = cond is not None and cond.firing
        for channel in channels:
            d = deliveries.get((key, channel), Delivery(False))
            if d.announced == firing:
                continue
            if d.retry_at is not None and now < d.retry_at:
                continue
            notices.append(
                Notice(
                    kind=key[0],
                    subject=key[1],
                    channel=channel,
                    action=FIRE if firing else RECOVER,
                    detail=cond.detail if cond is not None else "",
                    since=(cond.since if firing else cond.changed_at) if cond else None,
                )
            )
    return notices


def _changed(cond: Condition | None) -> float:
    return cond.changed_at.timestamp() if cond is not None else float("-inf")


def delivered(notice: Notice) -> Delivery:
    """The channel now knows: nothing pending."""
    return Delivery(announced=notice.action == FIRE)


def failed(
    previous: Delivery | None,
    notice: Notice,
    now: datetime,
    error: str,
    *,
    retry_min: timedelta,
    retry_max: timedelta,
) -> Delivery:
    """The notice did not go out: the channel still knows what it knew; try again later.

    The back-off doubles from ``retry_min`` up to ``retry_max``.
    """
    old = previous or Delivery(False)
    attempts = old.attempts + 1
    wait = min(retry_min * (2 ** min(attempts - 1, 30)), retry_max)
    return replace(old, attempts=attempts, retry_at=now + wait, last_error=error[:500])


def settled(
    deliveries: Mapping[tuple[Key, str], Delivery],
    conditions: Mapping[Key, Condition],
    channels: Iterable[str],
) -> dict[tuple[Key, str], Delivery]:
    """Deliveries worth keeping: a channel told "firing", or one with a notice pending.

    A channel told the alert recovered (or never told) of an alert that does not fire
    needs no row; nor does a channel no longer configured.
    """
    keep = set(channels)
    out: dict[tuple[Key, str], Delivery] = {}
    for (key, channel), d in deliveries.items():
        if channel not in keep:
            continue
        cond = conditions.get(key)
        firing = cond is not None and cond.firing
        if d.announced or firing:
            out[(key, channel)] = d
    return out


# -- what to observe: the site's facts -> observations (pure) -----------------------------


@dataclass(frozen=True)
class AlertRules:
    """Thresholds, from the hub configuration's ``alerts:`` section."""

    node_offline_after: timedelta = timedelta(minutes=2)
    backlog_above: int = 100
    backlog_for: timedelta = timedelta(minutes=5)
    ingest_stalled_after: timedelta = timedelta(minutes=1)
    snapshot_age_ratio: float = 0.8
    refusals_above: int = 0
    refusals_window: timedelta = timedelta(minutes=15)

    def holds(self) -> dict[str, timedelta]:
        """How long each kind must hold before it fires."""
        return {
            NODE_OFFLINE: self.node_offline_after,
            JOURNAL_BACKLOG: self.backlog_for,
            INGEST_STALLED: timedelta(0),
            SNAPSHOT_AGE: timedelta(0),
            REFUSALS: timedelta(0),
        }


@dataclass(frozen=True)
class NodeFacts:
    """What the hub knows of one configured node (all times on the hub's wall clock)."""

    node: str
    machine: str
    online: bool  # its last status said online (a last will says false)
    last_seen: datetime | None  # when the hub received its last status
    heartbeat_s: float  # its heartbeat, bounded (policies.liveness)
    backlog: int | None
    snapshot_age_s: float | None  # as reported with its last status
    snapshot_max_age_s: float | None
    holds_snapshot: bool


@dataclass(frozen=True)
class HubFacts:
    """The hub's own ingest: the oldest message not stored yet, the ingest loop's health."""

    waiting_s: float | None  # age of the oldest message received and not stored
    ingest_loop_healthy: bool


def node_observations(
    nodes: Iterable[NodeFacts],
    refused: Mapping[str, int],
    now: datetime,
    rules: AlertRules,
    *,
    started_at: datetime,
) -> dict[Key, Observation]:
    """Per configured node: offline, backlog, snapshot age; per sender: refusals.

    ``refused``: refusals per node within ``rules.refusals_window`` (nodes no machine
    names counted under :data:`UNKNOWN_NODE`). A node never heard from is offline since
    the hub started (``started_at``), so a fresh hub gives every node its hold first.
    """
    out: dict[Key, Observation] = {}
    for n in nodes:
        silent_for = (now - (n.last_seen or started_at)).total_seconds()
        if n.last_seen is None:
            out[(NODE_OFFLINE, n.node)] = Observation(
                silent_for >= 0, "no status received since the hub started", started_at
            )
        elif not n.online:
            out[(NODE_OFFLINE, n.node)] = Observation(True, "the node said it is offline")
        else:
            # Silent: no status for three heartbeats (the board's rule); counted from
            # the last status, so the hold runs from when it went quiet.
            silent = silent_for > 3 * n.heartbeat_s
            out[(NODE_OFFLINE, n.node)] = Observation(
                silent, f"no status for {silent_for:.0f} s", n.last_seen if silent else None
            )
        backlog = n.backlog or 0
        out[(JOURNAL_BACKLOG, n.node)] = Observation(
            backlog > rules.backlog_above,
            f"{backlog} events waiting (threshold {rules.backlog_above})",
        )
        if n.snapshot_max_age_s and n.last_seen is not None and n.holds_snapshot:
            if n.snapshot_age_s is None:
                age = None
            else:
                age = n.snapshot_age_s + max(0.0, (now - n.last_seen).total_seconds())
            limit = rules.snapshot_age_ratio * n.snapshot_max_age_s
            out[(SNAPSHOT_AGE, n.node)] = Observation(
                age is None or age >= limit,
                (
                    "the node cannot date its snapshot (it counts as too old)"
                    if age is None
                    else f"snapshot {age:.0f} s old, the node's limit is "
                    f"{n.snapshot_max_age_s:.0f} s"
                ),
            )
        else:
            out[(SNAPSHOT_AGE, n.node)] = Observation(False)
    for node, count in refused.items():
        out[(REFUSALS, node)] = Observation(
            count > rules.refusals_above,
            f"{count} messages refused in the last {_span(rules.refusals_window)}",
        )
    return out


def hub_observations(hub: HubFacts, rules: AlertRules) -> dict[Key, Observation]:
    waiting = hub.waiting_s
    stalled_for = rules.ingest_stalled_after.total_seconds()
    if not hub.ingest_loop_healthy:
        obs = Observation(True, "the ingest loop is dead or stuck")
    elif waiting is not None and waiting > stalled_for:
        obs = Observation(True, f"a message has been waiting {waiting:.0f} s to be stored")
    else:
        obs = Observation(False)
    return {(INGEST_STALLED, HUB_SUBJECT): obs}


def _span(d: timedelta) -> str:
    s = int(d.total_seconds())
    if s % 3600 == 0:
        return f"{s // 3600} h"
    if s % 60 == 0:
        return f"{s // 60} min"
    return f"{s} s"
