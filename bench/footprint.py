"""Node footprint: a connected node doing nothing for a minute, seen from /proc.

A Pi runs the node around the clock, mostly waiting for a badge, so what it costs idle
is what it costs. The node is a real ``python -m gateway node`` with mock pins, the
simulated reader polling at 10 Hz, connected to the broker and holding a 5,000-member
snapshot. CPU is ``utime + stime`` over ten-second windows (each window is one "run" of
the table), memory is VmRSS at the end and VmHWM (the peak) over the whole life.
"""

from __future__ import annotations

import time
from pathlib import Path

from bench.common import Bar, Figure, proc_cpu_seconds, proc_status_kb
from bench.site import LiveSite

NAME = "footprint"
NODE = "laser-1"
MEMBERS = 5000


def run(work: Path, quick: bool) -> list[Figure]:
    windows, window_s = (1, 3.0) if quick else (6, 10.0)
    note = (
        f"idle {windows * window_s:.0f} s in {windows} windows, 10 Hz reader polling, "
        f"{MEMBERS}-member snapshot"
    )
    cpu = Figure(NAME, "node CPU while idle", "% of a core", bar=Bar("<", 2.0), note=note)
    rss = Figure(NAME, "node resident memory (VmRSS)", "MB", bar=Bar("<", 60))
    hwm = Figure(NAME, "node peak resident memory (VmHWM)", "MB")
    site = LiveSite(work, NODE, members=MEMBERS)
    try:
        assert site.node is not None
        pid = site.node.pid
        time.sleep(1.0 if quick else 3.0)  # let start-up work (snapshot, journal) settle
        for _ in range(windows):
            c0, t0 = proc_cpu_seconds(pid), time.monotonic()
            time.sleep(window_s)
            c1, t1 = proc_cpu_seconds(pid), time.monotonic()
            cpu.values.append(round(100 * (c1 - c0) / (t1 - t0), 2))
            rss.values.append(round(proc_status_kb(pid, "VmRSS") / 1024, 1))
        hwm.values.append(round(proc_status_kb(pid, "VmHWM") / 1024, 1))
    finally:
        site.close()
    return [cpu, rss, hwm]
