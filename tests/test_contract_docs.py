"""docs/mqtt.md against the typed contract: every type and field documented, nothing more.

Each typed message has a table in the documentation (a ``####`` heading, then rows of
``| `field` | value | meaning |``). The value column must read exactly what the field's
spec says about itself, so a bound changed in code and not in the documentation (or the
reverse) fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gateway.contract import EVENT_CLASSES, NodeStatus, StatusJob, StatusSession, tap_reasons
from gateway.contract.fields import Message
from gateway.core.snapshot import RULE_BOUNDS, RULE_FLAGS, describe_rule

DOC = Path(__file__).resolve().parent.parent / "docs" / "mqtt.md"

TYPES: dict[str, type[Message]] = {
    **{f"`{t}`": cls for t, cls in EVENT_CLASSES.items()},
    NodeStatus.WHAT: NodeStatus,
    StatusSession.WHAT: StatusSession,
    StatusJob.WHAT: StatusJob,
}
ROW = re.compile(r"^\|\s*`([a-z_]+)`\s*\|([^|]*)\|")


def documented_tables(text: str) -> dict[str, list[tuple[str, str]]]:
    """``#### heading`` -> [(field, value column)] for the table right below it."""
    tables: dict[str, list[tuple[str, str]]] = {}
    current: str | None = None
    for line in text.splitlines():
        if line.startswith("#"):
            current = line[5:].strip() if line.startswith("#### ") else None
            if current is not None:
                tables[current] = []
            continue
        m = ROW.match(line)
        if current is not None and m:
            tables[current].append((m.group(1), m.group(2).strip()))
    return tables


TABLES = documented_tables(DOC.read_text(encoding="utf-8"))


def test_every_documented_table_is_a_type_of_the_contract() -> None:
    assert set(TABLES) == set(TYPES), "docs/mqtt.md has tables for other types than the code"


@pytest.mark.parametrize("heading", sorted(TYPES))
def test_each_type_is_documented_field_by_field_with_its_bounds(heading: str) -> None:
    cls = TYPES[heading]
    expected = [(name, rule.describe()) for name, rule in cls.rules()]
    assert TABLES.get(heading) == expected, (
        f"docs/mqtt.md, table {heading}: fix it to read\n"
        + "\n".join(f"| `{n}` | {d} |" for n, d in expected)
    )


def test_every_tap_reason_is_listed() -> None:
    text = DOC.read_text(encoding="utf-8")
    paragraph = text[text.index("Tap reasons:") :].split("\n\n", 1)[0]
    assert re.findall(r"`([a-z_]+)`", paragraph) == list(tap_reasons())


def test_every_event_type_is_in_the_summary_table() -> None:
    text = DOC.read_text(encoding="utf-8")
    section = text[text.index("### Event types") : text.index("## Event data")]
    rows = re.findall(r"^\| `([a-z._]+)` \|", section, re.M)
    assert rows[0] == "type"  # the header
    assert sorted(rows[1:]) == sorted(EVENT_CLASSES)


def test_the_snapshots_session_rules_are_documented_with_their_bounds() -> None:
    text = DOC.read_text(encoding="utf-8")
    start = text.index("Session rules in a snapshot (`machine.session`)")
    table = text[start:].split("\n\n", 2)[1]
    rows = [(m.group(1), m.group(2).strip()) for m in map(ROW.match, table.splitlines()) if m]
    assert rows == [(name, describe_rule(name)) for name in (*RULE_BOUNDS, *RULE_FLAGS)], (
        "docs/mqtt.md, the table of machine.session: fix it to read\n"
        + "\n".join(f"| `{n}` | {describe_rule(n)} |" for n in (*RULE_BOUNDS, *RULE_FLAGS))
    )
