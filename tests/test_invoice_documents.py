"""Invoices as documents, over real HTTP with a real hub app and SQLite: closing a month
from the web, the PDF and its legal mentions (read back from the PDF's text), Factur-X
for organisations (checked by factur-x's own schema and schematron checks), payments,
members' own page, and the sales journal (balanced per piece)."""

from __future__ import annotations

import csv
import io
import json
import re
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import facturx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pypdf import PdfReader

from gateway.billing.credit import add_credit
from gateway.billing.documents import close_month
from gateway.billing.einvoice import extract_xml
from gateway.billing.invoicing import SessionCharge, _document, upsert_organisation
from gateway.billing.journal import entries_of
from gateway.billing.pricing import install_tariffs
from gateway.config import AccountingConfig, ApiToken, HubConfig
from gateway.hub import accounts, audit
from gateway.hub.db import HubStore
from gateway.hub.events.ingest import ingest_envelopes
from gateway.hub.tokens import create_token
from gateway.web import create_app
from tests.support import builders
from tests.support.hashing import cheap_hashing
from tests.support.saxon import saxon_server
from tests.test_auth import PASSWORD, Answer, Client, serve
from tests.test_invoicing import GROUPS, MACHINES, NOV, NOVEMBER_SESSIONS, TARIFFS, events_for
from tests.test_invoicing import make_store as invoicing_store

TOKEN = "invoices-config-token-0123456789"
TZ = "Europe/Paris"
STAFF = {
    "acc": ("Camille Compta", "camille@example.org", "accountant"),
    "fab": ("Farida Manager", "farida@example.org", "fabmanager"),
}
MEMBERS = {"m1": "alice@example.org", "m3": "bruno@example.org"}
CODEDB = Path(facturx.__file__).parent / "xsd_and_schematron" / "facturx-en16931"
NS = {
    "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
}


@dataclass
class Site:
    base: str
    db: Path
    cfg: HubConfig

    def client(self, who: str | None = None) -> Client:
        c = Client(self.base)
        if who is not None:
            email = STAFF[who][1] if who in STAFF else MEMBERS[who]
            assert c.login(email).status == 302
        return c

    def store(self) -> HubStore:
        return HubStore(self.db)

    def api(self, path: str, token: str = TOKEN) -> tuple[int, dict[str, str], bytes]:
        return builders_http(self.base + path, token)

    def invoices(self, period: str = "2026-11") -> list[dict]:
        status, _, body = self.api(f"/api/v1/invoices?period={period}&status=closed")
        assert status == 200, body
        return json.loads(body)["invoices"]

    def number_of(self, payer_id: str, kind: str = "invoice") -> str:
        return next(
            d["number"]
            for d in self.invoices()
            if d["payer"]["id"] == payer_id and d["kind"] == kind
        )


def builders_http(url: str, token: str | None) -> tuple[int, dict[str, str], bytes]:
    from tests.support.harness import http_request

    return http_request(url, token=token)


def raw_get(client: Client, path: str) -> tuple[int, str, bytes]:
    """A GET through the client's cookie jar that keeps the body as bytes (a PDF)."""
    req = urllib.request.Request(client.base + path, headers={"Accept": "*/*"})
    try:
        resp = client.opener.open(req, timeout=60)
    except urllib.error.HTTPError as err:
        resp = err
    with resp:
        return resp.status, resp.headers.get("Content-Type", ""), resp.read()


def pdf_text(pdf: bytes) -> str:
    text = "\n".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(pdf)).pages)
    return " ".join(text.replace("\u202f", " ").replace("\u00a0", " ").split())


def make_site(tmp: Path, invoicing: object = builders.INVOICING, tariffs: tuple = TARIFFS) -> Site:
    db = tmp / "hub.sqlite"
    store = invoicing_store(db)
    try:
        if tariffs is not TARIFFS:
            install_tariffs(store, tariffs)
        upsert_organisation(
            store,
            "lycee",
            "Lycée Jules Verne",
            "school",
            "compta@lycee.example",
            address="1 rue de la Paix\nBâtiment B",
            postcode="44100",
            city="Nantes",
            siret="19440001400017",
        )
        ingest_envelopes(store, events_for(NOVEMBER_SESSIONS), NOV)
        with store.conn:
            for member_id, (name, _, _) in STAFF.items():
                store.conn.execute(
                    "INSERT INTO members (id, name, category) VALUES (?, ?, 'adherent')",
                    (member_id, name),
                )
        for member_id, (_, email, role) in STAFF.items():
            accounts.create_account(store, member_id, email, actor="test", password=PASSWORD)
            accounts.grant_role(store, member_id, role, None, actor="test")
        for member_id, email in MEMBERS.items():
            accounts.create_account(store, member_id, email, actor="test", password=PASSWORD)
    finally:
        store.close()
    cfg = builders.hub_config(
        tmp,
        db,
        tokens=(ApiToken("compta", TOKEN),),
        groups=GROUPS,
        machines=MACHINES,
        invoicing=invoicing,
    )
    return Site("", db, cfg)


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    with cheap_hashing():
        s = make_site(tmp_path)
        with serve(create_app(s.cfg)) as base:
            s.base = base
            yield s


def close_on_the_web(site: Site, period: str = "2026-11") -> Answer:
    acc = site.client("acc")
    form = {"confirm": period, "csrf_token": acc.csrf(f"/periods/{period}/close")}
    return acc.post(f"/periods/{period}/close", form)


# -- closing a month from the web --------------------------------------------------------


def test_closing_a_month_from_the_web_shows_what_it_issues_and_wants_a_confirmation(
    site: Site,
) -> None:
    acc = site.client("acc")
    page = acc.get("/periods/2026-11/close")
    assert page.status == 200
    assert "Lycée Jules Verne" in page.body and "Alice Martin" in page.body
    assert 'id="close-form"' in page.body

    # Without typing the month, nothing is closed.
    refused = acc.post("/periods/2026-11/close", {"csrf_token": acc.csrf("/periods/2026-11/close")})
    assert refused.status == 303
    assert site.invoices() == []
    assert "tapez 2026-11" in acc.get(refused.location).body

    # A fabmanager may not close.
    fab = site.client("fab")
    assert fab.get("/periods/2026-11/close").status == 403
    forbidden = fab.post(
        "/periods/2026-11/close", {"confirm": "2026-11", "csrf_token": fab.csrf("/invoices")}
    )
    assert forbidden.status == 403 and site.invoices() == []

    done = close_on_the_web(site)
    assert done.status == 303 and done.location.startswith("/invoices")
    issued = site.invoices()
    # The page it leads to lists them, however long ago the month ended.
    listed = acc.get(done.location).body
    assert all(f'data-number="{d["number"]}"' in listed for d in issued), done.location
    assert {d["payer"]["id"] for d in issued} == {"m1", "m3", "lycee"}
    with site.store() as store:
        closing = [e for e in audit.entries(store) if e["action"] == "period.closed"]
        assert [e["subject"] for e in closing] == ["2026-11"]
        assert closing[0]["actor"] == "acc"
        assert sorted(closing[0]["details"]["documents"]) == sorted(d["number"] for d in issued)
    assert "clôturé" in acc.get("/periods/2026-11/close").body

    # The API route keeps working and returns the same documents (idempotent).
    status, _, body = builders_http_post(site, "/api/v1/periods/2026-11/close", {"by": "script"})
    assert status == 200, body
    assert sorted(d["number"] for d in json.loads(body)["documents"]) == sorted(
        d["number"] for d in issued
    )


def builders_http_post(site: Site, path: str, body: dict) -> tuple[int, dict[str, str], bytes]:
    from tests.support.harness import http_request

    return http_request(site.base + path, method="POST", body=body, token=TOKEN)


def test_a_month_still_running_cannot_be_closed_from_the_web(site: Site) -> None:
    now = datetime.now(UTC).astimezone()
    period = f"{now.year:04d}-{now.month:02d}"
    acc = site.client("acc")
    assert 'id="close-problem"' in acc.get(f"/periods/{period}/close").body
    answer = acc.post(
        f"/periods/{period}/close", {"confirm": period, "csrf_token": acc.csrf("/invoices")}
    )
    assert answer.status == 303
    assert site.invoices(period) == []


# -- the PDF -----------------------------------------------------------------------------


def test_a_members_invoice_pdf_states_every_mention(site: Site) -> None:
    close_on_the_web(site)
    doc = next(d for d in site.invoices() if d["payer"]["id"] == "m1")
    status, headers, pdf = site.api(f"/api/v1/invoices/{doc['number']}.pdf")
    assert status == 200 and headers["Content-Type"] == "application/pdf"
    assert pdf.startswith(b"%PDF-")
    text = pdf_text(pdf)
    issued = datetime.fromisoformat(doc["issued_at"].replace("Z", "+00:00"))
    local = issued.astimezone(__import__("zoneinfo").ZoneInfo(TZ)).date()
    for mention in (
        "Fablab des Dunes",
        "Association loi 1901",
        "12 quai des Ateliers",
        "44000 Nantes",
        "SIRET 73282932000074",
        "FR44732829320",
        f"Facture {doc['number']}",
        f"Date d'émission : {local:%d/%m/%Y}",
        "Période de prestation : 01/11/2026 – 30/11/2026",
        "Alice Martin",
        "Utilisation Laser Trotec",
        "13 min",  # S1 + S2 on project Lampe: 3 + 10 minutes (S3 is on its own line)
        "1 forfait 22,95 €",  # the CNC's start-up fee: one lot at its amount
        "0,50 €",  # the laser's unit price per minute
        "20 %",
        "Total HT",
        "Total TVA",
        "Total TTC",
        "Paiement à 30 jours",
        "État : non payée",
        "FR7630006000011234567890189",
    ):
        assert mention in text, f"{mention!r} missing from the PDF text: {text[:2000]}"
    total = doc["total_ttc"]
    assert f"{total // 100},{total % 100:02d} €" in text
    for rate in doc["vat"]:  # the VAT breakdown, per rate
        assert f"{rate['vat'] // 100},{rate['vat'] % 100:02d} €" in text
    # A member is a consumer: no business mentions, no Factur-X.
    assert "pénalités" not in text and "40,00 €" not in text
    assert not PdfReader(io.BytesIO(pdf)).attachments
    # PDF/A-3 for every document.
    xmp = PdfReader(io.BytesIO(pdf)).xmp_metadata
    assert xmp is not None and b"pdfaid" in xmp.stream.get_data()


def test_an_organisations_invoice_is_factur_x_en16931_and_valid(site: Site) -> None:
    close_on_the_web(site)
    number = site.number_of("lycee")
    status, ctype, pdf = raw_get(site.client("acc"), f"/api/v1/invoices/{number}.pdf")
    assert status == 200 and ctype == "application/pdf"
    text = pdf_text(pdf)
    for mention in (
        "Lycée Jules Verne",
        "1 rue de la Paix",
        "44100 Nantes",
        "SIRET 19440001400017",
        "pénalités sont exigibles au taux de trois fois le taux d'intérêt légal",
        "Indemnité forfaitaire pour frais de recouvrement",
        "40,00 €",
        "Pas d'escompte pour paiement anticipé",
    ):
        assert mention in text, f"{mention!r} missing: {text[:2000]}"

    name, xml = extract_xml(pdf)
    assert name == "factur-x.xml"
    assert facturx.xml_check_xsd(xml, flavor="factur-x", level="en16931")
    with saxon_server() as url:
        assert facturx.xml_check_schematron(
            xml,
            flavor="factur-x",
            level="en16931",
            saxon_server_url=url,
            saxon_server_codedb_dir=str(CODEDB),
            saxon_server_raise_if_http_error=True,
        )
    root = ET.fromstring(xml)
    assert root.findtext("rsm:ExchangedDocument/ram:ID", namespaces=NS) == number
    assert root.findtext("rsm:ExchangedDocument/ram:TypeCode", namespaces=NS) == "380"
    doc = next(d for d in site.invoices() if d["number"] == number)
    grand = root.findtext(".//ram:GrandTotalAmount", namespaces=NS)
    assert grand == f"{doc['total_ttc'] // 100}.{doc['total_ttc'] % 100:02d}"
    buyer = root.find(".//ram:BuyerTradeParty", NS)
    assert buyer is not None
    assert buyer.findtext("ram:SpecifiedLegalOrganization/ram:ID", namespaces=NS) == "194400014"
    seller_vat = root.findtext(
        ".//ram:SellerTradeParty/ram:SpecifiedTaxRegistration/ram:ID", namespaces=NS
    )
    assert seller_vat == "FR44732829320"


def test_a_credit_note_to_an_organisation_is_a_factur_x_381(site: Site) -> None:
    close_on_the_web(site)
    # The school's tariff was wrong: its session is re-priced, the billed amount reversed
    # on a credit note in the next closing.
    cheaper = tuple(replace(t, rate=20) if t.categories == ("scolaire",) else t for t in TARIFFS)
    with site.store() as store:
        install_tariffs(store, cheaper)
        close_month(
            store,
            "2026-12",
            by="acc",
            at=datetime(2027, 1, 3, 9, tzinfo=UTC),
            tz=TZ,
            invoicing=site.cfg.invoicing,
        )
    credit = next(
        d
        for d in site.invoices("2026-12")
        if d["kind"] == "credit_note" and d["payer"]["id"] == "lycee"
    )
    assert credit["total_ttc"] < 0
    status, _, pdf = site.api(f"/api/v1/invoices/{credit['number']}.pdf")
    assert status == 200
    assert f"Avoir {credit['number']}" in pdf_text(pdf)
    _, xml = extract_xml(pdf)
    with saxon_server() as url:
        assert facturx.xml_check_schematron(
            xml,
            flavor="factur-x",
            level="en16931",
            saxon_server_url=url,
            saxon_server_codedb_dir=str(CODEDB),
            saxon_server_raise_if_http_error=True,
        )
    root = ET.fromstring(xml)
    assert root.findtext("rsm:ExchangedDocument/ram:TypeCode", namespaces=NS) == "381"
    ttc = -credit["total_ttc"]
    assert (
        root.findtext(".//ram:GrandTotalAmount", namespaces=NS) == f"{ttc // 100}.{ttc % 100:02d}"
    )


def test_a_seller_under_the_vat_threshold_prints_the_293_b_mention(tmp_path: Path) -> None:
    exempt = replace(
        builders.INVOICING,
        seller=replace(builders.INVOICING.seller, vat_exempt=True, vat_number=None),
    )
    no_vat = tuple(replace(t, vat_rate=Decimal("0")) for t in TARIFFS)
    with cheap_hashing():
        s = make_site(tmp_path, invoicing=exempt, tariffs=no_vat)
        with serve(create_app(s.cfg)) as base:
            s.base = base
            close_on_the_web(s)
            number = s.number_of("lycee")
            _, _, pdf = s.api(f"/api/v1/invoices/{number}.pdf")
    text = pdf_text(pdf)
    assert "TVA non applicable, art. 293 B du CGI" in text
    assert "FR44732829320" not in text
    _, xml = extract_xml(pdf)
    with saxon_server() as url:
        assert facturx.xml_check_schematron(
            xml,
            flavor="factur-x",
            level="en16931",
            saxon_server_url=url,
            saxon_server_codedb_dir=str(CODEDB),
            saxon_server_raise_if_http_error=True,
        )
    root = ET.fromstring(xml)
    tax = root.find(".//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax", NS)
    assert tax is not None
    assert tax.findtext("ram:CategoryCode", namespaces=NS) == "E"
    assert tax.findtext("ram:ExemptionReason", namespaces=NS) == (
        "TVA non applicable, art. 293 B du CGI"
    )


def test_who_may_fetch_which_pdf(site: Site) -> None:
    close_on_the_web(site)
    alice, bruno, school = site.number_of("m1"), site.number_of("m3"), site.number_of("lycee")
    m1 = site.client("m1")
    assert raw_get(m1, f"/api/v1/invoices/{alice}.pdf")[:2] == (200, "application/pdf")
    assert raw_get(m1, f"/api/v1/invoices/{bruno}.pdf")[0] == 404
    assert raw_get(m1, f"/api/v1/invoices/{school}.pdf")[0] == 404
    assert raw_get(site.client("fab"), f"/api/v1/invoices/{school}.pdf")[0] == 200
    assert site.api(f"/api/v1/invoices/{alice}.pdf", token="wrong-token-0123456789")[0] == 401
    with site.store() as store:
        _, usage_only = create_token(store, "usage", ["usage"], created_by="acc")
        _, invoices_scope = create_token(store, "pdf", ["invoices"], created_by="acc")
    assert site.api(f"/api/v1/invoices/{alice}.pdf", token=usage_only)[0] == 403
    assert site.api(f"/api/v1/invoices/{school}.pdf", token=invoices_scope)[0] == 200
    assert site.api("/api/v1/invoices/F2026-999999.pdf")[0] == 404
    # The JSON document route is unchanged.
    status, _, body = site.api(f"/api/v1/invoices/{alice}")
    assert status == 200 and json.loads(body)["invoice"]["number"] == alice


# -- payments ----------------------------------------------------------------------------


def pay(c: Client, number: str, **form: str) -> Answer:
    fields = {"means": "card", "paid_on": "2026-12-01", **form}
    fields["csrf_token"] = c.csrf(f"/invoices/{number}")
    return c.post(f"/invoices/{number}/payments", fields)


def test_payments_move_an_invoice_from_unpaid_to_paid_and_are_audited(site: Site) -> None:
    close_on_the_web(site)
    number = site.number_of("m1")
    total = next(d["total_ttc"] for d in site.invoices() if d["number"] == number)
    acc, fab = site.client("acc"), site.client("fab")

    def status_in_list(status: str) -> set[str]:
        page = acc.get(f"/invoices?from=2026-11&to=2026-11&status={status}")
        assert page.status == 200
        return set(re.findall(r'data-number="([^"]+)"', page.body))

    assert number in status_in_list("unpaid")
    assert pay(acc, number, amount="10,00", means="cash").status == 303
    assert number in status_in_list("part_paid") and number not in status_in_list("unpaid")

    too_much = pay(fab, number, amount=f"{total},00")
    assert "dépasserait" in fab.get(too_much.location).body
    no_note = pay(fab, number, amount="1", correction="1")
    assert "pourquoi" in fab.get(no_note.location).body

    rest = total - 1000
    assert (
        pay(
            fab,
            number,
            amount=f"{rest // 100},{rest % 100:02d}",
            means="cheque",
            reference="CHQ 1234567",
        ).status
        == 303
    )
    assert number in status_in_list("paid")
    detail = acc.get(f"/invoices/{number}").body
    assert "CHQ 1234567" in detail and "payée" in detail

    # A member cannot record payments, not even on their own invoice.
    m1 = site.client("m1")
    assert (
        m1.post(
            f"/invoices/{number}/payments", {"amount": "1", "csrf_token": m1.csrf("/me")}
        ).status
        == 403
    )
    with site.store() as store:
        recorded = [e for e in audit.entries(store) if e["action"] == "payment.recorded"]
    assert [(e["actor"], e["details"]["amount"]) for e in reversed(recorded)] == [
        ("acc", 1000),
        ("fab", rest),
    ]
    # The PDF says it too.
    _, _, pdf = site.api(f"/api/v1/invoices/{number}.pdf")
    assert "État : payée" in pdf_text(pdf)


def test_the_list_filters_by_payer(site: Site) -> None:
    close_on_the_web(site)
    page = site.client("fab").get("/invoices?from=2026-11&to=2026-11&payer=lyc")
    assert set(re.findall(r'data-number="([^"]+)"', page.body)) == {site.number_of("lycee")}
    assert "/api/v1/invoices/" in page.body  # the PDF links
    assert site.client("m1").get("/invoices").status == 403


# -- members ---------------------------------------------------------------------------


def test_members_see_their_amounts_invoices_and_credit_on_their_page(site: Site) -> None:
    close_on_the_web(site)
    with site.store() as store:
        add_credit(store, "m1", 2000, at=datetime(2026, 11, 1, tzinfo=UTC), by="acc")
    page = site.client("m1").get("/me")
    assert page.status == 200
    number = site.number_of("m1")
    assert f'data-number="{number}"' in page.body
    assert f"/api/v1/invoices/{number}.pdf" in page.body
    assert site.number_of("m3") not in page.body
    assert "1,50" in page.body  # S1: 3 minutes at 0,50 €
    assert 'id="credit-balance"' in page.body and "20,00" in page.body
    english = site.client("m1").get("/me?lang=en").body
    assert "My invoices" in english


# -- the sales journal -------------------------------------------------------------------


def test_the_sales_journal_is_french_csv_balanced_per_piece(site: Site) -> None:
    close_on_the_web(site)
    status, headers, body = site.api("/api/v1/journal?period=2026-11")
    assert status == 200 and headers["Content-Type"].startswith("text/csv")
    text = body.decode("utf-8")
    assert text.startswith("\ufeff")
    rows = list(csv.DictReader(io.StringIO(text[1:]), delimiter=";"))
    # French column names, as the accountant's software and spreadsheet show them.
    assert text.startswith(
        "\ufeffJournal;Date;Pièce;Compte;Compte auxiliaire;Libellé;Débit (€);Crédit (€)\r\n"
    )
    cents = lambda v: int(v.replace(",", ""))  # noqa: E731 - "12,50" -> 1250
    pieces: dict[str, list[int]] = {}
    for r in rows:
        assert r["Journal"] == "VE" and re.fullmatch(r"\d\d/\d\d/\d{4}", r["Date"])
        assert "," in r["Débit (€)"] and "," in r["Crédit (€)"]
        d = pieces.setdefault(r["Pièce"], [0, 0])
        d[0] += cents(r["Débit (€)"])
        d[1] += cents(r["Crédit (€)"])
    assert all(debit == credit for debit, credit in pieces.values()), pieces
    docs = {d["number"]: d for d in site.invoices()}
    assert set(pieces) == {n for n, d in docs.items() if d["total_ttc"]}
    customer = [r for r in rows if r["Compte"] == "411000"]
    assert {r["Compte auxiliaire"] for r in customer} == {d["payer"]["id"] for d in docs.values()}
    assert {r["Compte"] for r in rows} == {"411000", "706000", "445710"}
    # A logged-in accountant downloads the same file.
    acc_body = raw_get(site.client("acc"), "/api/v1/journal?period=2026-11")[2]
    assert acc_body == body
    assert raw_get(site.client("fab"), "/api/v1/journal?period=2026-11")[0] == 403


_RATES = st.sampled_from([Decimal("0.20"), Decimal("0.10"), Decimal("0.055"), Decimal("0")])


@settings(max_examples=150, deadline=None)
@given(
    charges=st.lists(st.tuples(st.integers(0, 500_000), _RATES), min_size=1, max_size=12),
    sign=st.sampled_from([1, -1]),
)
def test_every_journal_piece_balances(charges: list[tuple[int, Decimal]], sign: int) -> None:
    kind = "invoice" if sign == 1 else "credit_note"
    doc = _document(
        kind,
        ("member", "m1"),
        "Alice",
        "2026-11",
        [
            (SessionCharge(f"S{i}", "laser1", None, 1, amount, rate, False), False, False)
            for i, (amount, rate) in enumerate(charges)
        ],
        sign,
    )
    doc = replace(doc, number="F2026-000001", issued_at="2026-12-02T09:00:00.000Z")
    accounts = AccountingConfig(vat_by_rate=((Decimal("0.10"), "445711"),))
    rows = entries_of(doc, accounts, TZ)
    assert sum(r.debit for r in rows) == sum(r.credit for r in rows)
    assert all(r.debit >= 0 and r.credit >= 0 and (r.debit == 0) != (r.credit == 0) for r in rows)
    customer = [r for r in rows if r.account == "411000"]
    if doc.total_ttc:
        assert len(customer) == 1 and (customer[0].debit or -customer[0].credit) == doc.total_ttc
    else:
        assert rows == []
    vat_accounts = {r.account for r in rows if r.account.startswith("4457")}
    rates = {rate for rate, _, vat in doc.vat_breakdown if vat}
    assert vat_accounts == {"445711" if r == Decimal("0.10") else "445710" for r in rates}
