"""The artifact key's code version follows imports: an edit invalidates what runs through it, nothing else."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from winnow import keys

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def package_copy(tmp_path, monkeypatch) -> Path:
    shutil.copytree(ROOT / "winnow", tmp_path / "winnow", ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(keys, "_ROOT", tmp_path)
    keys.module_closure.cache_clear()
    keys.code_version.cache_clear()
    yield tmp_path
    keys.module_closure.cache_clear()
    keys.code_version.cache_clear()


def _edit(path: Path) -> None:
    """Change a function body without changing what it does."""
    src = path.read_text()
    assert "\n    return " in src
    path.write_text(src.replace("\n    return ", "\n    return  ", 1))
    keys.code_version.cache_clear()


def test_closure_follows_imports_inside_the_package() -> None:
    closure = keys.module_closure("winnow.features.shards")
    assert {"winnow.features.projection", "winnow.features.per_example", "winnow.store.lance"} <= set(closure)
    assert "winnow.evaluation.evaluate" not in closure and "winnow.features.projection" not in \
        keys.module_closure("winnow.training.runs")
    assert all(m.startswith("winnow") for m in closure)  # torch, numpy... are versioned by their packages


def test_an_edit_changes_the_key_of_what_uses_it_only(package_copy) -> None:
    features, warmup, evaluation = ("winnow.features.shards",), ("winnow.training.runs",), ("winnow.evaluation.evaluate",)
    before = {k: keys.code_version(*k) for k in (features, warmup, evaluation)}
    _edit(package_copy / "winnow" / "features" / "per_example.py")
    after = {k: keys.code_version(*k) for k in (features, warmup, evaluation)}
    assert after[features] != before[features]
    assert after[warmup] == before[warmup] and after[evaluation] == before[evaluation]
    a = keys.artifact_key("grads", inputs={"table": "pool"}, settings={"dim": 8}, code=features)
    _edit(package_copy / "winnow" / "features" / "gradients.py")
    assert keys.artifact_key("grads", inputs={"table": "pool"}, settings={"dim": 8}, code=features) != a


def test_settings_help_text_is_not_code(package_copy) -> None:
    before = keys.code_version("winnow.features.shards")
    path = package_copy / "winnow" / "settings.py"
    path.write_text(path.read_text().replace('description="tokens per example', 'description="Tokens per example'))
    keys.code_version.cache_clear()
    assert keys.code_version("winnow.features.shards") == before


def test_digest_ignores_key_order_and_reads_settings_models() -> None:
    from winnow.settings import build_settings

    assert keys.digest({"a": 1, "b": [1, 2]}) == keys.digest({"b": [1, 2], "a": 1})
    assert keys.digest(build_settings()) == keys.digest(build_settings().model_dump(mode="json"))
    assert keys.artifact_key("x", inputs=1).startswith("x__") and len(keys.artifact_key("x", inputs=1)) == 15
