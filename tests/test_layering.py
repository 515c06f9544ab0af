"""Imports point one way: flows -> tasks -> winnow. The library never imports Prefect or a Dask client."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).parents[1]


def _imports(folder: str) -> dict[str, set[str]]:
    out = {}
    for path in (ROOT / folder).rglob("*.py"):
        mods = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                mods |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                mods.add(node.module.split(".")[0])
        out[str(path.relative_to(ROOT))] = mods
    return out


def test_library_is_orchestration_free() -> None:
    bad = {f: m & {"prefect", "prefect_dask", "distributed", "tasks", "flows"} for f, m in _imports("winnow").items()}
    assert not {f: m for f, m in bad.items() if m}


def test_tasks_do_not_import_flows() -> None:
    bad = {f: m & {"flows"} for f, m in _imports("tasks").items()}
    assert not {f: m for f, m in bad.items() if m}


def _package_graph() -> dict[str, set[str]]:
    """winnow's subpackages (and top-level modules) -> the other ones they import."""
    graph: dict[str, set[str]] = {}
    for path in (ROOT / "winnow").rglob("*.py"):
        own = path.relative_to(ROOT / "winnow").with_suffix("").parts[0]
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 else []
            graph.setdefault(own, set()).update(n.split(".")[1] for n in names
                                                if n.startswith("winnow.") and n.split(".")[1] != own)
    return graph


def test_no_package_cycle_inside_the_library() -> None:
    graph = _package_graph()

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(n == goal or (n not in seen and reaches(n, goal, seen | {n})) for n in graph.get(start, ()))

    cycles = sorted(p for p in graph if reaches(p, p, {p}))
    assert not cycles, f"packages on an import cycle: {cycles} ({ {p: sorted(graph[p]) for p in cycles} })"
    assert "data" in graph["store"] and "store" not in graph["data"]  # the store holds records, not the reverse
