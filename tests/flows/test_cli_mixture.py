"""`winnow mixture fit / rank / suggest` as a user runs them (the console script in a subprocess), on a
history whose outcome is a known function of the shares; `winnow mixture` without a subcommand is the search."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
WINNOW = str(Path(sys.executable).with_name("winnow"))


def _winnow(*args: str, home: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_HOME", "PREFECT_API_URL", "WINNOW_LOG_FILE")}
    return subprocess.run([WINNOW, *args], cwd=home, capture_output=True, text=True, timeout=300,
                          env={**env, "WINNOW_HOME": str(home / ".winnow"), "PYTHONPATH": str(ROOT)})


def test_fit_rank_and_suggest_from_a_history(tmp_path) -> None:
    rng = np.random.default_rng(0)
    X = rng.dirichlet(np.ones(3), 60)
    loss = 3 - 2 * X[:, 0] + X[:, 1] ** 2 + rng.normal(0, 0.01, 60)  # lower is better: more of src_a
    runs = pd.DataFrame({"run": [f"r{i}" for i in range(60)], "src_a": X[:, 0], "src_b": X[:, 1], "src_c": X[:, 2]})
    runs.to_csv(tmp_path / "mix.csv", index=False)
    pd.DataFrame({"run": runs.run, "loss": loss}).to_csv(tmp_path / "loss.csv", index=False)
    cands = pd.DataFrame({"name": ["mostly_a", "mostly_b", "even"], "src_a": [0.8, 0.1, 1 / 3],
                          "src_b": [0.1, 0.8, 1 / 3], "src_c": [0.1, 0.1, 1 / 3]})
    cands.to_csv(tmp_path / "cands.csv", index=False)
    hist = ["--history", "mix.csv", "--history", "loss.csv", "--sources", "src_*", "--target", "loss", "--minimize"]

    fit = _winnow("mixture", "fit", *hist, home=tmp_path)
    assert fit.returncode == 0, fit.stderr[-2000:]
    assert "| boosting |" in fit.stdout and "| gp |" in fit.stdout and "| linear |" in fit.stdout and "kept:" in fit.stdout

    ranked = _winnow("mixture", "rank", *hist, "--candidates", "cands.csv", "--out", "ranked.csv", home=tmp_path)
    assert ranked.returncode == 0, ranked.stderr[-2000:]
    out = pd.read_csv(tmp_path / "ranked.csv")
    assert list(out.columns[:4]) == ["name", "src_a", "src_b", "src_c"] and {"predicted", "rank"} <= set(out.columns)
    assert out.sort_values("rank").name.tolist()[0] == "mostly_a" and sorted(out["rank"]) == [1, 2, 3]

    sug = _winnow("mixture", "suggest", *hist, "--n", "2", "--candidates", "cands.csv", home=tmp_path)
    assert sug.returncode == 0 and sug.stdout.count("| ") >= 3, sug.stderr[-2000:]

    bad = cands.assign(src_a=cands.src_a + 0.3)
    bad.to_csv(tmp_path / "bad.csv", index=False)
    err = _winnow("mixture", "rank", *hist, "--candidates", "bad.csv", "--out", "x.csv", home=tmp_path)
    lines = [line for line in err.stderr.splitlines() if line.strip()]
    assert err.returncode == 2 and len(lines) == 1 and "bad.csv:2: field 'shares'" in lines[0], err.stderr


def test_mixture_without_a_subcommand_is_still_the_search(tmp_path) -> None:
    proc = _winnow("mixture", "--pool", "p.jsonl", home=tmp_path)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and "--test" in lines[0] and "--out" in lines[0], proc.stderr
    helped = _winnow("mixture", "--help", home=tmp_path)
    assert all(c in helped.stdout for c in ("search", "fit", "rank", "suggest", "--pool"))
