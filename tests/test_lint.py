"""The code stays as ruff wants it: lint clean and formatted (``ruff format`` was applied
once to the whole tree; this keeps it so, on every run of the test command)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TREES = ["gateway", "tests", "bench", "scripts"]


@pytest.mark.parametrize("command", [["check"], ["format", "--check"]], ids=["check", "format"])
def test_ruff(command: list[str]) -> None:
    if importlib.util.find_spec("ruff") is None:
        pytest.skip("ruff is not installed (it is in the dev extra: pip install -e '.[dev]')")
    result = subprocess.run(
        [sys.executable, "-m", "ruff", *command, "--no-cache", *TREES],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode != 0:
        pytest.fail(f"ruff {' '.join(command)}:\n{result.stdout}{result.stderr}", pytrace=False)
