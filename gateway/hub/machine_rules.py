"""Session rules per machine, set on the web: the only writer of ``machine_rules``.

Grace, idle timeout, maximum length, cool-down, the hold before power-off, job progress
interval and "never cut busy" used to live only in each node's file, so changing one
meant editing a file on the Pi and restarting the node. A rule set here travels in the
machine's signed snapshot (``machine.session``); the node uses it instead of its file's
while the snapshot is fresh, and resolves the rest as before (``policies.session_rules.
in_force``). A rule left empty (NULL) means "the node's own setting". Every change bumps
``data_version`` through the table's triggers (migration ``0018_machine_rules``), so the
node has it within a second, and is audited.

Bounds are the snapshot's (``core.snapshot.RULE_BOUNDS``): the hub never signs a value a
node would refuse. The hub also refuses ``never_cut_busy: false`` on a printer or an
embroidery machine with a clear message; the node ignores it anyway, since a page is not
where a safety rule may be kept alone.
"""

from __future__ import annotations

from typing import Any

from gateway.core.snapshot import RULE_BOUNDS, RULE_FLAGS, MachineRules
from gateway.hub import audit
from gateway.hub.db import HubStore
from gateway.policies.session_rules import never_cut_kind

RULES_CHANGED = "machine.session_rules"
COLUMNS = (*RULE_BOUNDS, *RULE_FLAGS)


class RulesError(ValueError):
    """A refused rule; ``field`` names it (the snapshot's name of the rule)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def rules_of(store: HubStore, machine_id: str) -> MachineRules:
    """The rules the hub sets for a machine (all None: the node's own settings)."""
    row = store.conn.execute(
        f"SELECT {', '.join(COLUMNS)} FROM machine_rules WHERE machine_id = ?", (machine_id,)
    ).fetchone()
    if row is None:
        return MachineRules()
    values: dict[str, Any] = {name: row[name] for name in RULE_BOUNDS}
    values.update({name: None if row[name] is None else bool(row[name]) for name in RULE_FLAGS})
    return MachineRules(**values)


def check(kind: str, rules: MachineRules) -> MachineRules:
    """``rules`` if a node would take every one of them, else ``RulesError``."""
    for name, (lo, hi) in RULE_BOUNDS.items():
        value = getattr(rules, name)
        if value is not None and not lo <= value <= hi:
            raise RulesError(name, f"from {lo:g} to {hi:g} seconds")
    if rules.never_cut_busy is False and never_cut_kind(kind):
        raise RulesError(
            "never_cut_busy",
            f"a {kind} never has a job cut by a limit; this cannot be turned off from the web",
        )
    return rules


def set_rules(store: HubStore, machine_id: str, rules: MachineRules, *, by: str) -> dict[str, Any]:
    """Replace the machine's rules, audited; returns the changes (rule: [old, new])."""
    with store.atomic():
        row = store.conn.execute("SELECT kind FROM machines WHERE id = ?", (machine_id,)).fetchone()
        if row is None:
            raise RulesError("machine", f"no machine {machine_id!r}")
        check(row["kind"], rules)
        old = rules_of(store, machine_id)
        changes = {
            name: [getattr(old, name), getattr(rules, name)]
            for name in COLUMNS
            if getattr(old, name) != getattr(rules, name)
        }
        if not changes:
            return {}
        if rules.empty:
            store.conn.execute("DELETE FROM machine_rules WHERE machine_id = ?", (machine_id,))
        else:
            values = [
                None
                if getattr(rules, n) is None
                else int(getattr(rules, n))
                if n in RULE_FLAGS
                else getattr(rules, n)
                for n in COLUMNS
            ]
            store.conn.execute(
                f"INSERT INTO machine_rules (machine_id, {', '.join(COLUMNS)}) "
                f"VALUES (?, {', '.join('?' for _ in COLUMNS)}) ON CONFLICT(machine_id) DO "
                f"UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in COLUMNS)}",
                (machine_id, *values),
            )
        audit.record(store, by, RULES_CHANGED, machine_id, {"changes": changes})
    return changes
