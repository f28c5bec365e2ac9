"""Per machine class, end to end: a job outlives the badge-out, then power goes off.

Each node runs its real controller driver against our simulator of that controller
(GRBL over a pty for the laser and the CNC, Marlin over a pty for the printer, a current
sense board over a pty for the embroidery machine), as `controller.simulate` does in the
demo; the hub and the node are separate processes talking through a real Mosquitto.
"""

from __future__ import annotations

import pytest

from gateway.contract import encode_sim_job
from gateway.drivers.readers.simulated import send_tap
from tests.support.harness import BADGE, Observer, Site, poll_until
from tests.support.mosquitto import MosquittoProcess

pytestmark = pytest.mark.integration

CASES = [
    # node, member, badge holder, job name, does the controller report progress?
    ("laser-1", "m-alice", "alice", "boite.lbrn2", False),
    ("cnc-1", "m-bruno", "bruno", "plateau.nc", False),
    ("printer-1", "m-karim", "karim", "robot.gcode", True),
    ("embroidery-1", "m-diane", "diane", "ecusson.dst", False),
]


@pytest.mark.parametrize(
    ("node", "member", "who", "job_name", "has_progress"), CASES, ids=[c[0] for c in CASES]
)
def test_badge_out_during_a_job_keeps_power_until_it_ends(
    site: Site,
    mosquitto: MosquittoProcess,
    node: str,
    member: str,
    who: str,
    job_name: str,
    has_progress: bool,
) -> None:
    obs = Observer(mosquitto.url, "fablab/demo/")
    try:
        site.start_hub()
        site.start_node(node)
        obs.wait_for(
            lambda: (
                (obs.status.get(node) or {}).get("snapshot_version")
                and obs.status[node].get("activity") == "idle"
            ),
            what=f"{node} idle",
        )

        send_tap(site.tap_socket(node), BADGE[who])
        session = obs.wait_event("session.started", member_id=member)
        obs.publish(f"fablab/demo/sim/{node}/job", encode_sim_job(job_name, 6))
        started = obs.wait_event("job", event="started")
        assert started.data["session_id"] == session.data["session_id"]
        assert started.data["member_id"] == member
        obs.wait_for(lambda: obs.status[node]["activity"] == "busy", what="busy")
        if has_progress:
            assert started.data["name"] == job_name
            obs.wait_event("job", event="progress")
            poll_until(
                lambda: (site.api("/api/v1/jobs")["jobs"] or [{}])[0].get("progress"),
                what="progress at the hub",
            )
        poll_until(
            lambda: (
                {m["machine_id"]: m for m in site.api("/api/v1/machines")["machines"]}[node][
                    "activity"
                ]
                == "busy"
            ),
            what="the hub to show the machine busy",
        )

        send_tap(site.tap_socket(node), BADGE[who])  # badge-out in the middle of the job
        tap = obs.wait_for(
            lambda: [e for e in obs.events if e.type == "tap" and e.data["action"] == "end"],
            what="badge-out",
        )[0]
        obs.wait_for(lambda: obs.status[node]["ending"] is True, what="ending status")
        assert obs.status[node]["relay"] is True  # power kept for the job
        assert obs.event("session.ended") is None

        finished = obs.wait_event("job", event="finished", timeout=30)
        assert finished.time > tap.time
        ended = obs.wait_event("session.ended", timeout=30)
        assert ended.data["end_reason"] == "job_finished"
        assert ended.time >= finished.time
        obs.wait_for(lambda: obs.status[node]["relay"] is False, what="power off")
        d = ended.data
        assert d["busy_s"] > 0 and d["jobs"] == 1
        assert d["busy_s"] + d["idle_s"] == pytest.approx(d["duration_s"], abs=0.01)
        assert d["busy_minutes"] + d["idle_minutes"] == d["billable_minutes"]

        obs.wait_acked(ended)
        (row,) = [
            s
            for s in site.api("/api/v1/sessions")["sessions"]
            if s["session_id"] == session.data["session_id"]
        ]
        assert row["busy_minutes"] + row["idle_minutes"] == row["billable_minutes"]
        assert row["jobs"] == 1
        (job,) = site.api(f"/api/v1/jobs?machine={node}")["jobs"]
        assert (job["state"], job["member_id"], job["session_id"]) == (
            "finished",
            member,
            session.data["session_id"],
        )
    finally:
        obs.close()
