"""The one artifact key: what an artifact was made from, with what settings, by which code.

Every cache and stored artifact (feature tables and their shard markers, warm-up, fine-tune and evaluation
folders, experiment cells, NICE tables, cascades, the tuning study, Prefect's task caches) is named by
``artifact_key``, which hashes four things:

- the *content* of the inputs (file digests, table versions, subset digests; never a path alone);
- the settings slice that changes the result;
- the *models* by their content fingerprint (``winnow.fingerprint``), never their path;
- the *code version* of the modules that compute it (``code_version``).

The code version is narrow on purpose. It hashes each module's syntax tree with docstrings removed (comments
never reach the tree), so a docstring or comment edit recomputes nothing, and it follows imports only through
modules that compute. Modules that only *name* things (``NAMING``: settings, errors, the registries of steps,
selectors and representations) are neither hashed nor followed: the settings' values reach the key as values,
and a registry names a selector's module without importing it, so an edit of one selector changes the keys of
the selections that use it and nothing else: not the warm-up, the features or the fine-tunes. Without a code
version at all, a re-run after a bug fix silently reused what the bug produced (issue #14); with one that
followed every import, one changed line in a selector redid hours of gradients (issue #33).
"""
from __future__ import annotations

import ast
import dataclasses
import hashlib
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel

PACKAGES = ("winnow", "tasks")  # the code we version; torch, numpy... are versioned by their package pins
# Modules that only name things. Their effect on an artifact reaches its key another way (settings as values,
# a registry's choice as the chosen module) or not at all (error messages, the key scheme itself).
NAMING = frozenset({"winnow.settings", "winnow.settings.sections", "winnow.settings.studies", "winnow.errors",
                    "winnow.keys", "winnow.steps", "winnow.registry", "winnow.fingerprint"})


def _jsonable(obj: Any) -> Any:
    from winnow.fingerprint import ModelRef

    if isinstance(obj, ModelRef):  # what the model is, never where it lies
        return {"model": obj.fingerprint}
    if isinstance(obj, BaseModel):  # fields marked key=False are where or how fast, not what
        return {name: _jsonable(getattr(obj, name)) for name, f in type(obj).model_fields.items()
                if not isinstance(f.json_schema_extra, dict) or f.json_schema_extra.get("key", True)}
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):  # fields marked key=False are where, not what
        return {f.name: _jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj) if f.metadata.get("key", True)}
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (set, frozenset)):
        return sorted(_jsonable(v) for v in obj)
    if isinstance(obj, Path):
        return str(obj)
    return obj


def digest(obj: Any, n: int = 12) -> str:
    """Stable short hash of JSON-able data (settings models and dataclasses are dumped first; key order does not
    matter; a ModelRef counts as its fingerprint)."""
    return hashlib.sha256(json.dumps(_jsonable(obj), sort_keys=True, default=str).encode()).hexdigest()[:n]


def artifact_key(kind: str, *, inputs: Any, settings: Any = None, models: tuple[Any, ...] | list[Any] = (),
                 code: tuple[str, ...] | list[str] = (), n: int = 12) -> str:
    """``<kind>__<hash>`` over input content, the settings slice, the models' fingerprints (each a path, hub id
    or ``ModelRef``) and the code version of ``code`` (module names)."""
    from winnow.fingerprint import ModelRef, model_fingerprint

    prints = [m.fingerprint if isinstance(m, ModelRef) else model_fingerprint(str(m)) for m in models if m]
    return f"{kind}__{digest({'inputs': inputs, 'settings': settings, 'models': prints, 'code': code_version(*code)}, n)}"


_ROOT = Path(__file__).resolve().parents[1]  # the folder holding winnow/ (and, in a checkout, tasks/ and flows/)


def _ours(name: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in PACKAGES)


def _module_file(name: str) -> Path | None:
    """The source file of a module under ``_ROOT``, found on disk without importing anything; None for a name
    that is not a module (``from winnow.x import function``)."""
    base = _ROOT.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _imports(name: str, tree: ast.Module, is_package: bool) -> set[str]:
    """Our modules that ``name`` imports (absolute and relative, at any depth of the file)."""
    package = name if is_package else name.rpartition(".")[0]
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
    return {m for m in found if _ours(m)}


@lru_cache(maxsize=None)
def _parsed(name: str) -> tuple[str, frozenset[str]] | None:
    """A module's normalised syntax (docstrings out) and the modules it imports; None for a non-module name."""
    path = _module_file(name)
    if path is None:
        return None
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and body
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree, annotate_fields=False, include_attributes=False), frozenset(
        _imports(name, tree, path.name == "__init__.py"))


@lru_cache(maxsize=None)
def module_closure(name: str) -> tuple[str, ...]:
    """``name`` and every module of ours it imports, directly or through others, stopping at ``NAMING``
    modules (neither kept nor followed), sorted."""
    seen: set[str] = set()
    todo = [name]
    while todo:
        mod = todo.pop()
        if mod in seen or (mod in NAMING and mod != name):
            continue
        parsed = _parsed(mod)
        if parsed is None:  # a name imported from a module, not a module itself
            continue
        seen.add(mod)
        todo.extend(parsed[1] - seen)
    return tuple(sorted(seen - NAMING))


@lru_cache(maxsize=None)
def code_version(*modules: str) -> str:
    """Hash of the normalised syntax of ``modules`` and of every module they import (transitively, up to the
    naming modules). Computed once per process from the files on disk; ``()`` gives the hash of no code."""
    h = hashlib.sha256()
    for mod in sorted({m for name in modules for m in module_closure(name)}):
        parsed = _parsed(mod)
        assert parsed is not None
        h.update(mod.encode() + b"\0" + parsed[0].encode() + b"\0")
    return h.hexdigest()[:12]


def clear_caches() -> None:
    """Forget parsed sources (tests that edit a copy of the package)."""
    _parsed.cache_clear()
    module_closure.cache_clear()
    code_version.cache_clear()
