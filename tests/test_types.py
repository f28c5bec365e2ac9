"""The package type-checks: mypy, with the settings in pyproject.toml, on every test run.

Run in a child process with this interpreter, so it checks against the libraries (and
their stubs) the tests themselves use. The cache lives in pytest's cache when there is
one, so a second run only re-checks what changed.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _cache_dir(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    cache = getattr(request.config, "cache", None)  # None under -p no:cacheprovider
    return cache.mkdir("mypy") if cache is not None else tmp_path / "mypy-cache"


def test_the_package_type_checks(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    if importlib.util.find_spec("mypy") is None:
        pytest.skip("mypy is not installed (it is in the dev extra: pip install -e '.[dev]')")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--cache-dir",
            str(_cache_dir(request, tmp_path)),
            "--no-color-output",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if result.returncode != 0:
        pytest.fail(
            f"mypy found type errors (exit {result.returncode}):\n{result.stdout}{result.stderr}",
            pytrace=False,
        )
