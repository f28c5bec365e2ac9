"""Every route, as every role: what each view declares is what the server does.

The routes come from ``app.url_map``, never from a list kept by hand, so a route added
tomorrow is checked tomorrow: it must carry a declaration (``@public`` or
``@requires``), and each GET route is requested as anonymous, member, trainer,
fabmanager, accountant and admin, expecting what its declaration says:

- public: an answer below 400 for everyone (and never a trip to the log-in page);
- requires(roles): anonymous browsers are sent to /login (401 without Accept: HTML),
  accounts without the role get 403, the others an answer below 400;
- a bearer scope (API views, the report): refused without a token, 403 with a token of
  another scope, below 400 with the right one or a config token.

Unsafe methods are also posted to, as admin, without a CSRF token: all must say 400.

Path parameters are filled from the seeded database by their name. A new parameter
name fails the test with the name to add to ``sample_values``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from werkzeug.routing import Rule

from gateway.hub import accounts
from gateway.hub.enrolment import create_enrolment
from gateway.hub.events.ingest import ingest_envelopes
from gateway.hub.tokens import SCOPES, create_token
from gateway.web import auth, create_app
from gateway.web.bearer import view_scope
from tests.support.hashing import cheap_hashing
from tests.test_auth import CONFIG_TOKEN, PASSWORD, PEOPLE, Client, hub_config, serve
from tests.test_invoicing import NOV, NOVEMBER_SESSIONS, close, events_for, make_store

ROLES = ("anonymous", "member", "trainer", "fabmanager", "accountant", "admin")
UNSAFE = ("POST", "PUT", "PATCH", "DELETE")


@dataclass
class Matrix:
    app: Flask
    base: str
    values: dict[str, str]
    tokens: dict[str, str]  # scope -> a database token with only that scope
    clients: dict[str, Client]


def _seed(db: Path) -> tuple[dict[str, str], dict[str, str]]:
    store = make_store(db)  # members m1, m2, m3; projects; groups; machines
    try:
        ingest_envelopes(store, events_for(NOVEMBER_SESSIONS), NOV)
        close(store, "2026-11")
        with store.conn:
            for member_id, name, _ in PEOPLE.values():
                store.conn.execute(
                    "INSERT OR IGNORE INTO members (id, name, category) VALUES (?, ?, 'adherent')",
                    (member_id, name),
                )
            store.conn.execute("INSERT INTO badges (uid, member_id) VALUES ('04A1B2C3', 'm1')")
        for role, (member_id, _, email) in PEOPLE.items():
            accounts.create_account(store, member_id, email, actor="test", password=PASSWORD)
            if role != "member":
                accounts.grant_role(
                    store, member_id, role, "laser" if role == "trainer" else None, actor="test"
                )
        request_id = create_enrolment(store, "m1", by="fab", now=datetime.now(UTC))
        tokens = {s: create_token(store, f"only {s}", [s], created_by="adm")[1] for s in SCOPES}
        number = store.conn.execute("SELECT number FROM invoices ORDER BY seq").fetchone()[0]
        token_id = store.conn.execute("SELECT min(id) FROM api_tokens").fetchone()[0]
    finally:
        store.close()
    values = {
        "member_id": "m1",
        "group_id": "laser",
        "uid": "04A1B2C3",
        "request_id": request_id,
        "session_id": "S1",
        "project_id": "p1",
        "number": number,
        "period": "2026-11",
        "token_id": str(token_id),
        "filename": "style.css",
        "machine_id": "laser1",
        "machine": "laser1",
    }
    return values, tokens


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Matrix]:
    tmp = tmp_path_factory.mktemp("matrix")
    db = tmp / "hub.sqlite"
    # Hashing cost is tested in test_auth; here it would only slow six log-ins down.
    with cheap_hashing():
        values, tokens = _seed(db)
        app = create_app(hub_config(tmp, db))
        with serve(app) as base:
            clients = {"anonymous": Client(base)}
            for role, (_, _, email) in PEOPLE.items():
                clients[role] = Client(base)
                answer = clients[role].login(email)
                assert answer.status == 302, f"{role} cannot log in: {answer.body[:200]}"
            yield Matrix(app, base, values, tokens, clients)


def _rules(app: Flask, method: str) -> list[Rule]:
    return sorted(
        (r for r in app.url_map.iter_rules() if method in (r.methods or ())), key=lambda r: r.rule
    )


def _url(rule: Rule, values: dict[str, str]) -> str:
    missing = sorted(a for a in rule.arguments if a not in values)
    if missing:
        pytest.fail(
            f"route {rule.rule} has path parameters {missing} that this test "
            f"cannot fill: add a sample value to _seed() in {__file__}"
        )
    path = rule.rule
    for name in rule.arguments:
        path = path.replace(f"<{name}>", values[name])
        for converter in ("int", "path", "string", "any", "float", "uuid"):
            path = path.replace(f"<{converter}:{name}>", values[name])
    assert "<" not in path, f"could not fill {rule.rule}"
    return path


def _allowed(role: str, declared: frozenset[str]) -> bool:
    """Written out again here rather than calling the code under test: every account is a
    member, and admins may do everything."""
    if role == "anonymous":
        return False
    return role == "admin" or role in declared or "member" in declared


def _judge(
    role: str,
    declared: Any,
    scope: str | None,
    status: int,
    location: str,
    owner_scoped: bool = False,
) -> str | None:
    """None if the answer fits the declaration, else what was expected. An owner-scoped
    view (a member's own invoice PDF) may answer 404 to a role that is not staff: the
    sample document is the member's (m1), not the trainer's."""
    to_login = status == 302 and location.startswith("/login")
    if owner_scoped and status == 404 and role in ("trainer",):
        return None
    if declared == auth.PUBLIC and scope:
        return None if status == 401 else "401 (an API view wants a bearer token)"
    if declared == auth.PUBLIC:
        return None if status < 400 and not to_login else "an answer below 400"
    if role == "anonymous":
        return None if to_login else "302 to /login"
    if _allowed(role, declared):
        return None if status < 400 and not to_login else "an answer below 400"
    return None if status == 403 else "403"


def test_every_route_declares_who_may_use_it(matrix: Matrix) -> None:
    undeclared = sorted(
        f"{r.rule} ({r.endpoint})"
        for r in matrix.app.url_map.iter_rules()
        if auth.declaration(matrix.app, r.endpoint) is None
    )
    assert not undeclared, "routes without @public or @requires(...): " + ", ".join(undeclared)
    assert len(list(matrix.app.url_map.iter_rules())) > 10  # the walk saw the real app


@pytest.mark.parametrize("role", ROLES)
def test_every_get_route_answers_each_role_as_declared(matrix: Matrix, role: str) -> None:
    client = matrix.clients[role]
    wrong = []
    rules = _rules(matrix.app, "GET")
    for rule in rules:
        path = _url(rule, matrix.values)
        answer = client.get(path)
        declared = auth.declaration(matrix.app, rule.endpoint)
        scope = view_scope(matrix.app, rule.endpoint)
        owner = bool(getattr(matrix.app.view_functions[rule.endpoint], "fabgate_owner_scoped", 0))
        expected = _judge(role, declared, scope, answer.status, answer.location, owner)
        if expected:
            wrong.append(
                f"GET {path} as {role}: {answer.status} "
                f"{answer.location or answer.body[:120]!r}, expected {expected}"
            )
        if role == "anonymous" and declared != auth.PUBLIC:
            api_like = client.get(path, headers={"Accept": "application/json"})
            if api_like.status != 401:
                wrong.append(
                    f"GET {path} without a session, not asking for HTML: "
                    f"{api_like.status}, expected 401"
                )
    assert not wrong, "\n".join(wrong)
    assert any(auth.declaration(matrix.app, r.endpoint) != auth.PUBLIC for r in rules)


def test_every_scoped_route_honours_bearer_scopes(matrix: Matrix) -> None:
    client = matrix.clients["anonymous"]
    wrong, seen = [], 0
    for rule in _rules(matrix.app, "GET"):
        scope = view_scope(matrix.app, rule.endpoint)
        if not scope:
            continue
        seen += 1
        path = _url(rule, matrix.values)
        other = next(s for s in SCOPES if s != scope)
        for token, ok in (
            (matrix.tokens[scope], True),
            (CONFIG_TOKEN, True),
            (matrix.tokens[other], False),
            ("not-a-token", None),
        ):
            status = client.get(
                path, headers={"Authorization": f"Bearer {token}", "Accept": "application/json"}
            ).status
            expected = {True: status < 400, False: status == 403, None: status == 401}[ok]
            if not expected:
                wrong.append(f"GET {path} with a {token[:12]}… token: {status}")
    assert not wrong, "\n".join(wrong)
    assert seen >= 5


def test_every_unsafe_route_wants_a_csrf_token(matrix: Matrix) -> None:
    admin = matrix.clients["admin"]
    wrong, seen = [], 0
    for method in UNSAFE:
        for rule in _rules(matrix.app, method):
            declared = auth.declaration(matrix.app, rule.endpoint)
            if declared == auth.PUBLIC and view_scope(matrix.app, rule.endpoint):
                continue  # API views: bearer tokens only, no cookie to forge with
            seen += 1
            path = _url(rule, matrix.values)
            answer = admin.request(method, path, {"anything": "x"})
            if answer.status != 400:
                wrong.append(
                    f"{method} {path} as admin without a CSRF token: {answer.status}, expected 400"
                )
    assert not wrong, "\n".join(wrong)
    assert seen >= 3
