"""A fix in the library reaches every artifact it computes, and only those (issue #14).

The curate command runs three times on one WINNOW_HOME from a copy of the repository: as is, after an edit
of a function that computes features, and after an edit of the evaluation code. Each run's report lists every
artifact's key and whether it was computed or reused; the test reads that list from metrics.json.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
GOOD = ROOT / "tests" / "data" / "good"
SETTINGS = {"model": {"max_length": 64}, "warmup": {"fraction": 0.5, "train": {"epochs": 2, "lr": 0.01}},
            "features": {"proj_dim": 128, "shard_size": 10, "batch_size": 5}, "selection": {"budget": 5},
            "finetune": {"epochs": 1, "lr": 0.01}, "eval": {"max_new_tokens": 3}}


def _edit(path: Path) -> None:
    """Change a function body's text without changing what it computes."""
    src = path.read_text()
    assert "\n    return " in src, f"{path} has no top-level function body to edit"
    path.write_text(src.replace("\n    return ", "\n    return  ", 1))


def test_an_edit_recomputes_its_artifacts_and_what_follows_never_what_precedes(tiny_model_path, tmp_path) -> None:
    repo = tmp_path / "repo"
    for part in ("winnow", "tasks", "flows", "tests/fixtures"):
        shutil.copytree(ROOT / part, repo / part, ignore=shutil.ignore_patterns("__pycache__"))
    (repo / "tests" / "__init__.py").write_text("")
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(SETTINGS))
    env = {**{k: v for k, v in os.environ.items() if k not in ("PREFECT_HOME", "PREFECT_API_URL", "WINNOW_LOG_FILE",
                                                                "PREFECT_LOGGING_SETTINGS_PATH")},
           "WINNOW_HOME": str(tmp_path / "home"), "WINNOW_DASK_WORKERS": "1", "PYTHONPATH": str(repo)}

    def curate(name: str) -> dict[str, str]:
        out = tmp_path / name
        proc = subprocess.run([sys.executable, "-m", "flows.cli", "curate", "--pool", str(GOOD / "pool.jsonl"),
                               "--query", str(GOOD / "query.jsonl"), "--test", str(GOOD / "test.jsonl"), "--out",
                               str(out), "--config", str(config), "--model", tiny_model_path], cwd=repo, env=env,
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-4000:]
        assert "## Artifacts" in (out / "report.md").read_text()
        rows = json.loads((out / "metrics.json").read_text())["artifacts"]
        status = {r["artifact"]: r["status"] for r in rows}
        status["selected ids"] = (out / "selected.jsonl").read_text()
        return status

    first = curate("first")
    assert first["warm-up"] == "computed" and first["features"] == "3 of 3 shards computed"
    assert {first[f"fine-tune {m}"] for m in ("selected", "random")} == {"computed"}

    _edit(repo / "winnow" / "features" / "per_example.py")
    second = curate("after-feature-fix")
    assert second["warm-up"] == "reused"  # before the features: untouched
    assert second["features"] == "3 of 3 shards computed"  # a new feature table, every shard
    assert second["fine-tune random"] == "reused" and second["evaluation base"] == "reused"  # do not use features
    # The selected subset is re-selected from the new features; its fine-tune is reused only if the subset is the
    # same examples (content-addressed: a repeated subset never re-trains).
    same_subset = second["selected ids"] == first["selected ids"]
    assert second["fine-tune selected"] == ("reused" if same_subset else "computed")

    _edit(repo / "winnow" / "evaluation" / "evaluate.py")
    third = curate("after-eval-fix")
    assert third["warm-up"] == "reused" and third["features"] == "0 of 3 shards computed"
    assert third["fine-tune selected"] == third["fine-tune random"] == "reused"
    assert {third[f"evaluation {m}"] for m in ("base", "selected", "random")} == {"computed"}
