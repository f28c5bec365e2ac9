"""Session rules set on a machine's page, over real HTTP, checked in the next snapshot.

A fabmanager logs in through the real form and posts the rules form; what matters is
the signed snapshot a node would receive (the rule there, typed and bounded, verified
with the hub's key as a node verifies it), the stored row, the audit log, the data
version that makes the hub republish, and who is refused.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gateway.config import GroupConfig, MachineConfig
from gateway.contract.signing import generate_key, sign_snapshot, verify_snapshot
from gateway.core.snapshot import MachineRules, Snapshot
from gateway.hub import audit, catalogue
from gateway.hub.db import HubStore, data_version
from gateway.hub.snapshots import build_snapshot, next_snapshot_version
from gateway.web import create_app
from tests.support.hashing import cheap_hashing
from tests.test_auth import PEOPLE, Client, hub_config, seed_people, serve


class Hub:
    def __init__(self, base: str, db: Path) -> None:
        self.base = base
        self.db = db
        self.key = generate_key()

    def as_(self, role: str) -> Client:
        c = Client(self.base)
        assert c.login(PEOPLE[role][2]).status == 302
        return c

    def snapshot(self, machine: str = "laser1") -> Snapshot:
        """The snapshot the hub would publish now, signed and verified as a node does."""
        now = datetime.now(UTC)
        with HubStore(self.db) as store:
            snap = build_snapshot(
                store,
                machine,
                now=now,
                version=next_snapshot_version(store),
                validity=timedelta(hours=1),
                timezone="Europe/Paris",
                opening_hours={},
                staff_present_until=None,
            )
        signed = sign_snapshot(snap, self.key)
        return verify_snapshot(signed, self.key.public_key(), now=now, machine_id=machine)

    def version(self) -> int:
        with HubStore(self.db) as store:
            return data_version(store)

    def last_audit(self) -> dict[str, Any]:
        with HubStore(self.db) as store:
            return audit.entries(store, limit=1)[0]


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[Hub]:
    db = tmp_path / "hub.sqlite"
    with cheap_hashing():
        with HubStore(db) as store:
            seed_people(store)
            catalogue.save_group(store, GroupConfig("print", "Impression"), by="test", new=True)
            catalogue.save_machine(
                store, MachineConfig("printer1", "Prusa", "printer", "print"), by="test", new=True
            )
        with serve(create_app(hub_config(tmp_path, db))) as base:
            yield Hub(base, db)


def post_rules(c: Client, machine: str, **rules: str) -> Any:
    form = {
        "grace": "",
        "idle_timeout": "",
        "max_length": "",
        "cooldown": "",
        "hold_for": "",
        "progress_every": "",
        "never_cut_busy": "",
        **rules,
    }
    token = c.csrf(f"/admin/machines/{machine}")
    return c.post(f"/admin/machines/{machine}/rules", {**form, "csrf_token": token})


def page_text(answer: Any) -> str:
    return html.unescape(answer.body)


def test_a_rule_set_on_the_page_is_in_the_next_signed_snapshot(hub: Hub) -> None:
    fab = hub.as_("fabmanager")
    before = hub.snapshot()
    assert before.machine.session.empty
    version = hub.version()

    answer = post_rules(fab, "laser1", idle_timeout="2m", max_length="1h30m", grace="30")
    assert answer.status == 302, page_text(answer)[:400]
    assert hub.version() > version  # the snapshot loop republishes on this
    after = hub.snapshot().machine.session
    assert after == MachineRules(idle_timeout_s=120.0, max_length_s=5400.0, grace_s=30.0)

    entry = hub.last_audit()
    assert (entry["actor"], entry["action"], entry["subject"]) == (
        "fab",
        "machine.session_rules",
        "laser1",
    )
    assert entry["details"]["changes"]["idle_timeout_s"] == [None, 120.0]

    # The page shows what is set, in the form's own words.
    page = page_text(fab.get("/admin/machines/laser1"))
    assert 'id="rule_idle_timeout" name="idle_timeout" maxlength="20" value="2m"' in page
    assert 'value="1h30m"' in page and 'id="machine-form"' in page

    # The same values again change nothing and write no audit entry.
    version = hub.version()
    assert post_rules(
        fab, "laser1", idle_timeout="120s", max_length="5400", grace="30s"
    ).status == (302)
    assert hub.version() == version and hub.last_audit()["seq"] == entry["seq"]

    # Emptied: the node's own settings again, and no `session` key on the wire.
    assert post_rules(fab, "laser1").status == 302
    snap = hub.snapshot()
    assert snap.machine.session.empty
    assert "session" not in snap.machine.to_dict()


@pytest.mark.parametrize(
    "field, value, says",
    [
        ("max_length", "25h", "de 1s à 24h"),
        ("grace", "2h", "de 0s à 1h"),
        ("idle_timeout", "0", "de 1s à 24h"),
        ("hold_for", "quinze", "une durée comme 90s"),
        ("never_cut_busy", "maybe", "réglage du nœud, oui ou non"),
    ],
)
def test_a_rule_out_of_bounds_is_refused_and_changes_nothing(
    hub: Hub, field: str, value: str, says: str
) -> None:
    fab = hub.as_("fabmanager")
    assert post_rules(fab, "laser1", cooldown="1m").status == 302
    version = hub.version()
    answer = post_rules(fab, "laser1", cooldown="2m", **{field: value})
    assert answer.status == 400
    body = page_text(answer)
    assert says in body and 'id="rules-error"' in body
    assert f'value="{value}"' in body or field == "never_cut_busy"  # what was typed
    assert hub.version() == version
    assert hub.snapshot().machine.session == MachineRules(cooldown_s=60.0)


def test_never_cut_busy_cannot_be_turned_off_on_a_printer_from_the_web(hub: Hub) -> None:
    fab = hub.as_("fabmanager")
    page = page_text(fab.get("/admin/machines/printer1"))
    assert 'name="never_cut_busy"' in page and '<option value="0"' not in page
    answer = post_rules(fab, "printer1", never_cut_busy="0", max_length="2h")
    assert answer.status == 400
    assert "ne coupe jamais un travail en cours" in page_text(answer)
    assert hub.snapshot("printer1").machine.session.empty

    # Safer is allowed: a laser that never cuts a job, a printer with a maximum length.
    assert post_rules(fab, "laser1", never_cut_busy="1").status == 302
    assert hub.snapshot().machine.session.never_cut_busy is True
    assert post_rules(fab, "printer1", max_length="2h").status == 302
    assert hub.snapshot("printer1").machine.session.max_length_s == 7200.0


def test_only_fabmanagers_and_admins_set_rules_and_only_with_the_csrf_token(hub: Hub) -> None:
    for role in ("member", "trainer", "accountant"):
        c = hub.as_(role)
        answer = c.post(
            "/admin/machines/laser1/rules", {"idle_timeout": "1m", "csrf_token": c.csrf()}
        )
        assert answer.status == 403, role
    fab = hub.as_("fabmanager")
    fab.get("/admin/machines/laser1")
    assert fab.post("/admin/machines/laser1/rules", {"idle_timeout": "1m"}).status in (400, 403)
    assert hub.snapshot().machine.session.empty
    assert post_rules(hub.as_("admin"), "laser1", idle_timeout="1m").status == 302
    token = fab.csrf("/admin/machines/laser1")
    missing = fab.post("/admin/machines/nowhere/rules", {"idle_timeout": "1m", "csrf_token": token})
    assert missing.status == 404
    assert hub.snapshot().machine.session.idle_timeout_s == 60.0


def test_the_rules_are_typed_on_the_wire(hub: Hub) -> None:
    """What a node parses: numbers in seconds and a boolean, nothing else."""
    fab = hub.as_("fabmanager")
    assert post_rules(fab, "laser1", hold_for="5s", never_cut_busy="1").status == 302
    wire = json.loads(json.dumps(hub.snapshot().to_dict()))["machine"]["session"]
    assert wire == {"hold_s": 5.0, "never_cut_busy": True}
