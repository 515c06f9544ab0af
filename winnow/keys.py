"""The one artifact key: what an artifact was made from, with what settings, by which code.

Every cache and stored artifact — feature tables and their shard markers, warm-up, fine-tune and evaluation
folders, experiment cells, NICE samples, Prefect task caches — is named by ``artifact_key``. The key hashes
three things:

- the *content* of the inputs (file digests, table versions, subset digests — never a path alone);
- the resolved settings that change the result;
- the *code version*: the source of the ``winnow`` modules that compute the artifact, found by following
  their imports inside the package (``code_version``). A fix to ``winnow/features/projection.py`` changes the
  key of every feature table, and so of everything keyed on those features, while the warm-up, whose modules
  do not import it, keeps its key and is reused.

Without the code version a re-run after a bug fix silently reused what the bug produced (issue #14).
"""
from __future__ import annotations

import ast
import hashlib
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel

PACKAGE = "winnow"
# Modules whose effect on an artifact already reaches its key another way, or not at all: the resolved settings
# are hashed as values (so a help text edit in settings.py must not re-featurise a pool), errors carry messages.
NOT_COMPUTING = frozenset({"winnow.settings", "winnow.errors", "winnow.keys"})


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, BaseModel):
        return obj.model_dump(mode="json")
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj


def digest(obj: Any, n: int = 12) -> str:
    """Stable short hash of JSON-able data (settings models are dumped first; key order does not matter)."""
    return hashlib.sha256(json.dumps(_jsonable(obj), sort_keys=True).encode()).hexdigest()[:n]


def artifact_key(kind: str, *, inputs: Any, settings: Any = None, code: tuple[str, ...] | list[str] = (),
                 n: int = 12) -> str:
    """``<kind>__<hash>`` over input content, settings and the code version of ``code`` (module names)."""
    return f"{kind}__{digest({'inputs': inputs, 'settings': settings, 'code': code_version(*code)}, n)}"


_ROOT = Path(__file__).resolve().parents[1]  # the folder holding winnow/ (and, in a checkout, tasks/ and flows/)


def _module_file(name: str) -> Path | None:
    """The source file of a module under ``_ROOT``, found on disk without importing anything; None for a name
    that is not a module (``from winnow.x import function``)."""
    base = _ROOT.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _imports(name: str, path: Path) -> set[str]:
    """The package's modules that ``name`` imports (absolute and relative, at any depth of the file)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(p for p in [*parts, base] if p)
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)  # `from winnow.x import module`
    return {m for m in found if m == PACKAGE or m.startswith(PACKAGE + ".")}


@lru_cache(maxsize=None)
def module_closure(name: str) -> tuple[str, ...]:
    """``name`` and every ``winnow`` module it imports, directly or through others, sorted."""
    seen: set[str] = set()
    todo = [name]
    while todo:
        mod = todo.pop()
        if mod in seen:
            continue
        path = _module_file(mod)
        if path is None:  # a name imported from a module, not a module itself
            continue
        seen.add(mod)
        todo.extend(_imports(mod, path) - seen)
    return tuple(sorted(seen))


@lru_cache(maxsize=None)
def code_version(*modules: str) -> str:
    """Hash of the source of ``modules`` and of every ``winnow`` module they import (transitively).

    Computed once per process from the files on disk; ``()`` gives the hash of nothing (no code dependency)."""
    h = hashlib.sha256()
    for mod in sorted({m for name in modules for m in module_closure(name)} - NOT_COMPUTING):
        path = _module_file(mod)
        assert path is not None
        h.update(mod.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:12]
