"""Everything around the node under test: a real Mosquitto, a real hub, the node's files.

The suite writes its own small site from the rig file: one machine (the node id, kind
``embroidery`` since it is followed by current, ``min_level: 1`` so that a supervised
member reads ``staff_required`` rather than ``level_too_low``), and one member per test
badge, their certification dates counted from today's clock so the run does not depend
on the day. The hub signs the snapshot the node trusts; the node's journal reaches the
hub through the broker, which is what the last check verifies.
"""

from __future__ import annotations

import secrets
import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from gateway.config.rig import RigBadge
from gateway.contract import Envelope
from gateway.contract.signing import write_keypair
from gateway.core.clock import iso
from tests.hil.rig import Rig
from tests.hil.service import NodeService
from tests.support.harness import Observer, Proc
from tests.support.mosquitto import MosquittoProcess

SITE = "hil"
PREFIX = f"fablab/{SITE}/"
GROUP = "commissioning"
EXPECTED_REASON = {
    "valid": "allowed",
    "unknown": "unknown_badge",
    "expired": "certification_expired",
    "supervised": "staff_required",
}


def _member_id(badge: RigBadge) -> str:
    return f"hil-{badge.kind}-{badge.uid.lower()}"


def write_seed(path: Path, badges: tuple[RigBadge, ...], now: datetime) -> None:
    members: list[dict[str, Any]] = []
    certifications: list[dict[str, Any]] = []
    for b in badges:
        if b.kind == "unknown":
            continue  # in no snapshot: that is the point
        mid = _member_id(b)
        members.append(
            {
                "id": mid,
                "name": f"Commissioning {b.kind} ({b.label})",
                "category": "adherent",
                "membership_end": (now + timedelta(days=365)).date().isoformat(),
                "badges": [b.uid],
            }
        )
        level, start, end = {
            "valid": (2, now - timedelta(days=30), now + timedelta(days=365)),
            "expired": (2, now - timedelta(days=400), now - timedelta(days=30)),
            "supervised": (1, now - timedelta(days=30), now + timedelta(days=365)),
        }[b.kind]
        certifications.append(
            {
                "member": mid,
                "group": GROUP,
                "level": level,
                "certified_by": None,
                "certified_at": iso(start),
                "expires": iso(end),
            }
        )
    path.write_text(yaml.safe_dump({"members": members, "certifications": certifications}))


@dataclass
class Bench:
    """The broker, hub, node service and an observer of everything under the prefix."""

    rig: Rig
    workdir: Path
    broker: MosquittoProcess | None = None
    hub: Proc | None = None
    node: NodeService | None = None
    observer: Observer | None = None
    token: str = field(default_factory=lambda: secrets.token_urlsafe(18))

    @property
    def node_id(self) -> str:
        return self.rig.cfg.node

    def start(self) -> None:
        w = self.workdir
        self.broker = MosquittoProcess(workdir=w / "mosquitto")
        self.broker.start()
        url = self.broker.url
        keys = w / "keys"
        keys.mkdir()
        write_keypair(keys / "hub.pem", keys / "hub.pub")
        write_seed(w / "members.yaml", self.rig.cfg.badges, datetime.now(UTC))
        self.rig.start(w / "rig")
        mqtt = {"url": url, "reconnect_min": "0.1s", "reconnect_max": "0.5s"}
        hub = {
            "site": SITE,
            "timezone": "Europe/Paris",
            "language": "en",
            "mqtt": mqtt,
            "hub": {
                "database": "hub.db",
                "signing_key": "keys/hub.pem",
                "snapshot_validity": "1d",
                "snapshot_refresh": "1h",
                "seed": "members.yaml",
            },
            "web": {"host": "127.0.0.1", "port": 0},
            "api_tokens": [{"name": "commissioning", "token": self.token}],
            "groups": [{"id": GROUP, "name": "Commissioning", "default_validity_months": 12}],
            "machines": [
                {
                    "id": self.node_id,
                    "name": f"Commissioning bench {self.rig.cfg.rig}",
                    "kind": "embroidery",
                    "group": GROUP,
                    "min_level": 1,
                }
            ],
        }
        (w / "hub.yaml").write_text(yaml.safe_dump(hub, sort_keys=False))
        node = {
            "site": SITE,
            "mqtt": mqtt,
            "node": {
                "id": self.node_id,
                "machine": self.node_id,
                "journal": "journal.db",
                "hub_public_key": "keys/hub.pub",
                "max_snapshot_age": "72h",
                "heartbeat": "2s",
            },
            **self.rig.node_sections(),
            "session": {"grace": "0s", "cooldown": "0s", "idle_timeout": "0"},
        }
        (w / "node.yaml").write_text(yaml.safe_dump(node, sort_keys=False))
        self.observer = Observer(url, PREFIX)
        self.hub = Proc(["hub", "--config", str(w / "hub.yaml")], w / "hub.log")
        self.hub.wait_line(r"serving (http://\S+/)")
        svc = self.rig.cfg.service
        self.node = NodeService(
            w / "node.yaml",
            w,
            self.rig.node_env(),
            watchdog_s=svc.watchdog,
            stop_timeout_s=svc.stop_timeout,
            restart_s=svc.restart,
        )

    def stop(self) -> None:
        for step in (
            self.node.stop if self.node else None,
            self.rig.close,
            self.hub.stop if self.hub and self.hub.p.poll() is None else None,
            self.observer.close if self.observer else None,
            self.broker.stop if self.broker else None,
        ):
            if step is not None:
                step()

    # -- waiting on what the node says and what the hub stored -------------------------

    def status(self) -> dict[str, Any]:
        assert self.observer is not None
        return self.observer.status.get(self.node_id, {})

    def wait_status(self, what: str, timeout: float, **match: Any) -> dict[str, Any]:
        assert self.observer is not None

        def matching() -> dict[str, Any] | None:
            st = self.status()
            return st if st and all(st.get(k) == v for k, v in match.items()) else None

        return self.observer.wait_for(matching, timeout, what)

    def wait_event(self, type_: str, timeout: float, after: int = 0, **match: Any) -> Envelope:
        """The first event of ``type_`` matching ``match`` among those after index ``after``."""
        obs = self.observer
        assert obs is not None

        def found() -> Envelope | None:
            for e in obs.events[after:]:
                if e.type == type_ and all(e.data.get(k) == v for k, v in match.items()):
                    return e
            return None

        return obs.wait_for(found, timeout, f"event {type_} {match}")

    def mark(self) -> int:
        """Where the event list is now, for ``wait_event(after=...)``."""
        assert self.observer is not None
        with self.observer.cond:
            return len(self.observer.events)

    def hub_events(self) -> dict[str, str]:
        """event id -> type of every event of this node the hub has stored."""
        db = self.workdir / "hub.db"
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            rows = conn.execute("SELECT event_id, type FROM events WHERE node = ?", (self.node_id,))
            return dict(rows.fetchall())

    def journal_pending(self) -> int:
        """Events the node's journal still holds (not acknowledged by the hub)."""
        with sqlite3.connect(f"file:{self.workdir / 'journal.db'}?mode=ro", uri=True) as conn:
            return int(conn.execute("SELECT count(*) FROM events").fetchone()[0])

    def node_logs(self) -> str:
        return "".join(
            p.read_text(errors="replace") for p in sorted(self.workdir.glob("node-run*.log"))
        )
