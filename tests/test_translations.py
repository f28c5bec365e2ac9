"""The pages' gettext catalogues, the language a page speaks, and the 403/404 pages.

The catalogue checks read the same files as pybabel (babel.cfg): a string added to the
code or a template without its French translation, or a .po edited without compiling
its .mo, fails here rather than showing English on a French page.
"""

from __future__ import annotations

import ast
import html
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po
from flask import Flask
from flask.testing import FlaskClient
from flask_babel import force_locale, ngettext

from gateway.config import GroupConfig, MachineConfig, Seed, SeedMember
from gateway.hub import accounts
from gateway.hub.catalogue import sync_catalogue
from gateway.hub.db import HubStore
from gateway.hub.events.ingest import ingest_envelopes
from gateway.hub.seed import import_seed
from gateway.web import create_app
from gateway.web.dates import short_date
from gateway.web.labels import label
from tests.support import builders
from tests.support.builders import hub_config
from tests.support.clock import FakeClock

ROOT = Path(__file__).resolve().parent.parent
PO = ROOT / "gateway/web/translations/fr/LC_MESSAGES/messages.po"
MO = PO.with_suffix(".mo")
PASSWORD = "correct horse battery staple"
_FORMAT = re.compile(r"%\((\w+)\)s")


def _po():  # type: ignore[no-untyped-def]
    with PO.open("rb") as fh:
        return read_po(fh, locale="fr")


def _extracted() -> set[tuple[str, str | None]]:
    with (ROOT / "babel.cfg").open() as fh:
        method_map, options_map = parse_mapping_cfg(fh)
    found = set()
    for _file, _line, message, _comments, context in extract_from_dir(
        str(ROOT), method_map, options_map
    ):
        msgid = message[0] if isinstance(message, tuple) else message
        found.add((msgid, context))
    return found


# -- the catalogues ---------------------------------------------------------------------


def test_every_string_of_the_code_and_templates_has_its_french_translation() -> None:
    used = _extracted()
    assert len(used) > 400  # the extraction really read the pages
    catalogue = {
        ((m.id[0] if isinstance(m.id, tuple) else m.id), m.context): m for m in _po() if m.id
    }
    missing = sorted(str(k) for k in used if k not in catalogue)
    assert not missing, f"not in {PO.name} (run the update, docs/translations.md): {missing}"
    empty = [
        k
        for k in used
        if not all(catalogue[k].string if isinstance(catalogue[k].string, tuple) else [True])
        or not catalogue[k].string
        or catalogue[k].fuzzy
    ]
    assert not empty, f"untranslated or fuzzy in {PO.name}: {sorted(map(str, empty))}"


def _code_msgids() -> set[str]:
    """The literal msgids of every gettext call in the web package's Python, read from
    the syntax tree (which joins adjacent literals however they are parenthesised)."""
    found: set[str] = set()
    for path in (ROOT / "gateway/web").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", getattr(node.func, "attr", ""))
            position = {"gettext": 0, "ngettext": 0, "lazy_gettext": 0, "pgettext": 1}
            if name in position and len(node.args) > position[name]:
                arg = node.args[position[name]]
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    found.add(arg.value)
    return found


def test_extraction_finds_every_msgid_the_python_code_uses() -> None:
    """pybabel's extractor misses some literal shapes (a parenthesised concatenation):
    such a string would silently stay English on a French page."""
    extracted = {msgid for msgid, _ in _extracted()}
    missed = sorted(_code_msgids() - extracted)
    assert not missed, f"gettext literals pybabel does not extract (write them plainly): {missed}"


def test_translations_keep_the_placeholders_of_their_msgid() -> None:
    for m in _po():
        if not m.id:
            continue
        ids = m.id if isinstance(m.id, tuple) else (m.id,)
        strings = m.string if isinstance(m.string, tuple) else (m.string,)
        wanted = set().union(*(_FORMAT.findall(i) for i in ids)) - {"num"}
        for s in strings:
            assert set(_FORMAT.findall(s)) - {"num"} <= wanted, (m.id, s)
            # A plural form may leave the count out ("du projet le plus actif"), never
            # another value: each other placeholder of the msgid is in each form.
            assert wanted <= set(_FORMAT.findall(s)), (m.id, s)


def test_the_compiled_mo_is_the_po() -> None:
    """The .mo the package ships is what the .po says (compile after every edit)."""
    po = _po()
    fresh = BytesIO()
    write_mo(fresh, po)
    fresh.seek(0)
    compiled = read_mo(fresh)
    with MO.open("rb") as fh:
        shipped = read_mo(fh)

    def table(cat) -> dict[object, object]:  # type: ignore[no-untyped-def]
        def frozen(v: object) -> object:
            return tuple(v) if isinstance(v, list | tuple) else v

        return {(frozen(m.id), m.context): frozen(m.string) for m in cat if m.id}

    assert table(shipped) == table(compiled), "run pybabel compile (docs/translations.md)"
    assert shipped.plural_expr == compiled.plural_expr


def test_plural_rules_of_french_and_english(app: Flask) -> None:
    """French says "0 document" and "1 document", English "0 documents" and "1 document"."""
    with app.test_request_context("/"):
        with force_locale("fr"):
            fr = [ngettext("%(num)s document", "%(num)s documents", n) for n in (0, 1, 2, 1000)]
            two = ngettext(
                "Month %(period)s closed: %(num)s document issued.",
                "Month %(period)s closed: %(num)s documents issued.",
                2,
                period="2026-10",
            )
        with force_locale("en"):
            en = [ngettext("%(num)s document", "%(num)s documents", n) for n in (0, 1, 2)]
    assert fr == ["0 document", "1 document", "2 documents", "1000 documents"]
    assert two == "Mois 2026-10 clôturé : 2 documents émis."
    assert en == ["0 documents", "1 document", "2 documents"]


def test_a_code_without_words_shows_itself(app: Flask) -> None:
    with app.test_request_context("/?lang=fr"):
        assert label("state", "free") == "Libre"
        assert label("state", "exploded") == "exploded"
        assert label("no-such-family", "x") == "x"


# -- dates ------------------------------------------------------------------------------


def test_dates_carry_their_year_only_when_it_is_not_this_year() -> None:
    now = datetime(2026, 11, 25, 12, tzinfo=UTC)
    kw = {"now": now, "tz": "Europe/Paris"}
    assert short_date("2026-03-03T13:05:00.000Z", lang="fr", **kw) == "3 mars"
    assert short_date("2025-03-03T13:05:00.000Z", lang="fr", **kw) == "3 mars 2025"
    assert short_date("2025-03-03T13:05:00.000Z", lang="en", **kw) == "Mar 3, 2025"
    assert short_date("2026-03-03T13:05:00.000Z", lang="fr", time=True, **kw) == "3 mars 14:05"
    assert short_date("2026-03-03T13:05:00.000Z", lang="en", time=True, **kw) == "Mar 3, 14:05"
    assert short_date("2027-01-31", lang="fr", **kw) == "31 janv. 2027"  # a local day
    # New Year's Eve in Paris is already next year: "this year" is the local one.
    assert short_date("2026-12-31T23:30:00.000Z", lang="fr", **kw) == "1 janv. 2027"
    assert short_date(None, lang="fr", **kw) == ""


def test_the_pages_read_this_year_from_the_app_clock(tmp_path: Path) -> None:
    """The board's dates follow the injected clock: a session of 2026 shows its year once
    the clock says 2027, and none while it says 2026."""
    db = tmp_path / "hub.sqlite"
    laser = MachineConfig("laser1", "Laser Trotec", "laser", "laser")
    with HubStore(db) as store:
        sync_catalogue(store, [GroupConfig("laser", "Laser")], [laser])
        import_seed(
            store,
            Seed(file=tmp_path / "s.yaml", members=(SeedMember("m1", "Zoé", "adherent"),)),
        )
        start = datetime(2026, 11, 3, 17, tzinfo=UTC)
        ingest_envelopes(store, builders.session_events("S1", start, 600, "m1", "laser1"), start)
    cfg = hub_config(tmp_path, db)

    def board_at(when: datetime) -> str:
        app = create_app(cfg, clock=FakeClock(when).wall)
        return html.unescape(app.test_client().get("/fragments/board").get_data(as_text=True))

    this_year = board_at(datetime(2026, 11, 27, 12, tzinfo=UTC))
    next_year = board_at(datetime(2027, 2, 1, 12, tzinfo=UTC))
    assert "<td>3 nov. 18:00</td>" in this_year and "2026" not in this_year
    assert "<td>3 nov. 2026 18:00</td>" in next_year


# -- the language of a page and the 403/404 pages ---------------------------------------


@pytest.fixture
def app(tmp_path: Path, cheap_passwords: None) -> Iterator[Flask]:
    db = tmp_path / "hub.db"
    with HubStore(db) as store:
        import_seed(
            store,
            Seed(
                file=tmp_path / "seed.yaml",
                members=(
                    SeedMember("m-alice", "Alice Martin", "adherent"),
                    SeedMember("m-fab", "Karim Benali", "professionnel", staff=True),
                ),
            ),
        )
        for member in ("m-alice", "m-fab"):
            accounts.create_account(
                store, member, f"{member}@example.org", actor="t", password=PASSWORD
            )
        accounts.grant_role(store, "m-fab", "fabmanager", None, actor="t")
    app = create_app(hub_config(tmp_path, db, language="en"))
    app.config["TESTING"] = True
    yield app


def _logged_in(app: Flask, member: str) -> FlaskClient:
    c = app.test_client()
    page = c.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token
    resp = c.post(
        "/login",
        data={"email": f"{member}@example.org", "password": PASSWORD, "csrf_token": token[1]},
    )
    assert resp.status_code == 302
    return c


def test_the_site_language_is_the_default_and_a_choice_sticks(app: Flask) -> None:
    c = app.test_client()
    assert "Recent sessions" in c.get("/").get_data(as_text=True)  # language: en
    assert "Dernières sessions" in c.get("/?lang=fr").get_data(as_text=True)
    # Sticky: the next pages, without ?lang=, stay French (the cookie), log-in included.
    assert "Dernières sessions" in c.get("/").get_data(as_text=True)
    assert "Mot de passe" in c.get("/login").get_data(as_text=True)
    assert "Recent sessions" in app.test_client().get("/").get_data(as_text=True)


def test_switching_language_keeps_the_page_and_its_query(app: Flask) -> None:
    fab = _logged_in(app, "m-fab")
    page = fab.get("/members?q=mart&status=active&lang=fr").get_data(as_text=True)
    links = dict(re.findall(r'<a href="([^"]+)" hreflang="(\w\w)"', page)[::-1])
    en = html.unescape(next(h for h, code in links.items() if code == "en"))
    assert en.startswith("/members?") and "q=mart" in en and "status=active" in en
    assert en.endswith("lang=en") and en.count("lang=") == 1


def test_a_refused_page_is_a_styled_page_with_ways_back(app: Flask) -> None:
    alice = _logged_in(app, "m-alice")
    resp = alice.get(
        "/members?lang=fr",
        headers={"Accept": "text/html", "Referer": "http://localhost/me?lang=fr"},
    )
    assert resp.status_code == 403
    page = html.unescape(resp.get_data(as_text=True))
    assert '<section class="error-page" id="error-page" data-status="403">' in page
    assert "Accès refusé" in page and "Alice Martin" in page
    assert 'id="back-link" href="/me?lang=fr"' in page
    assert 'id="home-link" href="/"' in page
    assert 'id="relogin-link" href="/login?next=/members?lang%3Dfr"' in page
    assert "style.css" in page  # the site's own page, header and all
    english = alice.get("/invoices?lang=en", headers={"Accept": "text/html"})
    assert english.status_code == 403 and "Access denied" in english.get_data(as_text=True)
    # Another site's page is never offered as the way back.
    other = alice.get("/members", headers={"Accept": "text/html", "Referer": "http://evil/x"})
    assert 'id="back-link"' not in other.get_data(as_text=True)
    # A program gets a short plain answer, in the same words.
    api = alice.get("/members?lang=en", headers={"Accept": "application/json"})
    assert api.status_code == 403 and api.mimetype == "text/plain"
    assert api.get_data(as_text=True).startswith("Access denied")


def test_a_missing_page_is_a_styled_404(app: Flask) -> None:
    resp = app.test_client().get("/no/such/page?lang=fr", headers={"Accept": "text/html"})
    assert resp.status_code == 404
    page = html.unescape(resp.get_data(as_text=True))
    assert 'data-status="404"' in page and "Page introuvable" in page
    assert 'id="relogin-link"' not in page and 'id="home-link"' in page
