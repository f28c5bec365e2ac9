"""The web and the command line never run SQL: they call the hub's (or billing's) modules.

Each table has one owner module under ``gateway/hub/`` (or ``gateway/billing/`` for
money); a query written in a view or a command would be a second owner nobody finds.
The scan reads the source with ``ast``, so a comment or a docstring naming ``execute``
does not count, and an attribute such as ``store.conn`` does. It covers the command-line
modules both beside ``gateway/cli.py`` and in a ``gateway/cli/`` package.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "gateway"
FORBIDDEN_ATTRIBUTES = frozenset({"execute", "executemany", "executescript", "conn"})
FORBIDDEN_MODULES = frozenset({"sqlite3", "sqlite_utils"})


def guarded_files() -> list[Path]:
    files = set((ROOT / "web").rglob("*.py"))
    files |= set(ROOT.glob("*_cli.py")) | set((ROOT / "cli").rglob("*.py"))
    files |= {p for p in (ROOT / "cli.py", ROOT / "simtap.py") if p.exists()}
    return sorted(files)


def sql_uses(source: str) -> list[str]:
    """``line: what`` for every SQL execution, connection or SQLite import."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and node.attr in FORBIDDEN_ATTRIBUTES:
            found.append(f"{node.lineno}: .{node.attr}")
        elif isinstance(node, ast.Import):
            found += [
                f"{node.lineno}: import {a.name}"
                for a in node.names
                if a.name.split(".")[0] in FORBIDDEN_MODULES
            ]
        elif (
            isinstance(node, ast.ImportFrom)
            and node.module
            and node.module.split(".")[0] in FORBIDDEN_MODULES
        ):
            found.append(f"{node.lineno}: from {node.module} import ...")
        elif isinstance(node, ast.Name) and node.id in FORBIDDEN_MODULES:
            found.append(f"{node.lineno}: {node.id}")
    return found


def test_the_scan_sees_each_kind_of_sql_use() -> None:
    source = (
        "import sqlite3\n"
        "from sqlite_utils import Database\n"
        "def view(store):\n"
        "    store.conn.execute('SELECT 1')\n"
        "    store.db.executemany('x', [])\n"
        "    c.executescript('y')\n"
        "    '''store.conn.execute in a docstring is fine'''\n"
    )
    kinds = {use.split(": ", 1)[1] for use in sql_uses(source)}
    assert kinds == {
        "import sqlite3",
        "from sqlite_utils import ...",
        ".conn",
        ".execute",
        ".executemany",
        ".executescript",
    }


def test_the_guarded_modules_are_found() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in guarded_files()}
    assert any(n.startswith("web/") for n in names)
    assert any(n.endswith("_cli.py") or n.startswith("cli/") for n in names)


@pytest.mark.parametrize("path", guarded_files(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_no_sql_in_the_web_or_the_command_line(path: Path) -> None:
    uses = sql_uses(path.read_text(encoding="utf-8"))
    assert not uses, (
        f"{path.relative_to(ROOT.parent)} runs SQL itself; move the query "
        f"into the hub module that owns the table: {uses}"
    )
