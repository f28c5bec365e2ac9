"""``/api/v1`` billing endpoints: invoices (drafts and closed), closing a period, the chain.

Behind the same bearer tokens as the rest of the API: the check is imported from
``api`` so there is one place that decides who may read money. Listings are streamed,
like usage reports, from a store the response body opens and closes itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from flask import Blueprint, Response, jsonify, request

from gateway.billing.documents import close_month
from gateway.billing.exports import (
    FORMATS,
    STATUSES,
    chunked,
    invoice_json,
    invoices,
    invoices_export,
)
from gateway.billing.invoicing import (
    chain_head,
    invoice_by_number,
    is_closed,
    parse_period,
    verify_chain,
)
from gateway.core.clock import utcnow
from gateway.core.months import local_month, month_text
from gateway.web.api import BadParameter, _bad_parameter, _require_token
from gateway.web.auth import public
from gateway.web.bearer import scope
from gateway.web.context import get_store, hub_config, store_opener

billing = Blueprint("billing", __name__, url_prefix="/api/v1")
billing.before_request(_require_token)
billing.register_error_handler(BadParameter, _bad_parameter)

DETAILS = ("documents", "lines")


def _period(name: str, value: str) -> str:
    try:
        parse_period(value)
    except ValueError as exc:
        raise BadParameter(name, str(exc)) from exc
    return value


def last_month(now: datetime, tz: str) -> str:
    """The month an accountant pulls by default: the one that just ended."""
    return month_text(local_month(now, tz, -1)[0])


def _choice(name: str, allowed: tuple[str, ...], default: str | None) -> str | None:
    value = request.args.get(name) or default
    if value is not None and value not in allowed:
        raise BadParameter(name, f"expected one of {', '.join(allowed)}, got {value!r}")
    return value


@billing.get("/invoices")
@public
@scope("invoices")
def list_invoices() -> Response:
    """``period`` (default: last month) or ``from``/``to`` months; ``status`` draft or
    closed (default both); ``format`` json, csv or csv-fr; ``detail`` documents or lines."""
    tz = hub_config().timezone
    if request.args.get("period"):
        first = last = _period("period", request.args["period"])
    else:
        default = last_month(utcnow(), tz)
        first = _period("from", request.args.get("from") or default)
        last = _period("to", request.args.get("to") or first)
    if last < first:
        raise BadParameter("to", "must not be before 'from'")
    status = _choice("status", STATUSES, None)
    fmt = _choice("format", FORMATS, "json") or "json"
    detail = _choice("detail", DETAILS, "documents") or "documents"
    opener = store_opener()

    def body() -> Iterator[str]:
        store = opener()
        try:
            docs = invoices(store, first, last, status=status, tz=tz)
            yield from chunked(invoices_export(docs, fmt=fmt, tz=tz, detail=detail))
        finally:
            store.close()

    if fmt == "json":
        return Response(body(), mimetype="application/json")
    span = first if first == last else f"{first}_{last}"
    suffix = "-fr" if fmt == "csv-fr" else ""
    name = f"invoices-{span}{'-lines' if detail == 'lines' else ''}{suffix}.csv"
    return Response(
        body(),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@billing.get("/invoices/<number>")
@public
@scope("invoices")
def one_invoice(number: str) -> tuple[Response, int] | Response:
    doc = invoice_by_number(get_store(), number)
    if doc is None:
        return jsonify(error=f"no closed document numbered {number!r}"), 404
    return jsonify(invoice=invoice_json(doc))


@billing.post("/periods/<period>/close")
@public
@scope("invoices")
def close(period: str) -> tuple[Response, int] | Response:
    """Close a month: ``{"by": "who"}``. Repeating it returns the same documents. The
    documents' parties are frozen and the closing audited, as from the web page."""
    _period("period", period)
    payload = request.get_json(silent=True) or {}
    by = payload.get("by") if isinstance(payload, dict) else None
    if not isinstance(by, str) or not by.strip():
        raise BadParameter("by", 'say who closes the period: a JSON body {"by": "name"}')
    cfg = hub_config()
    now = utcnow()
    if period > last_month(now, cfg.timezone) and not is_closed(get_store(), period):
        # A month still running would freeze sessions that have not happened yet.
        raise BadParameter("period", f"{period} has not ended yet")
    try:
        docs = close_month(
            get_store(),
            period,
            by=by.strip(),
            at=now,
            tz=cfg.timezone,
            invoicing=cfg.invoicing,
        )
    except ValueError as exc:
        return jsonify(error=str(exc)), 409
    return jsonify(
        period=period,
        status="closed",
        documents=[
            {"number": d.number, "kind": d.kind, "payer_id": d.payer_id, "total_ttc": d.total_ttc}
            for d in docs
        ],
    )


@billing.get("/chain")
@public
@scope("invoices")
def chain() -> Response:
    """The hash chain check, and its head: keep the head elsewhere to detect a rewrite
    of the last document together with its hash."""
    store = get_store()
    problems = verify_chain(store)
    head = chain_head(store)
    return jsonify(
        intact=not problems,
        problems=problems,
        head={"number": head[0], "hash": head[1]} if head else None,
    )
