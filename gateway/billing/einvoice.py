"""Factur-X: the invoice's data as CII XML (profile EN 16931) inside its PDF/A-3.

French public bodies (Chorus Pro) and, with the e-invoicing reform, businesses take
invoices as structured data; Factur-X carries that data inside the PDF a person reads,
so one file serves both. Only documents to organisations get it: a member is a consumer,
outside e-invoicing.

The XML is written here from the :class:`~gateway.billing.documents.Document` (the
same values the PDF prints), and the ``factur-x`` library embeds it and checks it
against the official XML schema of the profile on every generation, so a document that
is not valid EN 16931 CII is never sent. The library's schematron check (the business
rules) needs an XSLT 2 server (Saxon); the tests run it on a local one.

Decisions where the standard leaves a choice:

- A credit note is type 381 with positive amounts (EN 16931 expresses a credit note's
  amounts positively; the hub stores them negative).
- VAT category: ``S`` (standard) for a positive rate; for a seller under the VAT
  threshold ``E`` with the 293 B mention as exemption reason; a zero rate otherwise ``Z``.
- The legal registration (BT-30) is the SIREN with scheme 0002 (SIRENE). A seller
  exempt from VAT without a VAT number gives the SIREN as its tax registration (BT-32,
  scheme FC), which rule BR-E-2 asks for.
- Business mentions (late-payment penalties, the 40 EUR recovery indemnity, no discount
  for early payment) are notes with their UNTDID 4451 subjects PMD, PMT and AAB.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import date
from decimal import Decimal

from gateway.billing.documents import Document, Party
from gateway.billing.money import amount_text, format_money

__all__ = ["FACTURX_FILENAME", "LEVEL", "cii_xml", "embed", "extract_xml"]

LEVEL = "en16931"
FACTURX_FILENAME = "factur-x.xml"
_GUIDELINE = "urn:cen.eu:en16931:2017"
_NS = {
    "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
    "qdt": "urn:un:unece:uncefact:data:standard:QualifiedDataType:100",
    "udt": "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100",
}
for _prefix, _uri in _NS.items():
    ET.register_namespace(_prefix, _uri)


def _q(tag: str) -> str:
    prefix, name = tag.split(":")
    return f"{{{_NS[prefix]}}}{name}"


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, _q(tag), attrs)
    if text is not None:
        el.text = text
    return el


def _money(cents: int) -> str:
    return amount_text(abs(cents))


def _percent(rate: Decimal) -> str:
    return f"{(rate * 100).quantize(Decimal('0.01'))}"


def _date(parent: ET.Element, tag: str, day: date) -> None:
    _sub(_sub(parent, tag), "udt:DateTimeString", day.strftime("%Y%m%d"), format="102")


def _category(doc: Document, rate: Decimal) -> str:
    if rate > 0:
        return "S"
    return "E" if doc.seller.vat_exempt else "Z"


def _party(parent: ET.Element, tag: str, p: Party, *, seller: bool) -> None:
    el = _sub(parent, tag)
    _sub(el, "ram:Name", p.name)
    if p.siren:
        _sub(_sub(el, "ram:SpecifiedLegalOrganization"), "ram:ID", p.siren, schemeID="0002")
    addr = _sub(el, "ram:PostalTradeAddress")
    if p.postcode:
        _sub(addr, "ram:PostcodeCode", p.postcode)
    lines = ("ram:LineOne", "ram:LineTwo", "ram:LineThree")
    for tag_name, text in zip(lines, p.address[: len(lines)], strict=False):
        _sub(addr, tag_name, text)
    if p.city:
        _sub(addr, "ram:CityName", p.city)
    _sub(addr, "ram:CountryID", p.country or "FR")
    if p.email:
        _sub(_sub(el, "ram:URIUniversalCommunication"), "ram:URIID", p.email, schemeID="EM")
    if p.vat_number:
        _sub(_sub(el, "ram:SpecifiedTaxRegistration"), "ram:ID", p.vat_number, schemeID="VA")
    elif seller and p.vat_exempt and p.siren:
        _sub(_sub(el, "ram:SpecifiedTaxRegistration"), "ram:ID", p.siren, schemeID="FC")


def _notes(doc: Document) -> list[tuple[str, str]]:
    notes: list[tuple[str, str]] = []
    if doc.seller.legal_form:
        notes.append(("REG", f"{doc.seller.name}, {doc.seller.legal_form}"))
    if doc.vat_mention:
        notes.append(("AAI", doc.vat_mention))
    if doc.late_penalties:
        notes.append(("PMD", f"Pénalités de retard : {doc.late_penalties}."))
    if doc.recovery_fee:
        notes.append(
            (
                "PMT",
                "Indemnité forfaitaire pour frais de recouvrement en cas de retard de "
                f"paiement : {format_money(doc.recovery_fee)}.",
            )
        )
    if doc.buyer.business:
        notes.append(("AAB", "Pas d'escompte pour paiement anticipé."))
    return notes


def cii_xml(doc: Document) -> bytes:
    """The document as Cross Industry Invoice XML, profile EN 16931 (UTF-8)."""
    inv = doc.invoice
    root = ET.Element(_q("rsm:CrossIndustryInvoice"))
    ctx = _sub(root, "rsm:ExchangedDocumentContext")
    _sub(_sub(ctx, "ram:GuidelineSpecifiedDocumentContextParameter"), "ram:ID", _GUIDELINE)
    head = _sub(root, "rsm:ExchangedDocument")
    _sub(head, "ram:ID", doc.number)
    _sub(head, "ram:TypeCode", "381" if doc.is_credit_note else "380")
    _date(head, "ram:IssueDateTime", doc.issue_date)
    for subject, text in _notes(doc):
        note = _sub(head, "ram:IncludedNote")
        _sub(note, "ram:Content", text)
        _sub(note, "ram:SubjectCode", subject)

    trade = _sub(root, "rsm:SupplyChainTradeTransaction")
    for ln in doc.lines:
        item = _sub(trade, "ram:IncludedSupplyChainTradeLineItem")
        _sub(_sub(item, "ram:AssociatedDocumentLineDocument"), "ram:LineID", str(ln.position))
        _sub(_sub(item, "ram:SpecifiedTradeProduct"), "ram:Name", ln.label)
        agreement = _sub(item, "ram:SpecifiedLineTradeAgreement")
        price = _sub(agreement, "ram:NetPriceProductTradePrice")
        _sub(price, "ram:ChargeAmount", _money(ln.unit_price))
        delivery = _sub(item, "ram:SpecifiedLineTradeDelivery")
        _sub(delivery, "ram:BilledQuantity", str(ln.quantity), unitCode=ln.unit)
        settle = _sub(item, "ram:SpecifiedLineTradeSettlement")
        tax = _sub(settle, "ram:ApplicableTradeTax")
        _sub(tax, "ram:TypeCode", "VAT")
        _sub(tax, "ram:CategoryCode", _category(doc, ln.vat_rate))
        _sub(tax, "ram:RateApplicablePercent", _percent(ln.vat_rate))
        period = _sub(settle, "ram:BillingSpecifiedPeriod")
        _date(period, "ram:StartDateTime", ln.service_start)
        _date(period, "ram:EndDateTime", ln.service_end)
        total = _sub(settle, "ram:SpecifiedTradeSettlementLineMonetarySummation")
        _sub(total, "ram:LineTotalAmount", _money(ln.amount_ht))

    agreement = _sub(trade, "ram:ApplicableHeaderTradeAgreement")
    _sub(agreement, "ram:BuyerReference", doc.buyer.id)
    _party(agreement, "ram:SellerTradeParty", doc.seller, seller=True)
    _party(agreement, "ram:BuyerTradeParty", doc.buyer, seller=False)
    # The last day of service as the delivery date: the element is mandatory, and an
    # empty one is flagged by the schematron.
    delivery = _sub(trade, "ram:ApplicableHeaderTradeDelivery")
    event = _sub(delivery, "ram:ActualDeliverySupplyChainEvent")
    _date(event, "ram:OccurrenceDateTime", doc.service_end)

    settlement = _sub(trade, "ram:ApplicableHeaderTradeSettlement")
    _sub(settlement, "ram:PaymentReference", doc.number)
    _sub(settlement, "ram:InvoiceCurrencyCode", "EUR")
    if doc.iban and not doc.is_credit_note:
        means = _sub(settlement, "ram:SpecifiedTradeSettlementPaymentMeans")
        _sub(means, "ram:TypeCode", "58")  # SEPA credit transfer
        _sub(_sub(means, "ram:PayeePartyCreditorFinancialAccount"), "ram:IBANID", doc.iban)
        if doc.bic:
            _sub(
                _sub(means, "ram:PayeeSpecifiedCreditorFinancialInstitution"),
                "ram:BICID",
                doc.bic,
            )
    for rate, base, vat in inv.vat_breakdown:
        tax = _sub(settlement, "ram:ApplicableTradeTax")
        _sub(tax, "ram:CalculatedAmount", _money(vat))
        _sub(tax, "ram:TypeCode", "VAT")
        category = _category(doc, rate)
        if category == "E" and doc.vat_mention:
            _sub(tax, "ram:ExemptionReason", doc.vat_mention)
        _sub(tax, "ram:BasisAmount", _money(base))
        _sub(tax, "ram:CategoryCode", category)
        _sub(tax, "ram:RateApplicablePercent", _percent(rate))
    period = _sub(settlement, "ram:BillingSpecifiedPeriod")
    _date(period, "ram:StartDateTime", doc.service_start)
    _date(period, "ram:EndDateTime", doc.service_end)
    terms = _sub(settlement, "ram:SpecifiedTradePaymentTerms")
    _sub(terms, "ram:Description", doc.payment_terms)
    if doc.due_date is not None:
        _date(terms, "ram:DueDateDateTime", doc.due_date)
    sums = _sub(settlement, "ram:SpecifiedTradeSettlementHeaderMonetarySummation")
    _sub(sums, "ram:LineTotalAmount", _money(sum(ln.amount_ht for ln in doc.lines)))
    _sub(sums, "ram:TaxBasisTotalAmount", _money(inv.total_ht))
    _sub(sums, "ram:TaxTotalAmount", _money(inv.total_vat), currencyID="EUR")
    _sub(sums, "ram:GrandTotalAmount", _money(inv.total_ttc))
    _sub(sums, "ram:DuePayableAmount", _money(inv.total_ttc))
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def embed(pdf: bytes, doc: Document) -> bytes:
    """The PDF/A-3 with the document's CII XML attached as ``factur-x.xml``.

    The library checks the XML against the EN 16931 schema first and raises when it is
    not valid: an invalid e-invoice is an error, never a file.
    """
    import facturx  # the hub extra; imported here so the rest of billing needs none

    kind = "Avoir" if doc.is_credit_note else "Facture"
    result: bytes = facturx.generate_from_binary(
        pdf,
        cii_xml(doc),
        flavor="factur-x",
        level=LEVEL,
        check_xsd=True,
        pdf_metadata={
            "author": doc.seller.name,
            "keywords": "Factur-X",
            "title": f"{doc.seller.name} : {kind} {doc.number}",
            "subject": f"{kind} {doc.number} du {doc.issue_date:%d/%m/%Y} à {doc.buyer.name}",
        },
        lang="fr-FR",
    )
    return result


def extract_xml(pdf: bytes) -> tuple[str, bytes]:
    """(file name, XML) of the Factur-X data inside ``pdf``."""
    import facturx

    name, xml = facturx.get_xml_from_pdf(pdf, check_xsd=False)
    return str(name), bytes(xml)
