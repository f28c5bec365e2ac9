"""The board's words for controller details: read without I/O, said in each language."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from flask_babel import force_locale

from gateway.drivers.machines.grbl import alarm_detail
from gateway.web import create_app
from gateway.web.machine_words import Phrase, describe, phrases
from tests.support.builders import hub_config


@pytest.fixture
def app(tmp_path: Path) -> Flask:
    return create_app(hub_config(tmp_path, tmp_path / "hub.db"))


def _say(app: Flask, lang: str, detail: str | None) -> str | None:
    with app.test_request_context("/"), force_locale(lang):
        return describe(detail)


def test_a_printer_s_temperatures_are_read_as_nozzle_and_bed() -> None:
    assert phrases("T:21.3/0 B:21.3/0") == [
        Phrase("temperature", {"what": "nozzle", "actual": "21"}),
        Phrase("temperature", {"what": "bed", "actual": "21"}),
    ]
    assert phrases("T:180.4/200") == [
        Phrase("heating", {"what": "nozzle", "actual": "180", "target": "200"})
    ]


def test_what_the_board_says_in_french_and_english(app: Flask) -> None:
    assert _say(app, "fr", "T:21.3/0 B:21.3/0") == "buse 21 °C, plateau 21 °C"
    assert _say(app, "en", "T:21.3/0 B:21.3/0") == "nozzle 21 °C, bed 21 °C"
    assert _say(app, "fr", "T:180.4/200 B:59.6/60") == (
        "buse 180 °C (cible 200 °C), plateau 60 °C (cible 60 °C)"
    )
    # GRBL's alarm text as the driver writes it, with its manual's meaning.
    assert _say(app, "fr", alarm_detail(2)) == "en alarme (code 2)"
    assert _say(app, "en", "ALARM:2") == "in alarm (code 2)"
    assert _say(app, "fr", "link lost") == "liaison perdue"
    assert _say(app, "fr", "Operational (job finished)") == "prête, travail terminé"
    assert _say(app, "en", "Operational (job cancelled)") == "ready, job cancelled"
    assert _say(app, "fr", "Hold:0 hold complete") == "en pause"
    assert _say(app, "fr", "Run, 12 of 40 lines") == "en marche, ligne 12 sur 40"
    assert _say(app, "fr", "3.52 A") == "consomme 3,52 A"
    assert _say(app, "en", "3.52 A") == "drawing 3.52 A"
    assert _say(app, "fr", "Idle; permissive off: water") == "au repos, sécurité coupée : water"


def test_text_the_board_does_not_know_is_left_as_it_came(app: Flask) -> None:
    assert phrases("unexpected answer from OctoPrint: boom") == []
    assert phrases("Idle, something new") == []  # never half a translation
    assert _say(app, "fr", "") is None and _say(app, "fr", None) is None
    assert phrases("Operational (job exploded)") == []


def test_the_board_card_says_the_words_and_keeps_the_raw_text(tmp_path: Path) -> None:
    from gateway.config import GroupConfig, MachineConfig
    from gateway.core.clock import iso, utcnow
    from gateway.hub.catalogue import sync_catalogue
    from gateway.hub.db import HubStore
    from gateway.hub.machine_state import set_node_status

    db = tmp_path / "hub.db"
    with HubStore(db) as store:
        printer = MachineConfig("printer1", "Prusa", "printer", "print")
        sync_catalogue(store, [GroupConfig("print", "Impression 3D")], [printer])
        status = {"node": "printer1", "machine": "printer1", "online": True, "relay": False}
        set_node_status(
            store,
            "printer1",
            {**status, "time": iso(utcnow()), "activity": "idle", "detail": "T:21.3/0 B:21.3/0"},
        )
    client = create_app(hub_config(tmp_path, db)).test_client()
    card = client.get("/fragments/board").get_data(as_text=True)
    assert 'title="T:21.3/0 B:21.3/0">à l&#39;arrêt (buse 21 °C, plateau 21 °C)</span>' in card
    english = client.get("/fragments/board?lang=en").get_data(as_text=True)
    assert "idle (nozzle 21 °C, bed 21 °C)" in english
