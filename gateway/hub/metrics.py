"""``/metrics``: the hub and its nodes in the Prometheus text format, read at scrape time.

A custom collector: every value is read when Prometheus asks, from the database (events,
refusals, node statuses, sessions, alerts) and from the running hub's
:class:`~gateway.hub.monitor.HubMonitor` (ingest counters and latency, snapshot
publications, loop health). Nothing is a module-level counter, so two hubs in one
process (tests) never mix their numbers, and a restarted hub reports the same stored
totals it had. Counters from the database count what is stored (they survive restarts);
those from the monitor count since the hub process started, which Prometheus' ``rate()``
handles as a counter reset.

Label values a node could choose are bounded: nodes and machines are those of the hub
configuration (refusals from any other sender are labelled ``other``), event types are
those of the contract (any other is ``other``). The list of metrics, with what each
means, is in docs/operations.md.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from gateway.contract import EVENT_CLASSES
from gateway.hub import alerts, machine_state, sessions
from gateway.hub.db import HubStore
from gateway.hub.events import journal, refusals
from gateway.hub.monitor import MonitorView
from gateway.policies.alerts import KINDS
from gateway.policies.liveness import is_silent

CONTENT_TYPE = CONTENT_TYPE_LATEST
OTHER = "other"


class HubCollector:
    """One scrape's worth of metrics; built per request (the store is the request's)."""

    def __init__(self, store: HubStore, view: MonitorView | None, now: datetime) -> None:
        self.store = store
        self.view = view
        self.now = now

    def collect(self) -> Iterator[Metric]:
        yield from self._events()
        yield from self._refusals()
        yield from self._nodes()
        yield from self._sessions()
        yield from self._alerts()
        if self.view is not None:
            yield from self._runtime(self.view)

    def _events(self) -> Iterator[Metric]:
        stored = CounterMetricFamily(
            "fabgate_hub_events", "Node events stored, by event type", labels=["type"]
        )
        dead = CounterMetricFamily(
            "fabgate_hub_events_dead_lettered",
            "Events stored but not applied (bad data, refused, conflict), by event type",
            labels=["type"],
        )
        totals: dict[str, tuple[int, int]] = {t: (0, 0) for t in EVENT_CLASSES}
        for type_, (n, bad) in journal.counts_by_type(self.store).items():
            label = type_ if type_ in EVENT_CLASSES else OTHER
            old = totals.get(label, (0, 0))
            totals[label] = (old[0] + n, old[1] + bad)
        for label in sorted(totals):
            stored.add_metric([label], totals[label][0])
            dead.add_metric([label], totals[label][1])
        yield stored
        yield dead

    def _refusals(self) -> Iterator[Metric]:
        known = {n["node"] for n in machine_state.node_statuses(self.store)}
        family = CounterMetricFamily(
            "fabgate_hub_messages_refused",
            "Messages the hub refused, by kind (invalid, forbidden, conflict) and sending node",
            labels=["kind", "node"],
        )
        totals: dict[tuple[str, str], int] = {}
        for (node, kind), n in refusals.counts(self.store).items():
            key = (kind, node if node is not None and node in known else OTHER)
            totals[key] = totals.get(key, 0) + n
        for (kind, node), n in sorted(totals.items()):
            family.add_metric([kind, node], n)
        yield family

    def _nodes(self) -> Iterator[Metric]:
        labels = ["node", "machine"]
        up = GaugeMetricFamily(
            "fabgate_node_up",
            "1 when the node's last status says online and it is not silent",
            labels=labels,
        )
        seen = GaugeMetricFamily(
            "fabgate_node_last_seen_timestamp_seconds",
            "When the hub last received the node's status (Unix time, hub clock)",
            labels=labels,
        )
        backlog = GaugeMetricFamily(
            "fabgate_node_journal_backlog",
            "Events the node holds that the hub has not acknowledged, as it last reported",
            labels=labels,
        )
        journal_ok = GaugeMetricFamily(
            "fabgate_node_journal_ok",
            "1 when the node says it can write its journal",
            labels=labels,
        )
        relay = GaugeMetricFamily(
            "fabgate_node_relay_on", "1 when the node's relay is on", labels=labels
        )
        age = GaugeMetricFamily(
            "fabgate_node_snapshot_age_seconds",
            "Age of the snapshot the node holds: as it reported, plus the time since",
            labels=labels,
        )
        max_age = GaugeMetricFamily(
            "fabgate_node_snapshot_max_age_seconds",
            "The node's max_snapshot_age: past it, the node denies every tap",
            labels=labels,
        )
        for n in machine_state.node_statuses(self.store):
            key = [n["node"], n["machine"]]
            status = n["status"]
            last = n["last_seen"]
            alive = n["online"] and not is_silent(last, status, self.now)
            up.add_metric(key, 1 if alive else 0)
            if last is None:
                continue
            seen.add_metric(key, last.timestamp())
            relay.add_metric(key, 1 if status.get("relay") else 0)
            if isinstance(status.get("backlog"), int):
                backlog.add_metric(key, status["backlog"])
            if status.get("journal") is not None:
                journal_ok.add_metric(key, 1 if status["journal"] == "ok" else 0)
            if isinstance(status.get("snapshot_age_s"), int | float):
                since = max(0.0, (self.now - last).total_seconds())
                age.add_metric(key, float(status["snapshot_age_s"]) + since)
            if isinstance(status.get("snapshot_max_age_s"), int | float):
                max_age.add_metric(key, float(status["snapshot_max_age_s"]))
        yield from (up, seen, backlog, journal_ok, relay, age, max_age)

    def _sessions(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "fabgate_hub_sessions_open", "Sessions open, by machine", labels=["machine"]
        )
        open_now = sessions.open_by_machine(self.store)
        for n in machine_state.node_statuses(self.store):
            family.add_metric([n["machine"]], open_now.get(n["machine"], 0))
        yield family

    def _alerts(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "fabgate_hub_alerts_firing", "Alerts firing now, by kind", labels=["kind"]
        )
        counts = dict.fromkeys(KINDS, 0)
        for kind, _subject, _since in alerts.firing(self.store):
            counts[kind] = counts.get(kind, 0) + 1
        for kind in sorted(counts):
            family.add_metric([kind], counts[kind])
        yield family

    def _runtime(self, view: MonitorView) -> Iterator[Metric]:
        ingest = view.ingest
        yield CounterMetricFamily(
            "fabgate_hub_messages_received",
            "MQTT messages received from nodes since the hub started",
            value=ingest.received,
        )
        yield CounterMetricFamily(
            "fabgate_hub_messages_stored",
            "Messages handled and committed since the hub started (stored, duplicate or refused)",
            value=ingest.stored,
        )
        yield CounterMetricFamily(
            "fabgate_hub_ingest_failed",
            "Messages an unexpected error rolled back since the hub started (not "
            "acknowledged: their node sends them again)",
            value=ingest.failed,
        )
        waiting = GaugeMetricFamily(
            "fabgate_hub_ingest_waiting_seconds",
            "Age of the oldest message received and not stored yet (0: none waiting)",
            value=ingest.waiting_s or 0.0,
        )
        yield waiting
        yield HistogramMetricFamily(
            "fabgate_hub_ingest_latency_seconds",
            "Time from receiving a message to committing it",
            buckets=[(_le(b), n) for b, n in ingest.buckets],
            sum_value=ingest.latency_sum,
        )
        published = GaugeMetricFamily(
            "fabgate_hub_snapshot_published_timestamp_seconds",
            "When the hub last published a signed snapshot for the machine (Unix time)",
            labels=["machine"],
        )
        for machine, at in sorted(view.published.items()):
            published.add_metric([machine], at.timestamp())
        yield published
        health = view.health
        if health:
            yield GaugeMetricFamily(
                "fabgate_hub_broker_connected",
                "1 when the hub is connected to its MQTT broker",
                value=1 if health.get("broker", {}).get("connected") else 0,
            )
            loops = GaugeMetricFamily(
                "fabgate_hub_loop_healthy",
                "1 when the hub loop is alive and not stuck",
                labels=["loop"],
            )
            for name, loop in sorted(health.get("loops", {}).items()):
                loops.add_metric([name], 1 if loop.get("healthy") else 0)
            yield loops


def _le(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(bound)


def render(store: HubStore, view: MonitorView | None, now: datetime) -> bytes:
    """The text a scrape gets (``CONTENT_TYPE``)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(HubCollector(store, view, now))
    return generate_latest(registry)
