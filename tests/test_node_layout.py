"""The node package's modules import one way: no cycle, and none through the package itself.

A cycle between the node's collaborators would mean two of them each need the other to
exist first, which is the tangle the package was split to remove (docs/design.md, "The
node package"); importing ``gateway.node`` from inside it would loop through the
package's ``__init__``. Read from the source (imports under ``TYPE_CHECKING`` count too:
they are the same tangle), so a cycle fails here even when Python could import it.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "gateway" / "node"


def _imports() -> dict[str, set[str]]:
    """Module name -> the gateway.node modules it imports (at any level of the file)."""
    graph: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.glob("*.py")):
        name = f"gateway.node.{path.stem}" if path.stem != "__init__" else "gateway.node"
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                found = [node.module]
            elif isinstance(node, ast.Import):
                found = [alias.name for alias in node.names]
            else:
                continue
            deps |= {m for m in found if m == "gateway.node" or m.startswith("gateway.node.")}
        graph[name] = deps
    return graph


def test_no_module_of_the_node_imports_the_package_itself() -> None:
    inside = {m: deps for m, deps in _imports().items() if m != "gateway.node"}
    assert {m for m, deps in inside.items() if "gateway.node" in deps} == set()


def test_the_node_modules_import_each_other_without_a_cycle() -> None:
    graph = _imports()
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            raise AssertionError(
                "import cycle: " + " -> ".join(path[path.index(module) :] + [module])
            )
        if module in done:
            return
        for dep in sorted(graph.get(module, set()) - {"gateway.node"}):
            visit(dep, [*path, module])
        done.add(module)

    for module in sorted(graph):
        visit(module, [])
    assert "gateway.node.agent" in done and len(done) == len(graph)
