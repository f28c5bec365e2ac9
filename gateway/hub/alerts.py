"""The alerts' persisted state: each alert's condition and what each channel was told.

The only writer of ``alert_conditions`` and ``alert_deliveries``. What the state means,
and how it changes, is ``gateway.policies.alerts``; this module only keeps it, so a hub
restart neither repeats an alert a channel has heard nor forgets one it has not.
The state is small (a few rows per node), so it is saved whole, in one transaction.
"""

from __future__ import annotations

from collections.abc import Mapping

from gateway.core.clock import iso, parse_iso
from gateway.hub.db import HubStore
from gateway.policies.alerts import Condition, Delivery, Key

Deliveries = dict[tuple[Key, str], Delivery]


def load(store: HubStore) -> tuple[dict[Key, Condition], Deliveries]:
    conditions: dict[Key, Condition] = {}
    for r in store.conn.execute(
        "SELECT kind, subject, active, since, firing, detail, changed_at FROM alert_conditions"
    ):
        conditions[(r[0], r[1])] = Condition(
            active=bool(r[2]),
            since=parse_iso(r[3]) if r[3] else None,
            firing=bool(r[4]),
            detail=r[5],
            changed_at=parse_iso(r[6]),
        )
    deliveries: Deliveries = {}
    for r in store.conn.execute(
        "SELECT kind, subject, channel, announced, attempts, retry_at, last_error "
        "FROM alert_deliveries"
    ):
        deliveries[((r[0], r[1]), r[2])] = Delivery(
            announced=bool(r[3]),
            attempts=r[4],
            retry_at=parse_iso(r[5]) if r[5] else None,
            last_error=r[6],
        )
    return conditions, deliveries


def save(
    store: HubStore,
    conditions: Mapping[Key, Condition],
    deliveries: Mapping[tuple[Key, str], Delivery],
) -> None:
    """Replace the stored state with this one (one transaction)."""
    with store.atomic():
        store.conn.execute("DELETE FROM alert_conditions")
        store.conn.execute("DELETE FROM alert_deliveries")
        store.conn.executemany(
            "INSERT INTO alert_conditions (kind, subject, active, since, firing, detail, "
            "changed_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    k[0],
                    k[1],
                    int(c.active),
                    iso(c.since) if c.since else None,
                    int(c.firing),
                    c.detail,
                    iso(c.changed_at),
                )
                for k, c in conditions.items()
            ],
        )
        store.conn.executemany(
            "INSERT INTO alert_deliveries (kind, subject, channel, announced, attempts, "
            "retry_at, last_error) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    k[0],
                    k[1],
                    channel,
                    int(d.announced),
                    d.attempts,
                    iso(d.retry_at) if d.retry_at else None,
                    d.last_error,
                )
                for (k, channel), d in deliveries.items()
            ],
        )


def firing(store: HubStore) -> list[tuple[str, str, str]]:
    """(kind, subject, since) of every alert firing now, for /metrics."""
    return [
        (r[0], r[1], r[2] or "")
        for r in store.conn.execute(
            "SELECT kind, subject, since FROM alert_conditions WHERE firing = 1 "
            "ORDER BY kind, subject"
        )
    ]
