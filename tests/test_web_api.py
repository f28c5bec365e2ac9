"""The Flask app served by a real werkzeug server on a free port, spoken to over HTTP."""

from __future__ import annotations

import csv
import io
import json
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from gateway.config import (
    ApiToken,
    GroupConfig,
    MachineConfig,
    Seed,
    SeedMember,
)
from gateway.contract import Envelope
from gateway.core.clock import iso
from gateway.hub.catalogue import sync_catalogue
from gateway.hub.db import HubStore
from gateway.hub.events.ingest import ingest_envelopes
from gateway.hub.machine_state import set_node_status
from gateway.hub.seed import import_seed
from gateway.web import create_app
from tests.support.builders import hub_config, session_events
from tests.support.harness import http_request

TOKEN = "s3cret-token"
# Sessions in November 2026, Paris time (UTC+1).
T0 = datetime(2026, 11, 3, 17, 0, 5, tzinfo=UTC)


@dataclass
class Server:
    base: str
    db: Path

    def get(
        self, path: str, *, token: str | None = TOKEN, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        return http_request(self.base + path, token=token, headers=headers)

    def json(self, path: str, **kw: object) -> dict:
        status, _, body = self.get(path, **kw)  # type: ignore[arg-type]
        assert status == 200, body
        return json.loads(body)


def _session_events(
    sid: str, start: datetime, duration: float, member: str, machine: str, seq: int
) -> list[Envelope]:
    """Alice (m1) works on her project p1; the others on none."""
    return session_events(
        sid, start, duration, member, machine, "p1" if member == "m1" else None, seq
    )


class TrackedStore(HubStore):
    opened: list[TrackedStore] = []

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.closed = False
        TrackedStore.opened.append(self)

    def close(self) -> None:
        self.closed = True
        super().close()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    TrackedStore.opened.clear()
    db = tmp_path / "hub.sqlite"
    groups = (GroupConfig("laser", "Laser"),)
    machines = (
        MachineConfig("laser1", "Laser Trotec", "laser", "laser"),
        MachineConfig("laser2", "Laser Epilog", "laser", "laser"),
        MachineConfig("cnc1", "CNC", "cnc", "laser"),
    )
    cfg = hub_config(
        tmp_path,
        db,
        tokens=(ApiToken("compta", TOKEN), ApiToken("other", "another-one")),
        groups=groups,
        machines=machines,
    )
    with HubStore(db) as store:
        sync_catalogue(store, list(groups), list(machines))
        import_seed(
            store,
            Seed(
                file=tmp_path / "seed.yaml",
                members=(
                    SeedMember("m1", "Alice Martin", "adherent"),
                    SeedMember("m2", "Bruno <b>Lefèvre</b>", "adherent"),
                ),
            ),
        )
        events = (
            _session_events("S1", T0, 125.5, "m1", "laser1", 1)
            + _session_events("S2", T0 + timedelta(minutes=1), 60, "m2", "laser1", 3)
            + _session_events("S3", T0 + timedelta(days=1), 3601, "m1", "cnc1", 5)
            # 23:50 Paris on 30 November for 20 minutes: crosses into December.
            + _session_events(
                "S4", datetime(2026, 11, 30, 22, 50, tzinfo=UTC), 1200, "m2", "laser2", 7
            )
            # October: outside the default month.
            + _session_events("S0", datetime(2026, 10, 15, 10, tzinfo=UTC), 600, "m1", "laser1", 9)
        )
        ingest_envelopes(store, events, T0)
        ingest_envelopes(
            store, [_session_events("S5", T0 + timedelta(days=2), 60, "m1", "laser2", 11)[0]], T0
        )
        set_node_status(
            store,
            "laser2",
            {
                "node": "laser2",
                "machine": "laser2",
                "online": True,
                "relay": True,
                "time": iso(T0),
                "session": {"session_id": "S5", "member_id": "m1", "started_at": iso(T0)},
            },
        )
        set_node_status(
            store,
            "laser1",
            {
                "node": "laser1",
                "machine": "laser1",
                "online": True,
                "relay": False,
                "session": None,
                "time": iso(T0),
            },
        )
    app = create_app(cfg, store_factory=lambda: TrackedStore(db))
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield Server(f"http://127.0.0.1:{httpd.server_port}", db)
    finally:
        httpd.shutdown()
        thread.join(timeout=5)


NOV = "from=2026-11-01&to=2026-12-01"


# -- authentication -------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/usage", "/api/v1/machines", "/api/v1/sessions"])
@pytest.mark.parametrize("token", [None, "wrong", TOKEN + "x", ""])
def test_api_requires_a_valid_bearer_token(server: Server, path: str, token: str | None) -> None:
    status, headers, body = server.get(path, token=token)
    assert status == 401
    assert headers["WWW-Authenticate"].startswith("Bearer")
    assert "error" in json.loads(body)


def test_any_configured_token_is_accepted(server: Server) -> None:
    assert server.get("/api/v1/machines", token="another-one")[0] == 200
    status, _, _ = server.get(
        "/api/v1/machines", token=None, headers={"Authorization": f"Basic {TOKEN}"}
    )
    assert status == 401


# -- usage ----------------------------------------------------------------------------


def test_usage_sessions_in_range(server: Server) -> None:
    rows = server.json(f"/api/v1/usage?{NOV}")["rows"]
    assert [r["session_id"] for r in rows] == ["S1", "S2", "S3", "S4"]  # S5 is open
    assert rows[0]["member_name"] == "Alice Martin" and rows[0]["billable_minutes"] == 3
    assert rows[0]["duration_s"] == 125.5


def test_usage_bounds_accept_datetimes_with_zone(server: Server) -> None:
    q = urllib.parse.urlencode({"from": "2026-11-03T18:00:00+01:00", "to": "2026-11-03T17:01:00Z"})
    rows = server.json(f"/api/v1/usage?{q}")["rows"]
    assert [r["session_id"] for r in rows] == ["S1"]


def test_usage_defaults_to_current_month(server: Server) -> None:
    # The fixture data is in 2026; the current month holds none of it unless it is
    # November 2026, so compare with the explicit current-month query.
    now = datetime.now(UTC)
    from gateway.core.months import local_month

    start, end = local_month(now, "Europe/Paris")
    q = urllib.parse.urlencode({"from": start.isoformat(), "to": end.isoformat()})
    assert server.json("/api/v1/usage") == server.json(f"/api/v1/usage?{q}")


def test_usage_minutes_match_billable(server: Server) -> None:
    rows = server.json(f"/api/v1/usage?{NOV}&granularity=minute")["rows"]
    s1 = [r for r in rows if r["session_id"] == "S1"]
    assert len(s1) == 3 and sum(r["seconds"] for r in s1) == 125.5
    assert len(rows) == 3 + 1 + 61 + 20


def test_usage_days_split_at_local_midnight(server: Server) -> None:
    rows = server.json(
        "/api/v1/usage?from=2026-11-30&to=2026-12-02&granularity=day&group_by=member"
    )["rows"]
    assert rows == [
        {
            "day": "2026-11-30",
            "member_id": "m2",
            "member_name": "Bruno <b>Lefèvre</b>",
            "sessions": 1,
            "seconds": 600.0,
            "billable_minutes": 10,
        },
        {
            "day": "2026-12-01",
            "member_id": "m2",
            "member_name": "Bruno <b>Lefèvre</b>",
            "sessions": 1,
            "seconds": 600.0,
            "billable_minutes": 10,
        },
    ]


def test_usage_of_one_member_project_or_machine(server: Server) -> None:
    everyone = server.json(f"/api/v1/usage?{NOV}")["rows"]
    for key, value in (("member", "m1"), ("machine", "laser1"), ("project", "p1")):
        rows = server.json(f"/api/v1/usage?{NOV}&{key}={value}")["rows"]
        expected = [r for r in everyone if r[f"{key}_id"] == value]
        assert rows == expected and 0 < len(rows) < len(everyone)


def test_usage_group_by_sums(server: Server) -> None:
    rows = server.json(f"/api/v1/usage?{NOV}&group_by=member,machine")["rows"]
    by = {(r["member_id"], r["machine_id"]): r for r in rows}
    assert by[("m1", "laser1")] == {
        "member_id": "m1",
        "member_name": "Alice Martin",
        "machine_id": "laser1",
        "sessions": 1,
        "seconds": 125.5,
        "billable_minutes": 3,
    }
    assert by[("m1", "cnc1")]["billable_minutes"] == 61
    assert sum(r["billable_minutes"] for r in rows) == 3 + 1 + 61 + 20


@pytest.mark.parametrize(
    "query", ["", "&granularity=minute&group_by=project", "&granularity=day", "&group_by=machine"]
)
def test_csv_matches_json(server: Server, query: str) -> None:
    rows = server.json(f"/api/v1/usage?{NOV}{query}")["rows"]
    status, headers, body = server.get(f"/api/v1/usage?{NOV}{query}&format=csv")
    assert status == 200 and headers["Content-Type"].startswith("text/csv")
    assert "attachment" in headers["Content-Disposition"]
    text = body.decode()
    assert text.endswith("\r\n")
    parsed = list(csv.DictReader(io.StringIO(text, newline="")))
    assert len(parsed) == len(rows) > 0
    for p, r in zip(parsed, rows, strict=True):
        assert list(p) == list(r)
        assert p == {k: "" if v is None else str(v) for k, v in r.items()}


@pytest.mark.parametrize(
    "query, param",
    [
        ("granularity=hour", "granularity"),
        ("group_by=member,colour", "group_by"),
        ("group_by=member,member", "group_by"),
        ("from=yesterday", "from"),
        ("from=2026-11-01T00:00:00", "from"),  # no zone
        ("to=2026-13-01", "to"),
        ("from=2026-11-05&to=2026-11-01", "to"),
        ("format=xml", "format"),
    ],
)
def test_bad_parameters_are_400_naming_the_parameter(
    server: Server, query: str, param: str
) -> None:
    status, headers, body = server.get(f"/api/v1/usage?{query}")
    assert status == 400 and headers["Content-Type"] == "application/json"
    err = json.loads(body)
    assert err["error"].startswith(param)


# -- machines and sessions ------------------------------------------------------------


def test_machines_live_state(server: Server) -> None:
    machines = {m["machine_id"]: m for m in server.json("/api/v1/machines")["machines"]}
    assert machines["laser1"]["state"] == "free"
    assert machines["laser2"]["state"] == "in_use"
    assert machines["laser2"]["member_name"] == "Alice Martin"
    assert machines["cnc1"]["state"] == "offline"


def test_sessions_endpoint(server: Server) -> None:
    got = server.json("/api/v1/sessions?limit=2")["sessions"]
    assert [s["session_id"] for s in got] == ["S4", "S5"]
    got = server.json("/api/v1/sessions?from=2026-10-01&to=2026-11-01")["sessions"]
    assert [s["session_id"] for s in got] == ["S0"]
    assert server.get("/api/v1/sessions?limit=0")[0] == 400
    assert server.get("/api/v1/sessions?limit=abc")[0] == 400


# -- pages ----------------------------------------------------------------------------


def test_board_page_is_french_by_default_and_lists_machines(server: Server) -> None:
    status, headers, body = server.get("/", token=None)
    html = body.decode()
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert '<html lang="fr">' in html and "Dernières sessions" in html
    assert "Laser Trotec" in html and "Libre" in html and "Hors ligne" in html
    assert "Utilisée" in html and "depuis 18:00" in html  # local time of the session start
    # The public board names nobody by default (web.board_names; tests/test_rgpd_board.py).
    assert "Alice" not in html and "Lefèvre" not in html
    assert "/fragments/board" in html and "setTimeout" in html
    assert "http://" not in html.replace(server.base, "") and "https://" not in html


def test_language_choice(server: Server) -> None:
    """?lang= first, then the cookie it sets, then the site's language (French here):
    the browser's Accept-Language does not override the site's choice."""
    status, headers, body = server.get("/?lang=en", token=None, headers={"Accept-Language": "fr"})
    en = body.decode()
    assert "Recent sessions" in en and "Free" in en
    cookie = headers["Set-Cookie"]
    assert cookie.startswith("fabgate_lang=en;") and "Max-Age=" in cookie
    fr = server.get("/", token=None, headers={"Accept-Language": "en-GB,en;q=0.8"})[2]
    assert "Dernières sessions" in fr.decode()
    # The cookie keeps English on a page asked without ?lang=, the fragment included.
    kept = server.get("/fragments/board", token=None, headers={"Cookie": "fabgate_lang=en"})
    assert "Recent sessions" in kept[2].decode() and "Set-Cookie" not in kept[1]
    assert "Dernières sessions" in server.get("/?lang=xx", token=None)[2].decode()
    back = server.get("/?lang=fr", token=None, headers={"Cookie": "fabgate_lang=en"})
    assert "Dernières sessions" in back[2].decode()
    assert back[1]["Set-Cookie"].startswith("fabgate_lang=fr;")


def test_fragment_is_a_partial_board(server: Server) -> None:
    status, headers, body = server.get("/fragments/board?lang=en", token=None)
    html = body.decode()
    assert status == 200 and "<html" not in html
    assert "Laser Epilog" in html and "In use" in html and "Recent sessions" in html
    assert headers["Cache-Control"] == "no-store"


def test_static_stylesheet_and_healthz(server: Server) -> None:
    status, headers, body = server.get("/static/style.css", token=None)
    assert status == 200 and b"@media" in body
    health = server.json("/healthz", token=None)
    assert health["status"] == "ok" and isinstance(health["data_version"], int)


def test_every_request_store_is_closed(server: Server) -> None:
    server.json("/api/v1/machines")
    server.get(f"/api/v1/usage?{NOV}&format=csv")
    server.get("/", token=None)
    server.get("/api/v1/usage?granularity=bad")
    assert len(TrackedStore.opened) >= 3
    assert all(s.closed for s in TrackedStore.opened)
