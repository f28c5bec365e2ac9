"""The node agent: badge reader -> access policy -> relay -> session -> journal -> MQTT.

Safety rules the node keeps, in this order of importance (and where each is kept):

1. The relay is off at start, on exit, and on every error path we control. Power never
   returns by itself: a session found open after a restart is closed (with its last
   known time), never resumed (here and ``sessions.py``).
2. Every event is in the journal before it is published; the journal forgets it only
   when the hub has acknowledged its id. So a dead broker or hub loses nothing, and a
   replay bills nothing twice (the hub is idempotent on event ids). A session is in the
   journal before the relay switches on (``recorder.py``, ``outbox.py``, ``sessions.py``).
3. Decisions are local, from the last valid signed snapshot: the node works offline up
   to the machine's maximum snapshot age, measured on the monotonic clock; "now" never
   goes below the time the hub signed (``trust.py``, ``policies/trusted_time.py``).
4. The loop owns the state. MQTT handlers (paho's thread) only put messages in an inbox
   that ``step()`` drains, so snapshots, acks, enrolment windows, simulated taps and
   every status are handled in order on one thread; the journal sender thread only
   reads the journal and publishes (``inbox.py``, ``status.py``, ``outbox.py``).
5. No journal, no power: when the journal cannot be written the relay goes off, an open
   session ends at once, taps are denied (``journal_unavailable``) and kept in memory;
   the node retries the journal with back-off and writes them when it can again
   (``recorder.py``).

The agent is the loop and its wiring only; each concern is a collaborator with one job
(docs/design.md, "The node package"). The collaborators call back into the agent only
through what it hands them (``_publish_status``, the session callbacks of the recorder).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gateway.config import NodeConfig
from gateway.contract import (
    MAX_DETAIL,
    ContractError,
    SnapshotRejectedEvent,
    Topics,
    decode_sim_tap,
)
from gateway.contract.mqtt import MqttLink, Will
from gateway.contract.signing import SnapshotRejected
from gateway.core.activity import MachineReport
from gateway.core.clock import utcnow
from gateway.core.ids import normalise_uid
from gateway.core.sdnotify import ping_watchdog
from gateway.core.supervise import Supervisor
from gateway.drivers.machines.base import MachineController
from gateway.drivers.readers.base import BadgeReader, TapDebouncer
from gateway.drivers.relay import Relay
from gateway.drivers.simulators.machine import SimulatedMachine
from gateway.node.certify import CertifyDesk
from gateway.node.inbox import Inbox
from gateway.node.journal import Journal
from gateway.node.machine import MachineWatch
from gateway.node.metrics import MetricsFile, render
from gateway.node.outbox import Outbox
from gateway.node.recorder import Recorder, clip
from gateway.node.sessions import Sessions
from gateway.node.status import StatusBoard, build_status, offline_status
from gateway.node.taps import TapHandler
from gateway.node.trust import Trust
from gateway.policies.trusted_time import UNKNOWN_AGE

log = logging.getLogger(__name__)

STEP_ERROR_MAX_WAIT_S = 5.0  # a step that keeps failing is retried at most this slowly


class NodeAgent:
    """One machine's node. ``step()`` does one poll; ``run()`` loops until stopped.

    Everything the agent and its collaborators hold belongs to the thread that calls
    ``step()`` (the loop), except the inbox and the machine's report queue (thread-safe:
    other threads feed them through the ``on_*`` entry points, which only enqueue), the
    outbox's in-flight table (locked, shared with the journal sender) and the journal
    (locked inside).
    """

    def __init__(
        self,
        cfg: NodeConfig,
        *,
        relay: Relay,
        reader: BadgeReader,
        public_key: Ed25519PublicKey,
        journal: Journal | None = None,
        controller: MachineController | None = None,
        simulated_machine: SimulatedMachine | None = None,
        mono: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = utcnow,
        connect: bool = True,
    ) -> None:
        self.cfg = cfg
        self.relay = relay
        self.reader = reader
        self.journal = journal if journal is not None else Journal(cfg.journal, open_now=False)
        self.mono = mono
        self.wall = wall
        self.topics = Topics(cfg.mqtt.prefix)
        self.boot = str(uuid.uuid4())
        self.debouncer = TapDebouncer(cfg.reader.hold_off, clock=mono)
        self.stopping = threading.Event()
        # The journal sender runs supervised: a crash is logged and it starts again.
        self._threads = Supervisor()
        self.inbox = Inbox()
        self.link: MqttLink | None = None
        if connect:
            self.link = MqttLink(
                cfg.mqtt.url,
                cfg.mqtt.client_id,
                username=cfg.mqtt.username,
                password=cfg.mqtt.password,
                tls=cfg.mqtt.tls_files,
                will=Will(self.topics.node_status(cfg.node_id), offline_status(cfg)),
                on_connect=self.on_connect,
                reconnect_min=cfg.mqtt.reconnect_min,
                reconnect_max=cfg.mqtt.reconnect_max,
            )
        self.board = StatusBoard(
            link=self.link,
            topic=self.topics.node_status(cfg.node_id),
            every_s=cfg.heartbeat.total_seconds(),
            mono=mono,
        )
        self.trust = Trust(
            public_key, cfg.machine_id, wall=wall, mono=mono, changed=self.board.mark_due
        )
        # The recorder reaches the sessions (built below, writing through it) by callbacks.
        self.recorder = Recorder(
            self.journal,
            trust=self.trust,
            relay=relay,
            node_id=cfg.node_id,
            boot=self.boot,
            mono=mono,
            changed=self.board.mark_due,
            cut_session=lambda: self.sessions.cut(),
            close_session=lambda why: self.sessions.close_recorded(why),
        )
        self.outbox = Outbox(
            self.journal,
            self.recorder,
            link=self.link,
            topic=self.topics.node_events(cfg.node_id),
            mono=mono,
            stopping=self._threads.stopping,
        )
        self.machine = MachineWatch(
            cfg,
            self.recorder,
            controller=controller,
            simulated=simulated_machine,
            mono=mono,
            wake=self.outbox.wake,
        )
        self.sessions = Sessions(
            cfg,
            relay=relay,
            recorder=self.recorder,
            trust=self.trust,
            machine=self.machine,
            mono=mono,
        )
        self.certify = CertifyDesk(cfg, self.recorder, self.trust, mono=mono)
        self.taps = TapHandler(
            cfg,
            trust=self.trust,
            recorder=self.recorder,
            sessions=self.sessions,
            certify=self.certify,
            publish_status=self._publish_status,
            wake=self.outbox.wake,
        )
        self._handlers: dict[str, Callable[[bytes], None]] = {
            "connected": self._handle_connected,
            "ack": self.outbox.on_ack,
            "snapshot": self._handle_snapshot,
            "sim_tap": self._handle_sim_tap,
            "sim_job": self.machine.on_sim_job,
            "enrolment": self.certify.on_enrolment,
        }
        # The node_exporter textfile (metrics.textfile), when configured.
        self.metrics = (
            MetricsFile(cfg.metrics.textfile, cfg.metrics.every.total_seconds(), mono)
            if cfg.metrics.textfile is not None
            else None
        )
        self._reader_read_at: float | None = None
        self.relay.off()
        self._open_journal(reopen=not self.journal.is_open)

    # -- entry points for other threads (paho's, a controller's): they only enqueue -----

    def on_connect(self) -> None:
        self.inbox.put("connected")

    def on_ack(self, _topic: str, payload: bytes) -> None:
        self.inbox.put("ack", payload)

    def on_snapshot(self, _topic: str, payload: bytes) -> None:
        self.inbox.put("snapshot", payload)

    def on_sim_tap(self, _topic: str, payload: bytes) -> None:
        self.inbox.put("sim_tap", payload)

    def on_sim_job(self, _topic: str, payload: bytes) -> None:
        self.inbox.put("sim_job", payload)

    def on_enrolment(self, _topic: str, payload: bytes) -> None:
        self.inbox.put("enrolment", payload)

    def on_retained_act(self, topic: str, payload: bytes) -> None:
        if payload:  # an empty one is a retained copy being cleared
            log.warning("ignoring a retained message on %s (an act is done once)", topic)

    def on_report(self, report: MachineReport) -> None:
        """A controller report (the controller is subscribed to this already)."""
        self.machine.report(report)

    # -- the loop ---------------------------------------------------------------------

    def start(self) -> None:
        if self.link:
            # Acknowledgements and simulated taps and jobs are acts to do once: a retained
            # copy (the broker cannot forbid the flag) is dropped, never replayed at each
            # reconnection. Snapshots and the enrolment window are retained by design.
            once = self.on_retained_act
            self.link.subscribe(self.topics.node_ack(self.cfg.node_id), self.on_ack, retained=once)
            self.link.subscribe(self.topics.snapshot(self.cfg.machine_id), self.on_snapshot)
            if self.reader.injector is not None:
                self.link.subscribe(
                    self.topics.sim_tap(self.cfg.node_id), self.on_sim_tap, retained=once
                )
            if self.machine.simulated is not None:
                self.link.subscribe(
                    self.topics.sim_job(self.cfg.node_id), self.on_sim_job, retained=once
                )
            self.link.subscribe(self.topics.enrolment, self.on_enrolment)
            self.link.start()
        self.machine.session_is(False)  # fail-closed before the controller relays anyone
        self._threads.spawn(
            "journal-sender",
            self.outbox.run,
            stale_after=max(10.0, 3 * self.cfg.heartbeat.total_seconds()),
        )
        self.machine.start()

    def run(self) -> None:
        """Poll the reader until ``stopping`` is set; the relay is off when this returns.

        A step that raises is logged with its traceback and the loop goes on, the relay
        off and any open session ended (we cannot tell what the error left behind).
        Each turn pings the systemd watchdog (rate-limited; a no-op outside systemd), so
        a loop that hangs gets the node restarted.
        """
        period = 1.0 / max(self.cfg.reader.poll_hz, 0.1)
        failures = 0
        try:
            self.start()
            while not self.stopping.is_set():
                try:
                    self.step()
                    failures = 0
                except Exception:
                    failures += 1
                    log.exception("node loop step failed (%d in a row); relay off", failures)
                    self._after_step_error()
                ping_watchdog()
                wait = period if not failures else min(period * 2**failures, STEP_ERROR_MAX_WAIT_S)
                self.stopping.wait(wait)
        finally:
            self.shutdown()

    def step(self) -> None:
        if self.recorder.retry_due():
            self._open_journal(reopen=True)
        self.inbox.drain(self._handlers)
        uid = self.debouncer.feed(self.reader.poll())
        self._reader_read_at = self.mono()
        if uid:
            self.taps.handle(uid)
        if self.machine.drain(self.sessions):
            self._publish_status()
        if self.sessions.current and self.sessions.apply_rules():
            self._publish_status()
        # A sender relayed by the controller may move the machine only in a session.
        self.machine.session_is(self.sessions.current is not None)
        if self.sessions.heartbeat_due():
            self.sessions.heartbeat()
        if self.board.publish_due():
            self._publish_status()
        if self.metrics is not None and self.metrics.due():
            self._write_metrics()

    def _write_metrics(self) -> None:
        """The textfile: never lets a failure into the step (the relay does not care)."""
        assert self.metrics is not None
        try:
            now_wall = self.wall().timestamp()
            mono = self.mono()
            age = self.trust.snapshot_age()
            read = self._reader_read_at
            values: dict[str, float | None] = {
                "fabgate_node_relay_on": float(self.relay.is_on),
                "fabgate_node_session_open": float(self.sessions.current is not None),
                "fabgate_node_journal_backlog": float(self.recorder.backlog()),
                "fabgate_node_journal_ok": float(self.recorder.ok),
                "fabgate_node_snapshot_age_seconds": (
                    None if age is None or age == UNKNOWN_AGE else age.total_seconds()
                ),
                "fabgate_node_snapshot_max_age_seconds": self.cfg.max_snapshot_age.total_seconds(),
                "fabgate_node_broker_connected": (
                    None if self.link is None else float(self.link.connected.is_set())
                ),
                "fabgate_node_reader_last_read_timestamp_seconds": (
                    None if read is None else now_wall - (mono - read)
                ),
                "fabgate_node_metrics_written_timestamp_seconds": now_wall,
            }
            self.metrics.write(render(self.cfg.node_id, values))
        except Exception:
            log.exception("building the metrics file failed")

    def _after_step_error(self) -> None:
        try:
            self.relay.off()
        except Exception:
            log.exception("switching the relay off after a failed step failed too")
        if self.sessions.current is not None:
            try:
                self.sessions.end("node_error")
            except Exception:
                log.exception(
                    "ending the session after a failed step failed; "
                    "it will be closed from the journal"
                )
                self.sessions.current = None
        try:
            self._publish_status()
        except Exception:
            log.exception("publishing the status after a failed step failed")

    def shutdown(self) -> None:
        """Power off first, then close the session, then tell the world and flush."""
        try:
            self.relay.off()
        finally:
            if self.sessions.current:
                self.sessions.end("shutdown")
            self.stopping.set()
            self._threads.stopping.set()
            self.outbox.wake()
            self._threads.stop(timeout=2.0)
            if self.link:
                self.outbox.flush(3.0, self.inbox)
                self.link.stop(
                    final=(self.topics.node_status(self.cfg.node_id), offline_status(self.cfg))
                )
            self.relay.close()
            self.reader.close()
            self.machine.close()

    # -- the journal (its failure and recovery rules are in recorder.py) ---------------

    def _open_journal(self, *, reopen: bool) -> None:
        if self.recorder.open(reopen=reopen):
            self.outbox.wake()

    # -- messages the loop takes from the inbox ----------------------------------------

    def _handle_connected(self, _payload: bytes) -> None:
        self.outbox.on_connected()
        self._publish_status()
        self.outbox.wake()

    def _handle_snapshot(self, payload: bytes) -> None:
        try:
            snap = self.trust.accept(payload)
        except SnapshotRejected as exc:
            log.warning("snapshot rejected (%s): %s", exc.reason, exc.detail)
            self.recorder.append(
                SnapshotRejectedEvent(reason=exc.reason, detail=clip(exc.detail, MAX_DETAIL) or "")
            )
            self.outbox.wake()
            return
        if snap is not None:
            self.recorder.set_state(self.trust.lasting_state())
            self._publish_status()

    def _handle_sim_tap(self, payload: bytes) -> None:
        try:
            uid, tap_id = decode_sim_tap(payload)
            uid = normalise_uid(uid)
        except (ContractError, ValueError) as exc:
            log.warning("ignored a malformed simulated tap: %s", exc)
            return
        if tap_id:
            self.taps.expect(uid, tap_id)
        assert self.reader.injector is not None
        self.reader.injector.present(uid)

    # -- status -----------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """The node status as the loop sees it now (what ``_publish_status`` sends)."""
        return build_status(
            self.cfg,
            boot=self.boot,
            relay=self.relay,
            sessions=self.sessions,
            trust=self.trust,
            machine=self.machine,
            certify=self.certify,
            recorder=self.recorder,
        )

    def _publish_status(self) -> None:
        """Only ever called on the loop thread, so statuses leave in the loop's order."""
        self.board.publish(self.status)
