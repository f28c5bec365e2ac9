"""``fabgate sim tap``: tap a badge on a simulated node and report what the node decided.

The tap travels over MQTT to the node's simulated reader, so it exercises the same path
as a real card: reader, debouncer, policy, relay, journal. The node echoes the tap id
in its ``tap`` event, which is how this command finds the answer to *its* tap.
"""

from __future__ import annotations

import sys
import threading

from gateway.contract import EV_TAP, ContractError, Envelope, Topics, encode_sim_tap
from gateway.contract.mqtt import MqttLink
from gateway.policies.access import DENY_REASONS


def tap(broker: str, prefix: str, node: str, uid: str, *, timeout: float, tap_id: str) -> int:
    """Exit status: 0 when the node answered (allowed or denied), 2 broker, 3 no answer."""
    topics = Topics(prefix)
    answer: dict[str, object] = {}
    done = threading.Event()
    subscribed = threading.Event()

    def on_event(_topic: str, payload: bytes) -> None:
        try:
            env = Envelope.decode(payload)
        except ContractError:
            return
        if env.type == EV_TAP and env.data.get("tap_id") == tap_id:
            answer.update(env.data)
            done.set()

    link = MqttLink(broker, f"fabgate-simtap-{tap_id[:8]}",
                    on_connect=lambda: subscribed.set())
    link.subscribe(topics.node_events(node), on_event)
    link.start()
    try:
        if not link.wait_connected(timeout) or not subscribed.wait(timeout):
            print(f"error: cannot reach the broker at {broker}", file=sys.stderr)
            return 2
        info = link.publish(topics.sim_tap(node), encode_sim_tap(uid, tap_id))
        if info is None:
            print("error: publishing the tap failed", file=sys.stderr)
            return 2
        if not done.wait(timeout):
            print(f"error: node {node!r} did not answer within {timeout:g} s (is it running, "
                  "and is its reader simulated?)", file=sys.stderr)
            return 3
    finally:
        link.stop()
    action, reason = answer.get("action"), str(answer.get("reason"))
    who = answer.get("member_id") or "unknown badge"
    if action == "start":
        print(f"{node}: allowed for {who}: relay ON, session started")
    elif action == "end":
        print(f"{node}: badge-out by {who}: relay OFF, session ended")
    elif action == "certify_mode":
        print(f"{node}: certify mode for 15 s: {who} may certify the next member who taps")
    elif action == "certify":
        print(f"{node}: {who} certified at this machine")
    elif action == "enrol":
        print(f"{node}: badge sent to the hub for enrolment")
    else:
        text = DENY_REASONS.get(reason, {}).get("en", reason)
        print(f"{node}: denied for {who}: {reason} ({text}); relay stays OFF")
    return 0
