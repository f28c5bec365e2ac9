"""An idle timeout lowered on the web ends an idle session on a running node, no restart.

The real path end to end: the hub service (snapshot loop and web server) against a real
Mosquitto, a real ``fabgate node`` process for laser-1 (its file says 10 minutes idle),
Alice's session open on it, then a fabmanager who sets 2 seconds on the machine's page.
The node gets the signed snapshot, resolves the new rule at its next check and ends the
session for idleness, minutes before its own file would have.
"""

from __future__ import annotations

import time
import uuid

import pytest

from gateway.contract import encode_sim_tap
from gateway.hub.service import HubService
from tests.support.harness import FABMANAGER_PASSWORD, Observer, Site, poll_until
from tests.support.hashing import cheap_hashing
from tests.test_auth import Client

pytestmark = pytest.mark.integration

PASSWORD = FABMANAGER_PASSWORD
ALICE = "04A1CE01"


@pytest.fixture
def hub(hub_service: HubService) -> HubService:
    return hub_service


def test_a_shorter_idle_timeout_set_on_the_web_ends_an_idle_session(
    hub: HubService, site: Site, observer: Observer
) -> None:
    assert hub.link.wait_connected(10) and hub.web_url is not None
    node = site.start_node("laser-1")
    observer.wait_for(
        lambda: observer.status.get("laser-1", {}).get("online"), what="laser-1 online"
    )

    def badged_in() -> object:
        """Alice's tap, answered with a snapshot (one sent before the node subscribed is
        lost: send another)."""
        tap_id = str(uuid.uuid4())
        observer.publish(observer.topics.sim_tap("laser-1"), encode_sim_tap(ALICE, tap_id))
        try:
            answer = observer.wait_event("tap", tap_id=tap_id, timeout=2)
        except AssertionError:
            return None
        return None if answer.data["reason"] == "no_snapshot" else answer

    tapped = poll_until(badged_in, timeout=20, what="the node's answer with a snapshot")
    assert tapped.data["action"] == "start", tapped.data
    started = observer.wait_event("session.started", member_id="m-alice")
    session_id = started.data["session_id"]
    opened = time.monotonic()

    fab = Client(hub.web_url.rstrip("/"))
    with cheap_hashing():
        assert fab.login("karim@example.org", PASSWORD).status == 302
    token = fab.csrf("/admin/machines/laser-1")
    answer = fab.post("/admin/machines/laser-1/rules", {"idle_timeout": "2s", "csrf_token": token})
    assert answer.status == 302, answer.body[:300]

    ended = observer.wait_event("session.ended", session_id=session_id, timeout=15)
    assert ended.data["end_reason"] == "idle_timeout"
    # Well before the node file's 10 minutes: the hub's rule, taken without a restart.
    assert time.monotonic() - opened < 60
    assert ended.data["duration_s"] < 60
    assert node.p.poll() is None  # the same node process all along
    node.wait_line(r"session rules set by the hub: idle_timeout_s=2\.0")
