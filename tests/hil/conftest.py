"""The hardware-in-the-loop suite's rig, bench and commissioning report (see README.md).

``FABGATE_RIG=rig.yaml`` runs the checks on the real rig that file describes; without
it they run in CI on the simulated rig, wired as ``config/rig.example.yaml`` says, with
the unit's watchdog timings and the reader's hold-off shortened so the suite stays quick.
Every check, its time and its figures go into the report (``tests/hil/report.py``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.metadata
import os
import re
import subprocess
from collections.abc import Callable, Iterator
from importlib.util import find_spec
from pathlib import Path

import pytest

from gateway.config.rig import RigConfig, RigService, load_rig_config
from tests.hil.bench import Bench
from tests.hil.report import REPORT, Check
from tests.hil.rig import Rig

RIG_ENV = "FABGATE_RIG"
REPO = Path(__file__).resolve().parents[2]
EXAMPLE_RIG = REPO / "config" / "rig.example.yaml"
# The simulated rig plays the unit's watchdog in seconds rather than a minute: the
# signals and the sequence are the unit's, only the clock is faster.
# 3 s: the node pings every second, so a loaded CI machine does not miss one by accident.
SIM_SERVICE = RigService(watchdog=3.0, stop_timeout=2.0, restart=0.2)
SIM_HOLD_OFF = 0.3


def _rig_config() -> tuple[RigConfig, bool]:
    path = os.environ.get(RIG_ENV)
    if path:
        return load_rig_config(path), True
    cfg = load_rig_config(EXAMPLE_RIG)
    return dataclasses.replace(cfg, service=SIM_SERVICE, hold_off=SIM_HOLD_OFF), False


@pytest.fixture(scope="module")
def rig() -> Iterator[Rig]:
    cfg, real = _rig_config()
    if real:
        from tests.hil.real_rig import RealRig

        r: Rig = RealRig(cfg)
    else:
        if find_spec("mfrc522") is None:
            pytest.fail(
                "the simulated rig runs the real mfrc522 package against the RC522 "
                "simulator: install it (scripts/bootstrap.py test does)",
                pytrace=False,
            )
        from tests.hil.sim_rig import SimulatedRig

        r = SimulatedRig(cfg)
    REPORT.node, REPORT.rig, REPORT.rig_kind = cfg.node, cfg.rig, r.kind
    REPORT.rig_file = str(cfg.file) if real else f"{cfg.file} (simulated)"
    yield r


@pytest.fixture(scope="module")
def bench(rig: Rig, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bench]:
    """Broker, hub and the node service, up and the node holding a snapshot."""
    b = Bench(rig, tmp_path_factory.mktemp("hil"))
    try:
        b.start()
        yield b
    finally:
        REPORT.versions.update(versions(rig, b))  # while the rig still knows its parts
        b.stop()
        REPORT.logs.extend(sorted(b.workdir.glob("*.log")))


def versions(rig: Rig, bench: Bench) -> dict[str, str]:
    """Software and firmware versions of this run, for the report."""
    found: dict[str, str] = {}
    for dist in ("fablab-gateway", "gpiozero", "mfrc522", "pyserial", "paho-mqtt"):
        try:
            found[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            found[dist] = "not installed"
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        found["git"] = subprocess.run(
            ["git", "-C", str(REPO), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    logs = bench.node_logs()
    if m := re.search(r"RC522 on SPI bus \d+ device \d+: version register (0x[0-9a-f]+)", logs):
        found["rc522_version_register"] = m.group(1)
    if m := re.search(r"sense board on \S+: fabgate-sense (\S+)", logs):
        found["sense_board_firmware"] = m.group(1)
    found.update(rig.versions())
    return found


@pytest.fixture
def measure(request: pytest.FixtureRequest) -> Callable[[str, float], None]:
    """``measure(name, value)``: a figure of this check, in the report and the JUnit XML."""
    check = _check_of(request.node)

    def record(name: str, value: float) -> None:
        check.measures[name] = round(value, 3)
        request.node.user_properties.append((name, value))

    return record


def _check_of(item: pytest.Item) -> Check:
    doc = (getattr(getattr(item, "obj", None), "__doc__", None) or "").strip().splitlines()
    return REPORT.check(item.nodeid, item.name.removeprefix("test_"), doc[0] if doc else "")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    check = REPORT.checks.get(report.nodeid)
    if check is None:
        return
    if report.when == "call":
        check.seconds = report.duration  # the check itself, not the bench it set up
    if report.skipped:
        check.outcome = "skipped"
        check.message = str(report.longrepr[-1]) if isinstance(report.longrepr, tuple) else ""
    elif report.failed:
        check.outcome = "failed" if report.when == "call" else "error"
        check.message = report.longreprtext


def pytest_runtest_setup(item: pytest.Item) -> None:
    _check_of(item)


def pytest_sessionfinish(session: pytest.Session) -> None:
    if not REPORT.checks:
        return
    out = REPORT.write()
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"commissioning report: {out}")
