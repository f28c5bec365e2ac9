"""Usage rows for accounting, computed from closed session rows, and CSV output.

Pure functions over an iterable of session dicts (as ``HubStore.session_rows`` yields
them, ordered by start), so the rules can be tested without a database and a year of
sessions can be streamed without sitting in memory.

Memory trade-off of grouping a stream:

- ``session`` granularity with ``group_by``: totals are kept in one dict entry per group
  (a few hundred members or projects at most) and emitted at the end, sorted.
- ``minute`` and ``day`` granularities: buckets are keyed by (time, group). Because the
  input is ordered by start, a bucket older than the current session's start can never
  receive more time, so it is emitted and forgotten: memory holds only the buckets of the
  sessions still "in flight" (a few hours), whatever the report's length. Unordered input
  is refused rather than silently producing split buckets.

Amounts (``price`` given: a session -> cents) follow the minutes: a session's amount is
shared over its minute rows in whole cents (the first rows take the leftover cents), so
minute and day rows add up to the session amounts exactly, never to a rounded float. A
session with no started minute but a start-up fee has no ungrouped minute row to carry
it; grouped rows put it in the bucket of its start.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

from gateway.core.clock import iso, parse_iso
from gateway.policies.metering import local_day, minute_slices

GRANULARITIES = ("session", "minute", "day")
DIMENSIONS = ("member", "project", "machine")

# The columns a dimension contributes to a grouped row.
_DIM_COLUMNS: dict[str, tuple[str, ...]] = {
    "member": ("member_id", "member_name"),
    "project": ("project_id",),
    "machine": ("machine_id",),
}
SESSION_COLUMNS = (
    "session_id",
    "member_id",
    "member_name",
    "project_id",
    "machine_id",
    "started_at",
    "ended_at",
    "duration_s",
    "billable_minutes",
)
_DIMS_ALL = ("session_id", "member_id", "member_name", "project_id", "machine_id")

Price = Callable[[Mapping[str, Any]], int]


def columns(granularity: str, group_by: Sequence[str], amounts: bool = False) -> list[str]:
    """The column order of ``usage_rows(granularity, group_by)``, for CSV headers."""
    cols = _columns(granularity, group_by)
    return [*cols, "amount"] if amounts else cols


def _columns(granularity: str, group_by: Sequence[str]) -> list[str]:
    check(granularity, group_by)
    dims = [c for d in group_by for c in _DIM_COLUMNS[d]]
    if granularity == "session":
        return (
            list(SESSION_COLUMNS)
            if not group_by
            else [*dims, "sessions", "seconds", "billable_minutes"]
        )
    if granularity == "minute" and not group_by:
        return ["minute_start", *_DIMS_ALL, "seconds", "billable_minutes"]
    if granularity == "minute":
        return ["minute_start", *dims, "sessions", "seconds", "billable_minutes"]
    return ["day", *dims, "sessions", "seconds", "billable_minutes"]


def check(granularity: str, group_by: Sequence[str]) -> None:
    if granularity not in GRANULARITIES:
        raise ValueError(
            f"granularity must be one of {', '.join(GRANULARITIES)}, got {granularity!r}"
        )
    for d in group_by:
        if d not in DIMENSIONS:
            raise ValueError(
                f"group_by: unknown dimension {d!r} (expected {', '.join(DIMENSIONS)})"
            )
    if len(set(group_by)) != len(group_by):
        raise ValueError("group_by: a dimension is repeated")


def _when(value: str | datetime) -> datetime:
    return value if isinstance(value, datetime) else parse_iso(value)


def _seconds(x: float) -> float:
    return round(x, 3)


def _group_key(session: Mapping[str, Any], group_by: Sequence[str]) -> tuple[Any, ...]:
    return tuple(session.get(c) for d in group_by for c in _DIM_COLUMNS[d])


def usage_rows(
    sessions: Iterable[Mapping[str, Any]],
    granularity: str = "session",
    group_by: Sequence[str] = (),
    tz: str = "UTC",
    price: Price | None = None,
) -> Iterator[dict[str, Any]]:
    """Rows at the asked granularity, summed per group when ``group_by`` is given.

    ``minute`` rows are the session-relative started minutes of ``minute_slices``, so
    their count is the billed minutes; grouped, they are bucketed by the calendar minute
    each started minute begins in. ``day`` gives each started minute to the local day it
    starts in: a session across midnight is split, and its minutes still add up.
    """
    group_by = tuple(group_by)
    check(granularity, group_by)
    if granularity == "session":
        rows = (
            _per_session(sessions, price)
            if not group_by
            else _session_groups(sessions, group_by, price)
        )
    elif granularity == "minute" and not group_by:
        rows = _per_minute(sessions, price)
    else:
        rows = _bucketed(sessions, granularity, group_by, tz, price)
    return rows


def _shares(amount: int, count: int) -> list[int]:
    """``amount`` cents over ``count`` minutes, whole cents summing exactly to it."""
    base, extra = divmod(amount, count)
    return [base + 1 if k < extra else base for k in range(count)]


def _per_session(
    sessions: Iterable[Mapping[str, Any]], price: Price | None
) -> Iterator[dict[str, Any]]:
    for s in sessions:
        row = {c: s.get(c) for c in SESSION_COLUMNS}
        if price is not None:
            row["amount"] = price(s)
        yield row


def _session_groups(
    sessions: Iterable[Mapping[str, Any]], group_by: tuple[str, ...], price: Price | None
) -> Iterator[dict[str, Any]]:
    totals: dict[tuple[Any, ...], list[float]] = {}
    for s in sessions:
        t = totals.setdefault(_group_key(s, group_by), [0, 0.0, 0, 0])
        t[0] += 1
        t[1] += float(s["duration_s"] or 0)
        t[2] += int(s["billable_minutes"] or 0)
        if price is not None:
            t[3] += price(s)
    names = [c for d in group_by for c in _DIM_COLUMNS[d]]
    for key in sorted(totals, key=_sortable):
        n, secs, minutes, amount = totals[key]
        row = {
            **dict(zip(names, key, strict=True)),
            "sessions": int(n),
            "seconds": _seconds(secs),
            "billable_minutes": int(minutes),
        }
        if price is not None:
            row["amount"] = int(amount)
        yield row


def _per_minute(
    sessions: Iterable[Mapping[str, Any]], price: Price | None
) -> Iterator[dict[str, Any]]:
    for s in sessions:
        dims = {c: s.get(c) for c in _DIMS_ALL}
        slices = minute_slices(_when(s["started_at"]), float(s["duration_s"] or 0))
        if price is None:
            for start, secs in slices:
                yield {
                    "minute_start": iso(start),
                    **dims,
                    "seconds": _seconds(secs),
                    "billable_minutes": 1,
                }
            continue
        minutes = list(slices)  # one session's minutes: hours at most
        for (start, secs), cents in zip(
            minutes, _shares(price(s), len(minutes) or 1), strict=False
        ):
            yield {
                "minute_start": iso(start),
                **dims,
                "seconds": _seconds(secs),
                "billable_minutes": 1,
                "amount": cents,
            }


def _sortable(key: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple((v is None, "" if v is None else v) for v in key)


def _bucketed(
    sessions: Iterable[Mapping[str, Any]],
    granularity: str,
    group_by: tuple[str, ...],
    tz: str,
    price: Price | None,
) -> Iterator[dict[str, Any]]:
    # The label takes the bucket's time: a datetime for minutes, a date for days.
    label: Callable[[Any], str]
    if granularity == "minute":

        def when(t: datetime) -> Hashable:
            return t.astimezone(UTC).replace(second=0, microsecond=0)

        label, time_col = iso, "minute_start"
    else:

        def when(t: datetime) -> Hashable:
            return local_day(t, tz)

        label, time_col = date.isoformat, "day"
    names = [c for d in group_by for c in _DIM_COLUMNS[d]]
    # (time bucket, group) -> [session ids, seconds, started minutes, cents]
    buckets: dict[tuple[Any, tuple[Any, ...]], list[Any]] = {}
    last_start: datetime | None = None

    def flush(before: Any | None) -> Iterator[dict[str, Any]]:
        ready = sorted(
            (k for k in buckets if before is None or k[0] < before),
            key=lambda k: (k[0], _sortable(k[1])),
        )
        for k in ready:
            ids, secs, minutes, cents = buckets.pop(k)
            row = {
                time_col: label(k[0]),
                **dict(zip(names, k[1], strict=True)),
                "sessions": len(ids),
                "seconds": _seconds(secs),
                "billable_minutes": minutes,
            }
            if price is not None:
                row["amount"] = cents
            yield row

    for s in sessions:
        start = _when(s["started_at"])
        if last_start is not None and start < last_start:
            raise ValueError("sessions must be ordered by start to be bucketed as a stream")
        last_start = start
        yield from flush(when(start))
        group = _group_key(s, group_by)
        minutes = list(minute_slices(start, float(s["duration_s"] or 0)))
        shares = _shares(price(s), len(minutes) or 1) if price is not None else []
        if not minutes and shares and shares[0]:
            # A session with no started minute can still cost a start-up fee: it goes to
            # the bucket of its start so the amounts still add up.
            b = buckets.setdefault((when(start), group), [set(), 0.0, 0, 0])
            b[0].add(s.get("session_id"))
            b[3] += shares[0]
        for k, (t, secs) in enumerate(minutes):
            b = buckets.setdefault((when(t), group), [set(), 0.0, 0, 0])
            b[0].add(s.get("session_id"))
            b[1] += secs
            b[2] += 1
            if shares:
                b[3] += shares[k]
    yield from flush(None)


def to_csv(rows: Iterable[Mapping[str, Any]], columns: Sequence[str]) -> Iterator[str]:
    """RFC 4180 CSV (CRLF, quoted when needed), header first, one line per row, so a
    response can stream it; missing values and None become empty fields."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")

    def line(values: Iterable[Any]) -> str:
        writer.writerow(["" if v is None else v for v in values])
        out = buf.getvalue()
        buf.seek(0)
        buf.truncate()
        return out

    yield line(columns)
    for row in rows:
        yield line(row.get(c) for c in columns)
