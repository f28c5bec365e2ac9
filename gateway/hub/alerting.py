"""The alert loop's work: observe the site, ask the policy, send, remember.

One :meth:`Alerting.check` is one round, run by the hub service's ``alerts`` loop every
``alerts.check_every``. The decisions are ``gateway.policies.alerts``; the state lives
in memory and is saved after each round that changed it (``gateway.hub.alerts``), so a
restart neither repeats nor loses an alert. Nothing here may stop the loop:

- a channel that fails (SMTP server down, webhook answering 500) gets a retry with
  back-off; the other channels and alerts go on, and the failing channel is not tried
  again within the same round;
- a database that cannot be read leaves the nodes' alerts as they were last observed
  (the hub's own ingest alert is still judged: it reads no table); one that cannot be
  written keeps the state in memory and saves it at the next round that can.

A notice sent just before the hub dies, before its state was saved, is sent again after
the restart: delivery is at least once, never silently dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime

from gateway.config.models import AlertsConfig
from gateway.hub import alerts, machine_state
from gateway.hub.db import HubStore
from gateway.hub.events import refusals
from gateway.hub.monitor import HubMonitor
from gateway.hub.notify import Channel, summary
from gateway.policies import alerts as policy
from gateway.policies.liveness import heartbeat_of

log = logging.getLogger(__name__)

Beat = Callable[[], None]


class Alerting:
    def __init__(
        self,
        cfg: AlertsConfig,
        *,
        site: str,
        monitor: HubMonitor,
        channels: Sequence[Channel],
        wall: Callable[[], datetime],
        ingest_healthy: Callable[[], bool],
    ) -> None:
        self.cfg = cfg
        self.site = site
        self.monitor = monitor
        self.channels = list(channels)
        self.wall = wall
        self.ingest_healthy = ingest_healthy
        self.started_at = wall()
        self.conditions: dict[policy.Key, policy.Condition] = {}
        self.deliveries: alerts.Deliveries = {}
        self._loaded = False
        self._dirty = False
        self._node_obs: dict[policy.Key, policy.Observation] = {}
        self.rounds = 0  # checks completed (tests wait on it)

    def check(self, store: HubStore, beat: Beat | None = None) -> list[policy.Notice]:
        """One round; returns the notices that went out."""
        beat = beat or (lambda: None)
        if not self._loaded:
            self.conditions, self.deliveries = alerts.load(store)
            self._loaded = True
        now = self.wall()
        observed = dict(self._observe_nodes(store, now))
        view = self.monitor.view()
        observed.update(
            policy.hub_observations(
                policy.HubFacts(view.ingest.waiting_s, self.ingest_healthy()), self.cfg.rules
            )
        )
        before = self.conditions
        self.conditions = policy.observe(before, observed, now, self.cfg.rules.holds())
        self._log_changes(before, self.conditions)
        if self.conditions != before:
            self._dirty = True
        sent = self._send(now, beat)
        kept = policy.settled(self.deliveries, self.conditions, [c.name for c in self.channels])
        if kept != self.deliveries:
            self.deliveries = kept
            self._dirty = True
        if self._dirty:
            try:
                alerts.save(store, self.conditions, self.deliveries)
                self._dirty = False
            except Exception:
                log.exception("could not save the alerts' state: kept in memory, saved later")
        self.rounds += 1
        return sent

    def _observe_nodes(
        self, store: HubStore, now: datetime
    ) -> dict[policy.Key, policy.Observation]:
        try:
            nodes = machine_state.node_statuses(store)
            recent = refusals.recent_by_node(store, now - self.cfg.rules.refusals_window)
        except Exception:
            log.exception("alerts: cannot read the nodes' state; keeping the last observations")
            return self._node_obs
        known = {n["node"] for n in nodes}
        refused: dict[str, int] = {}
        for node, count in recent.items():
            subject = node if node is not None and node in known else policy.UNKNOWN_NODE
            refused[subject] = refused.get(subject, 0) + count
        facts = []
        for n in nodes:
            status = n["status"]
            facts.append(
                policy.NodeFacts(
                    node=n["node"],
                    machine=n["machine"],
                    online=n["online"],
                    last_seen=n["last_seen"],
                    heartbeat_s=heartbeat_of(status),
                    backlog=_int(status.get("backlog")),
                    snapshot_age_s=_float(status.get("snapshot_age_s")),
                    snapshot_max_age_s=_float(status.get("snapshot_max_age_s")),
                    holds_snapshot=status.get("snapshot_version") is not None,
                )
            )
        self._node_obs = policy.node_observations(
            facts, refused, now, self.cfg.rules, started_at=self.started_at
        )
        return self._node_obs

    def _send(self, now: datetime, beat: Beat) -> list[policy.Notice]:
        by_name = {c.name: c for c in self.channels}
        down: set[str] = set()
        sent = []
        for notice in policy.due(self.conditions, self.deliveries, list(by_name), now):
            if notice.channel in down:
                continue
            key = (notice.key, notice.channel)
            try:
                by_name[notice.channel].send(notice, self.site, now)
            except Exception as exc:
                down.add(notice.channel)
                self.deliveries[key] = policy.failed(
                    self.deliveries.get(key),
                    notice,
                    now,
                    f"{type(exc).__name__}: {exc}",
                    retry_min=self.cfg.retry_min,
                    retry_max=self.cfg.retry_max,
                )
                log.warning(
                    "alert %r not sent by %s (%s: %s); retried from %s",
                    summary(notice, self.site),
                    notice.channel,
                    type(exc).__name__,
                    exc,
                    self.deliveries[key].retry_at,
                )
            else:
                self.deliveries[key] = policy.delivered(notice)
                sent.append(notice)
                log.info("alert %r sent by %s", summary(notice, self.site), notice.channel)
            self._dirty = True
            beat()
        return sent

    def _log_changes(
        self,
        before: dict[policy.Key, policy.Condition],
        after: dict[policy.Key, policy.Condition],
    ) -> None:
        for key in sorted(set(before) | set(after)):
            was = before.get(key)
            now = after.get(key)
            was_firing = was is not None and was.firing
            now_firing = now is not None and now.firing
            if now_firing and not was_firing and now is not None:
                log.warning("ALERT %s %s: %s", key[0], key[1], now.detail)
            elif was_firing and not now_firing:
                log.warning("alert %s %s recovered", key[0], key[1])


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _float(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)
