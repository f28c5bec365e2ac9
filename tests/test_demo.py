"""`fabgate demo` as a user runs it: a whole site that comes up, works and stops cleanly."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.harness import api_get
from tests.support.mosquitto import MosquittoProcess

pytestmark = pytest.mark.integration


def run_demo(tmp_path: Path, *extra: str) -> tuple[subprocess.Popen[str], dict[str, str]]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gateway",
            "demo",
            "--for",
            "12",
            "--port",
            "0",
            "--data",
            str(tmp_path / "demo"),
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    seen: dict[str, str] = {}
    for line in proc.stdout:
        for key, rx in (("hub", r"hub:\s+(http://\S+/)"), ("token", r"API token.*: (\S+)")):
            m = re.search(rx, line)
            if m:
                seen[key] = m.group(1)
        if "stop with Ctrl-C" in line:
            break
    return proc, seen


def finish(proc: subprocess.Popen[str]) -> str:
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    return out


@pytest.mark.parametrize("with_mosquitto", [False, True], ids=["embedded-broker", "mosquitto"])
def test_demo_runs_its_scenario_and_prints_a_summary(
    tmp_path: Path, request, with_mosquitto: bool
) -> None:
    extra: tuple[str, ...] = ()
    if with_mosquitto:
        broker: MosquittoProcess = request.getfixturevalue("mosquitto")
        extra = ("--broker", broker.url)
    proc, seen = run_demo(tmp_path, *extra)
    assert {"hub", "token"} <= seen.keys(), seen
    page = api_get(seen["hub"], None)
    for machine in ("laser-1", "cnc-1", "printer-1", "embroidery-1"):
        assert machine in page
    machines = api_get(seen["hub"] + "api/v1/machines", seen["token"])["machines"]
    assert {m["machine_id"] for m in machines} == {"laser-1", "cnc-1", "printer-1", "embroidery-1"}
    out = finish(proc)

    db_path = Path(re.search(r"database: (\S+)", out).group(1))
    assert db_path == (tmp_path / "demo" / "hub.db").resolve()
    m = re.search(r"total\s+(\d+) sessions\s+(\d+) min", out)
    assert m and int(m.group(1)) >= 4, out
    db = sqlite3.connect(db_path)
    reasons = {
        r
        for (r,) in db.execute(
            "SELECT json_extract(data, '$.reason') FROM events WHERE type = 'tap'"
        )
    }
    open_sessions = db.execute("SELECT count(*) FROM sessions WHERE status = 'open'").fetchone()
    db.close()
    # The scripted scenario shows every kind of decision, and stopping closes every session.
    assert {
        "allowed",
        "badge_out",
        "suspended",
        "certification_expired",
        "unknown_badge",
        "membership_expired",
        "staff_required",
        "in_use",
    } <= reasons
    assert open_sessions == (0,)
    assert not (tmp_path / "demo" / "demo.json").exists()
