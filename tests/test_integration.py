"""End to end: a real Mosquitto, the hub and nodes as separate processes, real HTTP.

These tests badge through the same paths a member does (simulated reader -> node policy
-> mock relay -> journal -> MQTT -> hub -> SQLite -> API) and look only from outside.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from gateway.contract import Envelope
from gateway.drivers.readers.simulated import send_tap
from gateway.hub.enrolment import create_enrolment, enrolment_status
from gateway.policies.access import DENY_REASONS, Reason
from tests.support.harness import BACK_AFTER_BROKER_RESTART_S, BADGE, Observer, Site, poll_until
from tests.support.mosquitto import MosquittoProcess

pytestmark = pytest.mark.integration


def _ready(site: Site, observer: Observer, node: str) -> None:
    """Hub up, node up and holding a snapshot."""
    observer.wait_for(
        lambda: (observer.status.get(node) or {}).get("snapshot_version"),
        what=f"{node} online with a snapshot",
    )


def _sessions(site: Site) -> list[dict]:
    return site.api("/api/v1/sessions")["sessions"]


def test_allowed_tap_powers_the_machine_and_badge_out_meters_the_session(
    site: Site, observer: Observer
) -> None:
    site.start_hub()
    site.start_node("laser-1")
    _ready(site, observer, "laser-1")

    send_tap(site.tap_socket("laser-1"), BADGE["alice"])
    started = observer.wait_event("session.started", member_id="m-alice")
    observer.wait_for(lambda: observer.status["laser-1"]["relay"] is True, what="relay on")
    assert observer.status["laser-1"]["session"]["member_id"] == "m-alice"
    observer.wait_acked(started)
    live = {m["machine_id"]: m for m in site.api("/api/v1/machines")["machines"]}
    assert live["laser-1"]["member_id"] == "m-alice"

    send_tap(site.tap_socket("laser-1"), BADGE["alice"])
    ended = observer.wait_event("session.ended", session_id=started.data["session_id"])
    observer.wait_for(lambda: observer.status["laser-1"]["relay"] is False, what="relay off")
    assert ended.data["end_reason"] == "badge_out"
    assert ended.data["project_id"] == "p-lampe"
    observer.wait_acked(ended)

    (row,) = [s for s in _sessions(site) if s["session_id"] == started.data["session_id"]]
    assert row["status"] == "closed"
    assert row["member_id"] == "m-alice"
    assert row["billable_minutes"] == 1
    assert row["duration_s"] == pytest.approx(ended.data["duration_s"])
    usage = site.api("/api/v1/usage?group_by=member&from=2000-01-01&to=2100-01-01")["rows"]
    assert [(r["member_id"], r["billable_minutes"]) for r in usage] == [("m-alice", 1)]


@pytest.mark.parametrize(
    ("who", "machine", "reason"),
    [
        ("stranger", "laser-1", "unknown_badge"),
        ("fanny", "laser-1", "suspended"),
        ("emile", "laser-1", "certification_expired"),
        ("bruno", "laser-1", "not_certified"),
    ],
)
def test_denied_tap_never_powers_the_machine(
    site: Site, observer: Observer, who: str, machine: str, reason: str
) -> None:
    site.start_hub()
    site.start_node(machine)
    _ready(site, observer, machine)
    send_tap(site.tap_socket(machine), BADGE[who])
    tap = observer.wait_event("tap", uid=BADGE[who])
    assert (tap.data["action"], tap.data["reason"]) == ("deny", reason)
    # The node publishes its status after handling the tap; it must show the relay off.
    observer.wait_for(
        lambda: (
            observer.status[machine].get("boot")
            and observer.status[machine]["relay"] is False
            and observer.event("tap", uid=BADGE[who]) is not None
        ),
        what="status",
    )
    assert observer.event("session.started") is None
    assert observer.status[machine]["relay"] is False


def test_certification_change_reaches_the_node(site: Site, observer: Observer) -> None:
    """A certification granted at the hub lets the very next tap through."""
    site.start_hub()
    site.start_node("laser-1")
    _ready(site, observer, "laser-1")
    send_tap(site.tap_socket("laser-1"), BADGE["bruno"])
    assert observer.wait_event("tap", uid=BADGE["bruno"]).data["reason"] == "not_certified"
    version = observer.status["laser-1"]["snapshot_version"]

    db = sqlite3.connect(site.files.data / "hub.db")
    with db:
        db.execute(
            "INSERT INTO certifications (member_id, group_id, level, certified_by, "
            "certified_at) VALUES ('m-bruno', 'laser', 2, 'm-karim', "
            "'2026-11-25T18:00:00.000Z')"
        )
    db.close()
    observer.wait_for(
        lambda: observer.status["laser-1"]["snapshot_version"] > version,
        what="a newer snapshot at the node",
    )
    send_tap(site.tap_socket("laser-1"), BADGE["bruno"])
    observer.wait_event("session.started", member_id="m-bruno")


def test_broker_killed_mid_session_loses_nothing_and_bills_once(
    site: Site, observer: Observer, mosquitto: MosquittoProcess
) -> None:
    site.start_hub()
    site.start_node("cnc-1")
    _ready(site, observer, "cnc-1")
    send_tap(site.tap_socket("cnc-1"), BADGE["bruno"])
    started = observer.wait_event("session.started", member_id="m-bruno")
    observer.wait_acked(started)

    mosquitto.kill()
    # Badge out while the broker is down: the node decides alone and journals the end.
    send_tap(site.tap_socket("cnc-1"), BADGE["bruno"])
    site.nodes["cnc-1"].wait_line(r"session \S+ ended \(badge_out\)")
    journal = sqlite3.connect(site.journal("cnc-1"))
    pending = [
        Envelope.decode(p) for (p,) in journal.execute("SELECT payload FROM events ORDER BY seq")
    ]
    (ended,) = [e for e in pending if e.type == "session.ended"]
    assert ended.data["session_id"] == started.data["session_id"]

    mosquitto.restart()
    # Node and hub reconnect within their back-off ceiling (mqtt.reconnect_max in the
    # site's configs); the node then resends its journal at once and forgets each event
    # only when the hub has acknowledged it: a drained journal means the hub has it all.
    poll_until(
        lambda: journal.execute("SELECT count(*) FROM events").fetchone()[0] == 0,
        timeout=BACK_AFTER_BROKER_RESTART_S,
        what="the journal to drain",
    )
    journal.close()

    rows = [s for s in _sessions(site) if s["session_id"] == started.data["session_id"]]
    assert len(rows) == 1
    assert rows[0]["status"] == "closed"
    assert rows[0]["duration_s"] == pytest.approx(ended.data["duration_s"])
    assert rows[0]["ended_at"] == ended.data["ended_at"]


def test_replaying_the_whole_journal_twice_changes_no_total(
    site: Site, observer: Observer, mosquitto: MosquittoProcess
) -> None:
    site.start_hub()
    site.start_node("laser-1")
    _ready(site, observer, "laser-1")
    for _ in range(2):
        send_tap(site.tap_socket("laser-1"), BADGE["alice"])
        observer.wait_for(lambda: observer.status["laser-1"]["relay"] is True, what="on")
        send_tap(site.tap_socket("laser-1"), BADGE["alice"])
        observer.wait_for(lambda: observer.status["laser-1"]["relay"] is False, what="off")
    observer.wait_for(
        lambda: (
            len([e for e in observer.events if e.type == "session.ended"]) == 2
            and all(e.id in observer.acks for e in observer.events)
        ),
        what="all acked",
    )
    query = "/api/v1/usage?group_by=member,machine&from=2000-01-01&to=2100-01-01"
    before = site.api(query)
    sessions_before = _sessions(site)
    replayed = list(observer.raw_events)
    assert len(replayed) >= 6

    replayer = paho.Client(
        CallbackAPIVersion.VERSION2, client_id="replayer", protocol=paho.MQTTv311
    )
    host, port = mosquitto.url.removeprefix("mqtt://").split(":")
    replayer.connect(host, int(port))
    replayer.loop_start()
    acks_before = len(observer.acks)
    for _ in range(2):
        for topic, payload in replayed:
            replayer.publish(topic, payload, qos=1).wait_for_publish(5)
    observer.wait_for(
        lambda: len(observer.acks) >= acks_before + 2 * len(replayed),
        what="the hub to acknowledge every replayed event",
    )
    replayer.loop_stop()
    replayer.disconnect()
    assert site.api(query) == before
    assert _sessions(site) == sessions_before


def test_node_killed_mid_session_restarts_with_power_off_and_closes_the_session(
    site: Site, observer: Observer
) -> None:
    site.start_hub()
    node = site.start_node("printer-1")
    _ready(site, observer, "printer-1")
    # Chloé is level 1 on printing: she needs staff present. Karim (staff) taps first.
    send_tap(site.tap_socket("printer-1"), BADGE["karim"])
    karim = observer.wait_event("session.started", member_id="m-karim")
    node.wait_line(r"session \S+ started")
    node.p.send_signal(signal.SIGKILL)
    node.p.wait(10)
    observer.wait_for(lambda: observer.status["printer-1"]["online"] is False, what="the last will")

    again = site.start_node("printer-1")
    boot = observer.wait_event("node.boot", recovered_session_id=karim.data["session_id"])
    ended = observer.wait_event("session.ended", session_id=karim.data["session_id"])
    assert ended.data["end_reason"] == "node_restart"
    assert ended.data["started_at"] == karim.data["started_at"]
    assert boot.data["relay"] is False
    observer.wait_for(
        lambda: (
            observer.status["printer-1"]["online"] is True
            and observer.status["printer-1"]["boot"] == boot.boot
        ),
        what="back online",
    )
    assert observer.status["printer-1"]["relay"] is False
    assert observer.status["printer-1"]["session"] is None
    observer.wait_acked(ended)
    (row,) = [s for s in _sessions(site) if s["session_id"] == karim.data["session_id"]]
    assert row["status"] == "closed"
    assert again.p.poll() is None


def test_fabgate_sim_tap_reports_the_node_decision(
    site: Site, observer: Observer, mosquitto: MosquittoProcess
) -> None:
    site.start_hub()
    site.start_node("laser-1")
    _ready(site, observer, "laser-1")
    base = [
        sys.executable,
        "-m",
        "gateway",
        "sim",
        "tap",
        "--broker",
        mosquitto.url,
        "--prefix",
        "fablab/demo/",
    ]
    allowed = subprocess.run(
        [*base, "laser-1", "04:a1:ce:01"], capture_output=True, text=True, timeout=30
    )
    assert allowed.returncode == 0, allowed.stderr
    assert "allowed for m-alice: relay ON" in allowed.stdout
    observer.wait_for(lambda: observer.status["laser-1"]["relay"] is True, what="relay on")
    denied = subprocess.run(
        [*base, "laser-1", BADGE["stranger"]], capture_output=True, text=True, timeout=30
    )
    assert denied.returncode == 0, denied.stderr
    assert "denied" in denied.stdout and "unknown_badge" in denied.stdout
    assert DENY_REASONS[Reason.UNKNOWN_BADGE]["en"] in denied.stdout  # what to do about it
    out = subprocess.run(
        [*base, "laser-1", BADGE["alice"]], capture_output=True, text=True, timeout=30
    )
    assert "badge-out by m-alice: relay OFF" in out.stdout
    nobody = subprocess.run(
        [*base, "--timeout", "1", "cnc-1", BADGE["alice"]],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert nobody.returncode == 3
    assert "did not answer" in nobody.stderr


def test_staff_tap_on_one_node_lets_supervised_members_in_on_another(
    site: Site, observer: Observer
) -> None:
    site.start_hub()
    site.start_node("printer-1")
    site.start_node("embroidery-1")
    _ready(site, observer, "printer-1")
    _ready(site, observer, "embroidery-1")
    send_tap(site.tap_socket("printer-1"), BADGE["chloe"])
    assert observer.wait_event("tap", uid=BADGE["chloe"]).data["reason"] == "staff_required"

    version = observer.status["printer-1"]["snapshot_version"]
    send_tap(site.tap_socket("embroidery-1"), BADGE["karim"])
    presence = observer.wait_event("staff.presence", member_id="m-karim")
    assert presence.data["present"] is True
    observer.wait_for(
        lambda: observer.status["printer-1"]["snapshot_version"] > version,
        what="printer-1 to receive the presence in a new snapshot",
    )
    send_tap(site.tap_socket("printer-1"), BADGE["chloe"])
    observer.wait_event("session.started", member_id="m-chloe")


def test_malformed_payloads_are_rejected_and_the_hub_keeps_working(
    site: Site, observer: Observer, mosquitto: MosquittoProcess
) -> None:
    site.start_hub()
    site.start_node("laser-1")
    _ready(site, observer, "laser-1")
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="vandal", protocol=paho.MQTTv311)
    host, port = mosquitto.url.removeprefix("mqtt://").split(":")
    client.connect(host, int(port))
    client.loop_start()
    for payload in (b"\xff\xfe garbage", b"[]", b'{"v":1,"id":"x"}'):
        client.publish("fablab/demo/node/laser-1/event", payload, qos=1).wait_for_publish(5)
    client.loop_stop()
    client.disconnect()
    assert site.hub is not None
    site.hub.wait_line(
        r"refused \(invalid\) a message from node laser-1 on "
        r"fablab/demo/node/laser-1/event \(event x\): event envelope: "
        r"missing field 'node'"
    )
    # The hub still works: a real tap goes through and is stored.
    send_tap(site.tap_socket("laser-1"), BADGE["alice"])
    started = observer.wait_event("session.started", member_id="m-alice")
    observer.wait_acked(started)
    db = sqlite3.connect(site.files.data / "hub.db")
    rejected = db.execute("SELECT count(*) FROM rejected_messages").fetchone()[0]
    db.close()
    assert rejected == 3


def test_trainer_certifies_a_member_at_the_machine(site: Site, observer: Observer) -> None:
    site.start_hub()
    site.start_node("laser-1")
    _ready(site, observer, "laser-1")
    sock = site.tap_socket("laser-1")
    send_tap(sock, BADGE["karim"])  # level 3 on the laser: a session starts
    observer.wait_event("session.started", member_id="m-karim")
    send_tap(sock, BADGE["karim"])  # again at once: badge-out, and certify mode opens
    observer.wait_for(
        lambda: observer.status["laser-1"].get("mode") == "certify", what="certify mode"
    )
    assert observer.status["laser-1"]["relay"] is False
    version = observer.status["laser-1"]["snapshot_version"]
    send_tap(sock, BADGE["bruno"])  # the trainee
    granted = observer.wait_event("certification.granted", member_id="m-bruno")
    assert (granted.data["trainer_id"], granted.data["level"]) == ("m-karim", 2)
    observer.wait_acked(granted)
    observer.wait_for(
        lambda: observer.status["laser-1"]["snapshot_version"] > version,
        what="a snapshot with the new certification",
    )
    send_tap(sock, BADGE["bruno"])
    observer.wait_event("session.started", member_id="m-bruno")
    db = sqlite3.connect(site.files.data / "hub.db")
    row = db.execute(
        "SELECT level, certified_by FROM certifications WHERE member_id = "
        "'m-bruno' AND group_id = 'laser'"
    ).fetchone()
    db.close()
    assert row == (2, "m-karim")


def test_a_badge_is_enrolled_by_tapping_it_on_any_machine(site: Site, observer: Observer) -> None:
    from gateway.core.clock import utcnow
    from gateway.hub.db import HubStore

    site.start_hub()
    site.start_node("cnc-1")
    _ready(site, observer, "cnc-1")
    new_badge = "0A0B0C0D"
    with HubStore(site.files.data / "hub.db") as store:
        request = create_enrolment(store, "m-bruno", by="m-karim", now=utcnow())
    version = observer.status["cnc-1"]["snapshot_version"]
    observer.wait_for(
        lambda: (observer.enrolment or {}).get("request_id") == request,
        what="the enrolment window at the node",
    )
    send_tap(site.tap_socket("cnc-1"), new_badge)
    enrolled = observer.wait_event("badge.enrolled", uid=new_badge)
    observer.wait_acked(enrolled)
    observer.wait_for(
        lambda: observer.status["cnc-1"]["snapshot_version"] > version,
        what="a snapshot with the new badge",
    )
    send_tap(site.tap_socket("cnc-1"), new_badge)
    observer.wait_event("session.started", member_id="m-bruno", badge_uid=new_badge)
    with HubStore(site.files.data / "hub.db") as store:
        assert enrolment_status(store, request, utcnow())["status"] == "attached"
