"""The rig file and ``fabgate commission``: a wrong file is named before anything starts,
and the command runs the suite it finds with the rig and the report folder handed over."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gateway.cli import main
from gateway.cli.commission import find_suite
from gateway.config import ConfigError
from gateway.config.rig import BADGE_KINDS, load_rig_config

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "config" / "rig.example.yaml"


def _rig(tmp_path: Path, **changes: object) -> Path:
    data = yaml.safe_load(EXAMPLE.read_text())
    data.update(changes)
    path = tmp_path / "rig.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_the_example_rig_has_one_badge_of_each_kind() -> None:
    rig = load_rig_config(EXAMPLE)
    assert sorted({b.kind for b in rig.badges}) == sorted(BADGE_KINDS)
    assert rig.badge("valid").uid == "04A1CE01"
    assert rig.sense_pin == 27 and rig.relay_pin == 17
    assert rig.tap_to_relay == 1.5 and rig.service.watchdog == 6.0


@pytest.mark.parametrize(
    ("changes", "key", "expected"),
    [
        ({"badges": [{"uid": "04A1CE01", "kind": "valid"}]}, "badges", "one badge of each kind"),
        ({"badges": [{"uid": "zz", "kind": "valid"}]}, "badges[0].uid", "card UID"),
        ({"badges": [{"uid": "04A1CE01", "kind": "vip"}]}, "badges[0].kind", "valid"),
        ({"relay": {"pin": 17, "sense_pin": 17}}, "relay.sense_pin", "another GPIO"),
        ({"limits": {"tap_to_relay": "soon"}}, "limits.tap_to_relay", "a duration"),
        ({"colour": "blue"}, "colour", "a known key"),
    ],
)
def test_a_wrong_rig_file_names_the_key(
    tmp_path: Path, changes: dict[str, object], key: str, expected: str
) -> None:
    path = _rig(tmp_path, **changes)
    with pytest.raises(ConfigError) as err:
        load_rig_config(path)
    text = str(err.value)
    assert str(path) in text and key in text and expected in text


def test_commission_refuses_a_wrong_rig_file_before_starting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _rig(tmp_path, node="not an id!")
    assert main(["commission", "--rig", str(path), "--out", str(tmp_path / "out")]) == 2
    assert "node" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_the_suite_is_found_in_this_checkout() -> None:
    assert find_suite(None) == REPO / "tests" / "hil"
    assert find_suite(REPO / "no-such-folder") is None


def test_commission_runs_the_suite_with_the_rig_and_the_report_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A stand-in suite that records what it was handed: the real one needs a bench.
    suite = tmp_path / "checkout" / "tests" / "hil"
    suite.mkdir(parents=True)
    (suite / "conftest.py").write_text("")
    (suite / "test_handed.py").write_text(
        "import os, pathlib\n"
        "def test_handed():\n"
        "    out = pathlib.Path(os.environ['FABGATE_COMMISSION_OUT'])\n"
        "    out.mkdir(parents=True)\n"
        "    (out / 'rig').write_text(os.environ['FABGATE_RIG'])\n"
    )
    rig = _rig(tmp_path)
    out = tmp_path / "report"
    assert main(["commission", "--rig", str(rig), "--out", str(out), "--suite", str(suite)]) == 0
    assert (out / "rig").read_text() == str(rig.resolve())
    assert f"report: {out}" in capsys.readouterr().out


def test_a_failing_check_fails_the_command(tmp_path: Path) -> None:
    suite = tmp_path / "checkout" / "tests" / "hil"
    suite.mkdir(parents=True)
    (suite / "conftest.py").write_text("")
    (suite / "test_fails.py").write_text("def test_relay():\n    assert False\n")
    out = tmp_path / "report"
    code = main(
        ["commission", "--rig", str(_rig(tmp_path)), "--suite", str(suite), "--out", str(out)]
    )
    assert code == 1  # pytest's status when a test failed
