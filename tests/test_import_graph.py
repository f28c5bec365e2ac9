"""No import cycle between the files of ``gateway/``, and the layers import one way.

Read from the source: an import inside a function counts (it is the same tangle, only
postponed), and ``from package import submodule`` is an edge to that submodule, not to
the package. A cycle means two modules each need the other to exist first, the knot the
layout by role (docs/design.md) was made to undo; the layer rule keeps the vocabulary at
the bottom: ``gateway.core`` imports nothing else from gateway, and the pure policies
import no I/O package.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in (ROOT / "gateway").rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                subs = {f"{node.module}.{a.name}" for a in node.names} & modules.keys()
                deps |= subs
                if len(subs) < len(node.names) and node.module in modules:
                    deps.add(node.module)
            elif isinstance(node, ast.Import):
                deps |= {a.name for a in node.names} & modules.keys()
        deps.discard(name)
        graph[name] = deps
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            v, children = work[-1]
            for w in children:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    component = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        component.append(w)
                        if w == v:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def test_no_import_cycle_between_files() -> None:
    assert cycles(import_graph()) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_core_imports_nothing_else_from_gateway() -> None:
    graph = import_graph()
    outside = {
        m: {d for d in deps if not d.startswith("gateway.core")}
        for m, deps in graph.items()
        if m.startswith("gateway.core")
    }
    assert {m: d for m, d in outside.items() if d} == {}


def test_policies_import_no_io_package() -> None:
    io = (
        "gateway.node",
        "gateway.hub",
        "gateway.web",
        "gateway.drivers",
        "gateway.cli",
        "gateway.demo",
        "gateway.config",
        "gateway.contract.mqtt",
    )
    graph = import_graph()
    bad = {
        m: {d for d in deps if d.startswith(io)}
        for m, deps in graph.items()
        if m.startswith("gateway.policies")
    }
    assert {m: d for m, d in bad.items() if d} == {}


def test_the_hub_and_the_node_import_no_web_app() -> None:
    """The hub process serves the app the CLI hands it; the node has no web at all."""
    graph = import_graph()
    bad = {
        m: {d for d in deps if d.startswith("gateway.web")}
        for m, deps in graph.items()
        if m.startswith(("gateway.hub", "gateway.node"))
    }
    assert {m: d for m, d in bad.items() if d} == {}
