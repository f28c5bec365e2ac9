"""Invoices as documents on the web: the list, one invoice with its payments, closing a
month, the PDF (Factur-X for organisations) and the sales journal.

Who may do what (``docs/billing.md``): accountants and fabmanagers see every invoice and
record payments (the desk takes cash and cards); only accountants close a month, after a
confirmation page that shows what closing will issue, because a closed month cannot be
reopened. The PDF and the journal also answer a bearer token with the ``invoices``
scope, so accounting scripts fetch them like the rest of the API; a logged-in member
gets only the PDFs of their own invoices (any other number is 404, whether it exists or
not).

Every change goes through the billing module that owns its table
(``gateway.billing.payments``, ``gateway.billing.documents``), which writes the audit
entry in the same transaction.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    g,
    get_flashed_messages,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext, ngettext
from werkzeug.wrappers import Response as BaseResponse

from gateway.billing import payments
from gateway.billing.documents import Document, NotConfigured, build_document, close_month
from gateway.billing.exports import FORMATS, chunked
from gateway.billing.invoicing import (
    Invoice,
    build_drafts,
    closed_invoices,
    invoice_by_number,
    is_closed,
    parse_period,
)
from gateway.billing.journal import journal_export
from gateway.billing.money import format_money, parse_amount
from gateway.core.clock import parse_iso, utcnow
from gateway.core.levels import ROLES
from gateway.core.months import add_months, local_month, month_text, parse_month
from gateway.hub.accounts import User
from gateway.web.auth import current_user, owner_scoped, requires
from gateway.web.bearer import scope
from gateway.web.context import get_store, hub_config, store_opener
from gateway.web.labels import label
from gateway.web.language import current_language

invoice_pages = Blueprint("invoices", __name__)

VIEW = ("accountant", "fabmanager")
PAY = ("accountant", "fabmanager")
CLOSE = ("accountant",)
STATUS_FILTERS = (*payments.STATUSES, "credit_note")
MAX_LISTED = 2000


# -- helpers ---------------------------------------------------------------------------


def _lang() -> str:
    return current_language()


def _user() -> User:
    user = current_user()
    if user is None:
        abort(401)
    return user


def _say(category: str, message: str) -> None:
    """Flash a message already in the person's words."""
    flash(message, category)


def _context(**extra: Any) -> dict[str, Any]:
    cfg = hub_config()
    lang = _lang()
    zone = ZoneInfo(cfg.timezone)

    def day(value: str | date | None) -> str:
        if not value:
            return ""
        if isinstance(value, date) and not isinstance(value, datetime):
            return value.strftime("%d/%m/%Y")
        if isinstance(value, str) and len(value) == 10:
            return date.fromisoformat(value).strftime("%d/%m/%Y")
        when = parse_iso(value) if isinstance(value, str) else value
        return when.astimezone(zone).strftime("%d/%m/%Y")

    def money(cents: int) -> str:
        return format_money(cents, lang)

    def rate(value: Any) -> str:
        pct = f"{float(value) * 100:g}"
        return f"{pct.replace('.', ',') if lang == 'fr' else pct} %"

    user = current_user()
    return {
        "lang": lang,
        "site": cfg.site,
        "user": user,
        "day": day,
        "money": money,
        "rate": rate,
        "messages": get_flashed_messages(with_categories=True),
        **extra,
    }


def _month_arg(name: str, default: str) -> str:
    value = request.args.get(name) or default
    try:
        parse_period(value)
    except ValueError:
        abort(400, description=f"{name}: expected a month YYYY-MM, got {value!r}")
    return value


def _may_see_all(user: User | None) -> bool:
    return user is not None and user.has(*VIEW)


def _document(number: str) -> Document:
    cfg = hub_config()
    try:
        doc = build_document(get_store(), number, cfg.invoicing, cfg.timezone, at=utcnow())
    except NotConfigured:
        abort(
            503,
            description=gettext(
                "The seller's details are missing: add an invoicing: section to %(file)s.",
                file=str(cfg.file),
            ),
        )
    if doc is None:
        abort(404)
    return doc


def _row(inv: Invoice, paid: int) -> dict[str, Any]:
    return {
        "doc": inv,
        "paid": paid,
        "status": payments.status_of(inv.kind, inv.total_ttc, paid) or "credit_note",
    }


# -- the list --------------------------------------------------------------------------


@invoice_pages.get("/invoices")
@requires(*VIEW)
def invoice_list() -> str:
    """Closed documents of a range of months, by payer and payment status."""
    cfg = hub_config()
    now = utcnow()
    last_ended = month_text(local_month(now, cfg.timezone, -1)[0])
    last = _month_arg("to", last_ended)
    # Three months up to ``to``: closing an older month redirects here with only ``to``.
    first = _month_arg("from", month_text(add_months(parse_month(last), -2)))
    payer = " ".join(request.args.get("payer", "").split()).casefold()
    status = request.args.get("status", "")
    if status and status not in STATUS_FILTERS:
        abort(400, description=f"status: expected one of {', '.join(STATUS_FILTERS)}")
    store = get_store()
    paid = payments.paid_amounts(store)
    rows = []
    for inv in closed_invoices(store, first, last):
        if payer and payer not in inv.payer_name.casefold() and payer != inv.payer_id.casefold():
            continue
        row = _row(inv, paid.get(inv.number or "", 0))
        if status and row["status"] != status:
            continue
        rows.append(row)
        if len(rows) >= MAX_LISTED:
            break
    open_month = None if is_closed(store, last_ended) else last_ended
    return render_template(
        "invoices.html",
        **_context(
            rows=rows,
            first=first,
            last=last,
            payer=request.args.get("payer", ""),
            status=status,
            statuses=STATUS_FILTERS,
            open_month=open_month,
            may_close=bool(current_user() and _user().has(*CLOSE)),
            total_ttc=sum(r["doc"].total_ttc for r in rows),
            total_due=sum(
                max(0, r["doc"].total_ttc - r["paid"]) for r in rows if r["doc"].kind == "invoice"
            ),
        ),
    )


# -- one invoice and its payments ------------------------------------------------------


@invoice_pages.get("/invoices/<number>")
@requires(*VIEW)
def invoice_detail(number: str) -> str:
    doc = _document(number)
    return render_template(
        "invoice.html",
        **_context(
            doc=doc,
            payments=payments.payments_of(get_store(), number),
            means=payments.MEANS,
            today=datetime.now(ZoneInfo(hub_config().timezone)).date().isoformat(),
            may_pay=_user().has(*PAY),
        ),
    )


@invoice_pages.post("/invoices/<number>/payments")
@requires(*PAY)
def record_payment(number: str) -> BaseResponse:
    user = _user()
    form = request.form
    back = redirect(url_for("invoices.invoice_detail", number=number, lang=_lang()), 303)
    try:
        amount = parse_amount(form.get("amount", "").strip())
    except ValueError:
        _say("error", gettext("Invalid amount: in euros, e.g. 12.50."))
        return back
    if form.get("correction"):
        amount = -amount
    try:
        paid_on = date.fromisoformat(form.get("paid_on", "").strip())
    except ValueError:
        _say("error", gettext("Invalid date."))
        return back
    now = utcnow()
    local_now = now.astimezone(ZoneInfo(hub_config().timezone))
    try:
        payments.record_payment(
            get_store(),
            number,
            amount,
            means=form.get("means", ""),
            paid_on=paid_on,
            by=user.member_id,
            # The site's day, not UTC's: a payment taken at 00:30 in Paris is today's.
            at=local_now,
            reference=form.get("reference"),
            note=form.get("note"),
        )
    except payments.PaymentRefused as refused:
        if refused.code == "unknown":
            abort(404)
        _say("error", label("payments.err", refused.code))
        return back
    _say(
        "ok",
        gettext(
            "Payment of %(amount)s recorded on %(number)s.",
            amount=format_money(amount, _lang()),
            number=number,
        ),
    )
    return back


# -- closing a month -------------------------------------------------------------------


def _closable(period: str) -> str | None:
    """Why ``period`` cannot be closed from the page now (in the person's words), or None."""
    cfg = hub_config()
    last_ended = month_text(local_month(utcnow(), cfg.timezone, -1)[0])
    if period > last_ended:
        return gettext("The month %(period)s has not ended.", period=period)
    return None


@invoice_pages.get("/periods/<period>/close")
@requires(*CLOSE)
def close_confirm(period: str) -> tuple[str, int] | str:
    """What closing would issue, and the button that does it: closing is final."""
    try:
        parse_period(period)
    except ValueError:
        abort(404)
    cfg = hub_config()
    store = get_store()
    closed = is_closed(store, period)
    drafts = [] if closed else build_drafts(store, period, cfg.timezone)
    problem = None if closed else _closable(period)
    page = render_template(
        "close.html",
        **_context(
            period=period,
            closed=closed,
            drafts=drafts,
            problem=problem,
            total_ttc=sum(d.total_ttc for d in drafts),
            seller_missing=cfg.invoicing is None,
        ),
    )
    return page


@invoice_pages.post("/periods/<period>/close")
@requires(*CLOSE)
def close(period: str) -> BaseResponse:
    try:
        parse_period(period)
    except ValueError:
        abort(404)
    user = _user()
    confirm = url_for("invoices.close_confirm", period=period, lang=_lang())
    if request.form.get("confirm") != period:
        _say("error", gettext("Not confirmed: type %(period)s to close.", period=period))
        return redirect(confirm, 303)
    problem = _closable(period)
    if problem:
        _say("error", problem)
        return redirect(confirm, 303)
    cfg = hub_config()
    try:
        docs = close_month(
            get_store(),
            period,
            by=user.member_id,
            at=utcnow(),
            tz=cfg.timezone,
            invoicing=cfg.invoicing,
        )
    except ValueError as exc:
        _say("error", gettext("Cannot close: %(detail)s", detail=str(exc)))
        return redirect(confirm, 303)
    _say(
        "ok",
        ngettext(
            "Month %(period)s closed: %(num)s document issued.",
            "Month %(period)s closed: %(num)s documents issued.",
            len(docs),
            period=period,
        ),
    )
    return redirect(url_for("invoices.invoice_list", to=period, lang=_lang()), 303)


# -- the PDF and the journal, for people and scripts -----------------------------------


def _pdf_html(doc: Document) -> str:
    cfg = hub_config()
    logo = cfg.invoicing.seller.logo if cfg.invoicing else None
    return render_template(
        "invoice_pdf.html",
        **_context(doc=doc, logo=logo.as_uri() if logo else None),
    )


def invoice_pdf_bytes(doc: Document) -> bytes:
    """The PDF/A-3 of a document; with its Factur-X XML when the buyer is an organisation."""
    from gateway.billing.einvoice import embed
    from gateway.billing.pdf import html_to_pdf

    cfg = hub_config()
    pdf = html_to_pdf(_pdf_html(doc), base=Path(cfg.file).parent)
    return embed(pdf, doc) if doc.buyer.business else pdf


@invoice_pages.get("/api/v1/invoices/<number>.pdf")
@requires(*ROLES)
@owner_scoped
@scope("invoices")
def invoice_pdf(number: str) -> Response:
    """A bearer token with the ``invoices`` scope or a logged-in accountant, fabmanager
    or admin: any document; a logged-in member: only their own invoices."""
    by_token = "fabgate_token" in g
    if not by_token and not _may_see_all(current_user()):
        user = _user()
        inv = invoice_by_number(get_store(), number)
        if inv is None or (inv.payer_kind, inv.payer_id) != ("member", user.member_id):
            abort(404)
    doc = _document(number)
    body = invoice_pdf_bytes(doc)
    resp = Response(body, mimetype="application/pdf")
    resp.headers["Content-Disposition"] = f'inline; filename="{number}.pdf"'
    resp.headers["Cache-Control"] = "private, no-store"
    return resp


@invoice_pages.get("/api/v1/journal")
@requires("accountant")
@scope("invoices")
def journal() -> Response:
    """The sales journal of closed months: ``period`` or ``from``/``to`` (default: last
    month), ``format`` csv-fr (default), csv or json."""
    cfg = hub_config()
    default = month_text(local_month(utcnow(), cfg.timezone, -1)[0])
    if request.args.get("period"):
        first = last = _month_arg("period", default)
    else:
        first = _month_arg("from", default)
        last = _month_arg("to", first)
    if last < first:
        abort(400, description="to: must not be before 'from'")
    fmt = request.args.get("format") or "csv-fr"
    if fmt not in FORMATS:
        abort(400, description=f"format: expected one of {', '.join(FORMATS)}")
    opener = store_opener()
    accounts = cfg.accounting
    tz = cfg.timezone

    def body() -> Iterator[str]:
        store = opener()
        try:
            yield from chunked(
                journal_export(store, first, last, fmt=fmt, tz=tz, accounts=accounts)
            )
        finally:
            store.close()

    if fmt == "json":
        return Response(body(), mimetype="application/json")
    span = first if first == last else f"{first}_{last}"
    name = f"journal-ventes-{span}{'-fr' if fmt == 'csv-fr' else ''}.csv"
    return Response(
        body(),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def member_invoices(member_id: str) -> list[dict[str, Any]]:
    """A member's own invoices and credit notes, newest first, with what was paid (/me)."""
    store = get_store()
    docs = list(closed_invoices(store, payer=("member", member_id)))
    paid = payments.paid_amounts(store, [d.number or "" for d in docs])
    return [_row(d, paid.get(d.number or "", 0)) for d in reversed(docs)]
