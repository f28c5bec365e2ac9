"""End to end: a G-code sender streams a job through a real node to the hub.

A real Mosquitto, the hub and the cnc-1 node as processes; the GRBL simulator (its
timing set by the test: one line, 50 ms) on a pty the node owns; a sender like UGS on
the node's TCP link, waiting on every ``ok``. The job must reach the hub with its name
and progress, the session must meter the job's busy time, and without a session the
sender's motion must never reach the machine.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from gateway.drivers.readers.simulated import send_tap
from gateway.drivers.simulators.grbl import GrblSimulator
from tests.support.gcode_sender import GcodeSender
from tests.support.harness import BADGE, Observer, Site, poll_until

pytestmark = pytest.mark.integration

POLL = 0.25  # the node's controller.poll_interval
SENDER_POLL = 0.2  # the sender's own `?` rate, UGS's default
LOOP_HZ = 50  # the node loop (reader.poll_hz): how soon a report is metered
JOB = ["(Plateau chene)", "; lines: 34", "G21", "G90", "M3 S800"]
JOB += [f"G1 X{i} Y{i % 5} F1500" for i in range(30)]
JOB += ["M5"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def machine(tmp_path: Path) -> Iterator[GrblSimulator]:
    with GrblSimulator(link=tmp_path / "ttyCNC", line_time=0.05) as sim:
        yield sim


def _relayed_node(site: Site, sim: GrblSimulator) -> int:
    """The demo's cnc-1, following the test's simulator and relaying a TCP sender."""
    path = site.files.node_configs["cnc-1"]
    cfg = yaml.safe_load(path.read_text())
    port = _free_port()
    cfg["controller"] = {"driver": "grbl", "port": sim.port, "poll_interval": f"{POLL}s"}
    cfg["sender"] = {"tcp_port": port, "bind": "127.0.0.1"}
    cfg["reader"]["poll_hz"] = LOOP_HZ
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return port


def test_a_streamed_job_reaches_the_hub_with_name_progress_and_busy_time(
    site: Site, observer: Observer, machine: GrblSimulator
) -> None:
    port = _relayed_node(site, machine)
    site.start_hub()
    node = site.start_node("cnc-1")
    observer.wait_for(
        lambda: (observer.status.get("cnc-1") or {}).get("snapshot_version"),
        what="cnc-1 online with a snapshot",
    )
    node.wait_line(r"sender link listening on 127\.0\.0\.1")
    sender = GcodeSender(tcp=("127.0.0.1", port))
    try:
        # No session: the sender's motion is refused and never reaches the machine.
        node.wait_line(r"a sender is connected through the node")
        assert sender.send_line("G0 X50 Y50") == "error:9"
        assert sender.send_line("$G") == "ok"
        assert b"G0 X50" not in machine.received

        send_tap(site.tap_socket("cnc-1"), BADGE["bruno"])
        started = observer.wait_event("session.started", member_id="m-bruno")
        # The loop tells the relay in the step that opened the session.
        poll_until(lambda: sender.send_line("G21") == "ok", 5, "motion allowed")

        replies = sender.stream(JOB, poll=SENDER_POLL)
        assert replies == ["ok"] * len(JOB)  # no ok lost: a sender waiting on each ran on
        finished = observer.wait_event("job", event="finished")
        assert machine.wait_state("Idle")

        send_tap(site.tap_socket("cnc-1"), BADGE["bruno"])
        ended = observer.wait_event("session.ended", session_id=started.data["session_id"])
    finally:
        sender.close()

    job_events = [e for e in observer.events if e.type == "job"]
    assert [e.data["event"] for e in job_events][0] == "started"
    assert {e.data["name"] for e in job_events} == {"Plateau chene"}
    assert finished.data["progress"] == 100.0
    assert "34 of 34 lines" in finished.data["detail"]
    assert finished.data["session_id"] == started.data["session_id"]
    # The node saw the machine busy, then idle, through the sender's own status reports.
    (run,) = machine.runs
    job_seconds = run[1] - run[0]
    assert ended.data["busy_s"] == pytest.approx(job_seconds, abs=POLL)
    assert job_seconds > 1.0  # 31 motion lines of 50 ms

    observer.wait_acked(finished)  # stored by the hub, not only seen on the broker
    (row,) = site.api("/api/v1/jobs")["jobs"]
    assert (row["name"], row["state"], row["progress"]) == ("Plateau chene", "finished", 100.0)
    assert row["member_id"] == "m-bruno"
