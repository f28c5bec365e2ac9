"""Alerts end to end: a real hub, real node messages through a real Mosquitto, a real SMTP
server and a real HTTP webhook receiver; the hub's wall clock is the test's.

One test per alert kind shows the alert once (on both channels) and its recovery once;
the others show the state surviving a restart, a channel that is down not holding up
the other one, and a bad ``alerts:`` section refused with file, key and expectation.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gateway.config import ConfigError, load_hub_config
from gateway.config.models import AlertsConfig, EmailConfig, HubConfig, WebhookConfig
from gateway.contract import Envelope, NodeStatus, Topics, encode_status
from gateway.core.sdnotify import Watchdog
from gateway.core.supervise import Supervisor
from gateway.hub.db import HubStore
from gateway.hub.service import HubService
from gateway.policies.alerts import AlertRules
from tests.support.clock import AheadMono, FakeClock
from tests.support.harness import Observer, Site, poll_until
from tests.support.mosquitto import MosquittoProcess
from tests.support.receivers import SmtpReceiver, WebhookReceiver, free_port

pytestmark = [
    pytest.mark.integration,
    # The test SMTP server takes a password without TLS: it only listens on loopback.
    pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS"),
]

NODE = "laser-1"
SECRET = "hook-secret-123"


class AlertSite:
    """A one-machine hub with both alert channels, its clocks and a node's voice."""

    def __init__(self, tmp: Path, mosquitto: MosquittoProcess, rules: AlertRules) -> None:
        self.site = Site(tmp, mosquitto.url)
        base = load_hub_config(self.site.files.hub_config)
        self.smtp = SmtpReceiver().start()
        self.hook = WebhookReceiver()
        self.rules = rules
        self.cfg = dataclasses.replace(
            base,
            machines=tuple(m for m in base.machines if m.id == NODE),
            alerts=AlertsConfig(
                rules=rules,
                check_every=timedelta(seconds=0.05),
                retry_min=timedelta(seconds=1),
                retry_max=timedelta(seconds=4),
                email=EmailConfig(
                    host="127.0.0.1",
                    port=self.smtp.port,
                    security="none",
                    username="hub",
                    password="s3cret",
                    sender="fabgate@lab.example",
                    to=("ops@lab.example", "karim@lab.example"),
                ),
                webhook=WebhookConfig(url=self.hook.url, secret=SECRET),
            ),
        )
        self.clock = FakeClock(datetime.now(UTC))
        self.mono = AheadMono()
        self.topics = Topics(self.cfg.mqtt.prefix)
        self.observer = Observer(mosquitto.url, self.cfg.mqtt.prefix)
        self.svc: HubService | None = None

    def start(self, cfg: HubConfig | None = None) -> HubService:
        self.svc = HubService(
            cfg or self.cfg,
            mono=self.mono,
            wall=self.clock.wall,
            watchdog=Watchdog(env={}),
            supervisor=Supervisor(mono=self.mono, backoff_min=0.05),
        )
        self.svc.start()
        assert self.svc.link.wait_connected(10)
        return self.svc

    def stop_hub(self) -> None:
        if self.svc is not None:
            self.svc.stop()
            self.svc = None

    def close(self) -> None:
        self.stop_hub()
        self.observer.close()
        self.smtp.stop()
        self.hook.close()

    # -- the node's side ----------------------------------------------------------------

    def status(self, **fields: Any) -> None:
        """Publish a status as the node would, and wait until the hub has stored it."""
        payload = encode_status(
            node=NODE, machine=NODE, online=True, heartbeat_s=15.0, time=self.clock.wall(), **fields
        )
        self.publish_status(payload)
        poll_until(
            lambda: self.stored_status() == NodeStatus.decode(payload).to_dict(),
            what="the status stored",
        )

    def publish_status(self, payload: bytes) -> None:
        """Retained, as a node publishes it (a hub subscribing later still gets it)."""
        topic = self.topics.node_status(NODE)
        self.observer.client.publish(topic, payload, qos=1, retain=True).wait_for_publish(5)

    def stored_status(self) -> dict[str, Any] | None:
        with HubStore(self.cfg.database) as store:
            row = store.conn.execute(
                "SELECT status FROM machine_state WHERE machine_id = ?", (NODE,)
            ).fetchone()
        return json.loads(row[0]) if row and row[0] else None

    # -- waiting --------------------------------------------------------------------------

    def rounds(self, n: int = 5) -> None:
        """Let the alert loop run ``n`` more checks (so a repeat would have happened)."""
        assert self.svc is not None
        start = self.svc.alerting.rounds
        poll_until(lambda: self.svc.alerting.rounds >= start + n, what=f"{n} alert checks")

    def notices(self) -> list[tuple[str, str, str]]:
        """(kind, subject, state) the webhook received, in order."""
        return [(b["kind"], b["subject"], b["state"]) for b in self.hook.bodies()]

    def mails(self) -> list[str]:
        return [str(m["Subject"]) for m in self.smtp.messages()]

    def expect(self, *notices: tuple[str, str, str]) -> None:
        """Both channels have exactly these notices, after a few more checks."""
        self.hook.wait_count(len(notices))
        self.smtp.wait_count(len(notices))
        self.rounds()
        assert self.notices() == list(notices)
        assert len(self.mails()) == len(notices)


@pytest.fixture
def make_site(tmp_path: Path, mosquitto: MosquittoProcess) -> Iterator[Any]:
    made: list[AlertSite] = []

    def make(**rules: Any) -> AlertSite:
        quiet = dict(
            node_offline_after=timedelta(hours=10),
            backlog_for=timedelta(minutes=5),
            ingest_stalled_after=timedelta(seconds=30),
            refusals_window=timedelta(minutes=15),
        )
        quiet.update(rules)
        s = AlertSite(tmp_path, mosquitto, AlertRules(**quiet))
        made.append(s)
        return s

    try:
        yield make
    finally:
        for s in made:
            s.close()


def test_a_silent_node_fires_once_by_mail_and_webhook_and_recovers(make_site) -> None:
    s = make_site(node_offline_after=timedelta(minutes=2))
    s.start()
    s.status()
    s.rounds()
    assert s.notices() == []
    # Silent after three heartbeats (45 s); the alert counts its two minutes from the
    # last status the hub received.
    s.clock.advance(119)
    s.rounds()
    assert s.notices() == []
    s.clock.advance(2)
    s.expect(("node_offline", NODE, "firing"))
    mail = s.smtp.messages()[0]
    assert mail["Subject"] == "[fabgate demo] FIRING: node laser-1 offline"
    assert mail["To"] == "ops@lab.example, karim@lab.example"
    assert s.smtp.envelopes[0] == ("fabgate@lab.example", ["ops@lab.example", "karim@lab.example"])
    assert "no status for" in mail.get_payload()
    hook = s.hook.record.snapshot()[0]
    assert hook["headers"]["X-Fabgate-Secret"] == SECRET
    assert hook["json"]["site"] == "demo" and hook["json"]["since"]

    s.status()  # the node is back
    s.expect(("node_offline", NODE, "firing"), ("node_offline", NODE, "recovered"))
    assert s.mails()[1] == "[fabgate demo] RECOVERED: node laser-1 offline"


def test_a_node_that_says_offline_fires_after_the_hold_only(make_site) -> None:
    s = make_site(node_offline_after=timedelta(minutes=2))
    s.start()
    s.status()
    offline = encode_status(node=NODE, machine=NODE, online=False)
    s.publish_status(offline)
    poll_until(lambda: not _online(s), what="the last will stored")
    s.rounds()
    s.clock.advance(60)
    s.rounds()
    s.status()  # back within the hold: a restart, nothing to say
    s.rounds()
    assert s.notices() == []
    s.publish_status(offline)
    poll_until(lambda: not _online(s), what="the last will stored")
    s.rounds()
    s.clock.advance(121)
    s.expect(("node_offline", NODE, "firing"))
    assert s.hook.bodies()[0]["detail"] == "the node said it is offline"
    s.status()
    s.expect(("node_offline", NODE, "firing"), ("node_offline", NODE, "recovered"))


def _online(s: AlertSite) -> bool:
    with HubStore(s.cfg.database) as store:
        row = store.conn.execute(
            "SELECT online FROM machine_state WHERE machine_id = ?", (NODE,)
        ).fetchone()
    return bool(row and row[0])


def test_a_journal_backlog_above_the_threshold_for_its_hold_fires_once(make_site) -> None:
    s = make_site(backlog_above=100, backlog_for=timedelta(minutes=5))
    s.start()
    s.status(backlog=500)
    s.clock.advance(299)
    s.status(backlog=800)
    s.rounds()
    assert s.notices() == []
    s.clock.advance(2)
    s.status(backlog=900)
    s.expect(("journal_backlog", NODE, "firing"))
    assert s.hook.bodies()[0]["detail"].endswith("events waiting (threshold 100)")
    s.status(backlog=3)
    s.expect(("journal_backlog", NODE, "firing"), ("journal_backlog", NODE, "recovered"))


def test_a_snapshot_near_the_nodes_limit_fires_once_and_recovers(make_site) -> None:
    s = make_site(snapshot_age_ratio=0.8)
    s.start()
    limit = 1000.0
    s.status(snapshot_version=7, snapshot_age_s=0.5 * limit, snapshot_max_age_s=limit)
    s.rounds()
    assert s.notices() == []
    # The node's report ages with the time since the hub received it.
    s.clock.advance(0.31 * limit)
    s.expect(("snapshot_age", NODE, "firing"))
    s.status(snapshot_version=8, snapshot_age_s=12.0, snapshot_max_age_s=limit)
    s.expect(("snapshot_age", NODE, "firing"), ("snapshot_age", NODE, "recovered"))


def test_refused_messages_from_a_node_fire_once_and_recover_after_the_window(make_site) -> None:
    s = make_site(refusals_above=0, refusals_window=timedelta(minutes=15))
    s.start()
    s.status()
    # Another machine's session, sent by laser-1: refused (forbidden), and garbage.
    forged = Envelope.new(
        node=NODE,
        seq=1,
        boot="b1",
        type="session.started",
        data={
            "session_id": "s-x",
            "machine": "cnc-1",
            "member_id": "m1",
            "badge_uid": "AA0101AA",
            "project_id": None,
            "started_at": "2026-11-25T18:04:05.123Z",
            "staff_present": False,
        },
    )
    s.observer.publish(s.topics.node_events(NODE), forged.encode())
    s.observer.publish(s.topics.node_events(NODE), b"{not json")
    s.expect(("refusals", NODE, "firing"))
    s.observer.publish(s.topics.node_events(NODE), b"[]")  # more of it: still one alert
    s.rounds()
    assert s.notices() == [("refusals", NODE, "firing")]
    s.clock.advance(16 * 60)
    s.status()
    s.expect(("refusals", NODE, "firing"), ("refusals", NODE, "recovered"))


def test_an_ingest_that_cannot_store_fires_once_and_recovers(make_site) -> None:
    s = make_site(ingest_stalled_after=timedelta(seconds=30))
    svc = s.start()
    s.status()
    # Another process holds the database's write lock: messages arrive, none is stored.
    blocker = sqlite3.connect(s.cfg.database, timeout=1)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        event = Envelope.new(
            node=NODE,
            seq=1,
            boot="b1",
            type="node.boot",
            data={"version": "t", "recovered_session_id": None, "relay": False},
        )
        s.observer.publish(s.topics.node_events(NODE), event.encode())
        poll_until(lambda: svc.monitor.view().ingest.waiting_s is not None, what="a wait")
        s.mono.advance(31)
        s.hook.wait_count(1)
        s.smtp.wait_count(1)
        assert s.notices() == [("ingest_stalled", "hub", "firing")]
    finally:
        blocker.rollback()
        blocker.close()
    # As a node does, send the event again until the hub acknowledges it (one that an
    # ingest gave up on after its busy timeout is not acknowledged, and comes again).
    for attempt in range(4):
        try:
            s.observer.wait_acked(event, timeout=6)
            break
        except AssertionError:
            if attempt == 3:
                raise
            s.observer.publish(s.topics.node_events(NODE), event.encode())
    s.expect(("ingest_stalled", "hub", "firing"), ("ingest_stalled", "hub", "recovered"))


def test_a_restarted_hub_neither_repeats_nor_forgets_an_alert(make_site) -> None:
    s = make_site(backlog_above=10, backlog_for=timedelta(seconds=0))
    s.start()
    s.status(backlog=50)
    s.expect(("journal_backlog", NODE, "firing"))
    s.stop_hub()
    s.start()  # same database, the condition still holds
    s.status(backlog=60)
    s.rounds(10)
    assert s.notices() == [("journal_backlog", NODE, "firing")]
    s.status(backlog=0)
    s.expect(("journal_backlog", NODE, "firing"), ("journal_backlog", NODE, "recovered"))


def test_an_smtp_server_down_holds_up_neither_the_webhook_nor_later_mail(make_site) -> None:
    s = make_site(backlog_above=10, backlog_for=timedelta(seconds=0))
    port = free_port()
    email = dataclasses.replace(s.cfg.alerts.email, port=port)
    s.start(dataclasses.replace(s.cfg, alerts=dataclasses.replace(s.cfg.alerts, email=email)))
    s.status(backlog=50)
    s.hook.wait_count(1)  # the webhook does not wait for the mail
    s.rounds()
    assert s.notices() == [("journal_backlog", NODE, "firing")]
    with HubStore(s.cfg.database) as store:
        row = store.conn.execute(
            "SELECT attempts, last_error FROM alert_deliveries WHERE channel = 'email'"
        ).fetchone()
    assert row[0] >= 1 and "Connection" in row[1]
    late = SmtpReceiver(port=port).start()  # the server comes back: the mail goes out, once
    try:
        s.clock.advance(5)  # past the retry back-off (1 s, doubling to 4 s)
        late.wait_count(1, timeout=20)
        s.rounds()
        assert [str(m["Subject"]) for m in late.messages()] == [
            "[fabgate demo] FIRING: node laser-1: journal backlog"
        ]
        assert s.notices() == [("journal_backlog", NODE, "firing")]
    finally:
        late.stop()


def test_a_bad_alerts_section_names_file_key_and_expectation(tmp_path: Path) -> None:
    site = Site(tmp_path, "mqtt://127.0.0.1:1883")
    path = site.files.hub_config
    text = path.read_text(encoding="utf-8")
    cases = {
        "alerts:\n  email: {host: smtp.lab, from: hub@lab.example, to: ops@lab.example}\n": (
            "alerts.email.to",
            "a list of e-mail addresses",
        ),
        "alerts:\n  webhook: {url: ftp://x}\n": ("alerts.webhook.url", "an http:// or https://"),
        "alerts:\n  snapshot_age_ratio: 2\n": ("alerts.snapshot_age_ratio", "at most 1"),
        "alerts:\n  node_offline_afterr: 2m\n": ("alerts.node_offline_afterr", "known key"),
        "alerts:\n  email: {host: h, from: a@b.example, to: [x@y.example], password: p}\n": (
            "alerts.email.username",
            "a username",
        ),
    }
    for block, (key, expected) in cases.items():
        path.write_text(text + block, encoding="utf-8")
        with pytest.raises(ConfigError) as err:
            load_hub_config(path)
        assert err.value.key == key and expected in err.value.expected, str(err.value)
        assert str(path) in str(err.value)
    path.write_text(
        text + "alerts:\n  check_every: 30s\n  email:\n    host: smtp.lab\n    security: ssl\n"
        "    from: hub@lab.example\n    to: [ops@lab.example]\n"
        "  webhook: {url: 'https://chat.lab.example/hook', secret: abc}\n",
        encoding="utf-8",
    )
    cfg = load_hub_config(path)
    assert cfg.alerts.check_every == timedelta(seconds=30)
    assert cfg.alerts.email is not None and cfg.alerts.email.port == 465
    assert cfg.alerts.channels == ("email", "webhook")
