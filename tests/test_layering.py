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


def test_flows_are_short_files_and_no_module_passes_400_lines() -> None:
    """Each flow reads in a minute (≤ 150 lines, composing registered steps); no file does two jobs (≤ 400)."""
    flows = {p.name: len(p.read_text().splitlines()) for p in (ROOT / "flows").glob("*.py")
             if "@flow(" in p.read_text()}
    assert flows and all(n <= 150 for n in flows.values()), flows
    big = {str(p.relative_to(ROOT)): n for folder in ("winnow", "tasks", "flows") for p in (ROOT / folder).rglob("*.py")
           if (n := len(p.read_text().splitlines())) > 400}
    assert not big, big
    cli = {p.name: len(p.read_text().splitlines()) for p in (ROOT / "flows" / "cli").glob("*.py")}
    assert all(n <= 300 for n in cli.values()), cli


def test_one_key_function() -> None:
    """Every artifact key comes from winnow.keys.artifact_key (through Step.key); nothing else defines one."""
    defs = [str(p.relative_to(ROOT)) for folder in ("winnow", "tasks", "flows") for p in (ROOT / folder).rglob("*.py")
            if "def artifact_key" in p.read_text()]
    assert defs == ["winnow/keys.py"]


def test_every_step_has_a_runner_and_every_task_names_its_step() -> None:
    from flows.steps import RUNNERS
    from winnow.steps import STEPS

    composite = {"cell", "mixture_trial", "checked_finetune", "probe", "report", "affinity",  # run by their flows
                 "mixture_fit"}  # seconds of CPU: run by `winnow mixture fit` itself
    assert set(STEPS) - composite <= set(RUNNERS) and set(RUNNERS) <= set(STEPS)
    for path in (p for p in (ROOT / "tasks").glob("*.py") if p.name != "__init__.py"):
        src = path.read_text()
        assert "cache_policy=" not in src, f"{path.name}: a task's cache is its step's (tasks.step_task)"
