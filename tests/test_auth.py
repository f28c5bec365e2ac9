"""Accounts over real HTTP: log-in, cookie flags, CSRF, lock-out, API tokens, audit log.

The app runs in a werkzeug server on a free port (and once over TLS, for the cookie's
``Secure`` flag); a client keeps cookies in an ``http.cookiejar`` like a browser and
does not follow redirects, so each answer is seen as sent.
"""

from __future__ import annotations

import hashlib
import http.cookiejar
import io
import re
import sqlite3
import ssl
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest
from argon2 import PasswordHasher, extract_parameters
from flask import Flask
from werkzeug.serving import make_server

from gateway.cli import main as fabgate
from gateway.config import ApiToken, GroupConfig, HubConfig, MachineConfig
from gateway.core.clock import iso, utcnow
from gateway.hub import accounts, audit
from gateway.hub.catalogue import sync_catalogue
from gateway.hub.db import HubStore
from gateway.web import auth, create_app
from gateway.web.auth import requires
from gateway.web.bearer import scope
from tests.support import builders

PASSWORD = "correct horse battery"
CONFIG_TOKEN = "config-token-0123456789abcdef"
GROUPS = (GroupConfig("laser", "Laser"), GroupConfig("cnc", "CNC"))
MACHINES = (MachineConfig("laser1", "Laser Trotec", "laser", "laser"),)
# role -> (member id, name, email); "member" has no stored role.
PEOPLE = {
    "member": ("m1", "Alice Martin", "alice@example.org"),
    "trainer": ("m2", "Bruno Lefèvre", "bruno@example.org"),
    "fabmanager": ("fab", "Farida Manager", "farida@example.org"),
    "accountant": ("acc", "Camille Compta", "camille@example.org"),
    "admin": ("adm", "Ada Admin", "ada@example.org"),
}


def hub_config(tmp_path: Path, db: Path) -> HubConfig:
    return builders.hub_config(
        tmp_path,
        db,
        tokens=(ApiToken("admin", CONFIG_TOKEN),),
        groups=GROUPS,
        machines=MACHINES,
        invoicing=builders.INVOICING,
    )


def seed_people(store: HubStore) -> None:
    """One account per role, all with PASSWORD; the trainer trains on laser."""
    sync_catalogue(store, list(GROUPS), list(MACHINES))
    with store.conn:
        for member_id, name, _ in PEOPLE.values():
            store.conn.execute(
                "INSERT OR IGNORE INTO members (id, name, category) VALUES (?, ?, 'adherent')",
                (member_id, name),
            )
    for role, (member_id, _, email) in PEOPLE.items():
        accounts.create_account(store, member_id, email, actor="test", password=PASSWORD)
        if role != "member":
            accounts.grant_role(
                store, member_id, role, "laser" if role == "trainer" else None, actor="test"
            )


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    cookies: list[str]
    body: str

    @property
    def location(self) -> str:
        return self.headers.get("Location", "")


@dataclass
class Client:
    """A browser-like client: one cookie jar, no automatic redirects."""

    base: str
    ssl_context: ssl.SSLContext | None = None
    jar: http.cookiejar.CookieJar = field(default_factory=http.cookiejar.CookieJar)
    accept: str = "text/html,application/xhtml+xml,*/*;q=0.8"

    def __post_init__(self) -> None:
        handlers: list[urllib.request.BaseHandler] = [
            urllib.request.HTTPCookieProcessor(self.jar),
            _NoRedirect(),
        ]
        if self.ssl_context is not None:
            handlers.append(urllib.request.HTTPSHandler(context=self.ssl_context))
        self.opener = urllib.request.build_opener(*handlers)

    def request(
        self,
        method: str,
        path: str,
        form: dict[str, str | list[str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        data = urllib.parse.urlencode(form, doseq=True).encode() if form is not None else None
        req = urllib.request.Request(
            self.base + path,
            data=data,
            method=method,
            headers={"Accept": self.accept, **(headers or {})},
        )
        try:
            resp = self.opener.open(req, timeout=30)
        except urllib.error.HTTPError as err:
            resp = err
        with resp:
            return Answer(
                resp.status,
                dict(resp.headers),
                resp.headers.get_all("Set-Cookie") or [],
                resp.read().decode(errors="replace"),  # a PDF is bytes
            )

    def get(self, path: str, **kw: object) -> Answer:
        return self.request("GET", path, **kw)  # type: ignore[arg-type]

    def post(
        self, path: str, form: dict[str, str | list[str]] | None = None, **kw: object
    ) -> Answer:
        return self.request("POST", path, form if form is not None else {}, **kw)  # type: ignore[arg-type]

    def csrf(self, path: str = "/login") -> str:
        page = self.get(path)
        found = re.search(r'name="csrf_token" value="([^"]+)"', page.body)
        assert found, f"no CSRF field on {path} ({page.status})"
        return found.group(1)

    def login(self, email: str, password: str = PASSWORD, next_: str = "/") -> Answer:
        return self.post(
            "/login",
            {"email": email, "password": password, "next": next_, "csrf_token": self.csrf()},
        )


@dataclass
class Hub:
    base: str
    db: Path
    cfg: HubConfig
    app: Flask

    def client(self) -> Client:
        return Client(self.base)

    def store(self) -> HubStore:
        return HubStore(self.db)


def add_staff_page(app: Flask) -> None:
    """A page for staff that also takes a ``report`` token, like the activity report,
    so these tests do not depend on which real pages are restricted today."""

    def staff_page() -> str:
        user = auth.current_user()
        return f"staff page for {user.member_id if user else 'a token'}"

    view = requires("accountant", "admin", "fabmanager")(scope("report")(staff_page))
    app.add_url_rule("/staff-page", "staff_page", view)


@contextmanager
def serve(app: Flask, *, tls: bool = False) -> Iterator[str]:
    httpd = make_server("127.0.0.1", 0, app, threaded=True, ssl_context="adhoc" if tls else None)
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{httpd.server_port}"
    finally:
        httpd.shutdown()
        thread.join(timeout=5)


@pytest.fixture
def hub(tmp_path: Path, cheap_passwords: None) -> Iterator[Hub]:
    db = tmp_path / "data" / "hub.sqlite"
    db.parent.mkdir()
    with HubStore(db) as store:
        seed_people(store)
    cfg = hub_config(tmp_path, db)
    app = create_app(cfg)
    add_staff_page(app)
    with serve(app) as base:
        yield Hub(base, db, cfg, app)


def restarted(hub: Hub) -> Flask:
    app = create_app(hub.cfg)
    add_staff_page(app)
    return app


def email(role: str) -> str:
    return PEOPLE[role][2]


# -- log-in ---------------------------------------------------------------------------


def test_login_opens_a_session_that_reaches_a_staff_page(hub: Hub) -> None:
    c = hub.client()
    first = c.get("/staff-page")
    assert first.status == 302 and first.location.startswith("/login?next=/staff-page")
    answer = c.login(email("fabmanager"), next_="/staff-page")
    assert answer.status == 302 and answer.location == "/staff-page"
    assert c.get("/staff-page").status == 200
    member = hub.client()
    member.login(email("member"))
    assert member.get("/staff-page").status == 403
    page = c.get("/account/password")
    assert page.status == 200 and "Farida Manager" in page.body and "fabmanager" in page.body
    with hub.store() as store:
        row = store.conn.execute(
            "SELECT last_login_at FROM accounts WHERE member_id = 'fab'"
        ).fetchone()
    assert row[0] is not None


@pytest.mark.parametrize(
    "who, password",
    [
        ("farida@example.org", "wrong password!"),
        ("nobody@example.org", PASSWORD),
        ("FARIDA@example.org ", ""),
    ],
)
def test_a_failed_login_says_so_and_opens_nothing(hub: Hub, who: str, password: str) -> None:
    c = hub.client()
    answer = c.login(who, password)
    assert answer.status == 401
    assert "Adresse e-mail ou mot de passe incorrect" in answer.body
    assert c.get("/staff-page").status == 302
    assert c.get("/staff-page", headers={"Accept": "application/json"}).status == 401


def test_email_is_case_insensitive(hub: Hub) -> None:
    c = hub.client()
    assert c.login("  Farida@Example.ORG ").status == 302
    assert c.get("/staff-page").status == 200


def test_a_weaker_hash_is_replaced_at_login(hub: Hub, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(accounts, "hasher", PasswordHasher())  # the real parameters are the point
    weak = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1).hash(PASSWORD)
    with hub.store() as store, store.conn:
        store.conn.execute("UPDATE accounts SET password_hash = ? WHERE member_id = 'fab'", (weak,))
    c = hub.client()
    assert c.login(email("fabmanager")).status == 302
    with hub.store() as store:
        stored = store.conn.execute(
            "SELECT password_hash FROM accounts WHERE member_id = 'fab'"
        ).fetchone()[0]
    assert stored != weak
    now, default = extract_parameters(stored), extract_parameters(PasswordHasher().hash("x"))
    assert now == default and now.type.name == "ID"
    # The rehashed password still opens the account.
    assert hub.client().login(email("fabmanager")).status == 302


def test_next_never_leaves_the_site(hub: Hub) -> None:
    for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        answer = hub.client().login(email("admin"), next_=target)
        assert answer.status == 302
        assert answer.location == "/", target


def test_logout_ends_the_session(hub: Hub) -> None:
    c = hub.client()
    c.login(email("admin"))
    token = c.csrf("/account/password")
    assert c.post("/logout", {"csrf_token": token}).status == 302
    assert c.get("/account/password").status == 302


def test_a_password_change_ends_other_sessions(hub: Hub) -> None:
    laptop, phone = hub.client(), hub.client()
    laptop.login(email("member"))
    phone.login(email("member"))
    new = "an even longer passphrase"
    answer = laptop.post(
        "/account/password",
        {
            "current": PASSWORD,
            "new": new,
            "confirm": new,
            "csrf_token": laptop.csrf("/account/password"),
        },
    )
    assert answer.status == 200 and "Mot de passe changé" in answer.body
    assert laptop.get("/account/password").status == 200
    assert phone.get("/account/password").status == 302
    assert hub.client().login(email("member")).status == 401
    assert hub.client().login(email("member"), new).status == 302
    with hub.store() as store:
        assert [e["action"] for e in audit.entries(store, subject="m1")][
            0
        ] == audit.PASSWORD_CHANGED


def test_a_short_new_password_is_refused(hub: Hub) -> None:
    c = hub.client()
    c.login(email("member"))
    answer = c.post(
        "/account/password",
        {
            "current": PASSWORD,
            "new": "short",
            "confirm": "short",
            "csrf_token": c.csrf("/account/password"),
        },
    )
    assert answer.status == 400
    assert hub.client().login(email("member")).status == 302


# -- cookie -----------------------------------------------------------------------------


def _session_cookie(answer: Answer) -> str:
    found = [c for c in answer.cookies if c.startswith(f"{auth.COOKIE_NAME}=")]
    assert found, answer.cookies
    return found[-1]


def test_session_cookie_is_httponly_and_samesite_lax(hub: Hub) -> None:
    c = hub.client()
    cookie = _session_cookie(c.login(email("member")))
    attrs = {a.strip().split("=")[0].lower(): a.strip() for a in cookie.split(";")[1:]}
    assert "httponly" in attrs
    assert attrs["samesite"].lower() == "samesite=lax"
    assert "secure" not in attrs  # plain http here: a Secure cookie would be lost


def test_session_cookie_is_secure_over_tls(hub: Hub) -> None:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # werkzeug's throw-away self-signed certificate
    with serve(hub.app, tls=True) as base:
        c = Client(base, ssl_context=context)
        cookie = _session_cookie(c.login(email("member")))
        assert "secure" in [a.strip().lower() for a in cookie.split(";")[1:]]
        assert c.get("/account/password").status == 200


def test_secret_key_is_private_and_survives_a_restart(hub: Hub) -> None:
    key_file = hub.db.parent / auth.SECRET_FILE
    assert key_file.stat().st_mode & 0o777 == 0o600
    c = hub.client()
    c.login(email("member"))
    # A second app on the same database (a restarted hub) accepts the same cookie.
    with serve(restarted(hub)) as base:
        c.base = base
        assert c.get("/account/password").status == 200


# -- CSRF -------------------------------------------------------------------------------


def test_post_without_a_valid_csrf_token_is_refused(hub: Hub) -> None:
    c = hub.client()
    assert c.post("/login", {"email": email("member"), "password": PASSWORD}).status == 400
    c.login(email("member"))
    new = "an even longer passphrase"
    form = {"current": PASSWORD, "new": new, "confirm": new}
    assert c.post("/account/password", form).status == 400
    assert c.post("/account/password", {**form, "csrf_token": "forged"}).status == 400
    # Another session's token is no good either.
    other = hub.client()
    other.login(email("admin"))
    stolen = other.csrf("/account/password")
    assert c.post("/account/password", {**form, "csrf_token": stolen}).status == 400
    assert hub.client().login(email("member")).status == 302  # password unchanged
    ok = c.post("/account/password", {**form, "csrf_token": c.csrf("/account/password")})
    assert ok.status == 200


# -- lock-out -----------------------------------------------------------------------------


def test_five_failures_lock_the_email_for_fifteen_minutes_across_restarts(hub: Hub) -> None:
    c = hub.client()
    statuses = [c.login(email("member"), f"wrong {i}").status for i in range(5)]
    assert statuses == [401, 401, 401, 401, 429]
    with hub.store() as store, store.conn:
        # Leave only the email's lock: the address lock is tested on its own below.
        store.conn.execute("DELETE FROM login_throttle WHERE key LIKE 'addr:%'")
        failed, until = store.conn.execute(
            "SELECT failed_logins, locked_until FROM accounts WHERE member_id = 'm1'"
        ).fetchone()
    assert failed == 5 and until > iso(utcnow() + timedelta(minutes=14))
    locked = c.login(email("member"))  # the right password, during the lock
    assert locked.status == 429 and int(locked.headers["Retry-After"]) > 14 * 60
    assert "bloquée" in locked.body
    with serve(restarted(hub)) as base:  # a restart does not lift it
        assert Client(base).login(email("member")).status == 429
    assert hub.client().login(email("admin")).status == 302  # other accounts still work
    with hub.store() as store, store.conn:  # fifteen minutes later
        store.conn.execute(
            "UPDATE login_throttle SET locked_until = ?", (iso(utcnow() - timedelta(seconds=1)),)
        )
    assert hub.client().login(email("member")).status == 302


def test_five_failures_from_one_address_lock_that_address(hub: Hub) -> None:
    c = hub.client()
    for i in range(5):
        c.login(f"guess{i}@example.org", PASSWORD)
    # A sixth email, with its right password, from the same address.
    assert hub.client().login(email("admin")).status == 429
    with hub.store() as store, store.conn:
        store.conn.execute("DELETE FROM login_throttle WHERE key LIKE 'addr:%'")
    assert hub.client().login(email("admin")).status == 302


# -- API tokens ---------------------------------------------------------------------------


def _bearer(hub: Hub, path: str, token: str) -> int:
    return (
        hub.client()
        .get(path, headers={"Authorization": f"Bearer {token}", "Accept": "application/json"})
        .status
    )


def test_a_token_is_shown_once_works_for_its_scope_and_dies_when_revoked(hub: Hub) -> None:
    admin = hub.client()
    admin.login(email("admin"))
    page = admin.post(
        "/tokens",
        {
            "name": "Compta Dolibarr",
            "scopes": ["usage", "report"],
            "csrf_token": admin.csrf("/tokens"),
        },
    )
    assert page.status == 200 and page.headers["Cache-Control"] == "no-store"
    secret = re.search(r'<output id="new-token"><code>([^<]+)</code>', page.body).group(1)
    assert secret not in admin.get("/tokens").body  # shown once
    with hub.store() as store:
        token_id, stored = store.conn.execute("SELECT id, token_hash FROM api_tokens").fetchone()
    assert stored == hashlib.sha256(secret.encode()).hexdigest()

    assert _bearer(hub, "/api/v1/usage", secret) == 200
    assert _bearer(hub, "/staff-page", secret) == 200  # a page with a scope
    assert _bearer(hub, "/api/v1/invoices", secret) == 403  # not its scope
    assert _bearer(hub, "/api/v1/machines", secret) == 403
    with hub.store() as store:
        assert store.conn.execute("SELECT last_used_at FROM api_tokens").fetchone()[0]

    answer = admin.post(f"/tokens/{token_id}/revoke", {"csrf_token": admin.csrf("/tokens")})
    assert answer.status == 302
    assert _bearer(hub, "/api/v1/usage", secret) == 401
    assert _bearer(hub, "/staff-page", secret) == 401
    with hub.store() as store:
        actions = [e["action"] for e in audit.entries(store, subject=f"token:{token_id}")]
        assert actions == [audit.TOKEN_REVOKED, audit.TOKEN_CREATED]
        assert audit.verify(store) == []


def test_config_tokens_keep_every_scope(hub: Hub) -> None:
    for path in ("/api/v1/usage", "/api/v1/invoices", "/api/v1/machines", "/staff-page"):
        assert _bearer(hub, path, CONFIG_TOKEN) == 200, path
    assert _bearer(hub, "/api/v1/usage", CONFIG_TOKEN + "x") == 401


def test_a_bearer_header_never_rides_on_the_cookie(hub: Hub) -> None:
    c = hub.client()
    c.login(email("admin"))
    # Logged in, but a bad bearer token is judged alone: no fallback to the session.
    assert (
        c.get(
            "/staff-page", headers={"Authorization": "Bearer nope", "Accept": "application/json"}
        ).status
        == 401
    )
    assert c.get("/api/v1/usage").status == 401


def test_accountants_make_billing_tokens_only(hub: Hub) -> None:
    c = hub.client()
    c.login(email("accountant"))
    page = c.get("/tokens")
    assert 'value="invoices"' in page.body and 'value="machines"' not in page.body
    refused = c.post(
        "/tokens", {"name": "x", "scopes": ["machines"], "csrf_token": c.csrf("/tokens")}
    )
    assert refused.status == 403
    made = c.post(
        "/tokens", {"name": "export", "scopes": ["invoices"], "csrf_token": c.csrf("/tokens")}
    )
    assert made.status == 200
    member = hub.client()
    member.login(email("member"))
    assert member.get("/tokens").status == 403


# -- access declarations ------------------------------------------------------------------


def test_a_route_without_a_declaration_is_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "hub.sqlite"
    app = create_app(hub_config(tmp_path, db))
    app.add_url_rule("/forgotten", "forgotten", lambda: "secret")
    with serve(app) as base:
        assert Client(base).get("/forgotten").status == 500
    assert "forgotten" in caplog.text and "declares no access" in caplog.text


def test_requires_refuses_unknown_roles() -> None:
    with pytest.raises(ValueError):
        auth.requires("fabmanger")
    with pytest.raises(ValueError):
        auth.requires()


# -- audit log ----------------------------------------------------------------------------


def test_audit_chain_records_refuses_edits_and_detects_tampering(tmp_path: Path) -> None:
    with HubStore(tmp_path / "hub.sqlite") as store:
        for i in range(4):
            audit.record(store, "fab", audit.BADGE_BLOCKED, f"m{i}", {"uid": f"AA{i:02d}"})
        assert audit.verify(store) == []
        rows = store.conn.execute(
            "SELECT seq, prev_hash, hash FROM audit_log ORDER BY seq"
        ).fetchall()
        assert [r[0] for r in rows] == [1, 2, 3, 4]
        assert rows[0][1] == audit.GENESIS
        assert all(rows[i][1] == rows[i - 1][2] for i in range(1, 4))
        with pytest.raises(sqlite3.IntegrityError, match="append-only"), store.conn:
            store.conn.execute("UPDATE audit_log SET actor = 'x' WHERE seq = 2")
        with pytest.raises(sqlite3.IntegrityError, match="append-only"), store.conn:
            store.conn.execute("DELETE FROM audit_log WHERE seq = 4")

        with store.conn:
            store.conn.execute("DROP TRIGGER audit_log_no_update")
            store.conn.execute("DROP TRIGGER audit_log_no_delete")
            store.conn.execute("""UPDATE audit_log SET details = '{"uid":"BB01"}'
                                  WHERE seq = 2""")
        problems = audit.verify(store)
        assert len(problems) == 1 and problems[0].startswith("entry 2: content")
        with store.conn:
            store.conn.execute("DELETE FROM audit_log WHERE seq = 3")
        problems = audit.verify(store)
        assert any(p.startswith("entry 4: expected entry 3") for p in problems)
        assert any(p.startswith("entry 4: prev_hash") for p in problems)


def test_audit_entry_joins_the_callers_transaction(tmp_path: Path) -> None:
    with HubStore(tmp_path / "hub.sqlite") as store:
        with pytest.raises(RuntimeError), store.conn:
            store.conn.execute("INSERT INTO meta (key, value) VALUES ('x', '1')")
            audit.record(store, "fab", audit.CREDIT_ADDED, "m1", {"cents": 500})
            raise RuntimeError("the change fails")
        assert audit.head(store) is None
        with pytest.raises(ValueError):
            audit.record(store, "fab", "Credit added", "m1", {})


def _hub_yaml(tmp_path: Path, db: Path) -> Path:
    path = tmp_path / "hub.yaml"
    path.write_text(
        f"site: demo-lab\ntimezone: Europe/Paris\nhub:\n  database: {db}\n"
        "groups:\n  - id: laser\n    name: Laser\n"
    )
    return path


def test_fabgate_audit_verify(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "hub.sqlite"
    cfg = _hub_yaml(tmp_path, db)
    with HubStore(db) as store:
        audit.record(store, "fab", audit.ROLE_GRANTED, "m1", {"role": "trainer"})
        audit.record(store, "fab", audit.ROLE_REVOKED, "m1", {"role": "trainer"})
        head = audit.head(store)
    assert fabgate(["audit", "verify", "--config", str(cfg)]) == 0
    assert f"2 entries, head {head[1]}" in capsys.readouterr().out  # type: ignore[index]
    with HubStore(db) as store, store.conn:
        store.conn.execute("DROP TRIGGER audit_log_no_update")
        store.conn.execute("UPDATE audit_log SET actor = 'someone else' WHERE seq = 1")
    assert fabgate(["audit", "verify", "--config", str(cfg)]) == 1
    assert "entry 1: content does not match" in capsys.readouterr().err


def test_fabgate_user_creates_the_first_admin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "data" / "hub.sqlite"
    db.parent.mkdir()
    cfg_file = _hub_yaml(tmp_path, db)
    with HubStore(db) as store, store.conn:
        store.conn.execute(
            "INSERT INTO members (id, name, category) VALUES ('adm', 'Ada Admin', 'adherent')"
        )
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert (
        fabgate(
            [
                "user",
                "add",
                "Ada@Example.org",
                "--member",
                "adm",
                "--role",
                "admin",
                "--config",
                str(cfg_file),
                "--password-stdin",
            ]
        )
        == 0
    )
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert (
        fabgate(
            ["user", "passwd", "ada@example.org", "--config", str(cfg_file), "--password-stdin"]
        )
        == 2
    )
    assert (
        fabgate(
            [
                "user",
                "add",
                "x@example.org",
                "--member",
                "ghost",
                "--config",
                str(cfg_file),
                "--password-stdin",
            ]
        )
        == 2
    )
    with serve(create_app(hub_config(tmp_path, db))) as base:
        c = Client(base)
        assert c.login("ada@example.org").status == 302
        assert c.get("/tokens").status == 200
    with HubStore(db) as store:
        actions = [e["action"] for e in audit.entries(store, subject="adm")]
        assert actions == [audit.ROLE_GRANTED, audit.ACCOUNT_CREATED]
        assert audit.verify(store) == []
