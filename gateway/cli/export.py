"""``fabgate export usage|invoices``: the accounting exports, read from the hub database.

Reads the SQLite file directly (WAL lets it run beside a live hub), so an accountant's
export needs neither the web server nor a token. Output is streamed chunk by chunk; a
file is written under a temporary name and renamed at the end, so a half-written export
never looks like a finished one. On a terminal, stderr shows a progress bar counted in
source rows (sessions or documents), computed beforehand with one ``count(*)``.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time as _time
from collections.abc import Iterable, Iterator
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import TextIO, TypeVar
from zoneinfo import ZoneInfo

from gateway.billing.exports import FORMATS, STATUSES, invoices, invoices_export, usage_export
from gateway.billing.invoicing import closed_count, period_of
from gateway.billing.pricing import fingerprint, stored_fingerprint
from gateway.billing.usage import DIMENSIONS, GRANULARITIES, check
from gateway.cli.common import config_option
from gateway.config import load_hub_config
from gateway.core.clock import utcnow
from gateway.core.months import add_months, local_month
from gateway.hub import sessions
from gateway.hub.db import HubStore

T = TypeVar("T")
_MONTH = re.compile(r"^\d{4}-\d{2}$")


def add_arguments(s: argparse.ArgumentParser) -> None:
    s.description = "Export usage (with amounts) or invoices from the hub database."
    s.add_argument("what", choices=("usage", "invoices"))
    config_option(s)
    s.add_argument(
        "--from",
        dest="start",
        help="first day or month (YYYY-MM-DD or YYYY-MM); default: last month",
    )
    s.add_argument(
        "--to",
        dest="end",
        help="day or month after the last one (exclusive); default: one month after --from",
    )
    s.add_argument(
        "--format",
        choices=FORMATS,
        default="csv",
        help="csv (RFC 4180, ISO dates, 12.50), csv-fr (';', dd/mm/yyyy, 12,50) or json (cents)",
    )
    s.add_argument("--output", "-o", help="file to write (default: standard output)")
    s.add_argument(
        "--granularity",
        choices=GRANULARITIES,
        default="session",
        help="usage rows per session, minute or day",
    )
    s.add_argument(
        "--group-by",
        default="",
        help=f"usage: comma-separated dimensions among {', '.join(DIMENSIONS)}",
    )
    s.add_argument("--status", choices=STATUSES, help="invoices: only drafts or closed ones")
    s.add_argument(
        "--detail",
        choices=("documents", "lines"),
        default="documents",
        help="invoices: one row per document or per line",
    )


def _bound(value: str, tz: str, flag: str) -> datetime:
    text = value.strip()
    try:
        day = date.fromisoformat(text + "-01" if _MONTH.match(text) else text)
    except ValueError as exc:
        raise SystemExit(f"error: {flag}: expected YYYY-MM-DD or YYYY-MM, got {value!r}") from exc
    return datetime.combine(day, time(0), ZoneInfo(tz))


def _range(args: argparse.Namespace, tz: str) -> tuple[datetime, datetime]:
    # Without --from: the month that just ended, what an accountant pulls.
    start = _bound(args.start, tz, "--from") if args.start else local_month(utcnow(), tz, -1)[0]
    end = _bound(args.end, tz, "--to") if args.end else add_months(start, 1)
    if end <= start:
        raise SystemExit("error: --to must be after --from")
    return start, end


class Progress:
    """``[#####-----]  50%  500/1000 rows`` on a terminal, redrawn at most 10 times a
    second: drawing every row would cost more than the export."""

    WIDTH = 30

    def __init__(self, total: int | None, stream: TextIO, what: str) -> None:
        self.total = total
        self.stream = stream
        self.what = what
        self.done = 0
        self._last = 0.0

    def wrap(self, items: Iterable[T]) -> Iterator[T]:
        for item in items:
            self.done += 1
            now = _time.monotonic()
            if now - self._last >= 0.1:
                self._last = now
                self.draw()
            yield item
        self.draw()

    def draw(self) -> None:
        if self.total is None:  # drafts are built as they go: no total to show
            self.stream.write(f"\r{self.done} {self.what}")
            self.stream.flush()
            return
        share = min(self.done / self.total, 1.0) if self.total else 1.0
        filled = int(share * self.WIDTH)
        bar = "#" * filled + "-" * (self.WIDTH - filled)
        self.stream.write(f"\r[{bar}] {share:4.0%}  {self.done}/{self.total} {self.what}")
        self.stream.flush()

    def finish(self) -> None:
        self.draw()
        self.stream.write("\n")
        self.stream.flush()


def _count(
    store: HubStore, args: argparse.Namespace, start: datetime, end: datetime, tz: str
) -> int | None:
    if args.what == "usage":
        return sessions.closed_count(store, start, end)
    if args.status != "closed":
        return None
    return closed_count(store, period_of(start, tz), period_of(_last_instant(end), tz))


def _last_instant(end: datetime) -> datetime:
    return end - timedelta(microseconds=1)


def _group_by(args: argparse.Namespace) -> tuple[str, ...]:
    return tuple(d.strip() for d in args.group_by.split(",") if d.strip())


def _chunks(
    store: HubStore,
    args: argparse.Namespace,
    start: datetime,
    end: datetime,
    tz: str,
    progress: Progress | None,
) -> Iterator[str]:
    if args.what == "usage":
        return usage_export(
            store,
            start,
            end,
            granularity=args.granularity,
            group_by=_group_by(args),
            fmt=args.format,
            tz=tz,
            sessions=progress.wrap if progress else None,
        )
    first, last = period_of(start, tz), period_of(_last_instant(end), tz)
    docs = invoices(store, first, last, status=args.status, tz=tz)
    return invoices_export(
        progress.wrap(docs) if progress else docs, fmt=args.format, tz=tz, detail=args.detail
    )


def run(args: argparse.Namespace) -> int:
    cfg = load_hub_config(args.config)
    tz = cfg.timezone
    start, end = _range(args, tz)
    if args.what == "usage":
        try:
            check(args.granularity, _group_by(args))
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    with HubStore(cfg.database) as store:
        if fingerprint(cfg.tariffs) != stored_fingerprint(store):
            # Amounts are the stored prices; the hub installs the config's at its start.
            print(
                "warning: the tariffs in the configuration are not those the sessions "
                "are priced with; restart the hub or run `fabgate reprice` first",
                file=sys.stderr,
            )
        progress = None
        if sys.stderr.isatty():
            what = "sessions" if args.what == "usage" else "documents"
            progress = Progress(_count(store, args, start, end, tz), sys.stderr, what)
        chunks = _chunks(store, args, start, end, tz, progress)
        if args.output:
            _write_file(Path(args.output), chunks)
        else:
            for chunk in chunks:
                sys.stdout.write(chunk)
            sys.stdout.flush()
        if progress:
            progress.finish()
    if args.output:
        print(f"wrote {args.output}", file=sys.stderr)
    return 0


def _write_file(path: Path, chunks: Iterable[str]) -> None:
    directory = path.resolve().parent
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
            for chunk in chunks:
                out.write(chunk)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
