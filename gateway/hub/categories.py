"""Member categories as data: a code (what members, tariffs and sessions store) and labels.

The only writer of ``member_categories``. The five categories that used to be code
(``grand_public``, ``adherent``, ``professionnel``, ``scolaire``, ``association``) are its
seed rows (migration ``0016_administration``). A code never changes once used, since
members, tariffs and priced sessions name it; a category nobody should pick any more
is made inactive instead of deleted.

The hub and seed files may name any code of the right shape (``config.models.
CATEGORY_CODE``): importing them creates a code the table lacks, with the code as both
labels (``ensure_codes``), audited and logged with the file and key that named it, so a
new site's first start works and a typo shows on the categories page instead of going
unnoticed. Refusing instead would leave a site whose tariffs name a new category unable
to start until it had been created on the web of the hub that will not start.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from gateway.config.models import CATEGORY_CODE
from gateway.hub import audit
from gateway.hub.db import HubStore

log = logging.getLogger(__name__)

CODE = CATEGORY_CODE
MAX_LABEL = 80

CATEGORY_CREATED = "category.created"
CATEGORY_UPDATED = "category.updated"


class CategoryError(ValueError):
    """A refused change; ``field`` is the form field it is about."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def categories(store: HubStore, *, active_only: bool = False) -> list[dict[str, Any]]:
    """Every category in display order, with how many members have it."""
    where = "WHERE c.active = 1 " if active_only else ""
    return [
        dict(r)
        for r in store.conn.execute(
            "SELECT c.code, c.label_fr, c.label_en, c.position, c.active, "
            "(SELECT count(*) FROM members m WHERE m.category = c.code) AS members "
            f"FROM member_categories c {where}ORDER BY c.position, c.code"
        )
    ]


def codes(store: HubStore, *, active_only: bool = False) -> list[str]:
    return [c["code"] for c in categories(store, active_only=active_only)]


def category(store: HubStore, code: str) -> dict[str, Any] | None:
    row = store.conn.execute(
        "SELECT code, label_fr, label_en, position, active FROM member_categories WHERE code = ?",
        (code,),
    ).fetchone()
    return dict(row) if row else None


def labels(store: HubStore, lang: str) -> dict[str, str]:
    """code -> label in ``lang`` (French when the language is not English)."""
    column = "label_en" if lang == "en" else "label_fr"
    return {r[0]: r[1] for r in store.conn.execute(f"SELECT code, {column} FROM member_categories")}


def _labels(label_fr: str, label_en: str) -> tuple[str, str]:
    fr, en = " ".join(label_fr.split()), " ".join(label_en.split())
    if not fr or len(fr) > MAX_LABEL:
        raise CategoryError("label_fr", f"a French label of 1 to {MAX_LABEL} characters")
    if not en or len(en) > MAX_LABEL:
        raise CategoryError("label_en", f"an English label of 1 to {MAX_LABEL} characters")
    return fr, en


def create_category(store: HubStore, code: str, label_fr: str, label_en: str, *, by: str) -> None:
    """A new category, last in the list; ``CategoryError`` if the code is bad or taken."""
    code = code.strip()
    if not CODE.match(code):
        raise CategoryError(
            "code", "a code of lower-case letters, digits and _ (starting with a letter)"
        )
    fr, en = _labels(label_fr, label_en)
    with store.atomic():
        if category(store, code) is not None:
            raise CategoryError("code", f"the code {code!r} is already used")
        position = store.conn.execute(
            "SELECT coalesce(max(position), -1) + 1 FROM member_categories"
        ).fetchone()[0]
        store.conn.execute(
            "INSERT INTO member_categories (code, label_fr, label_en, position) "
            "VALUES (?, ?, ?, ?)",
            (code, fr, en, position),
        )
        audit.record(store, by, CATEGORY_CREATED, code, {"label_fr": fr, "label_en": en})


def update_category(
    store: HubStore, code: str, *, label_fr: str, label_en: str, active: bool, by: str
) -> bool:
    """New labels or active flag; False when nothing changed. The code stays."""
    fr, en = _labels(label_fr, label_en)
    with store.atomic():
        old = category(store, code)
        if old is None:
            raise CategoryError("code", f"no category {code!r}")
        new = {"label_fr": fr, "label_en": en, "active": int(active)}
        changes = {k: [old[k], v] for k, v in new.items() if old[k] != v}
        if not changes:
            return False
        store.conn.execute(
            "UPDATE member_categories SET label_fr = ?, label_en = ?, active = ? WHERE code = ?",
            (fr, en, int(active), code),
        )
        audit.record(store, by, CATEGORY_UPDATED, code, {"changes": changes})
    return True


def ensure_codes(store: HubStore, wanted: Mapping[str, str], *, actor: str) -> list[str]:
    """Create every category code of ``wanted`` (code -> where a file names it, "hub.yaml:
    tariffs[2].categories") the table lacks, labelled with its code; returns those made.

    ``CategoryError`` for a code of the wrong shape (the config loaders refuse those
    first, with the file's line). Inside the caller's transaction when there is one.
    """
    made: list[str] = []
    with store.atomic():
        for code, where in wanted.items():
            if category(store, code) is not None:
                continue
            if not CODE.match(code):
                raise CategoryError("code", f"{where}: {code!r} is not a category code")
            position = store.conn.execute(
                "SELECT coalesce(max(position), -1) + 1 FROM member_categories"
            ).fetchone()[0]
            store.conn.execute(
                "INSERT INTO member_categories (code, label_fr, label_en, position) "
                "VALUES (?, ?, ?, ?)",
                (code, code, code, position),
            )
            audit.record(
                store,
                actor,
                CATEGORY_CREATED,
                code,
                {"label_fr": code, "label_en": code, "named_by": where},
            )
            log.warning(
                "%s names the category %r, which the hub did not have: created, labelled "
                "with its code (give it labels on the categories page)",
                where,
                code,
            )
            made.append(code)
    return made
