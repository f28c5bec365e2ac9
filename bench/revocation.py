"""Revocation: a fabmanager revokes a certification at the hub; how soon is it enforced?

Real processes (Mosquitto, hub, one node), snapshots the size of a 5,000-member lab.
The clock starts just before ``HubStore.revoke_certification`` commits in the hub's
database (as the fabmanager's page will do) and stops when the node's ``tap`` event
for that badge says ``deny``. In between: the hub notices ``data_version``, signs and
publishes every machine's snapshot, the node verifies and stores its own, its retained
status shows the new version, and a tap on its Unix tap socket is polled (10 Hz) and
denied. Before each round the certification is granted again and the node is seen
holding that snapshot, so every round starts from a member who may use the machine.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.common import Bar, Figure, percentile
from bench.site import LiveSite, tap_socket
from gateway.demo.site import BADGE
from gateway.drivers.readers.simulated import send_tap
from gateway.hub.certifications import add_certification, revoke_certification
from gateway.hub.db import HubStore

NAME = "revocation"
NODE = "laser-1"
MEMBERS = 5000
MEMBER, GROUP, UID = "m-alice", "laser", BADGE["alice"]


def one_round(
    site: LiveSite, store: HubStore, revocations: int, start: datetime
) -> tuple[list[float], list[float]]:
    watch = site.watch
    assert watch is not None
    to_snapshot: list[float] = []
    to_deny: list[float] = []
    for i in range(revocations):
        version = watch.snapshot_version()
        add_certification(
            store,
            MEMBER,
            GROUP,
            2,
            certified_by="m-karim",
            certified_at=start + timedelta(seconds=i),
        )
        watch.wait(lambda v=version: watch.snapshot_version() > v, 30, "the grant's snapshot")
        version = watch.snapshot_version()
        seen = len(watch.events)
        t0 = time.monotonic()
        revoke_certification(store, MEMBER, GROUP, datetime.now(UTC))
        watch.wait(lambda v=version: watch.snapshot_version() > v, 30, "the revocation's snapshot")
        t_snap = time.monotonic()
        send_tap(tap_socket(site.files, NODE), UID)

        def denied(n: int = seen) -> dict | None:
            for e in watch.events[n:]:
                if e["type"] == "tap" and e["data"]["uid"] == UID:
                    return e
            return None

        event = watch.wait(denied, 30, "the tap event")
        t_deny = time.monotonic()
        if event["data"]["action"] != "deny":
            raise AssertionError(f"revoked badge was not denied: {event['data']}")
        to_snapshot.append((t_snap - t0) * 1000)
        to_deny.append((t_deny - t0) * 1000)
        time.sleep(0.1)  # past the reader's hold-off, so the next tap counts
    return to_snapshot, to_deny


def run(work: Path, quick: bool) -> list[Figure]:
    rounds, per_round = (1, 3) if quick else (3, 10)
    note = f"{rounds} rounds × {per_round} revocations, {MEMBERS} members in each snapshot"
    f = {
        "snap50": Figure(NAME, "revocation → node holds the new snapshot, p50", "ms", note=note),
        "deny50": Figure(NAME, "revocation → tap denied, p50", "ms"),
        "deny99": Figure(
            NAME, "revocation → tap denied, p99 (of the round)", "ms", bar=Bar("<", 1000)
        ),
    }
    site = LiveSite(work, NODE, members=MEMBERS)
    store = HubStore(site.db)
    try:
        for r in range(rounds):
            start = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=r)
            snap, deny = one_round(site, store, per_round, start)
            f["snap50"].values.append(round(percentile(snap, 50), 1))
            f["deny50"].values.append(round(percentile(deny, 50), 1))
            f["deny99"].values.append(round(percentile(deny, 99), 1))
    finally:
        store.close()
        site.close()
    return list(f.values())
