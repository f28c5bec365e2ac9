"""The public board names nobody unless the site opts in (``web.board_names``).

Over real HTTP: the board page, the fragment it polls and ``/healthz`` are read as a
passer-by would, with a member using a machine, a closed session and a node refusal
that quotes the member's id, and nothing identifying may be in any of them by default.
"""

from __future__ import annotations

import dataclasses
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from gateway.config import ConfigError, GroupConfig, MachineConfig, load_hub_config
from gateway.config.models import HubConfig
from gateway.contract import Envelope
from gateway.core.clock import iso
from gateway.hub import members
from gateway.hub.catalogue import sync_catalogue
from gateway.hub.db import HubStore
from gateway.hub.events import refusals
from gateway.hub.events.ingest import ingest_envelopes
from gateway.hub.machine_state import set_node_status
from gateway.web import create_app
from gateway.web.pages import shown_name
from tests.support import builders
from tests.support.harness import http_request

NAME = "Zoé Marchand-Lebrun"
EMAIL = "zoe.marchand@example.org"
MEMBER_ID = "mbr-7731"
UID = "04C0FFEE"
OTHER = ("mbr-8842", "<i>Yann</i> Quéré", "YQ00AA11")
GROUPS = (GroupConfig("laser", "Laser"),)
MACHINES = (
    MachineConfig("laser1", "Laser Trotec", "laser", "laser"),
    MachineConfig("cnc1", "Fraiseuse", "cnc", "laser"),
)
START = datetime(2026, 11, 3, 17, 0, tzinfo=UTC)

# Whatever would identify the member, in any form a page could carry it.
SECRETS = ("Zoé", "Zoe", "Marchand", "Lebrun", EMAIL, "zoe.marchand", MEMBER_ID, UID)


def _started(sid: str, member: str, uid: str, machine: str, at: datetime, seq: int) -> Envelope:
    return Envelope.new(
        node=machine,
        seq=seq,
        boot="b",
        type="session.started",
        time=at,
        data={
            "session_id": sid,
            "machine": machine,
            "member_id": member,
            "badge_uid": uid,
            "project_id": None,
            "started_at": iso(at),
            "staff_present": False,
        },
    )


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "hub.sqlite"
    with HubStore(path) as store:
        sync_catalogue(store, list(GROUPS), list(MACHINES))
        with store.atomic():
            for member_id, name, email, uid in (
                (MEMBER_ID, NAME, EMAIL, UID),
                (OTHER[0], OTHER[1], None, OTHER[2]),
            ):
                members.add_member(
                    store,
                    member_id,
                    name=name,
                    category="adherent",
                    status="active",
                    membership_end=None,
                    staff=False,
                    email=email,
                )
                members.add_badge(store, uid, member_id)
        # Zoé uses the laser now and used the CNC before; Yann used the CNC.
        events = [
            _started("S-open", MEMBER_ID, UID, "laser1", START, 1),
            *builders.session_events("S-done", START - timedelta(hours=2), 600, MEMBER_ID, "cnc1"),
            *builders.session_events(
                "S-yann", START - timedelta(hours=4), 300, OTHER[0], "cnc1", seq=5
            ),
        ]
        ingest_envelopes(store, events, START)
        # The node's retained status names the member too: it must not reach the board.
        set_node_status(
            store,
            "laser1",
            {
                "node": "laser1",
                "machine": "laser1",
                "online": True,
                "relay": True,
                "time": iso(START),
                "session": {
                    "session_id": "S-open",
                    "member_id": MEMBER_ID,
                    "member_name": NAME,
                    "started_at": iso(START),
                },
            },
        )
        with store.atomic():
            refusals.record(
                store,
                topic="fablab/demo-lab/node/cnc1/event",
                reason=f"a session of {MEMBER_ID} is open on laser1",
                received_at=START,
                kind=refusals.FORBIDDEN,
                node="cnc1",
                event_id="e-refused",
                event_type="session.started",
            )
    return path


@contextmanager
def board(tmp_path: Path, db: Path, mode: str | None) -> Iterator[str]:
    """The hub's web app over real HTTP, with ``web.board_names`` set (None: unset)."""
    cfg: HubConfig = builders.hub_config(tmp_path, db, groups=GROUPS, machines=MACHINES)
    if mode is not None:
        cfg = dataclasses.replace(cfg, board_names=mode)
    httpd = make_server("127.0.0.1", 0, create_app(cfg), threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}"
    finally:
        httpd.shutdown()
        thread.join(timeout=5)


def _read(base: str) -> dict[str, str]:
    out = {}
    for path in ("/", "/fragments/board", "/?lang=en", "/fragments/board?lang=en", "/healthz"):
        status, _, body = http_request(base + path)
        assert status == 200, (path, status)
        out[path] = body.decode()
    return out


def test_by_default_no_name_email_id_or_badge_reaches_the_public_board(
    tmp_path: Path, db: Path
) -> None:
    with board(tmp_path, db, None) as base:
        pages = _read(base)
    for path, text in pages.items():
        for secret in (*SECRETS, "Yann", "Quéré", OTHER[0], OTHER[2]):
            assert secret not in text, f"{secret!r} is on {path}"
    fr = pages["/fragments/board"]
    # The board still says what matters: the laser is in use, since when (local time),
    # the CNC's two sessions are listed, and the refusal is counted without its reason.
    assert "Utilisée" in fr and "depuis 18:00" in fr
    assert "Fraiseuse" in fr and "0:10:00" in fr and "0:05:00" in fr
    assert "1 message du nœud cnc1 refusé" in fr and "dernier" not in fr
    assert "<th>Membre</th>" not in fr
    assert "since 18:00" in pages["/fragments/board?lang=en"]


def test_a_hub_file_without_the_key_names_nobody_and_a_wrong_value_is_refused(
    tmp_path: Path,
) -> None:
    base = "site: demo-lab\ntimezone: Europe/Paris\nhub: {database: ./hub.db}\n"
    plain = tmp_path / "hub.yaml"
    plain.write_text(base)
    assert load_hub_config(plain).board_names == "none"
    named = tmp_path / "named.yaml"
    named.write_text(base + "web: {board_names: first_name}\n")
    assert load_hub_config(named).board_names == "first_name"
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(base + "web: {board_names: full}\n")
    with pytest.raises(ConfigError) as err:
        load_hub_config(wrong)
    text = str(err.value)
    assert "wrong.yaml" in text and "web.board_names" in text
    assert "none" in text and "initials" in text and "first_name" in text


def test_initials_show_initials_only(tmp_path: Path, db: Path) -> None:
    with board(tmp_path, db, "initials") as base:
        pages = _read(base)
    fr = pages["/fragments/board"]
    assert "par Z. M. depuis 18:00" in fr
    assert "<td>Z. M.</td>" in fr and "<th>Membre</th>" in fr
    for path, text in pages.items():
        for secret in SECRETS:
            assert secret not in text, f"{secret!r} is on {path}"
    assert re.search(r"\d+ messages? du nœud \w+ refusés?", fr) and "dernier" not in fr  # counted


def test_first_names_show_the_first_name_only_and_escaped(tmp_path: Path, db: Path) -> None:
    with board(tmp_path, db, "first_name") as base:
        pages = _read(base)
    fr = pages["/fragments/board"]
    assert "par Zoé depuis 18:00" in fr and "<td>Zoé</td>" in fr
    # Yann's "first name" is markup in the database: shown as text, never as HTML.
    assert "<i>Yann</i>" not in fr and "&lt;i&gt;Yann&lt;/i&gt;" in fr
    for path, text in pages.items():
        for secret in ("Marchand", "Lebrun", EMAIL, MEMBER_ID, UID, "Quéré", OTHER[2]):
            assert secret not in text, f"{secret!r} is on {path}"


@pytest.mark.parametrize(
    ("mode", "name", "shown"),
    [
        ("none", "Alice Martin", None),
        ("initials", "Alice Martin", "A. M."),
        ("initials", "jean-paul de la Tour", "J. D. L. T."),
        ("first_name", "Alice Martin", "Alice"),
        ("first_name", "  Alice  ", "Alice"),
        ("first_name", "Membre effacé n° 4", None),
        ("initials", "Membre effacé n° 4", None),
        ("first_name", None, None),
    ],
)
def test_what_each_mode_shows_of_a_name(mode: str, name: str | None, shown: str | None) -> None:
    assert shown_name(name, mode) == shown
