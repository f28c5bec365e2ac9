"""A machine put out of service on the web reaches its node within a second, no restart.

The real path: the hub service (its snapshot loop and its web server) against a real
Mosquitto, a fabmanager logged in over HTTP who posts the out-of-service form, and the
signed retained snapshot a node receives, checked with the hub's public key as a node
checks it. A real node process then denies a tap with ``out_of_service`` and logs the
fabmanager's reason.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from gateway.contract import encode_sim_tap
from gateway.contract.signing import load_public_key, verify_snapshot
from gateway.core.clock import utcnow
from gateway.hub import audit
from gateway.hub.db import HubStore
from gateway.hub.service import HubService
from tests.support.harness import FABMANAGER_PASSWORD, Observer, Site, poll_until
from tests.support.hashing import cheap_hashing
from tests.test_auth import Client

pytestmark = pytest.mark.integration

PASSWORD = FABMANAGER_PASSWORD
REASON = "Tube laser changé : retour jeudi"


@pytest.fixture
def hub(hub_service: HubService) -> HubService:
    return hub_service


def test_out_of_service_from_the_web_reaches_the_node_within_a_second(
    hub: HubService, site: Site, observer: Observer
) -> None:
    assert hub.link.wait_connected(10)
    topic = observer.topics.snapshot("laser-1")
    key = load_public_key(hub.public_key_path)

    def machine_of(payload: bytes) -> object:
        return verify_snapshot(payload, key, now=utcnow(), machine_id="laser-1").machine

    observer.wait_for(lambda: topic in observer.snapshots, what="laser-1's first snapshot")
    assert not machine_of(observer.snapshots[topic]).out_of_service  # type: ignore[attr-defined]

    assert hub.web_url is not None
    fab = Client(hub.web_url.rstrip("/"))
    with cheap_hashing():
        assert fab.login("karim@example.org", PASSWORD).status == 302
    token = fab.csrf("/admin/machines")
    sent = time.monotonic()
    answer = fab.post(
        "/admin/machines/laser-1/service",
        {"out_of_service": "1", "out_of_service_reason": REASON, "csrf_token": token},
    )
    assert answer.status == 302, answer.body[:300]

    def out() -> object:
        payload = observer.snapshots.get(topic)
        return payload is not None and machine_of(payload).out_of_service  # type: ignore[attr-defined]

    observer.wait_for(out, timeout=1.0, what="an out-of-service snapshot within a second")
    elapsed = time.monotonic() - sent
    machine = machine_of(observer.snapshots[topic])
    assert machine.out_of_service_reason == REASON  # type: ignore[attr-defined]
    assert elapsed < 1.0, elapsed

    with HubStore(hub.cfg.database) as store:
        entry = audit.entries(store, subject="laser-1")[0]
    assert (entry["actor"], entry["action"]) == ("m-karim", "machine.out_of_service")
    assert entry["details"] == {"reason": REASON}

    board = fab.get("/fragments/board")
    assert REASON in board.body.replace("&#39;", "'")

    # A real node with that snapshot refuses the tap, and says why in its log.
    node = site.start_node("laser-1")
    observer.wait_for(
        lambda: observer.status.get("laser-1", {}).get("online"), what="laser-1 online"
    )

    def tapped() -> object:
        """Alice's tap and the node's answer; None while it has no snapshot yet."""
        tap_id = str(uuid.uuid4())
        observer.publish(observer.topics.sim_tap("laser-1"), encode_sim_tap("04A1CE01", tap_id))
        try:  # a tap sent before the node subscribed is lost: send another
            answer = observer.wait_event("tap", tap_id=tap_id, timeout=2)
        except AssertionError:
            return None
        return None if answer.data["reason"] == "no_snapshot" else answer

    denied = poll_until(tapped, timeout=20, what="the node's answer with a snapshot")
    assert denied.data["reason"] == "out_of_service"
    assert REASON in Path(node.log).read_text(encoding="utf-8")
