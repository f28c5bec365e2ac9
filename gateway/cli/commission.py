"""``fabgate commission --rig rig.yaml [--out DIR]``: commission a node on its bench rig.

Runs the hardware-in-the-loop suite (``tests/hil`` of a source checkout) with pytest
against the real rig the file describes, and leaves the commissioning report (JUnit XML,
a summary, the node's and hub's logs) in DIR, default ``commissioning/<node>-<UTC time>/``.

The checks are not shipped in the wheel on purpose: they start a private Mosquitto, a
hub and the node, need pytest, and reuse the test support of the checkout, none of which
belongs on a production node. Commissioning is done from a checkout (``git clone``, then
``python3 scripts/bootstrap.py test --co`` makes its environment); this command only
finds the suite (``--suite``, else the checkout this package runs from, else
``./tests/hil``), checks the rig file first so a mistake is named before anything
starts, and runs it. Its exit status is pytest's: 0 when every check passed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from datetime import UTC, datetime
from importlib.util import find_spec
from pathlib import Path

from gateway.config.rig import load_rig_config

SUITE = Path("tests") / "hil"


def add_arguments(s: argparse.ArgumentParser) -> None:
    s.add_argument(
        "--rig", required=True, type=Path, help="the rig file (see config/rig.example.yaml)"
    )
    s.add_argument(
        "--out",
        type=Path,
        default=None,
        help="directory for the report (default: commissioning/<node>-<UTC time>/)",
    )
    s.add_argument(
        "--suite",
        type=Path,
        default=None,
        help="the checkout's tests/hil folder (default: found from this installation)",
    )


def find_suite(explicit: Path | None, cwd: Path | None = None) -> Path | None:
    """The hil suite folder: ``explicit``, the checkout of this package, or ``cwd``'s."""
    if explicit is not None:
        return explicit.resolve() if (explicit / "conftest.py").exists() else None
    checkout = Path(__file__).resolve().parents[2]  # gateway/cli/commission.py
    for root in (checkout, (cwd or Path.cwd()).resolve()):
        if (root / SUITE / "conftest.py").exists():
            return root / SUITE
    return None


def run(args: argparse.Namespace) -> int:
    rig = load_rig_config(args.rig)  # a ConfigError is printed by main(), exit 2
    suite = find_suite(args.suite)
    if suite is None:
        print(
            "error: fabgate commission runs the hardware-in-the-loop suite (tests/hil) of a "
            "source checkout, which the installed package does not ship; run it from a "
            "checkout or pass --suite CHECKOUT/tests/hil",
            file=sys.stderr,
        )
        return 2
    if find_spec("pytest") is None:
        print(
            "error: fabgate commission needs pytest (the 'dev' extra): "
            "python3 scripts/bootstrap.py test --co installs it in the checkout's .venv",
            file=sys.stderr,
        )
        return 2
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = (args.out or Path("commissioning") / f"{rig.node}-{stamp}").resolve()
    root = suite.parents[1]
    env = dict(
        os.environ,
        FABGATE_RIG=str(args.rig.resolve()),
        FABGATE_COMMISSION_OUT=str(out),
        PYTHONPATH=os.pathsep.join(p for p in (str(root), os.environ.get("PYTHONPATH")) if p),
    )
    print(f"commissioning node {rig.node} on rig {rig.rig}; report in {out}", flush=True)
    code = subprocess.call(
        [sys.executable, "-m", "pytest", str(suite), "-p", "no:cacheprovider", "-v"],
        cwd=root,
        env=env,
    )
    verdict = "passed" if code == 0 else f"FAILED (pytest exit status {code})"
    print(f"commissioning {verdict}; report: {out}")
    return code
