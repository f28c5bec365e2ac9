"""Members, certifications, badges and projects over HTTP, checked where it matters: in
the permission snapshot the nodes will receive, in the sessions and in the audit log.

Each person logs in through the real log-in form (a test client keeps the cookie), so the
role checks, the CSRF check and the pages are exercised together.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from flask.testing import FlaskClient

from gateway.billing.invoicing import period_of
from gateway.config import (
    ApiToken,
    GroupConfig,
    MachineConfig,
    Seed,
    SeedCertification,
    SeedMember,
    SeedProject,
)
from gateway.contract import Envelope
from gateway.core.clock import iso, utcnow
from gateway.core.months import add_months
from gateway.core.snapshot import Snapshot
from gateway.hub import accounts, audit
from gateway.hub.catalogue import sync_catalogue
from gateway.hub.certifications import certification_expiry
from gateway.hub.db import HubStore, data_version
from gateway.hub.events.ingest import ingest_envelopes
from gateway.hub.seed import import_seed
from gateway.hub.snapshots import build_snapshot, next_snapshot_version
from gateway.web import auth, create_app
from tests.support.builders import hub_config

TZ = "Europe/Paris"
PASSWORD = "correct horse battery staple"
BRUNO_BADGE = "B0B0B0B0"
ALICE_BADGE = "A11CE000"
GROUPS = (
    GroupConfig("laser", "Découpe laser", default_validity_months=24),
    GroupConfig("cnc", "Fraisage CNC", default_validity_months=12, lapse_months=6),
)
MACHINES = (
    MachineConfig("laser1", "Laser (laser1)", "laser", "laser", min_level=2),
    MachineConfig("cnc1", "CNC (cnc1)", "cnc", "cnc", min_level=2),
)
LONG_AGO = datetime(2025, 1, 10, 10, tzinfo=UTC)


@dataclass
class Hub:
    app: Flask
    db: Path

    def store(self) -> HubStore:
        return HubStore(self.db)

    def client(self, member_id: str | None = None) -> FlaskClient:
        """A browser of its own, logged in as ``member_id`` through the log-in form."""
        c = self.app.test_client()
        if member_id is not None:
            with c.session_transaction() as s:
                s["csrf"] = "pre-login-token"
            resp = c.post(
                "/login",
                data={
                    "email": f"{member_id}@example.org",
                    "password": PASSWORD,
                    "csrf_token": "pre-login-token",
                },
            )
            assert resp.status_code in (302, 303), resp.get_data(as_text=True)[:500]
        return c

    def snapshot(self, machine: str = "laser1", now: datetime | None = None) -> Snapshot:
        with self.store() as store:
            return build_snapshot(
                store,
                machine,
                now=now or utcnow(),
                version=next_snapshot_version(store),
                validity=timedelta(hours=1),
                timezone=TZ,
                opening_hours={},
                staff_present_until=None,
            )


def csrf(c: FlaskClient) -> str:
    with c.session_transaction() as s:
        token: str = s["csrf"]
    return token


def post(c: FlaskClient, path: str, data: dict[str, Any] | None = None) -> Any:
    return c.post(path, data={**(data or {}), "csrf_token": csrf(c)})


def page(c: FlaskClient, path: str) -> str:
    resp = c.get(path)
    assert resp.status_code == 200, (path, resp.status_code, resp.get_data(as_text=True)[:300])
    return html.unescape(resp.get_data(as_text=True))  # the text a person reads


def audit_actions(hub: Hub) -> list[tuple[str, str, str]]:
    with hub.store() as store:
        return [(e["actor"], e["action"], e["subject"]) for e in audit.entries(store)][::-1]


def session_events(
    sid: str, start: datetime, member: str, project: str | None, seq: int
) -> list[Envelope]:
    end = start + timedelta(seconds=600)
    common = {
        "session_id": sid,
        "machine": "laser1",
        "member_id": member,
        "badge_uid": ALICE_BADGE,
        "project_id": project,
        "started_at": iso(start),
    }
    return [
        Envelope.new(
            node="laser1",
            seq=seq,
            boot="b",
            type="session.started",
            time=start,
            data={**common, "staff_present": False},
        ),
        Envelope.new(
            node="laser1",
            seq=seq + 1,
            boot="b",
            type="session.ended",
            time=end,
            data={
                **common,
                "ended_at": iso(end),
                "duration_s": 600.0,
                "billable_minutes": 10,
                "end_reason": "badge_out",
            },
        ),
    ]


@pytest.fixture
def hub(tmp_path: Path, cheap_passwords: None) -> Iterator[Hub]:
    db = tmp_path / "hub.db"
    cfg = hub_config(
        tmp_path,
        db,
        site="fablab-test",
        timezone=TZ,
        tokens=(ApiToken("compta", "t0ken"),),
        groups=GROUPS,
        machines=MACHINES,
    )
    with HubStore(db) as store:
        sync_catalogue(store, list(GROUPS), list(MACHINES))
        import_seed(
            store,
            Seed(
                file=tmp_path / "seed.yaml",
                members=(
                    SeedMember("m-fab", "Karim Benali", "professionnel", staff=True),
                    SeedMember("m-trainer", "Tess Formatrice", "adherent"),
                    SeedMember("m-bruno", "Bruno Lefèvre", "professionnel", badges=(BRUNO_BADGE,)),
                    SeedMember(
                        "m-alice",
                        "Alice Martin",
                        "adherent",
                        badges=(ALICE_BADGE,),
                        current_project="p-lampe",
                    ),
                    SeedMember("m-chef", "Chloé Experte", "adherent"),
                ),
                projects=(
                    SeedProject("p-lampe", "m-alice", "Lampe en contreplaqué"),
                    SeedProject("p-etagere", "m-alice", "Étagère"),
                    SeedProject("p-mobilier", "m-bruno", "Mobilier"),
                ),
                certifications=(
                    SeedCertification("m-trainer", "laser", 3, None, LONG_AGO, None),
                    SeedCertification("m-chef", "laser", 3, None, LONG_AGO, None),
                    SeedCertification("m-alice", "laser", 2, "m-trainer", LONG_AGO, None),
                ),
            ),
        )
        for member in ("m-fab", "m-trainer", "m-bruno", "m-alice", "m-chef"):
            accounts.create_account(
                store, member, f"{member}@example.org", actor="test", password=PASSWORD
            )
        accounts.grant_role(store, "m-fab", "fabmanager", None, actor="test")
        accounts.grant_role(store, "m-trainer", "trainer", "laser", actor="test")
    app = create_app(cfg)
    if "auth" not in app.blueprints:  # until the app factory installs it by itself
        app.register_blueprint(auth.auth)
    app.config["TESTING"] = True
    yield Hub(app, db)


# -- certification ------------------------------------------------------------------


def test_a_grant_reaches_the_next_snapshot_and_a_revocation_removes_it(hub: Hub) -> None:
    fab = hub.client("m-fab")
    assert hub.snapshot().members["m-bruno"].level == 0
    with hub.store() as store:
        version = data_version(store)

    form = page(fab, "/certify?member_id=m-bruno")
    assert "Habiliter un membre" in form and "Groupe de machines" in form
    assert 'value="Bruno Lefèvre (m-bruno)"' in form  # the picker, filled in
    assert 'data-validity="24"' in form and 'data-validity="12"' in form

    before = utcnow()
    resp = post(
        fab,
        "/certify",
        {
            "member_id": "m-bruno",
            "group_id": "laser",
            "level": "2",
            "validity_months": "",
            "note": "formation du samedi",
        },
    )
    assert resp.status_code in (302, 303)
    assert resp.headers["Location"].startswith("/members/m-bruno")

    with hub.store() as store:
        assert data_version(store) > version  # the hub republishes on this
    grant = hub.snapshot().members["m-bruno"]
    assert grant.level == 2
    assert grant.cert_expires is not None
    # Empty validity: the group's default, 24 months from the grant.
    assert (
        add_months(before, 24) - timedelta(seconds=1)
        <= grant.cert_expires
        <= add_months(utcnow(), 24)
    )
    assert hub.snapshot("cnc1").members["m-bruno"].level == 0
    assert ("m-fab", "certification.granted", "m-bruno") in audit_actions(hub)

    member = page(fab, "/members/m-bruno")
    assert "Bruno Lefèvre est habilité(e) niveau 2 sur « Découpe laser »" in member
    assert "2 · autonome" in member and "Karim Benali" in member  # who certified
    assert add_months(before, 24).astimezone(ZoneInfo(TZ)).strftime("%d/%m/%Y") in member

    resp = post(fab, "/members/m-bruno/certifications/laser/revoke")
    assert resp.status_code == 303
    assert hub.snapshot().members["m-bruno"].level == 0
    assert ("m-fab", "certification.revoked", "m-bruno") in audit_actions(hub)
    assert "retirée" in page(fab, "/members/m-bruno")


def test_a_chosen_validity_sets_the_expiry(hub: Hub) -> None:
    fab = hub.client("m-fab")
    before = utcnow()
    post(
        fab,
        "/certify",
        {"member_id": "m-bruno", "group_id": "cnc", "level": "1", "validity_months": "18"},
    )
    with hub.store() as store:
        (expires,) = store.conn.execute(
            "SELECT expires_at FROM certifications WHERE member_id = 'm-bruno'"
        ).fetchone()
    assert (
        add_months(before, 18) - timedelta(seconds=1)
        <= datetime.fromisoformat(expires)
        <= add_months(utcnow(), 18)
    )
    # The CNC group lapses after 6 months without use: that comes first, and the node
    # gets the earlier of the two.
    grant = hub.snapshot("cnc1").members["m-bruno"]
    assert grant.level == 1
    assert grant.cert_expires is not None
    assert (
        add_months(before, 6) - timedelta(seconds=1)
        <= grant.cert_expires
        <= add_months(utcnow(), 6)
    )
    row = re.search(
        r'<tr class="cert cert-live" data-group="cnc".*?</tr>', page(fab, "/members/m-bruno"), re.S
    )
    assert row is not None
    assert _shown(add_months(before, 18)) in row.group(0)
    assert _shown(add_months(before, 6)) in row.group(0)


_FR_MONTHS = [
    "janv.",
    "févr.",
    "mars",
    "avr.",
    "mai",
    "juin",
    "juil.",
    "août",
    "sept.",
    "oct.",
    "nov.",
    "déc.",
]


def _shown(when: datetime) -> str:
    """How the pages write a day in French: "2 juin", with the year when it is not this
    year's ("2 juin 2028")."""
    local = when.astimezone(ZoneInfo(TZ))
    text = f"{local.day} {_FR_MONTHS[local.month - 1]}"
    if local.year != utcnow().astimezone(ZoneInfo(TZ)).year:
        text += f" {local.year}"
    return text


@pytest.mark.parametrize(
    "form, message",
    [
        ({"member_id": "", "group_id": "laser", "level": "2"}, "Choisissez un membre"),
        ({"member_id": "m-bruno", "group_id": "nope", "level": "2"}, "Choisissez un groupe"),
        ({"member_id": "m-bruno", "group_id": "laser", "level": "4"}, "niveau de 0 à 3"),
        (
            {"member_id": "m-bruno", "group_id": "laser", "level": "2", "validity_months": "0"},
            "entre 1 et 120",
        ),
        ({"member_id": "m-fab", "group_id": "laser", "level": "3"}, "soi-même"),
    ],
)
def test_a_bad_certification_form_says_why(hub: Hub, form: dict[str, str], message: str) -> None:
    fab = hub.client("m-fab")
    resp = post(fab, "/certify", form)
    assert resp.status_code == 400
    assert message in html.unescape(resp.get_data(as_text=True))
    assert hub.snapshot().members["m-bruno"].level == 0


def test_trainers_certify_up_to_level_2_and_only_in_their_groups(hub: Hub) -> None:
    trainer = hub.client("m-trainer")
    form = page(trainer, "/certify")
    assert 'value="laser"' in form and 'value="cnc"' not in form  # only their group
    assert re.search(r'id="level-3"[^>]*disabled', form)

    resp = post(trainer, "/certify", {"member_id": "m-bruno", "group_id": "laser", "level": "3"})
    assert resp.status_code == 400
    assert "niveau 3 est délivré par le fabmanager" in html.unescape(resp.get_data(as_text=True))
    resp = post(trainer, "/certify", {"member_id": "m-bruno", "group_id": "cnc", "level": "1"})
    assert resp.status_code == 400
    assert "Vous ne formez pas sur ce groupe" in resp.get_data(as_text=True)
    assert hub.snapshot().members["m-bruno"].level == 0
    assert hub.snapshot("cnc1").members["m-bruno"].level == 0

    resp = post(trainer, "/certify", {"member_id": "m-bruno", "group_id": "laser", "level": "2"})
    assert resp.status_code in (302, 303)
    assert hub.snapshot().members["m-bruno"].level == 2
    assert ("m-trainer", "certification.granted", "m-bruno") in audit_actions(hub)

    # A level-3 trainer's certification is the fabmanager's to revoke.
    post(trainer, "/members/m-chef/certifications/laser/revoke")
    with hub.store() as store:
        assert certification_expiry(store, "m-chef", "laser", utcnow())[0] == 3
    # A level-2 one is theirs.
    post(trainer, "/members/m-alice/certifications/laser/revoke")
    with hub.store() as store:
        assert certification_expiry(store, "m-alice", "laser", utcnow())[0] == 0

    # Trainers see members and their own group's levels, never badges or sessions.
    member = page(trainer, "/members/m-bruno")
    assert BRUNO_BADGE not in member and "Enregistrer un badge" not in member
    assert page(trainer, "/members").count('class="member"') == 5
    assert post(trainer, f"/members/m-bruno/badges/{BRUNO_BADGE}/block").status_code == 403
    assert post(trainer, "/members/m-bruno/enrol").status_code == 403


def test_a_plain_member_reaches_none_of_the_staff_pages(hub: Hub) -> None:
    bruno = hub.client("m-bruno")
    for path in ("/certify", "/members", "/members/m-alice"):
        assert bruno.get(path).status_code == 403, path
    resp = post(bruno, "/certify", {"member_id": "m-alice", "group_id": "laser", "level": "3"})
    assert resp.status_code == 403
    assert "Habiliter" not in page(bruno, "/me")  # no staff link in their navigation
    anonymous = hub.app.test_client()
    assert anonymous.get("/certify", headers={"Accept": "text/html"}).status_code in (302, 303)


def test_forms_without_the_csrf_token_are_refused(hub: Hub) -> None:
    fab = hub.client("m-fab")
    resp = fab.post("/certify", data={"member_id": "m-bruno", "group_id": "laser", "level": "2"})
    assert resp.status_code == 400
    assert hub.snapshot().members["m-bruno"].level == 0


def test_every_people_route_declares_who_may_use_it(hub: Hub) -> None:
    endpoints = [
        r.endpoint for r in hub.app.url_map.iter_rules() if r.endpoint.startswith("people.")
    ]
    assert len(endpoints) >= 10
    for endpoint in endpoints:
        assert auth.declaration(hub.app, endpoint) not in (None, auth.PUBLIC), endpoint


# -- badges -------------------------------------------------------------------------


def test_blocking_a_lost_badge_removes_it_from_the_snapshot(hub: Hub) -> None:
    fab = hub.client("m-fab")
    assert hub.snapshot().badges[BRUNO_BADGE] == "m-bruno"
    resp = post(fab, f"/members/m-bruno/badges/{BRUNO_BADGE}/block")
    assert resp.status_code in (302, 303)
    snap = hub.snapshot()
    assert BRUNO_BADGE not in snap.badges
    assert ALICE_BADGE in snap.badges
    assert ("m-fab", "badge.blocked", "m-bruno") in audit_actions(hub)
    member = page(fab, "/members/m-bruno")
    assert f"Badge {BRUNO_BADGE} bloqué." in member
    # Blocking twice says so and records nothing more.
    post(fab, f"/members/m-bruno/badges/{BRUNO_BADGE}/block")
    assert [a for a in audit_actions(hub) if a[1] == "badge.blocked"] == [
        ("m-fab", "badge.blocked", "m-bruno")
    ]


def test_enrolment_is_followed_on_a_fragment(hub: Hub) -> None:
    fab = hub.client("m-fab")
    resp = post(fab, "/members/m-bruno/enrol")
    assert resp.status_code in (302, 303)
    request_id = re.search(r"enrolment=([0-9a-f-]+)", resp.headers["Location"]).group(1)
    member = page(fab, resp.headers["Location"])
    fragment_url = f"/members/m-bruno/enrolment/{request_id}"
    assert fragment_url in member
    assert "En attente d'un badge présenté sur n'importe quelle machine" in member
    assert 'data-status="pending"' in page(fab, fragment_url)

    with hub.store() as store:
        now = utcnow()
        ingest_envelopes(
            store,
            [
                Envelope.new(
                    node="cnc1",
                    seq=1,
                    boot="b",
                    type="badge.enrolled",
                    time=now,
                    data={"request_id": request_id, "uid": "04ab12cd"},
                )
            ],
            now,
        )
    fragment = page(fab, fragment_url)
    assert 'data-status="attached"' in fragment and "Badge 04AB12CD rattaché" in fragment
    assert hub.snapshot().badges["04AB12CD"] == "m-bruno"
    assert ("m-fab", "badge.enrolled", "m-bruno") in audit_actions(hub)
    # Another member's request is not readable through this member's page.
    assert fab.get(f"/members/m-alice/enrolment/{request_id}").status_code == 404


# -- projects and sessions ----------------------------------------------------------


def _months() -> tuple[datetime, datetime]:
    """A moment in this month and one in the previous month (the 15th, noon, local)."""
    local = utcnow().astimezone(ZoneInfo(TZ))
    this = max(
        local.replace(day=1, hour=0, minute=5, second=0, microsecond=0), local - timedelta(hours=1)
    )
    previous = (local.replace(day=1) - timedelta(days=1)).replace(day=15, hour=12)
    return this.astimezone(UTC), previous.astimezone(UTC)


def test_a_session_moves_to_another_project_only_while_its_month_is_open(hub: Hub) -> None:
    this_month, last_month = _months()
    with hub.store() as store:
        ingest_envelopes(
            store,
            session_events("S-now", this_month, "m-alice", "p-lampe", 1)
            + session_events("S-old", last_month, "m-alice", "p-lampe", 3)
            + session_events("S-bruno", this_month, "m-bruno", None, 5),
            utcnow(),
        )
        store.conn.execute(
            "INSERT INTO periods (period, status, closed_at, closed_by) "
            "VALUES (?, 'closed', ?, 'm-fab')",
            (period_of(last_month, TZ), iso(utcnow())),
        )
        store.conn.commit()

    def project_of(sid: str) -> str | None:
        with hub.store() as store:
            return store.conn.execute(
                "SELECT project_id FROM sessions WHERE session_id = ?", (sid,)
            ).fetchone()[0]

    alice = hub.client("m-alice")
    mine = page(alice, "/projects")
    assert "Étagère" in mine and "mois clôturé" in mine
    resp = post(alice, "/sessions/S-now/project", {"project_id": "p-etagere", "next": "/projects"})
    assert resp.status_code in (302, 303) and resp.headers["Location"] == "/projects"
    assert project_of("S-now") == "p-etagere"
    assert ("m-alice", "session.moved", "m-alice") in audit_actions(hub)
    assert "Session déplacée." in page(alice, "/projects")

    resp = post(alice, "/sessions/S-old/project", {"project_id": "p-etagere"})
    assert project_of("S-old") == "p-lampe"
    closed = last_month.astimezone(ZoneInfo(TZ)).strftime("%m/%Y")
    assert f"Le mois {closed} est clôturé (factures émises)" in page(alice, "/projects")

    # Not to someone else's project, not someone else's session, not off-site.
    post(alice, "/sessions/S-now/project", {"project_id": "p-mobilier"})
    assert project_of("S-now") == "p-etagere"
    post(alice, "/sessions/S-bruno/project", {"project_id": "p-lampe"})
    assert project_of("S-bruno") is None
    resp = post(
        alice, "/sessions/S-now/project", {"project_id": "p-lampe", "next": "//evil.example/"}
    )
    assert resp.headers["Location"].startswith("/projects")

    # The fabmanager moves a member's session the same way, from the member's page.
    fab = hub.client("m-fab")
    assert "S-bruno" in page(fab, "/members/m-bruno")
    post(fab, "/sessions/S-bruno/project", {"project_id": "p-mobilier"})
    assert project_of("S-bruno") == "p-mobilier"
    post(fab, "/sessions/S-old/project", {"project_id": "p-etagere"})
    assert project_of("S-old") == "p-lampe"


def test_members_create_projects_and_pick_the_current_one(hub: Hub) -> None:
    bruno = hub.client("m-bruno")
    post(bruno, "/projects", {"name": "  Tabouret   en chêne ", "current": "1"})
    with hub.store() as store:
        (project_id, name) = store.conn.execute(
            "SELECT id, name FROM projects WHERE member_id = 'm-bruno' AND id != 'p-mobilier'"
        ).fetchone()
    assert name == "Tabouret en chêne"
    assert hub.snapshot().members["m-bruno"].project_id == project_id
    post(bruno, "/projects/current", {"project_id": "p-mobilier"})
    assert hub.snapshot().members["m-bruno"].project_id == "p-mobilier"
    post(bruno, "/projects/current", {"project_id": "p-lampe"})  # Alice's
    assert hub.snapshot().members["m-bruno"].project_id == "p-mobilier"
    assert "Ce projet n'est pas le vôtre." in page(bruno, "/projects")
    post(bruno, "/projects", {"name": ""})
    assert "Le nom du projet est obligatoire" in page(bruno, "/projects")


def test_my_page_shows_certifications_minutes_and_projects(hub: Hub) -> None:
    this_month, _ = _months()
    with hub.store() as store:
        ingest_envelopes(store, session_events("S1", this_month, "m-alice", "p-lampe", 1), utcnow())
    me = page(hub.client("m-alice"), "/me")
    assert "Bonjour Alice Martin" in me
    assert re.search(r'id="minutes-month">10<', me)
    assert re.search(r'id="minutes-year">10<', me)
    assert "Découpe laser" in me and "2 · autonome" in me and "sans limite" in me
    assert "Lampe en contreplaqué" in me and "Étagère" in me
    en = page(hub.client("m-alice"), "/me?lang=en")
    assert "Hello Alice Martin" in en and "My certifications" in en


def test_navigation_follows_the_roles(hub: Hub) -> None:
    with hub.store() as store:
        accounts.grant_role(store, "m-chef", "accountant", None, actor="test")
    fab, accountant, member = hub.client("m-fab"), hub.client("m-chef"), hub.client("m-alice")
    assert "Rapport d'activité" in page(fab, "/me") and "Jetons" not in page(fab, "/me")
    assert "Jetons d'API" in page(accountant, "/me")
    assert "Rapport d'activité" in page(accountant, "/me")
    assert "Rapport" not in page(member, "/me") and "Jetons" not in page(member, "/me")
    assert "Se déconnecter" in page(member, "/me")
