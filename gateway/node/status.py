"""The node's retained status: what it says, and when the loop publishes it.

Statuses are built and published only by the loop (rule 4 of ``gateway/node/agent.py``),
so one built before a session start can never be published after it. A status is due
at once when something it shows changes (``mark_due``: the clock found behind, the
journal failing or back) and at least every ``node.heartbeat`` otherwise, so the hub
can tell a silent node from a quiet one (docs/mqtt.md, node status).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gateway.config import NodeConfig
from gateway.contract import encode_status
from gateway.contract.mqtt import MqttLink
from gateway.contract.status import MAX_SNAPSHOT_AGE_S
from gateway.core.clock import iso
from gateway.drivers.relay import Relay
from gateway.node.certify import CertifyDesk
from gateway.node.machine import MachineWatch
from gateway.node.recorder import Recorder
from gateway.node.sessions import Sessions
from gateway.node.trust import Trust
from gateway.policies.trusted_time import UNKNOWN_AGE


def build_status(
    cfg: NodeConfig,
    *,
    boot: str,
    relay: Relay,
    sessions: Sessions,
    trust: Trust,
    machine: MachineWatch,
    certify: CertifyDesk,
    recorder: Recorder,
) -> dict[str, Any]:
    """The status fields (``encode_status``'s keywords) from the loop's state now."""
    s = sessions.current
    session = (
        None
        if s is None
        else {
            "session_id": s.session_id,
            "member_id": s.member_id,
            "member_name": s.member_name,
            "project_id": s.project_id,
            "started_at": iso(s.started_at),
        }
    )
    trust.now()  # refreshes clock_behind
    backlog = recorder.backlog()
    age = trust.snapshot_age()
    return dict(
        node=cfg.node_id,
        machine=cfg.machine_id,
        online=True,
        relay=relay.is_on,
        session=session,
        snapshot_version=trust.snapshot.version if trust.snapshot else None,
        boot=boot,
        state="in_use" if s else "free",
        activity=str(machine.activity),
        detail=_detail(machine.detail, sessions),
        job=machine.job_status(),
        ending=bool(s and (s.badged_out is not None or s.stop is not None)),
        mode="certify" if certify.trainer else None,
        heartbeat_s=cfg.heartbeat.total_seconds(),
        clock_behind=trust.clock_behind,
        journal="ok" if recorder.ok else "unavailable",
        backlog=backlog,
        # How old the held snapshot is on the node's own (monotonic) measure, and the
        # limit it decides with: the hub alerts before a cut-off node starts denying.
        # (None: no snapshot, or an age it cannot know, which counts as too old.)
        snapshot_age_s=(
            None
            if age is None or age == UNKNOWN_AGE
            else round(min(max(age.total_seconds(), 0.0), MAX_SNAPSHOT_AGE_S), 3)
        ),
        snapshot_max_age_s=min(cfg.max_snapshot_age.total_seconds(), MAX_SNAPSHOT_AGE_S),
    )


def _detail(detail: str, sessions: Sessions) -> str:
    """The controller's detail, and which permissive keeps the machine off, if one does."""
    interlock = sessions.interlock()
    if interlock is None:
        return detail
    note = f"permissive off: {interlock.name}"
    return f"{detail}; {note}" if detail else note


def offline_status(cfg: NodeConfig) -> bytes:
    """The status the broker publishes for us when we vanish (last will), or we at exit."""
    return encode_status(
        node=cfg.node_id,
        machine=cfg.machine_id,
        online=False,
        heartbeat_s=cfg.heartbeat.total_seconds(),
    )


class StatusBoard:
    """When the status leaves: at once when ``due``, else every heartbeat (loop only)."""

    def __init__(
        self, *, link: MqttLink | None, topic: str, every_s: float, mono: Callable[[], float]
    ) -> None:
        self.link = link
        self.topic = topic
        self.every_s = every_s
        self.mono = mono
        self.due = False
        self._last = float("-inf")

    def mark_due(self) -> None:
        self.due = True

    def publish_due(self) -> bool:
        return self.due or self.mono() - self._last >= self.every_s

    def publish(self, build: Callable[[], dict[str, Any]]) -> None:
        """Build (only with a link: building reads the journal) and publish, retained."""
        payload = encode_status(**build()) if self.link else b""
        self.due = False
        self._last = self.mono()
        if self.link:
            self.link.publish(self.topic, payload, retain=True)
