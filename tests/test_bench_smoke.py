"""The benchmark command still runs and still reports; how fast is not a test's business.

Timings depend on the machine and on whatever else it is doing, so this checks only
the shape of the output (the table, the JSON and its fields), never a number.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_quick_tap_benchmark_prints_the_table_and_writes_json(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--only", "tap", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "| benchmark | figure | median |" in out.stdout
    assert "| tap | tap→relay, all taps, p99 |" in out.stdout
    assert "Machine: " in out.stdout

    report = json.loads((tmp_path / "latest.json").read_text(encoding="utf-8"))
    assert report["quick"] is True
    assert report["errors"] == {}
    assert {"cpu", "cores", "ram", "python", "os"} <= report["machine"].keys()
    figures = report["figures"]
    assert figures and {f["bench"] for f in figures} == {"tap"}
    for f in figures:
        assert f["runs"] == len(f["values"]) >= 1
        assert all(isinstance(v, int | float) for v in f["values"])
        assert f["met"] in (True, False, None)
    assert (tmp_path / "latest.md").read_text(encoding="utf-8").count("| tap |") == len(figures)
