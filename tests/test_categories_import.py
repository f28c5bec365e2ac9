"""Categories are data: the hub and seed files may name any code of the right shape.

A code the hub's ``member_categories`` lacks is created when the file is imported
(labelled with its code, audited with the file and key that named it); a code of the
wrong shape is refused by the loader, naming the file and the key.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gateway.billing.pricing import import_tariffs
from gateway.config import ConfigError, load_hub_config, load_seed
from gateway.demo.site import write_demo_files
from gateway.hub import audit, categories
from gateway.hub.db import HubStore
from gateway.hub.seed import import_seed

SEED = {
    "members": [
        {"id": "m-lea", "name": "Léa", "category": "etudiant", "badges": ["0A0B0C0D"]},
        {"id": "m-tom", "name": "Tom", "category": "adherent"},
        {"id": "m-ana", "name": "Ana", "category": "etudiant"},
    ]
}


def write(path: Path, data: object) -> Path:
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def test_a_seed_category_the_hub_lacks_is_created_with_its_code_as_label(tmp_path: Path) -> None:
    seed = load_seed(write(tmp_path / "members.yaml", SEED))
    with HubStore(tmp_path / "hub.db") as store:
        assert categories.category(store, "etudiant") is None
        report = import_seed(store, seed)
        made = categories.category(store, "etudiant")
        assert made is not None
        assert (made["label_fr"], made["label_en"], made["active"]) == ("etudiant", "etudiant", 1)
        assert report.categories == ["etudiant"] and "new categories etudiant" in report.summary()
        entry = audit.entries(store, subject="etudiant")[0]
        assert (entry["actor"], entry["action"]) == ("seed", "category.created")
        assert entry["details"]["named_by"] == f"{seed.file}: members[0].category"
        # Members of it exist now, and a second import creates nothing.
        assert import_seed(store, seed).categories == []
        assert len(audit.entries(store, subject="etudiant")) == 1


@pytest.mark.parametrize("bad", ["Etudiant", "étudiant", "1er_cycle", "a-b", "x" * 41])
def test_a_seed_category_of_the_wrong_shape_is_refused_with_file_and_key(
    tmp_path: Path, bad: str
) -> None:
    data = {"members": [dict(SEED["members"][1]), {**SEED["members"][0], "category": bad}]}
    path = write(tmp_path / "members.yaml", data)
    with pytest.raises(ConfigError) as err:
        load_seed(path)
    assert err.value.key == "members[1].category"
    assert str(path) in str(err.value) and "category code" in str(err.value)


def test_a_tariff_category_is_created_at_import_and_a_bad_one_refused(tmp_path: Path) -> None:
    files = write_demo_files(tmp_path / "site", "mqtt://127.0.0.1:1", 0)
    hub = yaml.safe_load(files.hub_config.read_text(encoding="utf-8"))
    hub["tariffs"] = [
        *hub.get("tariffs", []),
        {"valid_from": "2020-01-01", "categories": ["demandeur_emploi"], "rate": 0},
    ]
    write(files.hub_config, hub)
    cfg = load_hub_config(files.hub_config)
    with HubStore(tmp_path / "hub.db") as store:
        import_tariffs(store, cfg.tariffs, actor="hub", source=str(cfg.file))
        assert "demandeur_emploi" in categories.codes(store)
        entry = audit.entries(store, subject="demandeur_emploi")[0]
        at = len(hub["tariffs"]) - 1
        assert entry["details"]["named_by"] == f"{cfg.file}: tariffs[{at}].categories"

    hub["tariffs"][-1]["categories"] = ["Demandeur d'emploi"]
    write(files.hub_config, hub)
    with pytest.raises(ConfigError) as err:
        load_hub_config(files.hub_config)
    assert err.value.key == f"tariffs[{at}].categories"
    assert str(files.hub_config) in str(err.value)
