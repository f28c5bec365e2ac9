"""Organisations that pay for their members' use: schools, companies, associations.

The only writer of ``organisations``. A member's payer (``members.paid_by``, set through
``gateway.hub.members``) is one of these; invoices go to it (``gateway.billing.invoicing``
reads the rows). An organisation is never deleted: closed invoices name it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from gateway.hub import audit
from gateway.hub.db import HubStore, insert_row, update_changed

KINDS = ("school", "company", "association", "other")
ORGANISATION_CREATED = "organisation.created"
ORGANISATION_UPDATED = "organisation.updated"
MAX_TEXT = 200
_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
_SIRET = re.compile(r"^\d{14}$")
# An intra-community VAT number: two letters and 2 to 13 letters or digits (FR: FRkk + SIREN).
_VAT = re.compile(r"^[A-Z]{2}[0-9A-Z]{2,13}$")


class OrganisationError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Organisation:
    id: str
    name: str
    kind: str = "other"
    address: str | None = None  # street lines
    postcode: str | None = None
    city: str | None = None
    country: str | None = None  # ISO 3166-1 alpha-2; None: the seller's (FR)
    siret: str | None = None
    vat_number: str | None = None
    email: str | None = None  # who receives the invoices


def organisations(store: HubStore) -> list[dict[str, Any]]:
    """Every organisation by name, with how many members it pays for."""
    return [
        dict(r)
        for r in store.conn.execute(
            "SELECT o.id, o.name, o.kind, o.address, o.postcode, o.city, o.country, o.siret, "
            "o.vat_number, o.email, "
            "(SELECT count(*) FROM members m WHERE m.paid_by = o.id) AS members "
            "FROM organisations o ORDER BY o.name, o.id"
        )
    ]


def organisation(store: HubStore, org_id: str) -> dict[str, Any] | None:
    return next((o for o in organisations(store) if o["id"] == org_id), None)


def _values(o: Organisation) -> dict[str, Any]:
    name = " ".join(o.name.split())
    if not name or len(name) > MAX_TEXT:
        raise OrganisationError("name", f"a name of 1 to {MAX_TEXT} characters")
    if o.kind not in KINDS:
        raise OrganisationError("kind", f"one of {', '.join(KINDS)}")
    address = (o.address or "").strip() or None
    if address and len(address) > 4 * MAX_TEXT:
        raise OrganisationError("address", f"{4 * MAX_TEXT} characters at most")
    postcode = (o.postcode or "").strip() or None
    if postcode and len(postcode) > 16:
        raise OrganisationError("postcode", "16 characters at most")
    city = " ".join((o.city or "").split()) or None
    if city and len(city) > MAX_TEXT:
        raise OrganisationError("city", f"{MAX_TEXT} characters at most")
    country = (o.country or "").strip().upper() or None
    if country and not re.fullmatch(r"[A-Z]{2}", country):
        raise OrganisationError("country", "a two-letter country code such as FR")
    siret = (o.siret or "").replace(" ", "") or None
    if siret and not _SIRET.match(siret):
        raise OrganisationError("siret", "14 digits")
    vat_number = (o.vat_number or "").replace(" ", "").upper() or None
    if vat_number and not _VAT.match(vat_number):
        raise OrganisationError("vat_number", "an intra-community VAT number such as FR40123456789")
    email = (o.email or "").strip() or None
    if email and ("@" not in email or any(c.isspace() for c in email) or len(email) > 254):
        raise OrganisationError("email", "an e-mail address")
    return {
        "name": name,
        "kind": o.kind,
        "address": address,
        "postcode": postcode,
        "city": city,
        "country": country,
        "siret": siret,
        "vat_number": vat_number,
        "email": email,
    }


def save_organisation(store: HubStore, o: Organisation, *, by: str, new: bool) -> dict[str, Any]:
    """Create (``new``) or change an organisation, audited; returns the changes."""
    values = _values(o)
    with store.atomic():
        old = store.conn.execute(
            "SELECT name, kind, address, postcode, city, country, siret, vat_number, email "
            "FROM organisations WHERE id = ?",
            (o.id,),
        ).fetchone()
        if new:
            if not _ID.match(o.id):
                raise OrganisationError("id", "lower-case letters, digits, '-' or '_' (40 at most)")
            if old is not None:
                raise OrganisationError("id", f"the organisation {o.id!r} exists")
            insert_row(store, "organisations", o.id, values)
            audit.record(store, by, ORGANISATION_CREATED, o.id, values)
            return values
        if old is None:
            raise OrganisationError("id", f"no organisation {o.id!r}")
        changes = update_changed(store, "organisations", o.id, old, values)
        if changes:
            audit.record(store, by, ORGANISATION_UPDATED, o.id, {"changes": changes})
        return changes


def upsert_organisation(store: HubStore, o: Organisation) -> None:
    """Create or replace an organisation without a person behind it (the demo site,
    a seed, tests): checked like the pages' changes, not audited."""
    values = _values(o)
    with store.atomic():
        store.conn.execute(
            f"INSERT INTO organisations (id, {', '.join(values)}) "
            f"VALUES (?, {', '.join('?' for _ in values)}) ON CONFLICT(id) DO UPDATE SET "
            + ", ".join(f"{k} = excluded.{k}" for k in values),
            (o.id, *values.values()),
        )
