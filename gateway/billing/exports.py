"""Streaming exports of usage (with amounts) and invoices, shared by the API and the CLI.

Every writer is a generator of text chunks fed by a cursor, so a year of per-minute rows
goes out without sitting in memory, whether to an HTTP response or a file.

Two CSV flavours, because accounting software and spreadsheets disagree:

- ``csv``: RFC 4180 (``,``, CRLF), ISO dates, amounts in euros with a point (``12.50``).
- ``csv-fr``: what a French spreadsheet opens without an import dialog: ``;`` separator,
  ``dd/mm/yyyy`` dates in the site's time zone, decimal commas, amounts ``12,50``, a
  UTF-8 byte order mark so that Excel does not read accents as Windows-1252, French
  column names (``Membre``, ``Début``, ``Durée (min)``, :data:`FRENCH_HEADERS`), and
  durations in minutes with two decimals (``12,50`` for 12 min 30 s) where the plain
  flavour has seconds: what a French accountant adds up, and exact to the 0.6 second.

JSON keeps amounts in integer cents (a program should not parse decimal euros).

Amounts are the prices stored with the sessions (``gateway.billing.pricing``): an export
evaluates no tariff, so it says what the invoices, balances and activity report say.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from gateway.billing.invoicing import Invoice, build_drafts, closed_invoices, is_closed, next_period
from gateway.billing.money import amount_text
from gateway.billing.pricing import has_tariffs
from gateway.billing.usage import _seconds, _when, columns, usage_rows
from gateway.core.clock import iso, parse_iso
from gateway.hub.db import HubStore
from gateway.hub.sessions import session_rows
from gateway.policies.metering import billable_minutes

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


# Column kinds: how a value is written in each flavour.
MONEY, DATETIME, DAY, NUMBER, FLAG = "money", "datetime", "day", "number", "flag"
# Seconds in the plain flavour, minutes with two decimals in the French one.
DURATION = "duration"

# The French flavour's column names (docs/billing.md); a column not named here keeps
# its key. Durations are minutes there (see DURATION), so their name says so.
FRENCH_HEADERS = {
    "session_id": "Session",
    "member_id": "N° membre",
    "member_name": "Membre",
    "project_id": "Projet",
    "machine_id": "Machine",
    "started_at": "Début",
    "ended_at": "Fin",
    "duration_s": "Durée (min)",
    "seconds": "Durée (min)",
    "billable_minutes": "Minutes facturées",
    "sessions": "Sessions",
    "minute_start": "Minute",
    "day": "Jour",
    "amount": "Montant (€)",
    "number": "Numéro",
    "kind": "Type",
    "status": "Statut",
    "period": "Mois",
    "issued_at": "Date d'émission",
    "payer_kind": "Type de payeur",
    "payer_id": "N° payeur",
    "payer_name": "Payeur",
    "total_ht": "Total HT (€)",
    "total_vat": "TVA (€)",
    "total_ttc": "Total TTC (€)",
    "lines": "Lignes",
    "late_lines": "Lignes tardives",
    "unpriced_lines": "Lignes sans tarif",
    "hash": "Empreinte SHA-256",
    "minutes": "Minutes",
    "vat_rate": "Taux de TVA (%)",
    "amount_ht": "Montant HT (€)",
    "late": "Tardive",
    "unpriced": "Sans tarif",
    "correction": "Correction",
    "session_ids": "Identifiants des sessions",
    "journal": "Journal",
    "date": "Date",
    "piece": "Pièce",
    "account": "Compte",
    "auxiliary": "Compte auxiliaire",
    "label": "Libellé",
    "debit": "Débit (€)",
    "credit": "Crédit (€)",
}


def header(cols: Iterable[str], fl: Flavour) -> list[str]:
    """The header row: the keys (plain) or their French names (``csv-fr``)."""
    return [FRENCH_HEADERS.get(c, c) for c in cols] if fl.french else list(cols)


def minutes_text(seconds: float) -> str:
    """``750`` seconds -> ``12,50`` (minutes, two decimals, decimal comma)."""
    return f"{seconds / 60:.2f}".replace(".", ",")


def _cell(value: Any, kind: str | None, fl: Flavour, zone: ZoneInfo) -> Any:
    if value is None:
        return ""
    if kind == MONEY:
        return amount_text(value, fl.decimal)
    if kind == FLAG:
        return "1" if value else "0"
    if not fl.french:
        return value  # plain CSV keeps ISO text and Python's number text
    if kind == DURATION:
        return minutes_text(float(value))
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


def csv_lines(
    rows: Iterable[Mapping[str, Any]],
    cols: Sequence[str],
    kinds: Mapping[str, str],
    fmt: str,
    tz: str,
) -> Iterator[str]:
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

    yield (BOM if fl.french else "") + line(header(cols, fl))
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


def json_lines(
    rows: Iterable[Any], key: str = "rows", encode: Callable[[Any], Any] = lambda r: r
) -> Iterator[str]:
    yield f'{{"{key}": ['
    sep = ""
    for row in rows:
        yield sep + json.dumps(encode(row), ensure_ascii=False, default=str)
        sep = ","
    yield "]}"


# -- usage -----------------------------------------------------------------------------

USAGE_KINDS = {
    "started_at": DATETIME,
    "ended_at": DATETIME,
    "minute_start": DATETIME,
    "day": DAY,
    "duration_s": DURATION,
    "seconds": DURATION,
    "amount": MONEY,
}


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


def _stored_amount(s: Mapping[str, Any]) -> int:
    return int(s.get("amount_cents") or 0)  # unpriced: 0, as on the invoice line


def usage_export(
    store: HubStore,
    start: datetime,
    end: datetime,
    *,
    granularity: str,
    group_by: Sequence[str],
    fmt: str,
    tz: str,
    sessions: Callable[[Iterator[Any]], Iterator[Any]] | None = None,
    filters: Mapping[str, str] | None = None,
) -> Iterator[str]:
    """Usage rows of sessions started in [start, end), with the stored amounts when the
    hub has tariffs (without any, there is nothing priced and the report keeps its
    columns).

    ``sessions`` may wrap the session stream (the CLI counts rows for its progress bar).
    """
    amounts = has_tariffs(store)
    if granularity == "minute" and not group_by and fmt != "json":
        rows: Iterator[Any] = _minute_source(store, start, end, filters or {})
        if sessions is not None:
            rows = sessions(rows)
        yield from _minute_lines(rows, fmt, tz, amounts)
        return
    stream = session_rows(store, start, end, **(filters or {}))
    if sessions is not None:
        stream = sessions(stream)
    price = _stored_amount if amounts else None
    rows = usage_rows(stream, granularity, group_by, tz, price=price)
    if fmt == "json":
        yield from json_lines(rows)
    else:
        yield from csv_lines(
            rows, columns(granularity, group_by, amounts=amounts), USAGE_KINDS, fmt, tz
        )


# -- the per-minute CSV ----------------------------------------------------------------
#
# Millions of rows, so the work is per session, not per row: a session's rows differ only
# in their minute's "HH:MM" (taken from a table of the 1,440 of a day), in the seconds of
# the last minute and in the cent shares of the amount (two values at most). A run of
# rows sharing everything but the minute is one str.join over a slice of that table.

# Columns of the lean query and of the tuples ``_minute_lines`` takes, in this order.
_MINUTE_SQL = (
    "SELECT s.session_id, s.member_id, mb.name, s.project_id, s.machine_id, "
    "s.started_at, s.duration_s, s.amount_cents FROM sessions s "
    "LEFT JOIN members mb ON mb.id = s.member_id "
)
_FILTERS = (("member", "s.member_id"), ("project", "s.project_id"), ("machine", "s.machine_id"))
_HHMM = tuple(f"{h:02d}:{m:02d}" for h in range(24) for m in range(60))
_STORED_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
_DAY = 1440
_CACHE = 2048  # entries per text cache of the per-minute CSV


def _minute_source(
    store: HubStore, start: datetime, end: datetime, filters: Mapping[str, str]
) -> Iterator[tuple[Any, ...]]:
    """The closed sessions of the range as plain tuples: a dict per session (and a join
    on projects and machines the CSV does not show) was a third of a year's export."""
    clauses = ["s.status = 'closed'", "s.started_at >= ?", "s.started_at < ?"]
    args: list[Any] = [iso(start), iso(end)]
    for key, column in _FILTERS:
        if filters.get(key) is not None:
            clauses.append(f"{column} = ?")
            args.append(filters[key])
    cur = store.conn.cursor()
    cur.row_factory = None
    try:
        cur.execute(
            f"{_MINUTE_SQL}WHERE {' AND '.join(clauses)} ORDER BY s.started_at, s.session_id", args
        )
        yield from cur
    finally:
        cur.close()


def _minute_csv(
    sessions: Iterable[Mapping[str, Any]],
    fmt: str,
    tz: str,
    price: Callable[[Mapping[str, Any]], int] | None,
) -> Iterator[str]:
    """Per-minute usage CSV of session mappings, the same bytes as
    ``csv_lines(usage_rows(..., "minute"))`` (a test holds them equal, across a DST
    change and midnight)."""
    rows = (
        (
            s.get("session_id"),
            s.get("member_id"),
            s.get("member_name"),
            s.get("project_id"),
            s.get("machine_id"),
            s["started_at"],
            s["duration_s"],
            price(s) if price is not None else None,
        )
        for s in sessions
    )
    return _minute_lines(rows, fmt, tz, price is not None)


def _minute_lines(rows: Iterable[Sequence[Any]], fmt: str, tz: str, amounts: bool) -> Iterator[str]:
    """The per-minute CSV of ``_MINUTE_SQL`` tuples, in chunks of about ``_CHUNK``."""
    fl = flavour(fmt)
    zone = ZoneInfo(tz)
    d = fl.delimiter
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=d, lineterminator="\r\n")

    def quoted(values: list[Any]) -> str:
        writer.writerow(["" if v is None else v for v in values])
        return _drain(buf)[:-2]

    out: list[str] = [
        (BOM if fl.french else "")
        + quoted(header(columns("minute", (), amounts=amounts), fl))
        + "\r\n"
    ]
    size = len(out[0])
    needs_quotes = re.compile(f'[{re.escape(d)}"\r\n]').search
    full = f"{d}{minutes_text(60.0) if fl.french else _number_text(_seconds(60.0), fl)}{d}1"
    # Quoted once: (member, name, project) and machine texts, money texts. Bounded, so a
    # year streams in the memory of a month whatever the catalogue.
    people: dict[tuple[Any, ...], str] = {}
    machines: dict[Any, str] = {}
    money: dict[int, str] = {}
    hhmm = _HHMM
    french = fl.french
    number: Callable[[float], str] = _comma if french else str
    for sid, member, name, project, machine, started, duration, amount in rows:
        duration = float(duration or 0)
        count = billable_minutes(duration)
        if count == 0:
            continue
        who = (member, name, project)
        person = people.get(who)
        if person is None:
            if len(people) >= _CACHE:
                people.clear()
            person = people[who] = quoted(list(who))
        where = machines.get(machine)
        if where is None:
            if len(machines) >= _CACHE:
                machines.clear()
            # Two fields: the csv module writes a lone empty field as "" (quoted).
            where = machines[machine] = quoted([machine, ""])[:-1]
        if type(sid) is str and not needs_quotes(sid):
            dims = f"{d}{sid}{d}{person}{d}{where}"
        else:
            dims = d + quoted([sid, *who, machine])
        rest = round(duration - 60 * (count - 1), 3)  # as _seconds
        last = f"{d}{minutes_text(rest) if french else number(rest)}{d}1"
        extra = 0
        lo = hi = ""
        if amounts:
            base, extra = divmod(int(amount or 0), count)
            if len(money) >= _CACHE:
                money.clear()
            lo = money.get(base) or money.setdefault(base, d + amount_text(base, fl.decimal))
            if extra:
                hi = money.get(base + 1) or money.setdefault(
                    base + 1, d + amount_text(base + 1, fl.decimal)
                )
        text = (
            started
            if type(started) is str and _STORED_TIME.fullmatch(started)
            else iso(_when(started))
        )
        if french:
            utc = parse_iso(text)
            first = utc.astimezone(zone)
            if (
                first.utcoffset()
                != (utc + timedelta(minutes=count - 1)).astimezone(zone).utcoffset()
            ):  # a DST change inside: the slow way
                block = _minute_block_slow(utc, count, zone, dims, full, last, lo, hi, extra)
                out.append(block)
                size += len(block)
                if size >= _CHUNK:
                    yield "".join(out)
                    out, size = [], 0
                continue
            day = f"{first.day:02d}/{first.month:02d}/{first.year:04d} "
            m0 = first.hour * 60 + first.minute
            suffix = f":{first.second:02d}{dims}"
        else:
            day = text[:11]  # "2025-03-01T"
            m0 = int(text[11:13]) * 60 + int(text[14:16])
            suffix = f"{text[16:]}{dims}"
        end = f"{suffix}{last}{lo}\r\n"
        if m0 + count > _DAY:  # past midnight: runs cut at each new day
            block = _across_days(
                day, m0, count, extra, f"{suffix}{full}{hi}\r\n", f"{suffix}{full}{lo}\r\n", end, fl
            )
        elif count == 1:
            block = f"{day}{hhmm[m0]}{end}"
        else:
            # Rows 0 .. count-2 are whole minutes (the first ``extra`` a cent dearer), the
            # last one is the rest: at most three runs, each one join over "HH:MM" texts.
            lo_tail = f"{suffix}{full}{lo}\r\n"
            if extra:
                hi_tail = f"{suffix}{full}{hi}\r\n"
                block = f"{day}{(hi_tail + day).join(hhmm[m0 : m0 + extra])}{hi_tail}"
                if extra < count - 1:
                    block += (
                        f"{day}{(lo_tail + day).join(hhmm[m0 + extra : m0 + count - 1])}{lo_tail}"
                    )
            else:
                block = f"{day}{(lo_tail + day).join(hhmm[m0 : m0 + count - 1])}{lo_tail}"
            block = f"{block}{day}{hhmm[m0 + count - 1]}{end}"
        out.append(block)
        size += len(block)
        if size >= _CHUNK:
            yield "".join(out)
            out, size = [], 0
    if out:
        yield "".join(out)


def _across_days(
    day: str, m0: int, count: int, extra: int, hi_tail: str, lo_tail: str, end: str, fl: Flavour
) -> str:
    """The rows of a session that runs past midnight: runs cut at the cent change, the
    last minute and each new day."""
    cuts = {0, count - 1, count}
    if extra:
        cuts.add(extra)
    crossing = _DAY - m0
    while crossing < count:
        cuts.add(crossing)
        crossing += _DAY
    edges = sorted(cuts)
    parts = []
    for k0, k1 in zip(edges, edges[1:], strict=False):
        tail = end if k0 == count - 1 else hi_tail if k0 < extra else lo_tail
        nth, a = divmod(m0 + k0, _DAY)
        prefix = _later_day(day, nth, fl) if nth else day
        parts.append(f"{prefix}{(tail + prefix).join(_HHMM[a : a + k1 - k0])}{tail}")
    return "".join(parts)


def _later_day(prefix: str, days: int, fl: Flavour) -> str:
    """The minute-time prefix ``days`` later (``2025-03-01T`` or ``01/03/2025 ``)."""
    if fl.french:
        day = date(int(prefix[6:10]), int(prefix[3:5]), int(prefix[:2]))
        later = day + timedelta(days=days)
        return f"{later.day:02d}/{later.month:02d}/{later.year:04d} "
    return (date.fromisoformat(prefix[:10]) + timedelta(days=days)).isoformat() + "T"


def _minute_block_slow(
    start: datetime,
    count: int,
    zone: ZoneInfo,
    dims: str,
    full: str,
    last: str,
    lo: str,
    hi: str,
    extra: int,
) -> str:
    """A session across a DST change, local times: one datetime per minute (rare)."""
    lines = []
    for k in range(count):
        t = (start + timedelta(minutes=k)).astimezone(zone)
        secs = last if k == count - 1 else full
        lines.append(f"{t.strftime('%d/%m/%Y %H:%M:%S')}{dims}{secs}{hi if k < extra else lo}\r\n")
    return "".join(lines)


def _comma(value: float) -> str:
    return str(value).replace(".", ",")


def _number_text(value: float, fl: Flavour) -> str:
    return str(value).replace(".", ",") if fl.french else str(value)


# -- invoices --------------------------------------------------------------------------

DOCUMENT_COLUMNS = (
    "number",
    "kind",
    "status",
    "period",
    "issued_at",
    "payer_kind",
    "payer_id",
    "payer_name",
    "total_ht",
    "total_vat",
    "total_ttc",
    "lines",
    "late_lines",
    "unpriced_lines",
    "hash",
)
LINE_COLUMNS = (
    "number",
    "kind",
    "status",
    "period",
    "issued_at",
    "payer_kind",
    "payer_id",
    "payer_name",
    "machine_id",
    "project_id",
    "minutes",
    "vat_rate",
    "amount_ht",
    "late",
    "unpriced",
    "correction",
    "sessions",
    "session_ids",
)
INVOICE_KINDS = {
    "issued_at": DAY,
    "total_ht": MONEY,
    "total_vat": MONEY,
    "total_ttc": MONEY,
    "amount_ht": MONEY,
    "vat_rate": NUMBER,
    "late": FLAG,
    "unpriced": FLAG,
    "correction": FLAG,
}


def period_range(first: str, last: str) -> Iterator[str]:
    p = first
    while p <= last:
        yield p
        p = next_period(p)


def invoices(
    store: HubStore, first: str, last: str, *, status: str | None, tz: str
) -> Iterator[Invoice]:
    """Closed documents of periods [first, last] (streamed) then the drafts of the open
    ones (built one month at a time); ``status`` keeps only one of the two."""
    if status in (None, "closed"):
        yield from closed_invoices(store, first, last)
    if status in (None, "draft"):
        for p in period_range(first, last):
            if not is_closed(store, p):
                yield from build_drafts(store, p, tz)


def document_row(inv: Invoice, tz: str) -> dict[str, Any]:
    return {
        "number": inv.number,
        "kind": inv.kind,
        "status": inv.status,
        "period": inv.period,
        "issued_at": _local_day(inv.issued_at, tz),
        "payer_kind": inv.payer_kind,
        "payer_id": inv.payer_id,
        "payer_name": inv.payer_name,
        "total_ht": inv.total_ht,
        "total_vat": inv.total_vat,
        "total_ttc": inv.total_ttc,
        "lines": len(inv.lines),
        "late_lines": sum(ln.late for ln in inv.lines),
        "unpriced_lines": sum(ln.unpriced for ln in inv.lines),
        "hash": inv.hash,
    }


def line_rows(inv: Invoice, tz: str) -> Iterator[dict[str, Any]]:
    head = document_row(inv, tz)
    common = {k: head[k] for k in LINE_COLUMNS if k in head}
    for ln in inv.lines:
        yield {
            **common,
            "machine_id": ln.machine_id,
            "project_id": ln.project_id,
            "minutes": ln.minutes,
            "vat_rate": str(ln.vat_rate),
            "amount_ht": ln.amount_ht,
            "late": ln.late,
            "unpriced": ln.unpriced,
            "correction": ln.correction,
            "sessions": len(ln.sessions),
            "session_ids": " ".join(ln.session_ids),
        }


def _local_day(value: str | None, tz: str) -> str | None:
    """An issue instant as the site's calendar date: invoices are dated by day."""
    if not value:
        return None
    return parse_iso(value).astimezone(ZoneInfo(tz)).date().isoformat()


def invoices_export(
    docs: Iterable[Invoice], *, fmt: str, tz: str, detail: str = "documents"
) -> Iterator[str]:
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
