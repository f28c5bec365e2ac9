"""Streaming exports of usage (with amounts) and invoices, shared by the API and the CLI.

Every writer is a generator of text chunks fed by a cursor, so a year of per-minute rows
goes out without sitting in memory, whether to an HTTP response or a file.

Two CSV flavours, because accounting software and spreadsheets disagree:

- ``csv``: RFC 4180 (``,``, CRLF), ISO dates, amounts in euros with a point (``12.50``).
- ``csv-fr``: what a French spreadsheet opens without an import dialog: ``;`` separator,
  ``dd/mm/yyyy`` dates in the site's time zone, decimal commas, amounts ``12,50``, and a
  UTF-8 byte order mark so that Excel does not read accents as Windows-1252.

JSON keeps amounts in integer cents (a program should not parse decimal euros).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from ..contract import parse_iso
from ..policies.metering import billable_minutes
from .invoicing import Invoice, Pricer, build_drafts, closed_invoices, is_closed, next_period
from .store import HubStore
from .usage import _DIMS_ALL, _seconds, _shares, _when, columns, usage_rows

if TYPE_CHECKING:
    from ..policies.tariffs import Tariff

FORMATS = ("json", "csv", "csv-fr")
STATUSES = ("draft", "closed")
BOM = "\ufeff"


@dataclass(frozen=True)
class Flavour:
    delimiter: str
    decimal: str
    french: bool


PLAIN = Flavour(delimiter=",", decimal=".", french=False)
FRENCH = Flavour(delimiter=";", decimal=",", french=True)


def flavour(fmt: str) -> Flavour:
    return FRENCH if fmt == "csv-fr" else PLAIN


def euros(cents: int, fl: Flavour) -> str:
    """``1250`` -> ``12.50`` / ``12,50``: exact from integer cents, no float ever."""
    sign = "-" if cents < 0 else ""
    whole, rest = divmod(abs(int(cents)), 100)
    return f"{sign}{whole}{fl.decimal}{rest:02d}"


# Column kinds: how a value is written in each flavour.
MONEY, DATETIME, DAY, NUMBER, FLAG = "money", "datetime", "day", "number", "flag"


def _cell(value: Any, kind: str | None, fl: Flavour, zone: ZoneInfo) -> Any:
    if value is None:
        return ""
    if kind == MONEY:
        return euros(value, fl)
    if kind == FLAG:
        return "1" if value else "0"
    if not fl.french:
        return value  # plain CSV keeps ISO text and Python's number text
    if kind == DATETIME:
        when = parse_iso(value) if isinstance(value, str) else value
        return when.astimezone(zone).strftime("%d/%m/%Y %H:%M:%S")
    if kind == DAY:
        d = date.fromisoformat(value) if isinstance(value, str) else value
        if isinstance(d, datetime):
            d = d.astimezone(zone).date()
        return d.strftime("%d/%m/%Y")
    if kind == NUMBER:
        return str(value).replace(".", ",")
    return value


_CHUNK = 64 * 1024


def _drain(buf: io.StringIO) -> str:
    out = buf.getvalue()
    buf.seek(0)
    buf.truncate()
    return out


def csv_lines(rows: Iterable[Mapping[str, Any]], cols: Sequence[str],
              kinds: Mapping[str, str], fmt: str, tz: str) -> Iterator[str]:
    """Header then one chunk per row; quoting by the csv module in both flavours."""
    fl = flavour(fmt)
    zone = ZoneInfo(tz)
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=fl.delimiter, lineterminator="\r\n")

    def line(values: Iterable[Any]) -> str:
        writer.writerow(list(values))
        out = buf.getvalue()
        buf.seek(0)
        buf.truncate()
        return out

    yield (BOM if fl.french else "") + line(cols)
    # Rows go into the buffer and leave it ~64 KB at a time: one getvalue per chunk, not
    # per row, is most of a per-minute export's cost.
    write = writer.writerow
    for row in rows:
        write([_cell(row.get(c), kinds.get(c), fl, zone) for c in cols])
        if buf.tell() >= _CHUNK:
            yield _drain(buf)
    rest = _drain(buf)
    if rest:
        yield rest


def json_lines(rows: Iterable[Any], key: str = "rows",
               encode: Callable[[Any], Any] = lambda r: r) -> Iterator[str]:
    yield f'{{"{key}": ['
    sep = ""
    for row in rows:
        yield sep + json.dumps(encode(row), ensure_ascii=False, default=str)
        sep = ","
    yield "]}"


# -- usage -----------------------------------------------------------------------------

USAGE_KINDS = {"started_at": DATETIME, "ended_at": DATETIME, "minute_start": DATETIME,
               "day": DAY, "duration_s": NUMBER, "seconds": NUMBER, "amount": MONEY}


def chunked(lines: Iterable[str], size: int = 64 * 1024) -> Iterator[str]:
    """Join small lines into ~64 KB chunks: one socket write per chunk, not per line.

    A per-minute export is millions of short lines; written one by one, the server's
    writes, not the data, were two thirds of the time.
    """
    buf: list[str] = []
    n = 0
    for line in lines:
        buf.append(line)
        n += len(line)
        if n >= size:
            yield "".join(buf)
            buf, n = [], 0
    if buf:
        yield "".join(buf)


def usage_export(store: HubStore, start: datetime, end: datetime, *, granularity: str,
                 group_by: Sequence[str], fmt: str, tz: str, tariffs: Iterable[Tariff],
                 sessions: Callable[[Iterator[dict[str, Any]]], Iterator[dict[str, Any]]]
                 | None = None, filters: Mapping[str, str] | None = None) -> Iterator[str]:
    """Usage rows of sessions started in [start, end), with amounts when the hub has
    tariffs (without any, there is nothing to price and the report keeps its columns).

    ``sessions`` may wrap the session stream (the CLI counts rows for its progress bar).
    """
    tariffs = tuple(tariffs)
    price = None
    if tariffs:
        pricer = Pricer(store, tariffs, tz)

        def price(s: Mapping[str, Any]) -> int:
            return pricer.charge(s).amount

    stream = store.session_rows(start, end, **(filters or {}))
    if sessions is not None:
        stream = sessions(stream)
    if granularity == "minute" and not group_by and fmt != "json":
        yield from _minute_csv(stream, fmt, tz, price)
        return
    rows = usage_rows(stream, granularity, group_by, tz, price=price)
    if fmt == "json":
        yield from json_lines(rows)
    else:
        yield from csv_lines(rows, columns(granularity, group_by, amounts=bool(tariffs)),
                             USAGE_KINDS, fmt, tz)


def _minute_csv(sessions: Iterable[Mapping[str, Any]], fmt: str, tz: str,
                price: Callable[[Mapping[str, Any]], int] | None) -> Iterator[str]:
    """Per-minute usage CSV written line by line from each session's constant part.

    The same bytes as ``csv_lines(usage_rows(..., "minute"))`` (a test holds them equal,
    across a DST change too), at a fraction of the cost: a month is half a million rows
    whose session columns are the same for every minute of a session, so they are quoted
    once per session, and a minute's time is the session's first minute plus k, written
    with integer arithmetic rather than a datetime per row.
    """
    fl = flavour(fmt)
    zone = ZoneInfo(tz)
    d = fl.delimiter
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=d, lineterminator="\r\n")
    writer.writerow(columns("minute", (), amounts=price is not None))
    out: list[str] = [(BOM if fl.french else "") + _drain(buf)]
    size = len(out[0])
    full = _number_text(_seconds(60.0), fl)
    for s in sessions:
        duration = float(s["duration_s"] or 0)
        count = billable_minutes(duration)
        if count == 0:
            continue
        writer.writerow([_cell(s.get(c), None, fl, zone) for c in _DIMS_ALL])
        dims = _drain(buf)[:-2]
        last = _number_text(_seconds(duration - 60 * (count - 1)), fl)
        cents = _shares(price(s), count) if price is not None else None
        money: dict[int, str] = {}
        start = _when(s["started_at"]).astimezone(UTC)
        for k, when in enumerate(_minute_texts(start, count, fl, zone)):
            line = f"{when}{d}{dims}{d}{last if k == count - 1 else full}{d}1"
            if cents is not None:
                c = cents[k]
                text = money.get(c)
                if text is None:
                    text = money[c] = euros(c, fl)
                line = f"{line}{d}{text}"
            line += "\r\n"
            out.append(line)
            size += len(line)
        if size >= _CHUNK:
            yield "".join(out)
            out, size = [], 0
    if out:
        yield "".join(out)


def _number_text(value: float, fl: Flavour) -> str:
    return str(value).replace(".", ",") if fl.french else str(value)


def _minute_texts(start: datetime, count: int, fl: Flavour, zone: ZoneInfo) -> Iterator[str]:
    """The session's minute starts as the CSV writes them (ISO UTC, or local French)."""
    end = start + timedelta(minutes=count - 1)
    if fl.french:
        first, stop = start.astimezone(zone), end.astimezone(zone)
        if first.utcoffset() != stop.utcoffset():  # a DST change inside: the slow way
            for k in range(count):
                t = (start + timedelta(minutes=k)).astimezone(zone)
                yield t.strftime("%d/%m/%Y %H:%M:%S")
            return
        base = first
        suffix = f":{base.second:02d}"
    else:
        base = start
        suffix = f":{base.second:02d}.{base.microsecond // 1000:03d}Z"
    minute_of_day = base.hour * 60 + base.minute
    day = base.date()
    day_text = _day_text(day, fl)
    for k in range(count):
        m = minute_of_day + k
        if m >= 1440:  # past midnight: a new date, counted from it
            day += timedelta(days=m // 1440)
            day_text = _day_text(day, fl)
            minute_of_day -= 1440 * (m // 1440)
            m -= 1440 * (m // 1440)
        h, mm = divmod(m, 60)
        yield (f"{day_text} {h:02d}:{mm:02d}{suffix}" if fl.french
               else f"{day_text}T{h:02d}:{mm:02d}{suffix}")


def _day_text(day: date, fl: Flavour) -> str:
    return f"{day.day:02d}/{day.month:02d}/{day.year:04d}" if fl.french else day.isoformat()


# -- invoices --------------------------------------------------------------------------

DOCUMENT_COLUMNS = ("number", "kind", "status", "period", "issued_at", "payer_kind",
                    "payer_id", "payer_name", "total_ht", "total_vat", "total_ttc", "lines",
                    "late_lines", "unpriced_lines", "hash")
LINE_COLUMNS = ("number", "kind", "status", "period", "issued_at", "payer_kind", "payer_id",
                "payer_name", "machine_id", "project_id", "minutes", "vat_rate",
                "amount_ht", "late", "unpriced", "correction", "sessions", "session_ids")
INVOICE_KINDS = {"issued_at": DAY, "total_ht": MONEY, "total_vat": MONEY,
                 "total_ttc": MONEY, "amount_ht": MONEY, "vat_rate": NUMBER, "late": FLAG,
                 "unpriced": FLAG, "correction": FLAG}


def period_range(first: str, last: str) -> Iterator[str]:
    p = first
    while p <= last:
        yield p
        p = next_period(p)


def invoices(store: HubStore, first: str, last: str, *, status: str | None,
             tariffs: Iterable[Tariff], tz: str) -> Iterator[Invoice]:
    """Closed documents of periods [first, last] (streamed) then the drafts of the open
    ones (built one month at a time); ``status`` keeps only one of the two."""
    tariffs = tuple(tariffs)
    if status in (None, "closed"):
        yield from closed_invoices(store, first, last)
    if status in (None, "draft"):
        for p in period_range(first, last):
            if not is_closed(store, p):
                yield from build_drafts(store, p, tariffs, tz)


def document_row(inv: Invoice, tz: str) -> dict[str, Any]:
    return {"number": inv.number, "kind": inv.kind, "status": inv.status,
            "period": inv.period, "issued_at": _local_day(inv.issued_at, tz),
            "payer_kind": inv.payer_kind, "payer_id": inv.payer_id,
            "payer_name": inv.payer_name, "total_ht": inv.total_ht,
            "total_vat": inv.total_vat, "total_ttc": inv.total_ttc,
            "lines": len(inv.lines), "late_lines": sum(ln.late for ln in inv.lines),
            "unpriced_lines": sum(ln.unpriced for ln in inv.lines), "hash": inv.hash}


def line_rows(inv: Invoice, tz: str) -> Iterator[dict[str, Any]]:
    head = document_row(inv, tz)
    common = {k: head[k] for k in LINE_COLUMNS if k in head}
    for ln in inv.lines:
        yield {**common, "machine_id": ln.machine_id, "project_id": ln.project_id,
               "minutes": ln.minutes, "vat_rate": str(ln.vat_rate),
               "amount_ht": ln.amount_ht, "late": ln.late, "unpriced": ln.unpriced,
               "correction": ln.correction, "sessions": len(ln.sessions),
               "session_ids": " ".join(ln.session_ids)}


def _local_day(value: str | None, tz: str) -> str | None:
    """An issue instant as the site's calendar date: invoices are dated by day."""
    if not value:
        return None
    return parse_iso(value).astimezone(ZoneInfo(tz)).date().isoformat()


def invoices_export(docs: Iterable[Invoice], *, fmt: str, tz: str,
                    detail: str = "documents") -> Iterator[str]:
    """``detail="documents"``: one row per document (a sales journal); ``"lines"``: one row
    per invoice line, whose ``amount_ht`` add up to the sessions' amounts."""
    if fmt == "json":
        yield from json_lines(docs, "invoices", invoice_json)
        return
    if detail == "lines":
        rows: Iterable[dict[str, Any]] = (r for d in docs for r in line_rows(d, tz))
        cols: Sequence[str] = LINE_COLUMNS
    else:
        rows = (document_row(d, tz) for d in docs)
        cols = DOCUMENT_COLUMNS
    yield from csv_lines(rows, cols, INVOICE_KINDS, fmt, tz)


def invoice_json(inv: Invoice) -> dict[str, Any]:
    """A document for JSON readers: amounts in cents, the VAT breakdown as objects."""
    d = inv.to_dict()
    d["vat"] = [{"rate": str(r), "ht": ht, "vat": v} for r, ht, v in inv.vat_breakdown]
    return d
