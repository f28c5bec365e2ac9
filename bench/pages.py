"""Hub pages under a year of data: the live board and one member's usage.

The board (``/`` and the fragment it polls every 5 s) is read by wall screens all day,
so it must stay fast however much history the hub holds: it runs here against the
generated year (250,000 sessions, 30 machines, a third of them in use). "One member's
year" is the usage API with ``member=`` (filtered in SQL on an index), as a member page
or an accountant asks it. Requests go one after another over keep-alive-less HTTP, as a
browser's poll does.
"""

from __future__ import annotations

import shutil
import time
import urllib.request
from pathlib import Path

from bench.accounting import WHOLE_YEAR, write_hub
from bench.common import Bar, Figure, percentile
from bench.site import GatewayProcess, broker, start_hub
from bench.yeargen import YearShape

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


def run(work: Path, quick: bool) -> list[Figure]:
    shape = YearShape(sessions=20_000) if quick else YearShape()
    rounds, n_board = (1, 20) if quick else (3, 40)
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    note = f"{shape.sessions:,} sessions + {FOCUS}'s year; {n_board} requests per run"
    f = {
        "index": Figure(NAME, "GET / (live board), p95", "ms", bar=Bar("<", 100), note=note),
        "fragment": Figure(NAME, "GET /fragments/board, p95", "ms", bar=Bar("<", 100)),
        "usage": Figure(
            NAME, "usage API, one member's year (member=...), p95", "ms", bar=Bar("<", 100)
        ),
    }
    query = f"api/v1/usage?from={WHOLE_YEAR[0]}&to={WHOLE_YEAR[1]}&member={FOCUS}&group_by=member"
    mosq = broker(work)
    hubs: list[GatewayProcess] = []
    try:
        config, token, _ = write_hub(work / "year", mosq.url, shape, focus_member=FOCUS)
        hub, url = start_hub(config, work / "hub-year.log")
        hubs.append(hub)
        for _ in range(rounds):
            f["index"].values.append(round(percentile(sample(url, n_board), 95), 1))
            f["fragment"].values.append(
                round(percentile(sample(url + "fragments/board", n_board), 95), 1)
            )
            f["usage"].values.append(round(percentile(sample(url + query, n_board, token), 95), 1))
    finally:
        for h in hubs:
            h.stop()
        mosq.stop()
    return list(f.values())
