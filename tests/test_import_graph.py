"""The packages under fsmcheck/ import one way down: no cycle between them.

Every ``import`` statement of every module counts, at any depth (a lazy
import inside a function is still a dependency); a top-level module
(``fsmcheck/cli.py``) is a package of its own. The pipeline reads model ->
semantics -> engines -> verifier -> generate/pack/... -> cli (COMMON.md).
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

ROOT = Path(__file__).resolve().parents[1] / "fsmcheck"


def _package(module: tuple[str, ...]) -> str:
    """``fsmcheck.engines.explicit`` -> ``engines``; ``fsmcheck.cli`` -> ``cli``."""
    return module[1] if len(module) > 1 else module[0]


def _module_name(path: Path) -> tuple[str, ...]:
    parts = ("fsmcheck",) + path.relative_to(ROOT).with_suffix("").parts
    return parts[:-1] if parts[-1] == "__init__" else parts


def _imports(path: Path):
    """The absolute module names ``path`` imports (``from X import name``
    gives ``X.name`` too: the name may be a submodule)."""
    here = _module_name(path)
    package = here if path.name == "__init__.py" else here[:-1]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield tuple(alias.name.split("."))
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else ()
            target = base + tuple((node.module or "").split(".") if node.module else ())
            for alias in node.names:
                yield target + (alias.name,)


def import_graph() -> nx.DiGraph:
    """Package -> package edges of fsmcheck/, each with the modules that make it."""
    graph = nx.DiGraph()
    for path in sorted(ROOT.rglob("*.py")):
        mine = _package(_module_name(path))
        graph.add_node(mine)
        for target in _imports(path):
            if target[0] != "fsmcheck" or len(target) < 2:
                continue
            theirs = _package(target)
            if theirs != mine and ((ROOT / theirs).is_dir() or (ROOT / f"{theirs}.py").is_file()):
                graph.add_edge(mine, theirs)
                graph.edges[mine, theirs].setdefault("by", []).append(".".join(_module_name(path)))
    return graph


def test_no_import_cycle_between_packages():
    graph = import_graph()
    cycles = sorted(nx.simple_cycles(graph), key=len)
    shown = ["; ".join(f"{u} -> {v} ({', '.join(sorted(set(graph.edges[u, v]['by'])))})"
                       for u, v in zip(cycle, cycle[1:] + cycle[:1])) for cycle in cycles[:5]]
    assert not cycles, f"{len(cycles)} import cycles between packages, e.g.:\n" + "\n".join(shown)


def test_the_graph_sees_imports():
    """The walk finds the known direction: engines use semantics, never the reverse."""
    graph = import_graph()
    assert graph.has_edge("engines", "semantics") and graph.has_edge("verifier", "engines")
    assert graph.has_edge("cli", "verifier") and graph.has_edge("review", "model")
