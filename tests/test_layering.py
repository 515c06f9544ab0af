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
