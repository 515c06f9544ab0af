"""A code or model change reaches every artifact it computes, and only those (issues #14, #33).

The curate command runs four times on one WINNOW_HOME from a copy of the repository: as is; after a docstring
edit and an edit of a selector the run does not use (everything reused); after an edit of the gradient code
(the features and what depends on them recomputed, the warm-up and the random arm's fine-tune reused); and
after new weights are written to the same model path (everything that used the model recomputed). Each run's
report lists every artifact's key and whether it was computed or reused; the test reads that list.
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


def _edit(path: Path, statement: str = "_unused = 0") -> None:
    """Add a statement to a function body: a change of the code's syntax that does not change what it computes."""
    src = path.read_text()
    assert "\n    return " in src, f"{path} has no top-level function body to edit"
    path.write_text(src.replace("\n    return ", f"\n    {statement}\n    return ", 1))


def test_an_edit_recomputes_its_artifacts_and_what_follows_never_what_precedes(tiny_model_path, tmp_path) -> None:
    repo = tmp_path / "repo"
    for part in ("winnow", "tasks", "flows", "tests/fixtures"):
        shutil.copytree(ROOT / part, repo / part, ignore=shutil.ignore_patterns("__pycache__"))
    (repo / "tests" / "__init__.py").write_text("")
    model = tmp_path / "model"
    shutil.copytree(tiny_model_path, model)
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(SETTINGS))
    env = {**{k: v for k, v in os.environ.items() if k not in ("PREFECT_HOME", "PREFECT_API_URL", "WINNOW_LOG_FILE",
                                                                "PREFECT_LOGGING_SETTINGS_PATH")},
           "WINNOW_HOME": str(tmp_path / "home"), "WINNOW_DASK_WORKERS": "1", "PYTHONPATH": str(repo)}

    def curate(name: str) -> dict[str, str]:
        out = tmp_path / name
        proc = subprocess.run([sys.executable, "-m", "flows.cli", "curate", "--pool", str(GOOD / "pool.jsonl"),
                               "--query", str(GOOD / "query.jsonl"), "--test", str(GOOD / "test.jsonl"), "--out",
                               str(out), "--config", str(config), "--model", str(model)], cwd=repo, env=env,
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-4000:]
        rows = json.loads((out / "metrics.json").read_text())["artifacts"]
        status = {r["artifact"]: r["status"] for r in rows}
        status["selected ids"] = (out / "selected.jsonl").read_text()
        return status

    first = curate("first")
    assert first["warm-up"] == "computed" and first["features"] == "3 of 3 shards computed"
    assert {first[f"fine-tune {m}"] for m in ("selected", "random")} == {"computed"}

    # A docstring and a selector this run does not use: nothing is recomputed, not even an evaluation.
    grads = repo / "winnow" / "features" / "gradients.py"
    grads.write_text(grads.read_text().replace('"""', '"""Edited. ', 1))
    _edit(repo / "winnow" / "selection" / "knn.py")
    second = curate("after-unrelated-edits")
    assert second["warm-up"] == "reused" and second["features"] == "0 of 3 shards computed"
    assert {second[k] for k in second if k.startswith(("fine-tune", "evaluation"))} == {"reused"}

    _edit(repo / "winnow" / "features" / "per_example.py")
    third = curate("after-feature-fix")
    assert third["warm-up"] == "reused"  # before the features: untouched
    assert third["features"] == "3 of 3 shards computed"  # a new feature table, every shard
    assert third["fine-tune random"] == "reused" and third["evaluation base"] == "reused"  # do not use features
    same_subset = third["selected ids"] == first["selected ids"]  # content-addressed: the same subset never re-trains
    assert third["fine-tune selected"] == ("reused" if same_subset else "computed")

    # New weights at the same path, same file size: everything that used the model is computed again.
    from safetensors.torch import load_file, save_file

    weights = model / "model.safetensors"
    tensors = load_file(weights)
    name = next(iter(tensors))
    tensors[name] = tensors[name] * 1.01
    save_file(tensors, weights, metadata={"format": "pt"})
    fourth = curate("after-new-weights")
    assert fourth["warm-up"] == "computed" and fourth["features"] == "3 of 3 shards computed"
    assert {fourth[k] for k in fourth if k.startswith(("fine-tune", "evaluation"))} == {"computed"}
