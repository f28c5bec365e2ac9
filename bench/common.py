"""What every benchmark shares: figures with their runs and bars, the machine, /proc.

A benchmark returns :class:`Figure` objects, each holding one value per run, so the
table can show the median and the spread of every figure the same way, and a bar is
judged on the median: one unlucky run on a shared 2-core machine should show up as
spread, not flip the verdict.
"""

from __future__ import annotations

import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.mosquitto import find_mosquitto

CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Bar:
    """A target from the issue: ``op`` is ``<`` (lower is better) or ``>=``."""

    op: str
    limit: float

    def met(self, value: float) -> bool:
        return value < self.limit if self.op == "<" else value >= self.limit

    def __str__(self) -> str:
        return f"{self.op} {self.limit:g}"


@dataclass
class Figure:
    """One line of the table: a measured quantity, one value per run."""

    bench: str
    name: str
    unit: str
    values: list[float] = field(default_factory=list)
    bar: Bar | None = None
    note: str = ""
    available: bool = True

    @property
    def median(self) -> float | None:
        return statistics.median(self.values) if self.values else None

    @property
    def met(self) -> bool | None:
        if self.bar is None or self.median is None:
            return None
        return self.bar.met(self.median)

    def to_dict(self) -> dict[str, Any]:
        return {
            "bench": self.bench,
            "name": self.name,
            "unit": self.unit,
            "values": self.values,
            "median": self.median,
            "min": min(self.values) if self.values else None,
            "max": max(self.values) if self.values else None,
            "runs": len(self.values),
            "bar": str(self.bar) if self.bar else None,
            "met": self.met,
            "available": self.available,
            "note": self.note,
        }


def unavailable(bench: str, name: str, unit: str, why: str, bar: Bar | None = None) -> Figure:
    """A figure we could not measure: shown as such, never replaced by a guess."""
    return Figure(bench, name, unit, [], bar, note=f"not available yet: {why}", available=False)


def percentile(samples: Sequence[float], p: float) -> float:
    """Nearest-rank percentile: with 10,000 samples p99 is the 9,900th, a real sample."""
    if not samples:
        raise ValueError("no samples")
    ordered = sorted(samples)
    rank = max(1, min(len(ordered), int(-(-p * len(ordered) // 100))))
    return ordered[rank - 1]


# -- the machine ---------------------------------------------------------------------


def _first_line(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    text = (out.stdout or out.stderr).strip()
    return text.splitlines()[0] if text else "?"


def machine_info() -> dict[str, str]:
    """Enough to tell whether two tables can be compared."""
    cpu = "?"
    try:
        info: dict[str, str] = {}
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            info.setdefault(key.strip().lower(), value.strip())
        # x86 says "model name"; a Raspberry Pi says "Model" (and "Hardware").
        cpu = info.get("model name") or info.get("model") or info.get("hardware") or "?"
    except OSError:
        pass
    mem_kb = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    except OSError:
        pass
    os_name = platform.platform()
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                os_name = f"{line.split('=', 1)[1].strip(chr(34))} (Linux {platform.release()})"
    except OSError:
        pass
    mosquitto = find_mosquitto()
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "ram": f"{mem_kb / 1024 / 1024:.1f} GiB",
        "python": sys.version.split()[0],
        "os": os_name,
        "sqlite": sqlite3.sqlite_version,
        "mosquitto": _first_line([mosquitto, "-h"]) if mosquitto else "not installed",
    }


# -- processes, from the outside ----------------------------------------------------


def proc_status_kb(pid: int, key: str) -> int:
    """A ``/proc/<pid>/status`` field in kB (VmRSS, VmHWM), 0 once the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from ``/proc/<pid>/stat`` (after the command name,
    which may contain spaces, hence the split on the last parenthesis)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def wait_until(
    predicate: Callable[[], Any], timeout: float, what: str, period: float = 0.02
) -> Any:
    """Every wait in the benchmarks is bounded: a stuck server fails the run loudly."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(period)
