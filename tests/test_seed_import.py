"""The hub's data is the hub's: a seed creates what is missing and never undoes the web."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

from gateway.config import SeedMember, SeedProject, load_hub_config
from gateway.demo.site import write_demo_files
from gateway.hub.catalogue import sync_catalogue
from gateway.hub.certifications import revoke_certification
from gateway.hub.db import HubStore, data_version
from gateway.hub.seed import import_seed
from gateway.hub.service import HubService
from tests.support.builders import T0, seed

ROOT = Path(__file__).resolve().parent.parent


def fabgate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args], capture_output=True, text=True, timeout=60
    )


def _web_edits(store: HubStore) -> None:
    """What members and staff do on the web pages: the same SQL the views run."""
    with store.atomic():
        store.conn.execute(
            "INSERT INTO projects (id, member_id, name) VALUES ('p-web', 'm1', 'Made on the web')"
        )
        store.conn.execute(
            "UPDATE members SET current_project = 'p-web', name = 'Alice B.' WHERE id = 'm1'"
        )
        store.conn.execute("UPDATE projects SET name = 'Lamp v2' WHERE id = 'p1'")
        store.conn.execute("UPDATE badges SET status = 'blocked' WHERE uid = 'CC0303CC'")
    revoke_certification(store, "m5", "laser", T0)


def _state(store: HubStore) -> tuple:
    q = store.conn.execute
    return (
        q("SELECT name, current_project FROM members WHERE id = 'm1'").fetchone()[:],
        q("SELECT name FROM projects WHERE id = 'p1'").fetchone()[0],
        q("SELECT status FROM badges WHERE uid = 'CC0303CC'").fetchone()[0],
        q(
            "SELECT count(*) FROM certifications WHERE member_id = 'm5' AND revoked_at IS NULL"
        ).fetchone()[0],
    )


def test_reimporting_the_seed_keeps_what_the_web_changed(tmp_path: Path) -> None:
    from gateway.config import GroupConfig, MachineConfig

    with HubStore(tmp_path / "hub.db") as store:
        sync_catalogue(
            store,
            [GroupConfig("laser", "Laser"), GroupConfig("cnc", "CNC")],
            [MachineConfig("laser1", "Laser 1", "laser", "laser")],
        )
        first = import_seed(store, seed())
        assert (first.members, first.projects) == (5, 1) and first.certifications == 7
        _web_edits(store)
        edited = _state(store)
        assert edited == (("Alice B.", "p-web"), "Lamp v2", "blocked", 0)
        version = data_version(store)

        again = import_seed(store, seed())
        assert again.created == 0 and _state(store) == edited
        assert data_version(store) == version  # nothing changed, no snapshot churn

        # A seed that grew: only the new member, badge and project are created, and
        # only the new member gets the seed's current project.
        grown = dataclasses.replace(
            seed(),
            members=(
                *seed().members,
                SeedMember(
                    id="m9",
                    name="Nina",
                    category="adherent",
                    badges=("FF0909FF",),
                    current_project="p9",
                ),
            ),
            projects=(*seed().projects, SeedProject(id="p9", member="m9", name="Kite")),
        )
        report = import_seed(store, grown)
        assert (report.members, report.badges, report.projects) == (1, 1, 1)
        assert _state(store) == edited
        assert (
            store.conn.execute("SELECT current_project FROM members WHERE id = 'm9'").fetchone()[0]
            == "p9"
        )

        # --update is the explicit way to make the seed win again.
        forced = import_seed(store, seed(), update=True)
        assert forced.updated >= 2
        name, project = _state(store)[0]
        assert (name, project) == ("Alice", "p1")


def test_a_hub_restart_keeps_a_members_current_project(tmp_path: Path) -> None:
    files = write_demo_files(tmp_path / "site", "mqtt://127.0.0.1:1", 0)
    cfg = load_hub_config(files.hub_config)
    HubService(cfg)  # first start: imports the seed
    with HubStore(cfg.database) as store:
        seeded = store.conn.execute(
            "SELECT name, current_project FROM members WHERE id = 'm-alice'"
        ).fetchone()
        assert seeded["current_project"] is not None
        with store.atomic():
            store.conn.execute(
                "INSERT INTO projects (id, member_id, name) VALUES ('p-new', 'm-alice', 'Nouveau')"
            )
            store.conn.execute(
                "UPDATE members SET current_project = 'p-new', "
                "name = 'Alice M.' WHERE id = 'm-alice'"
            )
    HubService(cfg)  # restart: imports the same seed again
    with HubStore(cfg.database) as store:
        row = store.conn.execute(
            "SELECT name, current_project FROM members WHERE id = 'm-alice'"
        ).fetchone()
        assert tuple(row) == ("Alice M.", "p-new")


def test_fabgate_import_creates_missing_and_update_overwrites(tmp_path: Path) -> None:
    files = write_demo_files(tmp_path / "site", "mqtt://127.0.0.1:1", 0)
    hub = str(files.hub_config)
    cfg = load_hub_config(hub)
    r = fabgate("import", str(cfg.seed), "--config", hub)
    assert r.returncode == 0, r.stderr
    assert "created" in r.stdout and "created 0 members" not in r.stdout
    with HubStore(cfg.database) as store, store.atomic():
        store.conn.execute("UPDATE members SET name = 'Changed' WHERE id = 'm-alice'")
    r = fabgate("import", str(cfg.seed), "--config", hub)
    assert r.returncode == 0 and "created 0 members" in r.stdout and "--update" in r.stdout
    with HubStore(cfg.database) as store:
        assert (
            store.conn.execute("SELECT name FROM members WHERE id = 'm-alice'").fetchone()[0]
            == "Changed"
        )
    r = fabgate("import", str(cfg.seed), "--config", hub, "--update")
    assert r.returncode == 0 and "updated" in r.stdout
    with HubStore(cfg.database) as store:
        assert (
            store.conn.execute("SELECT name FROM members WHERE id = 'm-alice'").fetchone()[0]
            != "Changed"
        )


def test_fabgate_import_names_an_unknown_group_and_a_bad_seed(tmp_path: Path) -> None:
    files = write_demo_files(tmp_path / "site", "mqtt://127.0.0.1:1", 0)
    hub = str(files.hub_config)
    bad = tmp_path / "seed.yaml"
    text = (ROOT / "config" / "members.example.yaml").read_text()
    bad.write_text(text.replace("group: laser", "group: lazer", 1))
    r = fabgate("import", str(bad), "--config", hub)
    assert r.returncode == 2
    assert str(bad) in r.stderr and ".group" in r.stderr and "'lazer'" in r.stderr
    # Categories are data: a code of the right shape the hub lacks is created, and the
    # import says so (a typo shows there and on the categories page); a code of the
    # wrong shape is refused with its key.
    bad.write_text(text.replace("category: adherent", "category: adherant", 1))
    r = fabgate("import", str(bad), "--config", hub)
    assert r.returncode == 0, r.stderr
    assert "new categories adherant" in r.stdout
    bad.write_text(text.replace("category: adherent", "category: Adhérent", 1))
    r = fabgate("import", str(bad), "--config", hub)
    assert r.returncode == 2 and "members[" in r.stderr and ".category" in r.stderr
    assert "Adhérent" in r.stderr and "category code" in r.stderr


def test_check_config_validates_a_seed_file(tmp_path: Path) -> None:
    example = ROOT / "config" / "members.example.yaml"
    r = fabgate("check-config", str(example))
    assert r.returncode == 0, r.stderr
    assert f"{example}: seed file with" in r.stdout and ": OK" in r.stdout
    bad = tmp_path / "members.yaml"
    bad.write_text(
        example.read_text().replace("category: professionnel", "categroy: professionnel", 1)
    )
    r = fabgate("check-config", str(bad))
    assert r.returncode == 1
    assert str(bad) in r.stderr
    assert "members[0].categroy" in r.stderr and "did you mean 'category'?" in r.stderr
