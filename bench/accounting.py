"""Accounting at scale: per-minute usage of a month and of a year, and the invoice run.

A generated year (500 members, 30 machines, 250,000 sessions, about 5.4 million
billable minutes) sits in the database of a real hub process, priced beforehand with
the hub's own pricing (``install_tariffs``, the demo's tariffs), as a hub that has been
running all year would have it. The exports are what an accountant's tool does:
``GET /api/v1/usage?granularity=minute&format=csv`` streamed to the end, counting bytes
and rows (the row count must equal the billable minutes of the period, or the figure is
refused). The hub's resident memory is sampled while it streams: a streamed year should
peak where a month does. Beside each export, ``bare_csv.py`` writes the same rows from
the same table with the standard library alone (``sqlite3`` and ``csv``, no HTTP): the
ratio is the export's time over that script's.

The invoice run calls ``gateway.billing.invoicing.build_drafts`` for one month in this
process; while that module is missing or fails, the table says so instead of a number.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import UTC
from pathlib import Path

import yaml

from bench.common import Bar, Figure, proc_status_kb, unavailable
from bench.site import GatewayProcess, broker, start_hub
from bench.yeargen import TZ, YEAR, YearShape, generate, groups, machine_list

NAME = "accounting"
MONTH = (f"{YEAR}-03-01", f"{YEAR}-04-01")
WHOLE_YEAR = (f"{YEAR}-01-01", f"{YEAR + 1}-01-01")


def write_hub(
    work: Path, broker_url: str, shape: YearShape, *, focus_member: str | None = None
) -> tuple[Path, str, dict[str, int]]:
    """A hub configuration around a generated year; returns (config, token, totals)."""
    from gateway.demo.site import write_demo_files

    files = write_demo_files(work / "site", broker_url, 0)
    cfg = yaml.safe_load(files.hub_config.read_text())
    cfg["hub"].pop("seed", None)
    cfg["groups"] = groups()
    cfg["machines"] = machine_list(shape.machines)
    files.hub_config.write_text(yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True))
    totals = generate(files.data / "hub.db", shape, focus_member=focus_member)
    t0 = time.perf_counter()
    price_year(files.hub_config, files.data / "hub.db")
    totals["priced_s"] = round(time.perf_counter() - t0, 1)
    return files.hub_config, files.token, totals


def price_year(config: Path, db: Path) -> None:
    """What the hub does at its start when the tariffs changed: price every session."""
    from gateway.billing.pricing import install_tariffs
    from gateway.config import load_hub_config
    from gateway.hub.db import HubStore

    store = HubStore(db)
    try:
        install_tariffs(store, load_hub_config(config).tariffs, actor="bench")
    finally:
        store.close()


class RssSampler:
    """Peak VmRSS of a process while something runs, sampled every 20 ms."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_kb = max(self.peak_kb, proc_status_kb(self.pid, "VmRSS"))
            self._stop.wait(0.02)

    def __enter__(self) -> RssSampler:
        self.peak_kb = proc_status_kb(self.pid, "VmRSS")
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def stream(url: str, token: str, timeout: float = 300.0) -> tuple[int, int, float]:
    """(bytes, CSV data rows, seconds) for one streamed GET, read to the last byte."""
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    t0 = time.perf_counter()
    size = lines = 0
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        while chunk := resp.read(1 << 20):
            size += len(chunk)
            lines += chunk.count(b"\n")
    return size, lines - 1, time.perf_counter() - t0


def utc_bounds(start: str, end: str) -> tuple[str, str]:
    """The ``started_at`` bounds the API puts on local dates [start, end)."""
    from gateway.web.api import parse_bound

    lo, hi = (parse_bound(x, "bound", TZ).astimezone(UTC) for x in (start, end))
    fmt = "%Y-%m-%dT%H:%M:%S.000Z"
    return lo.strftime(fmt), hi.strftime(fmt)


def expected_minutes(db: Path, start: str, end: str) -> int:
    """Billable minutes of the sessions the API puts in [start, end) (local dates)."""
    con = sqlite3.connect(db)
    try:
        return con.execute(
            "SELECT coalesce(sum(billable_minutes), 0) FROM sessions WHERE status = 'closed' "
            "AND started_at >= ? AND started_at < ?",
            utc_bounds(start, end),
        ).fetchone()[0]
    finally:
        con.close()


def bare_script(db: Path, start: str, end: str) -> dict[str, float]:
    """``bare_csv.py`` in its own process on the same rows: {rows, chars, seconds}."""
    out = subprocess.run(
        [sys.executable, "-m", "bench.bare_csv", str(db), *utc_bounds(start, end)],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
        cwd=Path(__file__).resolve().parent.parent,
    )
    return json.loads(out.stdout)


def invoice_run(db: Path, runs: int) -> Figure:
    name, unit, bar = "monthly invoice run (build_drafts, one month)", "s", None
    try:
        from gateway.billing.invoicing import build_drafts
        from gateway.hub.db import HubStore
    except Exception as exc:  # noqa: BLE001 - whatever stops the import, we report it
        return unavailable(NAME, name, unit, f"cannot import invoicing ({exc})", bar)
    fig = Figure(NAME, name, unit, bar=bar)
    try:
        for _ in range(runs):
            store = HubStore(db)
            try:
                t0 = time.perf_counter()
                drafts = build_drafts(store, MONTH[0][:7], TZ)
                fig.values.append(round(time.perf_counter() - t0, 3))
            finally:
                store.close()
        fig.note = f"{len(drafts)} draft documents, stored prices (the demo's tariffs)"
    except Exception as exc:  # noqa: BLE001 - an unfinished module: say so, keep going
        return unavailable(
            NAME, name, unit, f"build_drafts failed: {type(exc).__name__}: {exc}", bar
        )
    return fig


def run(work: Path, quick: bool) -> list[Figure]:
    shape = YearShape(sessions=20_000) if quick else YearShape()
    month_runs, year_runs = (1, 1) if quick else (3, 1)
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    mosq = broker(work)
    hub: GatewayProcess | None = None
    t0 = time.perf_counter()
    config, token, totals = write_hub(work, mosq.url, shape)
    gen_s = time.perf_counter() - t0
    db = config.parent / "hub.db"
    note = (
        f"{shape.members} members, {shape.machines} machines, {totals['sessions']:,} "
        f"sessions, {totals['minutes']:,} billable minutes (generated and priced in "
        f"{gen_s:.1f} s, of which pricing {totals['priced_s']:.1f} s)"
    )
    f = {
        "month_s": Figure(
            NAME, "per-minute CSV export, one month", "s", bar=Bar("<", 1.0), note=note
        ),
        "month_rows": Figure(NAME, "rows in the month's export", "rows"),
        "month_mb": Figure(NAME, "bytes in the month's export", "MB"),
        "year_s": Figure(NAME, "per-minute CSV export, the year", "s", bar=Bar("<", 5.0)),
        "year_rows": Figure(NAME, "rows in the year's export", "rows"),
        "year_rate": Figure(NAME, "export rate (year)", "rows/s"),
        "rss_idle": Figure(NAME, "hub RSS before exporting", "MB"),
        "rss_month": Figure(NAME, "hub peak RSS while streaming a month", "MB"),
        "rss_year": Figure(NAME, "hub peak RSS while streaming the year", "MB"),
        "flat": Figure(
            NAME, "memory flat: year peak RSS / month peak RSS", "×", bar=Bar("<", 1.10)
        ),
        "bare_month_s": Figure(
            NAME, "bare stdlib script (sqlite3 + csv, no HTTP), same rows, one month", "s"
        ),
        "bare_year_s": Figure(NAME, "bare stdlib script, same rows, the year", "s"),
        "ratio_month": Figure(NAME, "export / bare script, one month", "×"),
        "ratio_year": Figure(NAME, "export / bare script, the year", "×"),
    }
    try:
        hub, url = start_hub(config, work / "hub.log")
        f["rss_idle"].values.append(round(proc_status_kb(hub.pid, "VmRSS") / 1024, 1))
        for key, (start, end), runs in (
            ("month", MONTH, month_runs),
            ("year", WHOLE_YEAR, year_runs),
        ):
            want = expected_minutes(db, start, end)
            for _ in range(runs):
                with RssSampler(hub.pid) as rss:
                    size, rows, secs = stream(
                        f"{url}api/v1/usage?from={start}&to={end}&granularity=minute&format=csv",
                        token,
                    )
                if rows != want:
                    raise AssertionError(f"{key} export has {rows} rows, expected {want}")
                bare = bare_script(db, start, end)
                if bare["rows"] != rows or bare["chars"] != size:
                    raise AssertionError(
                        f"{key}: the bare script wrote {bare}, the export "
                        f"{rows} rows and {size} bytes"
                    )
                f[f"bare_{key}_s"].values.append(bare["seconds"])
                f[f"ratio_{key}"].values.append(round(secs / bare["seconds"], 3))
                f[f"{key}_s"].values.append(round(secs, 3))
                f[f"rss_{key}"].values.append(round(rss.peak_kb / 1024, 1))
                if key == "month":
                    f["month_rows"].values.append(rows)
                    f["month_mb"].values.append(round(size / 1e6, 1))
                else:
                    f["year_rows"].values.append(rows)
                    f["year_rate"].values.append(round(rows / secs))
        f["flat"].values.append(round(max(f["rss_year"].values) / max(f["rss_month"].values), 3))
    finally:
        if hub:
            hub.stop()
        mosq.stop()
    return [*f.values(), invoice_run(db, 1 if quick else 3)]
