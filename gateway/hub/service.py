"""The hub process: MQTT ingest with acknowledgements, snapshot publishing, web server.

Its loops run under a :class:`~gateway.core.supervise.Supervisor` (a crash is logged and the
loop restarted with back-off) and share one SQLite file (each with its own connection):

- the **ingest** loop drains the MQTT inbox in batches, stores each batch in one
  transaction (idempotent on event id) and only then acknowledges it, per node;
- the **snapshot** loop watches the store's ``data_version`` counter (bumped by SQL
  triggers, so a change made by any process is seen) and staff presence, and publishes a
  newly signed, retained snapshot per machine on change and every ``snapshot_refresh``;
- the **web** loop serves the Flask app;
- the **retention** loop deletes, once a day, what is older than the hub config's
  ``retention:`` (``gateway.hub.retention``); a failed run is logged and tried again an
  hour later, it never stops the hub;
- the **alerts** loop checks the site every ``alerts.check_every`` (nodes offline or
  behind, ingest stalled, snapshots ageing, refusals) and sends each alert and its
  recovery once, by e-mail and/or webhook (``gateway.hub.alerting``);
- the **watch** loop says loudly when the broker is unreachable and, while everything is
  healthy, pings the systemd watchdog (``WATCHDOG=1``): a hub that is stuck or cut off
  from its broker stops pinging and systemd restarts it.

``health()`` is what ``/healthz`` reports: the broker connection and each loop's
liveness, staleness and last success. ``monitor`` (``gateway.hub.monitor``) is what
``/metrics`` reads besides the database: ingest counters and latency, snapshot
publications.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from werkzeug.serving import make_server

from gateway.billing.pricing import import_tariffs
from gateway.config import HubConfig, load_seed
from gateway.contract import (
    SessionEnded,
    StaffPresence,
    Topics,
    dumps,
    encode_ack,
    encode_enrolment,
)
from gateway.contract.mqtt import MqttLink, Will
from gateway.contract.signing import load_private_key, sign_snapshot, write_keypair
from gateway.core.clock import WallClock, iso, utcnow
from gateway.core.sdnotify import Watchdog
from gateway.core.supervise import Beat, Supervisor
from gateway.hub import catalogue, enrolment, hours, notify, presence, retention, snapshots
from gateway.hub.alerting import Alerting
from gateway.hub.db import HubStore, data_version
from gateway.hub.events.ingest import ingest_messages
from gateway.hub.lock import HubLock
from gateway.hub.monitor import HubMonitor
from gateway.hub.seed import import_seed

log = logging.getLogger(__name__)

BATCH_MAX = 500
BATCH_WAIT_S = 0.02
WATCH_PERIOD_S = 0.1
# A loop that has not beaten for this long is stale (stuck): /healthz says 503 and the
# systemd watchdog stops being pinged. Each loop beats at least every second when well.
STALE_AFTER_S = 30.0
HEALTH_PERIOD_S = 1.0
# The broker may blink (a Mosquitto restart takes a second); past this, say so loudly,
# and again every BROKER_LOG_EVERY_S while it lasts.
BROKER_GRACE_S = 5.0
BROKER_LOG_EVERY_S = 30.0
WEB_POLL_S = 0.5
# The retention job: first a minute after start (the backlog of events first), then
# daily on the monotonic clock; an hour after a failure.
RETENTION_FIRST_S = 60.0
RETENTION_EVERY_S = 24 * 3600.0
RETENTION_RETRY_S = 3600.0


def ensure_signing_key(path: Path) -> Path:
    """Create the hub key pair on first start; nodes need the ``.pub`` beside it."""
    public = path.with_suffix(".pub")
    if not path.exists():
        write_keypair(path, public)
        log.warning("created a new hub signing key %s; give %s to every node", path, public)
    return public


# Builds the WSGI app the hub serves from its config, its health report and its monitor.
WebAppFactory = Callable[[HubConfig, Callable[[], dict[str, Any]], HubMonitor], Any]


class HubService:
    def __init__(
        self,
        cfg: HubConfig,
        *,
        web_app: WebAppFactory | None = None,
        mono: Callable[[], float] = time.monotonic,
        wall: WallClock = utcnow,
        watchdog: Watchdog | None = None,
        supervisor: Supervisor | None = None,
        channels: list[notify.Channel] | None = None,
    ) -> None:
        self.cfg = cfg
        self.wall = wall
        self.topics = Topics(cfg.mqtt.prefix)
        self.public_key_path = ensure_signing_key(cfg.signing_key)
        self.key = load_private_key(cfg.signing_key)
        self.mono = mono
        self.supervisor = supervisor or Supervisor(mono=mono, logger=log)
        # Every loop ends on this one event, so stop() is a single switch.
        self.stopping = self.supervisor.stopping
        self.watchdog = watchdog or Watchdog(mono=mono)
        self._broker_down_since: float | None = mono()
        self._broker_last_logged: float | None = None
        self._broker_ever_connected = False
        # (topic, payload, when it arrived on the monotonic clock)
        self.inbox: queue.Queue[tuple[str, bytes, float]] = queue.Queue()
        self.monitor = HubMonitor(mono, health=self.health, wall=wall)
        self.alerting = Alerting(
            cfg.alerts,
            site=cfg.site,
            monitor=self.monitor,
            channels=notify.channels(cfg.alerts) if channels is None else channels,
            wall=wall,
            ingest_healthy=self._ingest_healthy,
        )
        self._republish = threading.Event()
        self.stats: defaultdict[str, int] = defaultdict(int)
        # The hub does not build its web app: the caller hands the factory in (the CLI and
        # the demo pass gateway.web.create_app), so the hub package never imports the web.
        self.web_app = web_app
        self.web_url: str | None = None
        # The last retention run: when (hub clock), what it deleted, or why it failed.
        self.retention: dict[str, Any] = {"last_run": None, "deleted": None, "error": None}
        self._lock = HubLock(cfg.database)
        store = HubStore(cfg.database)
        try:
            # Every start moves the epoch on, so a database restored from a backup still
            # issues snapshots that nodes take as newer (see snapshots.advance_epoch).
            self.epoch = snapshots.advance_epoch(store, utcnow())
            # The file's catalogue, hours and tariffs: what the database lacks, and what
            # the file changed since the last start; the web's edits stay otherwise
            # (docs/admin.md, "Where the truth lives").
            catalogue.import_catalogue(store, list(cfg.groups), list(cfg.machines))
            hours.import_hours(store, cfg.opening_hours)
            if cfg.seed:
                # Create-missing only: the database, not the seed, owns existing records.
                report = import_seed(store, load_seed(cfg.seed))
                if report.created:
                    log.info("seed %s: %s", cfg.seed, report.summary())
            # A changed set re-prices the sessions it can affect.
            import_tariffs(store, cfg.tariffs, actor="hub", source=str(cfg.file))
        finally:
            store.close()
        self.link = MqttLink(
            cfg.mqtt.url,
            cfg.mqtt.client_id,
            username=cfg.mqtt.username,
            password=cfg.mqtt.password,
            tls=cfg.mqtt.tls_files,
            clean_session=False,
            will=Will(self.topics.hub_status, dumps({"v": 1, "online": False})),
            on_connect=self._on_connect,
            reconnect_min=cfg.mqtt.reconnect_min,
            reconnect_max=cfg.mqtt.reconnect_max,
        )
        self.link.subscribe(
            self.topics.all_node_events, self._enqueue_event, retained=self._retained_event
        )
        self.link.subscribe(self.topics.all_node_status, self._enqueue)

    # -- lifecycle --------------------------------------------------------------------

    def start(self) -> None:
        self._lock.acquire()  # HubAlreadyRunning: one hub per database
        sup = self.supervisor
        sup.spawn("ingest", self._ingest_loop, stale_after=STALE_AFTER_S)
        sup.spawn("snapshots", self._snapshot_loop, stale_after=STALE_AFTER_S)
        if self.web_app is not None:
            self._server = make_server(
                self.cfg.web_host,
                self.cfg.web_port,
                self.web_app(self.cfg, self.health, self.monitor),
                threaded=True,
            )
            self._server.timeout = WEB_POLL_S
            self.web_url = f"http://{self.cfg.web_host}:{self._server.server_port}/"
            sup.spawn("web", self._web_loop, stale_after=STALE_AFTER_S)
        self.link.start()
        sup.spawn("watch", self._watch_loop, stale_after=STALE_AFTER_S)
        # Scheduled here, not in the loop: a restarted loop keeps the schedule.
        self._retention_due = self.mono() + RETENTION_FIRST_S
        sup.spawn("retention", self._retention_loop, stale_after=STALE_AFTER_S)
        sup.spawn("alerts", self._alert_loop, stale_after=STALE_AFTER_S)
        self.watchdog.ready(status="started; connecting to the broker")

    def stop(self) -> None:
        self.watchdog.status("stopping")
        self.stopping.set()
        self._republish.set()
        self.supervisor.stop(timeout=5)
        if self.web_app is not None and hasattr(self, "_server"):
            self._server.server_close()
        self.link.stop(final=(self.topics.hub_status, dumps({"v": 1, "online": False})))
        self._lock.release()

    # -- health -----------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """Broker connection and loop health; ``healthy`` is what /healthz and the
        watchdog act on."""
        now = self.mono()
        loops = self.supervisor.health()
        connected = self.link.connected.is_set()
        down = self._broker_down_since
        down_for = None if connected else (0.0 if down is None else round(now - down, 3))
        broker = {"url": self.cfg.mqtt.url, "connected": connected, "down_for_s": down_for}
        healthy = connected and bool(loops) and all(h.healthy for h in loops.values())
        return {
            "healthy": healthy,
            "broker": broker,
            "loops": {name: h.as_dict() for name, h in loops.items()},
            "retention": dict(self.retention),
        }

    def _watch_loop(self, beat: Beat) -> None:
        last_status = ""
        while not self.stopping.is_set():
            self._check_broker()
            health = self.health()
            if health["healthy"]:
                self.watchdog.ping()
                status = "healthy"
            else:
                bad = [n for n, h in health["loops"].items() if not h["healthy"]]
                status = "unhealthy: " + ", ".join(
                    ([] if health["broker"]["connected"] else ["broker unreachable"])
                    + [f"loop {n} dead or stuck" for n in bad]
                )
            if status != last_status:
                self.watchdog.status(status)
                last_status = status
            beat(ok=True)
            self.stopping.wait(HEALTH_PERIOD_S)

    def _check_broker(self) -> None:
        """Track the broker connection; an outage is an ERROR at a bounded rate."""
        now = self.mono()
        if self.link.connected.is_set():
            if self._broker_down_since is not None and self._broker_last_logged is not None:
                log.warning(
                    "MQTT broker %s reachable again after %.0f s",
                    self.cfg.mqtt.url,
                    now - self._broker_down_since,
                )
            self._broker_down_since = None
            self._broker_last_logged = None
            self._broker_ever_connected = True
            return
        if self._broker_down_since is None:
            self._broker_down_since = now
        down = now - self._broker_down_since
        if down < BROKER_GRACE_S:
            return
        if self._broker_last_logged is None or now - self._broker_last_logged >= BROKER_LOG_EVERY_S:
            self._broker_last_logged = now
            log.error(
                "cannot reach the MQTT broker %s for %.0f s%s: nodes' events are not "
                "ingested and no snapshots are published",
                self.cfg.mqtt.url,
                down,
                "" if self._broker_ever_connected else " (never connected since start)",
            )

    # -- retention --------------------------------------------------------------------

    def _retention_loop(self, beat: Beat) -> None:
        """Daily on the monotonic clock, ``now`` from the wall clock (both injected). A
        failure is logged and retried later: old records waiting one more hour harm no
        one, a hub stopped by its housekeeping would."""
        store = HubStore(self.cfg.database)
        try:
            while not self.stopping.is_set():
                if self.mono() >= self._retention_due:
                    self._retention_due = self.mono() + self.run_retention(store)
                beat(ok=True)
                self.stopping.wait(HEALTH_PERIOD_S)
        finally:
            store.close()

    def run_retention(self, store: HubStore) -> float:
        """One run of the retention job; returns the seconds until the next."""
        now = self.wall()
        try:
            report = retention.run(store, self.cfg.retention, now, apply=True)
        except Exception as exc:  # noqa: BLE001 - logged, retried, never fatal
            log.exception("retention run failed; retrying in %.0f s", RETENTION_RETRY_S)
            self.retention = {
                "last_run": iso(now),
                "deleted": None,
                "error": f"{type(exc).__name__}: {exc}",
            }
            self.stats["retention_failed"] += 1
            return RETENTION_RETRY_S
        self.retention = {"last_run": iso(now), "deleted": report.total, "error": None}
        self.stats["retention_runs"] += 1
        if report.total:
            log.info(
                "retention: deleted %s",
                ", ".join(
                    f"{ln.count} {ln.what}" for ln in report.lines if ln.deleted and ln.count
                ),
            )
        return RETENTION_EVERY_S

    # -- web --------------------------------------------------------------------------

    def _web_loop(self, beat: Beat) -> None:
        """Serve one request at a time off the listening socket (each in its own thread),
        beating between them; unlike serve_forever() it ends on ``stopping``."""
        server = self._server
        while not self.stopping.is_set():
            server.handle_request()  # returns after one request or WEB_POLL_S
            beat(ok=True)

    # -- MQTT side --------------------------------------------------------------------

    def _on_connect(self) -> None:
        self.link.publish(self.topics.hub_status, dumps({"v": 1, "online": True}), retain=True)
        self._republish.set()

    def _enqueue(self, topic: str, payload: bytes) -> None:
        self.inbox.put((topic, payload, self.monitor.arrived()))

    def _enqueue_event(self, topic: str, payload: bytes) -> None:
        # An empty message on an event topic is a retained copy being cleared (ours, see
        # below), which the broker passes on to subscribers: there is nothing to ingest.
        if payload:
            self.inbox.put((topic, payload, self.monitor.arrived()))

    def _retained_event(self, topic: str, payload: bytes) -> None:
        """An event the broker kept (its publisher set the retain flag): not ingested, and
        cleared at the broker.

        A node never retains an event (it keeps each in its journal until acknowledged
        and resends it without the flag), and the broker's ACL cannot forbid the flag per
        topic: left there, the copy would be handed to the hub again at every
        reconnection and to every new subscriber. The live copy, if the hub was
        connected when it was sent, went through ingest like any other event.
        """
        if not payload:
            return
        self.stats["retained"] += 1
        log.warning("ignoring a retained message on %s and clearing it at the broker", topic)
        self.link.publish(topic, b"", retain=True)

    # -- ingest -----------------------------------------------------------------------

    def _ingest_loop(self, beat: Beat) -> None:
        store = HubStore(self.cfg.database)
        try:
            while not self.stopping.is_set():
                batch = self._next_batch()
                if batch:
                    self._ingest_batch(store, batch)
                beat(ok=True)
        finally:
            store.close()

    def _next_batch(self) -> list[tuple[str, bytes, float]]:
        try:
            first = self.inbox.get(timeout=0.2)
        except queue.Empty:
            return []
        batch = [first]
        deadline = time.monotonic() + BATCH_WAIT_S
        while len(batch) < BATCH_MAX:
            try:
                batch.append(self.inbox.get(timeout=max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                break
        return batch

    def _ingest_batch(self, store: HubStore, batch: list[tuple[str, bytes, float]]) -> None:
        """Store a batch, then acknowledge what committed (see gateway.hub.events.ingest).

        Nothing a message does may end this thread: anything ingest itself lets through
        is logged here and the batch is not acknowledged (nodes send it again)."""
        arrived = [t for _, _, t in batch]
        try:
            result = ingest_messages(store, self.topics, [(t, p) for t, p, _ in batch], self.wall())
        except Exception:
            log.exception(
                "ingest of a batch of %d messages failed; nothing acknowledged", len(batch)
            )
            self.stats["failed"] += len(batch)
            self.monitor.batch_done(arrived, 0, len(batch), None)
            return
        self.monitor.batch_done(
            arrived, result.committed, len(batch) - result.committed, self._inbox_head()
        )
        self.stats["events"] += result.events
        self.stats["rejected"] += result.refused
        self.stats["failed"] += result.failed
        for node, node_ids in result.acks.items():
            self.link.publish(self.topics.node_ack(node), encode_ack(node_ids))
        ended = {data.machine for _, data in result.applied if isinstance(data, SessionEnded)}
        if any(isinstance(data, StaffPresence) for _, data in result.applied) or (
            ended and ended & catalogue.credit_machines(store)
        ):
            # Presence changed, or a prepaid balance was spent: nodes must know now.
            self._republish.set()

    def _inbox_head(self) -> float | None:
        """When the oldest message still in the inbox arrived (None: the inbox is empty)."""
        with self.inbox.mutex:
            return self.inbox.queue[0][2] if self.inbox.queue else None

    def _ingest_healthy(self) -> bool:
        loop = self.supervisor.health().get("ingest")
        return loop is None or loop.healthy

    # -- alerts -----------------------------------------------------------------------

    def _alert_loop(self, beat: Beat) -> None:
        """Check the alerts every ``alerts.check_every``. A failed round is logged and the
        next one comes on time (``gateway.hub.alerting`` already keeps a channel's or
        the database's failure to itself)."""
        store = HubStore(self.cfg.database)
        period = self.cfg.alerts.check_every.total_seconds()
        try:
            while not self.stopping.is_set():
                try:
                    self.alerting.check(store, beat)
                except Exception:
                    log.exception("alert check failed; next one in %.0f s", period)
                    beat()
                else:
                    beat(ok=True)
                # Beat while waiting: a check period longer than the staleness limit
                # must not make the loop look stuck.
                deadline = self.mono() + period
                while not self.stopping.is_set() and self.mono() < deadline:
                    self.stopping.wait(min(HEALTH_PERIOD_S, max(0.0, deadline - self.mono())))
                    beat()
        finally:
            store.close()

    # -- snapshots --------------------------------------------------------------------

    def _snapshot_loop(self, beat: Beat) -> None:
        store = HubStore(self.cfg.database)
        seen_version = -1
        seen_presence: object = object()
        seen_enrolment: object = object()
        last_publish: float | None = None
        refresh = self.cfg.snapshot_refresh.total_seconds()
        # A restarted loop republishes at once: whatever it was doing may not have gone out.
        self._republish.set()
        try:
            while not self.stopping.is_set():
                beat()
                self._republish.wait(WATCH_PERIOD_S)
                forced = self._republish.is_set()
                self._republish.clear()
                if self.stopping.is_set():
                    break
                if not self.link.connected.is_set():
                    continue
                now = utcnow()
                seen_enrolment = self._publish_enrolment(store, now, seen_enrolment, forced)
                version = data_version(store)
                present_until = presence.staff_present_until(store, now)
                due = last_publish is None or time.monotonic() - last_publish >= refresh
                if forced or due or version != seen_version or present_until != seen_presence:
                    self.publish_snapshots(store, now, present_until)
                    seen_version, seen_presence = version, present_until
                    last_publish = time.monotonic()
                beat(ok=True)
        finally:
            store.close()

    def _publish_enrolment(
        self, store: HubStore, now: datetime, seen: object, forced: bool
    ) -> object:
        """Keep the retained enrolment window in step with the database (and its end)."""
        pending = enrolment.pending_enrolment(store, now)
        key = (pending or {}).get("request_id")
        if key == seen and not forced:
            return seen
        payload = encode_enrolment(
            key, (pending or {}).get("member_id"), (pending or {}).get("until")
        )
        if self.link.publish(self.topics.enrolment, payload, retain=True) is None:
            return seen
        return key

    def publish_snapshots(
        self, store: HubStore, now: datetime, present_until: datetime | None
    ) -> int:
        n = 0
        # The seven days from today, closures shut (a snapshot is valid a week at most).
        week = hours.hours_for_week(store, now, self.cfg.timezone)
        for machine in catalogue.machine_ids(store):
            snap = snapshots.build_snapshot(
                store,
                machine,
                now=now,
                version=snapshots.next_snapshot_version(store),
                validity=self.cfg.snapshot_validity,
                timezone=self.cfg.timezone,
                opening_hours=week,
                staff_present_until=present_until,
                site=self.cfg.site,
                epoch=self.epoch,
            )
            if (
                self.link.publish(
                    self.topics.snapshot(machine), sign_snapshot(snap, self.key), retain=True
                )
                is not None
            ):
                n += 1
                self.monitor.published(machine, self.wall())
        self.stats["snapshots"] += n
        log.info("published %d signed snapshots", n)
        return n
