"""A member's data: the export (their own, by staff, by the API) and the erasure.

Over real HTTP, logged in through the log-in form, with CSRF tokens as a browser sends
them. The member has a badge, a certification, projects, sessions (November's invoiced
and closed, with her name on the invoice), credit, taps and an account. After the
erasure the hub's own records are checked, and a running hub's snapshot on MQTT no
longer carries her badge within a second.
"""

from __future__ import annotations

import html
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.billing.credit import add_credit
from gateway.config import ApiToken, MqttConfig
from gateway.contract import Envelope, Topics
from gateway.contract.signing import load_public_key, verify_snapshot
from gateway.core.sdnotify import Watchdog
from gateway.core.supervise import Supervisor
from gateway.hub import accounts, audit, certifications, members, tokens
from gateway.hub.db import HubStore
from gateway.hub.events.ingest import ingest_envelopes
from gateway.hub.service import HubService
from gateway.web import create_app, hub_web_app
from tests.support import builders
from tests.support.harness import Observer
from tests.support.mosquitto import MosquittoProcess
from tests.test_auth import CONFIG_TOKEN, PASSWORD, Client, serve
from tests.test_invoicing import (
    GROUPS,
    MACHINES,
    NOV,
    NOVEMBER_SESSIONS,
    close,
    events_for,
    make_store,
)

UID = "04A1B2C3"
# Staff and a trainer beside the invoicing fixture's members m1 (Alice), m2, m3.
STAFF = {
    "fab": ("Farida Manager", "farida@example.org", "fabmanager"),
    "trn": ("Théo Formateur", "theo@example.org", "trainer"),
}


def tap(seq: int, action: str, reason: str, at: datetime) -> Envelope:
    return Envelope.new(
        node="laser1",
        seq=seq,
        boot="t",
        type="tap",
        time=at,
        data={"uid": UID, "member_id": "m1", "action": action, "reason": reason},
    )


def seed(db: Path) -> None:
    store = make_store(db)
    try:
        ingest_envelopes(store, events_for(NOVEMBER_SESSIONS), NOV)
        close(store, "2026-11")  # Alice's November invoice, issued in her name
        ingest_envelopes(
            store,
            [tap(1, "start", "allowed", NOV), tap(2, "deny", "not_certified", NOV)],
            NOV,
        )
        with store.atomic():
            members.add_badge(store, UID, "m1")
            members.update_member(
                store,
                "m1",
                name="Alice Martin",
                category="adherent",
                status="active",
                membership_end=None,
                staff=False,
                email="alice.perso@example.org",
            )
            for member_id, (name, _, _) in STAFF.items():
                members.add_member(
                    store,
                    member_id,
                    name=name,
                    category="adherent",
                    status="active",
                    membership_end=None,
                    staff=True,
                    email=None,
                )
        certifications.grant(
            store,
            "m1",
            "laser",
            2,
            by="fab",
            at=NOV - timedelta(days=30),
            months=24,
            note="soigneuse",
        )
        add_credit(store, "m1", 2000, at=NOV, note="chèque", by="fab")
        accounts.create_account(store, "m1", "alice@example.org", actor="test", password=PASSWORD)
        for member_id, (_, email, role) in STAFF.items():
            accounts.create_account(store, member_id, email, actor="test", password=PASSWORD)
            accounts.grant_role(
                store, member_id, role, "laser" if role == "trainer" else None, actor="test"
            )
    finally:
        store.close()


@dataclass
class Hub:
    base: str
    db: Path

    def login(self, email: str) -> Client:
        c = Client(self.base)
        answer = c.login(email)
        assert answer.status in (302, 303), answer.body[:300]
        return c

    def store(self) -> HubStore:
        return HubStore(self.db)


@pytest.fixture
def hub(tmp_path: Path, cheap_passwords: None) -> Iterator[Hub]:
    db = tmp_path / "data" / "hub.sqlite"
    db.parent.mkdir()
    seed(db)
    cfg = builders.hub_config(
        tmp_path,
        db,
        groups=GROUPS,
        machines=MACHINES,
        tokens=(ApiToken("admin", CONFIG_TOKEN),),
    )
    with serve(create_app(cfg)) as base:
        yield Hub(base, db)


def post(c: Client, path: str, form: dict[str, str] | None = None, page: str = "/me") -> object:
    return c.post(path, {**(form or {}), "csrf_token": c.csrf(page)})


# -- export ----------------------------------------------------------------------------


def test_a_member_downloads_everything_about_them_without_the_password_hash(hub: Hub) -> None:
    alice = hub.login("alice@example.org")
    assert 'action="/me/export' in alice.get("/me").body
    answer = alice.post("/me/export", {"csrf_token": alice.csrf("/me")})
    assert answer.status == 200
    assert answer.headers["Content-Type"].startswith("application/json")
    assert 'attachment; filename="fabgate-export-m1-' in answer.headers["Content-Disposition"]
    doc = json.loads(answer.body)
    assert doc["format"] == "fabgate.member-export/1"
    assert doc["member"]["name"] == "Alice Martin" and doc["member"]["category"] == "adherent"
    assert doc["member"]["email"] == "alice.perso@example.org"
    assert doc["badges"] == [{"uid": UID, "status": "active"}]
    assert [(c["group_id"], c["level"], c["note"]) for c in doc["certifications"]] == [
        ("laser", 2, "soigneuse")
    ]
    assert {p["id"] for p in doc["projects"]} == {"p1", "p2"}
    assert {s["session_id"] for s in doc["sessions"]} == {"S1", "S2", "S3", "S5"}
    assert doc["invoices"] and all(i["payer"]["id"] == "m1" for i in doc["invoices"])
    assert "Alice Martin" in json.dumps(doc["invoices"], ensure_ascii=False)
    assert doc["credit"]["movements"][0]["amount_cents"] == 2000
    assert sorted(e["data"]["action"] for e in doc["access_events"]) == ["deny", "start"]
    assert doc["account"]["email"] == "alice@example.org" and doc["account"]["password_set"]
    assert "password_hash" not in answer.body and "$argon2" not in answer.body
    assert "certification.granted" in {e["action"] for e in doc["audit"]}
    with hub.store() as store:
        (entry,) = [e for e in audit.entries(store) if e["action"] == audit.MEMBER_EXPORTED]
    assert (entry["actor"], entry["subject"]) == ("m1", "m1")
    # A plain GET cannot make one (it writes to the audit log), nor a POST without CSRF.
    assert alice.get("/me/export").status == 405
    assert alice.post("/me/export", {}).status == 400


def test_staff_export_a_member_others_may_not_and_the_api_needs_the_scope(hub: Hub) -> None:
    fab = hub.login("farida@example.org")
    page = fab.get("/members/m1").body
    assert 'action="/members/m1/export' in page and 'href="/members/m1/erase' in page
    answer = fab.post("/members/m1/export", {"csrf_token": fab.csrf("/members/m1")})
    assert answer.status == 200 and json.loads(answer.body)["member"]["id"] == "m1"
    trainer = hub.login("theo@example.org")
    assert trainer.post("/members/m1/export", {"csrf_token": trainer.csrf("/me")}).status == 403
    alice = hub.login("alice@example.org")
    assert alice.post("/members/m2/export", {"csrf_token": alice.csrf("/me")}).status == 403

    api = Client(hub.base, accept="application/json")
    path = "/api/v1/members/m1/export"
    assert api.get(path).status == 401
    with hub.store() as store:
        _, usage = tokens.create_token(store, "compta", ["usage"], created_by="fab")
        _, personal = tokens.create_token(store, "dpo", ["members"], created_by="fab")
    assert api.get(path, headers={"Authorization": f"Bearer {usage}"}).status == 403
    answer = api.get(path, headers={"Authorization": f"Bearer {personal}"})
    assert answer.status == 200 and json.loads(answer.body)["badges"][0]["uid"] == UID
    assert (
        api.get(
            "/api/v1/members/nobody/export", headers={"Authorization": f"Bearer {personal}"}
        ).status
        == 404
    )
    with hub.store() as store:
        actors = [e["actor"] for e in audit.entries(store) if e["action"] == audit.MEMBER_EXPORTED]
    assert actors == ["token:dpo", "fab"]


# -- erasure ---------------------------------------------------------------------------


def test_erasure_needs_staff_csrf_and_the_typed_id(hub: Hub) -> None:
    trainer = hub.login("theo@example.org")
    assert trainer.get("/members/m1/erase").status == 403
    fab = hub.login("farida@example.org")
    page = fab.get("/members/m1/erase")
    assert page.status == 200 and 'name="confirm"' in page.body
    assert fab.post("/members/m1/erase", {"confirm": "m1"}).status == 400  # no CSRF token
    wrong = fab.post(
        "/members/m1/erase", {"confirm": "m2", "csrf_token": fab.csrf("/members/m1/erase")}
    )
    assert wrong.status == 400 and "ne correspond pas" in wrong.body
    with hub.store() as store:
        assert members.member(store, "m1")["name"] == "Alice Martin"  # type: ignore[index]
        assert not [e for e in audit.entries(store) if e["action"] == audit.MEMBER_ERASED]


def test_erasure_pseudonymises_and_keeps_sessions_and_issued_invoices(hub: Hub) -> None:
    alice = hub.login("alice@example.org")
    assert alice.get("/me").status == 200
    with hub.store() as store:
        invoices_before = store_invoices(store)
    fab = hub.login("farida@example.org")
    done = fab.post(
        "/members/m1/erase", {"confirm": "m1", "csrf_token": fab.csrf("/members/m1/erase")}
    )
    assert done.status == 303 and done.location.endswith("/members/m1?lang=fr")
    shown = fab.get("/members/m1").body
    assert "Membre effacé n° 1" in shown and "Alice" not in shown
    # Her own browser is logged out, and she can no longer log in.
    assert alice.get("/me").status in (302, 401)
    assert Client(hub.base).login("alice@example.org").status == 401

    with hub.store() as store:
        m = members.member(store, "m1")
        assert m is not None
        assert m["name"] == "Membre effacé n° 1" and m["email"] is None
        assert m["status"] == "suspended" and m["erased_no"] == 1 and m["erased_at"]
        assert m["category"] == "adherent"  # statistics and prices by category
        assert members.badges_of(store, "m1") == []
        assert members.badge_owner(store, UID) is None  # the card can be enrolled again
        members.attach_badge(store, UID, "m2")
        assert accounts.account_of(store, "m1") is None
        certs = certifications.of_member(store, "m1", datetime.now(UTC))
        assert [c["state"] for c in certs] == ["revoked"] and certs[0]["note"] is None
        assert {p["name"] for p in members.projects_of(store, "m1")} == {"Projet effacé"}
        rows = store.conn.execute(
            "SELECT session_id, badge_uid FROM sessions WHERE member_id = 'm1' ORDER BY 1"
        ).fetchall()
        assert [(r[0], r[1]) for r in rows] == [
            ("S1", None),
            ("S2", None),
            ("S3", None),
            ("S5", None),
        ]
        taps = store.conn.execute("SELECT count(*) FROM events WHERE type = 'tap'").fetchone()[0]
        assert taps == 0
        # Issued documents are exactly as they were, buyer's name included.
        assert store_invoices(store) == invoices_before
        assert "Alice Martin" in json.dumps(invoices_before, ensure_ascii=False)
        (entry,) = [e for e in audit.entries(store) if e["action"] == audit.MEMBER_ERASED]
        assert (entry["actor"], entry["subject"]) == ("fab", "m1")
        assert entry["details"]["erased_no"] == 1 and entry["details"]["badges"] == 1
        text = json.dumps(entry["details"], ensure_ascii=False)
        assert "Alice" not in text and "example.org" not in text and UID not in text
        assert audit.verify(store) == []
    # Erasing twice is refused, the page says so.
    again = fab.get("/members/m1/erase")
    assert (
        again.status == 200
        and "déjà été effacé" in again.body
        and 'name="confirm"' not in again.body
    )


def store_invoices(store: HubStore) -> list[tuple[str, str, str]]:
    return [
        (r[0], r[1], r[2])
        for r in store.conn.execute("SELECT number, hash, content FROM invoices ORDER BY seq")
    ]


def test_erasure_waits_for_an_open_session_a_debt_or_an_unbilled_session(hub: Hub) -> None:
    fab = hub.login("farida@example.org")

    def attempt(member: str) -> str:
        answer = fab.post(
            f"/members/{member}/erase",
            {"confirm": member, "csrf_token": fab.csrf(f"/members/{member}/erase")},
        )
        assert answer.status == 400, answer.status
        return answer.body

    dec = datetime(2026, 12, 4, 10, tzinfo=UTC)
    with hub.store() as store:
        started = builders.session_events("S-open", dec, 60, "m1", "laser1", seq=20)[0]
        ingest_envelopes(store, [started], dec)
    assert "une session est en cours sur laser1" in attempt("m1")

    with hub.store() as store:
        ingest_envelopes(
            store, builders.session_events("S-open", dec, 600, "m1", "laser1", seq=20)[1:], dec
        )
    body = attempt("m1")  # December's session is priced and not invoiced yet
    assert "1 session payante n'est pas encore facturée" in html.unescape(body)

    with hub.store() as store:
        add_credit(store, "m3", -500, at=dec, note="correction", by="fab")
    assert "crédit prépayé est négatif (500 centimes dus)" in attempt("m3")

    with hub.store() as store:
        assert members.member(store, "m1")["name"] == "Alice Martin"  # type: ignore[index]
        close(store, "2026-12", at=datetime(2027, 1, 2, 9, tzinfo=UTC))
    ok = fab.post(
        "/members/m1/erase", {"confirm": "m1", "csrf_token": fab.csrf("/members/m1/erase")}
    )
    assert ok.status == 303


# -- the snapshot ----------------------------------------------------------------------


def test_after_erasure_the_next_snapshot_no_longer_carries_the_badge(
    tmp_path: Path, mosquitto: MosquittoProcess, cheap_passwords: None
) -> None:
    db = tmp_path / "data" / "hub.sqlite"
    db.parent.mkdir()
    seed(db)
    with HubStore(db) as store:
        close(store, "2026-12", at=datetime(2027, 1, 2, 9, tzinfo=UTC))
    prefix = "fablab/rgpd/"
    cfg = builders.hub_config(
        tmp_path,
        db,
        groups=GROUPS,
        machines=MACHINES,
        mqtt=MqttConfig(url=mosquitto.url, prefix=prefix, client_id="fabgate-hub"),
        snapshot_refresh=timedelta(hours=1),  # a new snapshot comes from the change only
    )
    svc = HubService(
        cfg, web_app=hub_web_app, watchdog=Watchdog(env={}), supervisor=Supervisor(backoff_min=0.05)
    )
    svc.start()
    observer = Observer(mosquitto.url, prefix)
    topic = Topics(prefix).snapshot("laser1")
    key = load_public_key(svc.public_key_path)

    def badges() -> set[str] | None:
        """The badges of laser1's latest signed snapshot, as its node would read them."""
        raw = observer.snapshots.get(topic)
        if raw is None:
            return None
        snap = verify_snapshot(raw, key, now=datetime.now(UTC), machine_id="laser1")
        assert set(snap.badges.values()) <= set(snap.members)
        return set(snap.badges)

    try:
        assert svc.link.wait_connected(10)
        observer.wait_for(lambda: UID in (badges() or set()), what="a snapshot with her badge")
        assert svc.web_url is not None
        fab = Client(svc.web_url.rstrip("/"))
        assert fab.login("farida@example.org").status in (302, 303)
        token = fab.csrf("/members/m1/erase")
        sent = time.monotonic()
        answer = fab.post("/members/m1/erase", {"confirm": "m1", "csrf_token": token})
        assert answer.status == 303
        observer.wait_for(
            lambda: (b := badges()) is not None and UID not in b, what="a snapshot without it"
        )
        elapsed = time.monotonic() - sent
        print(f"the badge left laser1's snapshot {elapsed:.3f} s after the erasure was sent")
        assert elapsed < 1.0, f"the badge left the snapshot after {elapsed:.2f} s"
    finally:
        observer.close()
        svc.stop()
