"""Hub pages under a year of data: the live board and one member's usage.

The board (``/`` and the fragment it polls every 5 s) is read by wall screens all day,
so it must stay fast however much history the hub holds: it runs here against the
generated year (250,000 sessions, 30 machines, a third of them in use). The usage API
has no member filter, so "one member's year" is asked the only way an accountant can:
the year grouped by member, on the same hub. The same request on a hub that holds only
that member's year shows what the request would cost if the filter were in SQL.
Requests go one after another over keep-alive-less HTTP, as a browser's poll does.
"""

from __future__ import annotations

import shutil
import time
import urllib.request
from pathlib import Path

from .accounting import WHOLE_YEAR, write_hub
from .common import Bar, Figure, percentile
from .site import GatewayProcess, broker, start_hub
from .yeargen import YearShape

NAME = "pages"
FOCUS = "m-9999"


def timed_get(url: str, token: str | None = None) -> float:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    req = urllib.request.Request(url, headers=headers)
    t0 = time.perf_counter()
    with urllib.request.urlopen(req, timeout=60) as resp:
        resp.read()
        if resp.status != 200:
            raise AssertionError(f"{url}: HTTP {resp.status}")
    return (time.perf_counter() - t0) * 1000


def sample(url: str, n: int, token: str | None = None) -> list[float]:
    timed_get(url, token)  # first request: templates compiled, caches warm
    return [timed_get(url, token) for _ in range(n)]


def slow_sample(url: str, n: int, token: str) -> list[float]:
    """Requests of seconds each: no warm-up, each one is a run of the table."""
    return [round(timed_get(url, token), 1) for _ in range(n)]


def run(work: Path, quick: bool) -> list[Figure]:
    shape = YearShape(sessions=20_000) if quick else YearShape()
    rounds, n_board, n_usage = (1, 20, 2) if quick else (3, 40, 3)
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    note = f"{shape.sessions:,} sessions + {FOCUS}'s year; {n_board} requests per run"
    f = {
        "index": Figure(NAME, "GET / (live board), p95", "ms", bar=Bar("<", 100), note=note),
        "fragment": Figure(NAME, "GET /fragments/board, p95", "ms", bar=Bar("<", 100)),
        "usage": Figure(NAME, "usage API, one member's year (year grouped by member)",
                        "ms", bar=Bar("<", 100),
                        note=f"{n_usage} requests, each a run (seconds each: no p95)"),
        "usage_alone": Figure(NAME, "same request, hub holding only that member's year, p95",
                              "ms", note="what a member filter in SQL would cost"),
    }
    query = f"api/v1/usage?from={WHOLE_YEAR[0]}&to={WHOLE_YEAR[1]}&group_by=member"
    mosq = broker(work)
    hubs: list[GatewayProcess] = []
    try:
        config, token, _ = write_hub(work / "year", mosq.url, shape, focus_member=FOCUS)
        hub, url = start_hub(config, work / "hub-year.log")
        hubs.append(hub)
        alone_cfg, alone_token, _ = write_hub(work / "alone", mosq.url,
                                              YearShape(members=0, sessions=0),
                                              focus_member=FOCUS)
        alone, alone_url = start_hub(alone_cfg, work / "hub-alone.log")
        hubs.append(alone)
        f["usage"].values = slow_sample(url + query, n_usage, token)
        for _ in range(rounds):
            f["index"].values.append(round(percentile(sample(url, n_board), 95), 1))
            f["fragment"].values.append(
                round(percentile(sample(url + "fragments/board", n_board), 95), 1))
            f["usage_alone"].values.append(
                round(percentile(sample(alone_url + query, n_board, alone_token), 95), 1))
    finally:
        for h in hubs:
            h.stop()
        mosq.stop()
    return list(f.values())
