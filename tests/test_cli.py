"""The `fabgate` command line as a user meets it: exit codes and messages."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gateway.hub.catalogue import sync_catalogue
from gateway.hub.seed import import_seed

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = [ROOT / "config" / "hub.yaml", *sorted((ROOT / "config" / "nodes").glob("*.yaml"))]


def fabgate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args], capture_output=True, text=True, timeout=60
    )


def test_check_config_accepts_the_examples() -> None:
    assert len(EXAMPLES) == 5
    r = fabgate("check-config", *map(str, EXAMPLES))
    assert r.returncode == 0, r.stderr
    assert r.stdout.count(": OK") == 5


def test_check_config_names_file_key_and_expectation(tmp_path: Path) -> None:
    bad = tmp_path / "laser.yaml"
    text = (ROOT / "config" / "nodes" / "laser-1.yaml").read_text()
    bad.write_text(text.replace("max_snapshot_age:", "max_snapshot_agee:"))
    r = fabgate("check-config", str(ROOT / "config" / "hub.yaml"), str(bad))
    assert r.returncode == 1
    assert str(bad) in r.stderr
    assert "node.max_snapshot_agee" in r.stderr
    assert "max_snapshot_age" in r.stderr.split("node.max_snapshot_agee", 1)[1]


def test_node_refuses_to_start_on_a_bad_config(tmp_path: Path) -> None:
    bad = tmp_path / "node.yaml"
    bad.write_text("site: x\nnode: {machine: laser-1}\nrelay: {pin: 4}\n")
    r = fabgate("node", "--config", str(bad))
    assert r.returncode == 2
    assert f"{bad}" in r.stderr and "relay.pin" in r.stderr


def test_keygen_never_overwrites(tmp_path: Path) -> None:
    key = tmp_path / "hub.pem"
    assert fabgate("keygen", "--out", str(key)).returncode == 0
    assert key.with_suffix(".pub").exists()
    assert key.stat().st_mode & 0o077 == 0
    before = key.read_bytes()
    r = fabgate("keygen", "--out", str(key))
    assert r.returncode == 1 and "refusing" in r.stderr
    assert key.read_bytes() == before


@pytest.mark.parametrize("argv", [["--version"], ["sim", "tap", "--help"]])
def test_help_and_version(argv: list[str]) -> None:
    r = fabgate(*argv)
    assert r.returncode == 0
    assert "fabgate" in r.stdout


def test_credit_top_up_and_show(tmp_path: Path) -> None:
    from gateway.config import load_hub_config, load_seed
    from gateway.demo.site import write_demo_files
    from gateway.hub.db import HubStore

    files = write_demo_files(tmp_path / "site", "mqtt://127.0.0.1:1", 0)
    cfg = load_hub_config(files.hub_config)
    with HubStore(cfg.database) as store:
        sync_catalogue(store, cfg.groups, cfg.machines)
        import_seed(store, load_seed(cfg.seed))
    hub = str(files.hub_config)
    r = fabgate("credit", "--config", hub, "add", "m-alice", "12,50", "--note", "espèces")
    assert r.returncode == 0, r.stderr
    assert "balance 12,50" in r.stdout
    assert fabgate("credit", "--config", hub, "add", "m-alice", "1.234").returncode == 2
    assert fabgate("credit", "--config", hub, "add", "nobody", "5").returncode == 2
    shown = fabgate("credit", "--config", hub, "show")
    assert "m-alice" in shown.stdout and "12,50" in shown.stdout


# Every command that reads a configuration takes `--config FILE` right after its name,
# and after its own arguments (a subcommand's too): (argv before, argv after).
CONFIG_PLACES = {
    "hub": (["hub", "--config", "F"], ["hub", "--config", "F"]),
    "node": (["node", "--config", "F"], ["node", "--config", "F"]),
    "export": (
        ["export", "--config", "F", "usage"],
        ["export", "usage", "--format", "json", "--config", "F"],
    ),
    "credit add": (
        ["credit", "--config", "F", "add", "m", "5"],
        ["credit", "add", "m", "5", "--note", "x", "--config", "F"],
    ),
    "credit show": (["credit", "--config", "F", "show"], ["credit", "show", "--config", "F"]),
    "audit verify": (["audit", "--config", "F", "verify"], ["audit", "verify", "--config", "F"]),
    "user add": (
        ["user", "--config", "F", "add", "a@b.c", "--member", "m"],
        ["user", "add", "a@b.c", "--member", "m", "--config", "F"],
    ),
    "user passwd": (
        ["user", "--config", "F", "passwd", "a@b.c"],
        ["user", "passwd", "a@b.c", "--password-stdin", "--config", "F"],
    ),
    "import": (
        ["import", "--config", "F", "seed.yaml"],
        ["import", "seed.yaml", "--update", "--config", "F"],
    ),
    "backup": (
        ["backup", "--config", "F", "--out", "b.db"],
        ["backup", "--out", "b.db", "--config", "F"],
    ),
    "reprice": (
        ["reprice", "--config", "F", "--member", "m"],
        ["reprice", "--member", "m", "--config", "F"],
    ),
    "sim tap": (
        ["sim", "tap", "--config", "F", "laser-1", "04A1CE01"],
        ["sim", "tap", "laser-1", "04A1CE01", "--config", "F"],
    ),
}


@pytest.mark.parametrize("place", ["before", "after"])
@pytest.mark.parametrize("command", sorted(CONFIG_PLACES))
def test_config_is_accepted_in_the_same_places_by_every_command(command: str, place: str) -> None:
    from gateway.cli import build_parser, command_of

    argv = CONFIG_PLACES[command][place == "after"]
    args = build_parser(command_of(argv)).parse_args(argv)
    assert args.config == "F"


@pytest.mark.parametrize(
    "argv",
    [["hub"], ["credit", "show"], ["audit", "verify"], ["user", "passwd", "a@b.c"], ["reprice"]],
)
def test_a_missing_config_is_named_with_the_usage_of_the_command_typed(argv: list[str]) -> None:
    r = fabgate(*argv)
    assert r.returncode == 2
    assert "the following arguments are required: --config" in r.stderr
    assert f"usage: fabgate {' '.join(a for a in argv if '@' not in a)}" in r.stderr


def test_credit_takes_its_config_after_the_subcommand_too(tmp_path: Path) -> None:
    from gateway.config import load_hub_config, load_seed
    from gateway.demo.site import write_demo_files
    from gateway.hub.catalogue import sync_catalogue
    from gateway.hub.db import HubStore
    from gateway.hub.seed import import_seed

    files = write_demo_files(tmp_path / "site", "mqtt://127.0.0.1:1", 0)
    cfg = load_hub_config(files.hub_config)
    with HubStore(cfg.database) as store:
        sync_catalogue(store, cfg.groups, cfg.machines)
        import_seed(store, load_seed(cfg.seed))
    hub = str(files.hub_config)
    r = fabgate("credit", "add", "m-alice", "7", "--config", hub)
    assert r.returncode == 0, r.stderr
    assert "balance 7,00" in r.stdout
    assert "m-alice" in fabgate("credit", "show", "--config", hub).stdout


def test_a_command_whose_library_is_missing_names_the_extra_to_install() -> None:
    # A node installation: no Flask. The hub command says what to install.
    blocker = (
        "import sys, importlib.abc\n"
        "class B(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name.split('.')[0] in ('flask', 'werkzeug'):\n"
        "            raise ModuleNotFoundError(name, name=name)\n"
        "sys.meta_path.insert(0, B())\n"
        "from gateway.cli import main\n"
        "raise SystemExit(main(['hub', '--config', 'hub.yaml']))\n"
    )
    r = subprocess.run([sys.executable, "-c", blocker], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, r.stderr
    assert "fablab-gateway[hub]" in r.stderr and "Traceback" not in r.stderr
