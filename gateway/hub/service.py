"""The hub process: MQTT ingest with acknowledgements, snapshot publishing, web server.

Three threads share one SQLite file (each with its own connection):

- the **ingest** thread drains the MQTT inbox in batches, stores each batch in one
  transaction (idempotent on event id) and only then acknowledges it, per node;
- the **snapshot** thread watches the store's ``data_version`` counter (bumped by SQL
  triggers, so a change made by any process is seen) and staff presence, and publishes a
  newly signed, retained snapshot per machine on change and every ``snapshot_refresh``;
- the **web** thread serves the Flask app.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import defaultdict
from datetime import datetime
from pathlib import Path

from werkzeug.serving import make_server

from ..billing.pricing import install_tariffs
from ..config import HubConfig, load_seed
from ..contract import (
    EV_SESSION_ENDED,
    EV_STAFF_PRESENCE,
    ContractError,
    Envelope,
    Topics,
    decode_status,
    dumps,
    encode_ack,
    encode_enrolment,
    utcnow,
)
from ..mqtt import MqttLink, Will
from ..permissions import load_private_key, sign_snapshot, write_keypair
from .store import HubStore

log = logging.getLogger(__name__)

BATCH_MAX = 500
BATCH_WAIT_S = 0.02
WATCH_PERIOD_S = 0.1


def ensure_signing_key(path: Path) -> Path:
    """Create the hub key pair on first start; nodes need the ``.pub`` beside it."""
    public = path.with_suffix(".pub")
    if not path.exists():
        write_keypair(path, public)
        log.warning("created a new hub signing key %s; give %s to every node", path, public)
    return public


class HubService:
    def __init__(self, cfg: HubConfig, *, serve_web: bool = True) -> None:
        self.cfg = cfg
        self.topics = Topics(cfg.mqtt.prefix)
        self.public_key_path = ensure_signing_key(cfg.signing_key)
        self.key = load_private_key(cfg.signing_key)
        self.stopping = threading.Event()
        self.inbox: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self._republish = threading.Event()
        self.stats = defaultdict(int)
        self.serve_web = serve_web
        self._credit_machines = {m.id for m in cfg.machines if m.requires_credit}
        self.web_url: str | None = None
        self._threads: list[threading.Thread] = []
        store = HubStore(cfg.database)
        try:
            store.sync_catalogue(list(cfg.groups), list(cfg.machines))
            if cfg.seed:
                store.import_seed(load_seed(cfg.seed))
            # The configured tariffs into the database; a changed set re-prices sessions.
            install_tariffs(store, cfg.tariffs, actor="hub")
        finally:
            store.close()
        self.link = MqttLink(
            cfg.mqtt.url, cfg.mqtt.client_id, username=cfg.mqtt.username,
            password=cfg.mqtt.password, clean_session=False,
            will=Will(self.topics.hub_status, dumps({"v": 1, "online": False})),
            on_connect=self._on_connect)
        self.link.subscribe(self.topics.all_node_events, self._enqueue)
        self.link.subscribe(self.topics.all_node_status, self._enqueue)

    # -- lifecycle --------------------------------------------------------------------

    def start(self) -> None:
        self._spawn(self._ingest_loop, "hub-ingest")
        self._spawn(self._snapshot_loop, "hub-snapshots")
        if self.serve_web:
            from ..web import create_app

            self._server = make_server(self.cfg.web_host, self.cfg.web_port,
                                       create_app(self.cfg), threaded=True)
            self.web_url = f"http://{self.cfg.web_host}:{self._server.server_port}/"
            self._spawn(self._server.serve_forever, "hub-web")
        self.link.start()

    def stop(self) -> None:
        self.stopping.set()
        self._republish.set()
        if self.serve_web and hasattr(self, "_server"):
            self._server.shutdown()
        self.link.stop(final=(self.topics.hub_status, dumps({"v": 1, "online": False})))
        for t in self._threads:
            t.join(timeout=5)

    def _spawn(self, target, name: str) -> None:  # noqa: ANN001 - thread target
        t = threading.Thread(target=target, name=name, daemon=True)
        t.start()
        self._threads.append(t)

    # -- MQTT side --------------------------------------------------------------------

    def _on_connect(self) -> None:
        self.link.publish(self.topics.hub_status, dumps({"v": 1, "online": True}), retain=True)
        self._republish.set()

    def _enqueue(self, topic: str, payload: bytes) -> None:
        self.inbox.put((topic, payload))

    # -- ingest -----------------------------------------------------------------------

    def _ingest_loop(self) -> None:
        store = HubStore(self.cfg.database)
        try:
            while not self.stopping.is_set():
                batch = self._next_batch()
                if batch:
                    self._ingest_batch(store, batch)
        finally:
            store.close()

    def _next_batch(self) -> list[tuple[str, bytes]]:
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

    def _ingest_batch(self, store: HubStore, batch: list[tuple[str, bytes]]) -> None:
        envelopes: list[Envelope] = []
        for topic, payload in batch:
            try:
                node = self.topics.node_from_topic(topic)
                if topic.endswith("/status"):
                    store.set_node_status(node, decode_status(payload))
                    continue
                env = Envelope.decode(payload)
                if env.node != node:
                    raise ContractError(f"envelope says node {env.node!r}, topic says {node!r}")
                envelopes.append(env)
            except ContractError as exc:
                self.stats["rejected"] += 1
                log.warning("rejected a message on %s: %s (payload %r)", topic, exc,
                            payload[:200])
                store.record_rejected(topic, payload, str(exc), utcnow())
        if not envelopes:
            return
        ids = store.ingest(envelopes, utcnow())
        self.stats["events"] += len(envelopes)
        by_node: dict[str, list[str]] = defaultdict(list)
        acked = set(ids)
        for env in envelopes:
            if env.id in acked:
                by_node[env.node].append(env.id)
        for node, node_ids in by_node.items():
            self.link.publish(self.topics.node_ack(node), encode_ack(node_ids))
        if any(e.type == EV_STAFF_PRESENCE for e in envelopes) or (
                self._credit_machines and any(
                    e.type == EV_SESSION_ENDED and e.data.get("machine") in self._credit_machines
                    for e in envelopes)):
            # Presence changed, or a prepaid balance was spent: nodes must know now.
            self._republish.set()

    # -- snapshots --------------------------------------------------------------------

    def _snapshot_loop(self) -> None:
        store = HubStore(self.cfg.database)
        seen_version = -1
        seen_presence: object = object()
        seen_enrolment: object = object()
        last_publish = 0.0
        refresh = self.cfg.snapshot_refresh.total_seconds()
        try:
            while not self.stopping.is_set():
                self._republish.wait(WATCH_PERIOD_S)
                forced = self._republish.is_set()
                self._republish.clear()
                if self.stopping.is_set():
                    break
                if not self.link.connected.is_set():
                    continue
                now = utcnow()
                seen_enrolment = self._publish_enrolment(store, now, seen_enrolment, forced)
                version = store.data_version()
                presence = store.staff_present_until(now)
                due = time.monotonic() - last_publish >= refresh
                if forced or due or version != seen_version or presence != seen_presence:
                    self.publish_snapshots(store, now, presence)
                    seen_version, seen_presence = version, presence
                    last_publish = time.monotonic()
        finally:
            store.close()

    def _publish_enrolment(self, store: HubStore, now: datetime, seen: object,
                           forced: bool) -> object:
        """Keep the retained enrolment window in step with the database (and its end)."""
        pending = store.pending_enrolment(now)
        key = (pending or {}).get("request_id")
        if key == seen and not forced:
            return seen
        payload = encode_enrolment(key, (pending or {}).get("member_id"),
                                   (pending or {}).get("until"))
        if self.link.publish(self.topics.enrolment, payload, retain=True) is None:
            return seen
        return key

    def publish_snapshots(self, store: HubStore, now: datetime,
                          presence: datetime | None) -> int:
        n = 0
        for machine in store.machine_ids():
            snap = store.build_snapshot(
                machine, now=now, version=store.next_snapshot_version(),
                validity=self.cfg.snapshot_validity, timezone=self.cfg.timezone,
                opening_hours=self.cfg.opening_hours, staff_present_until=presence,
                site=self.cfg.site)
            if self.link.publish(self.topics.snapshot(machine), sign_snapshot(snap, self.key),
                                 retain=True) is not None:
                n += 1
        self.stats["snapshots"] += n
        log.info("published %d signed snapshots", n)
        return n
