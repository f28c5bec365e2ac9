"""A hostile node with laser-1's password, on laser-1's own topics, against the real hub.

The broker runs the site's own files from `fabgate deploy mosquitto` (settings, ACL and
passwords made from the hub configuration, with ``mqtt.prefix`` set, as
tests/test_deploy_acl.py does), so laser-1 can only write under ``node/laser-1/``; the
hub and the cnc-1 node are real processes with their own accounts, the test watches
with a read-only monitoring account. Everything laser-1 tries about cnc-1 (its session,
its job, its status, a certification for the cnc group) and every certification or
enrolment it makes up is refused: nothing changes at the hub, each refusal is
acknowledged, kept with its reason and counted for laser-1 on the board.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from gateway.contract import Envelope, Topics, encode_status
from gateway.core.clock import iso, parse_iso
from gateway.demo.broker import free_port
from gateway.drivers.readers.simulated import send_tap
from tests.support.deployed import DeployedBroker, deploy_broker
from tests.support.harness import BADGE, Observer, Site, http_request, poll_until

PREFIX = "fablab/fablab-demo/"  # set in the site's files, so the ACL is made for it
TOPICS = Topics(PREFIX)

pytestmark = pytest.mark.integration


def _prefix(config: Path) -> None:
    doc = yaml.safe_load(config.read_text())
    doc["mqtt"].update(prefix=PREFIX)
    config.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))


def _login(config: Path, user: str, password: str) -> None:
    doc = yaml.safe_load(config.read_text())
    doc["mqtt"].update(username=user, password=password)
    config.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))


@pytest.fixture
def acl_site(tmp_path: Path) -> Iterator[tuple[DeployedBroker, Site, Observer]]:
    port = free_port("127.0.0.1")
    site = Site(tmp_path, f"mqtt://127.0.0.1:{port}")
    for path in (site.files.hub_config, *site.files.node_configs.values()):
        _prefix(path)
    broker = deploy_broker(
        tmp_path, site.files.hub_config, port=port, extra=("--monitor", "observer")
    )
    _login(site.files.hub_config, "fabgate-hub", broker.passwords["fabgate-hub"])
    for node, path in site.files.node_configs.items():
        _login(path, node, broker.passwords[node])
    observer = Observer(
        broker.url, PREFIX, username="observer", password=broker.passwords["observer"]
    )
    try:
        yield broker, site, observer
    finally:
        observer.close()
        site.stop()
        broker.stop()


class Hostile:
    """laser-1's account, publishing whatever it likes on laser-1's own topics."""

    def __init__(self, port: int, password: str) -> None:
        self.acks: list[str] = []
        self.cond = threading.Condition()
        self.ready = threading.Event()
        self.seq = 1000
        self.c = paho.Client(
            CallbackAPIVersion.VERSION2, client_id="hostile-laser-1", protocol=paho.MQTTv311
        )
        self.c.username_pw_set("laser-1", password)
        self.c.on_message = self._on_message
        self.c.on_subscribe = lambda *_a: self.ready.set()
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()
        self.c.subscribe(TOPICS.node_ack("laser-1"), 1)
        assert self.ready.wait(10)

    def _on_message(self, _c: paho.Client, _u: object, msg: paho.MQTTMessage) -> None:
        with self.cond:
            self.acks.extend(json.loads(msg.payload)["ids"])
            self.cond.notify_all()

    def send(self, type_: str, data: dict[str, Any]) -> Envelope:
        self.seq += 1
        env = Envelope.new(node="laser-1", seq=self.seq, boot="hostile-boot", type=type_, data=data)
        self.c.publish(TOPICS.node_events("laser-1"), env.encode(), qos=1).wait_for_publish(5)
        return env

    def status(self, payload: bytes) -> None:
        self.c.publish(TOPICS.node_status("laser-1"), payload, qos=1).wait_for_publish(5)

    def wait_acked(self, *envs: Envelope) -> None:
        with self.cond:
            assert self.cond.wait_for(lambda: all(e.id in self.acks for e in envs), 15), [
                e.type for e in envs if e.id not in self.acks
            ]

    def close(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()


def _db(site: Site) -> sqlite3.Connection:
    db = sqlite3.connect(site.files.data / "hub.db")
    db.row_factory = sqlite3.Row
    return db


def _query(site: Site, sql: str, *args: Any) -> list[sqlite3.Row]:
    db = _db(site)
    try:
        return db.execute(sql, args).fetchall()
    finally:
        db.close()


def _session_row(site: Site, session_id: str) -> dict:
    (row,) = _query(site, "SELECT * FROM sessions WHERE session_id = ?", session_id)
    return dict(row)


def _machine(site: Site, machine: str) -> dict:
    return {m["machine_id"]: m for m in site.api("/api/v1/machines")["machines"]}[machine]


def _certify_tap(hostile: Hostile, member: str) -> Envelope:
    """The tap a node journals for a trainee before its certification.granted."""
    return hostile.send(
        "tap",
        {
            "uid": "04000001",
            "member_id": member,
            "action": "certify",
            "reason": "certified",
            "tap_id": None,
        },
    )


def _certify_emile_on_the_cnc(site: Site) -> None:
    """A CNC user who is not a trainer: two quick taps by a trainer open certify mode,
    and this test's checks must not run into it."""
    seed = site.files.data / "members.yaml"
    doc = yaml.safe_load(seed.read_text())
    doc["certifications"].append(
        {
            "member": "m-emile",
            "group": "cnc",
            "level": 2,
            "certified_by": "m-karim",
            "certified_at": "2025-01-10T18:00:00Z",
            "expires": None,
        }
    )
    seed.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))


def test_a_hostile_node_changes_nothing_about_another_machine(acl_site) -> None:
    broker, site, observer = acl_site
    _certify_emile_on_the_cnc(site)
    site.start_hub()
    site.start_node("cnc-1")
    observer.wait_for(
        lambda: (observer.status.get("cnc-1") or {}).get("snapshot_version"),
        what="cnc-1 online with a snapshot",
    )
    send_tap(site.tap_socket("cnc-1"), BADGE["emile"])
    started = observer.wait_event("session.started", member_id="m-emile")
    observer.wait_acked(started)
    session_id = started.data["session_id"]
    poll_until(lambda: _machine(site, "cnc-1")["state"] == "in_use", what="cnc-1 in use")
    open_row = _session_row(site, session_id)

    hostile = Hostile(broker.port, broker.passwords["laser-1"])
    try:
        start = parse_iso(started.data["started_at"])
        end = {
            **started.data,
            "ended_at": iso(start + timedelta(seconds=1)),
            "duration_s": 0.0,
            "billable_minutes": 0,
            "end_reason": "badge_out",
            "busy_s": None,
            "idle_s": None,
            "busy_minutes": None,
            "idle_minutes": None,
            "jobs": 0,
        }
        del end["staff_present"]
        tries = [
            hostile.send("session.ended", end),  # cnc-1's session, naming cnc-1
            hostile.send("session.ended", {**end, "machine": "laser-1"}),  # naming its own
            hostile.send(
                "job",
                {
                    "job_id": "j-hostile",
                    "event": "started",
                    "session_id": session_id,
                    "machine": "cnc-1",
                    "member_id": "m-emile",
                    "project_id": None,
                    "name": "evil.nc",
                    "progress": 0.0,
                    "time_left_s": None,
                    "detail": "",
                },
            ),
            _certify_tap(hostile, "m-alice"),
            hostile.send(
                "certification.granted",
                {  # laser-1 certifying for the cnc group
                    "trainer_id": "m-bruno",
                    "member_id": "m-alice",
                    "group": "cnc",
                    "level": 2,
                    "machine": "laser-1",
                },
            ),
            _certify_tap(hostile, "m-chloe"),
            hostile.send(
                "certification.granted",
                {  # Alice is level 2: not a trainer
                    "trainer_id": "m-alice",
                    "member_id": "m-chloe",
                    "group": "laser",
                    "level": 2,
                    "machine": "laser-1",
                },
            ),
            hostile.send(
                "certification.granted",
                {  # a real trainer, but no trainee tap
                    "trainer_id": "m-karim",
                    "member_id": "m-diane",
                    "group": "laser",
                    "level": 2,
                    "machine": "laser-1",
                },
            ),
            hostile.send(
                "badge.enrolled",
                {"request_id": "made-up-request", "uid": "0A0B0C0D", "member_id": "m-diane"},
            ),
        ]
        # And a status saying cnc-1 is free.
        hostile.status(
            encode_status(
                node="laser-1",
                machine="cnc-1",
                online=True,
                relay=False,
                session=None,
                state="free",
            )
        )
        hostile.wait_acked(*tries)  # refused events are acknowledged, like bad data
        refused = {e.id for e in tries if e.type != "tap"}
        poll_until(
            lambda: (
                len(_query(site, "SELECT 1 FROM rejected_messages WHERE node = 'laser-1'"))
                == len(refused) + 1
            ),
            what="every refusal recorded",
        )

        # Nothing changed at the hub.
        assert _session_row(site, session_id) == open_row
        live = _machine(site, "cnc-1")
        assert (live["state"], live["member_id"]) == ("in_use", "m-emile")
        assert _query(site, "SELECT * FROM jobs") == []
        assert (
            _query(
                site,
                "SELECT * FROM certifications WHERE (member_id = 'm-alice' AND "
                "group_id = 'cnc') OR (member_id IN ('m-chloe', 'm-diane') AND "
                "group_id = 'laser')",
            )
            == []
        )
        assert _query(site, "SELECT * FROM badges WHERE uid = '0A0B0C0D'") == []
        rows = _query(
            site,
            "SELECT event_id, event_type, kind, error, topic FROM "
            "rejected_messages WHERE node = 'laser-1' ORDER BY id",
        )
        by_event = {r["event_id"]: r for r in rows if r["event_id"]}
        assert set(by_event) == refused
        reasons = [by_event[e.id]["error"] for e in tries if e.id in refused]
        for reason, expected in zip(
            reasons,
            (
                "serves laser-1, not cnc-1",
                "opened by node cnc-1",
                "serves laser-1, not cnc-1",
                "laser-1 is a laser machine: it may not certify for cnc",
                "m-alice is not a live level-3 trainer",
                "no certify tap by m-diane",
                "no enrolment made-up-request was opened",
            ),
            strict=True,
        ):
            assert expected in reason
        (status_refusal,) = [r for r in rows if r["event_id"] is None]
        assert status_refusal["topic"].endswith("node/laser-1/status")
        assert "serves laser-1, not cnc-1" in status_refusal["error"]

        # The board counts them for laser-1, with the latest reason.
        status, _, body = http_request(site.hub_url + "fragments/board")
        assert status == 200
        page = body.decode()
        assert f"{len(refused) + 1} messages du nœud laser-1 refusés" in page

        # cnc-1's real badge-out closes the session; laser-1's end sent again afterwards
        # (last writer used to win) rewrites nothing.
        send_tap(site.tap_socket("cnc-1"), BADGE["emile"])
        real_end = observer.wait_for(
            lambda: next(
                (e for e in observer.events if e.type == "session.ended" and e.node == "cnc-1"),
                None,
            ),
            what="cnc-1's own session end",
        )
        observer.wait_acked(real_end)
        billed = _session_row(site, session_id)
        assert billed["status"] == "closed" and billed["closed_by"] == real_end.id
        again = [
            hostile.send("session.ended", end),
            hostile.send("session.ended", {**end, "machine": "laser-1"}),
        ]
        hostile.wait_acked(*again)
        assert _session_row(site, session_id) == billed
        assert (
            len(_query(site, "SELECT 1 FROM rejected_messages WHERE node = 'laser-1'"))
            == len(refused) + 3
        )
        # Alice is still not certified on the CNC, even in a snapshot made after the
        # refused certification (forced here): her tap on the now free cnc-1 is denied.
        version = observer.status["cnc-1"]["snapshot_version"]
        db = _db(site)
        with db:
            db.execute(
                "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'data_version'"
            )
        db.close()
        observer.wait_for(
            lambda: observer.status["cnc-1"]["snapshot_version"] > version,
            what="a newer snapshot at cnc-1",
        )
        send_tap(site.tap_socket("cnc-1"), BADGE["alice"])
        tap = observer.wait_event("tap", uid=BADGE["alice"])
        assert (tap.data["action"], tap.data["reason"]) == ("deny", "not_certified")
        observer.wait_for(lambda: observer.status["cnc-1"]["relay"] is False, what="relay off")
    finally:
        hostile.close()
