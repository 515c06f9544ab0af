"""``winnow tune`` as a user runs it (the console script, tiny model): a pruned study, the best configuration
re-checked on the test split beside random, and a second run that resumes the study instead of repeating it."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.flows.test_cli import GOOD, TINY_CONFIG, winnow

pytestmark = pytest.mark.integration

SPACE = {"representation": {"choices": ["gradients", "embedding"]},
         "selection.selector": {"choices": ["round_robin", "knn_uniform"]},
         "selection.budget": {"low": 4, "high": 12},
         "finetune.lr": {"low": 1e-4, "high": 3e-2, "log": True}}


def test_tune_prunes_reports_on_test_and_resumes(tmp_path: Path) -> None:
    from tests.fixtures.tiny import make_tiny_model

    config = tmp_path / "tune.yaml"
    config.write_text(yaml.safe_dump({**TINY_CONFIG, "finetune": {"epochs": 2, "lr": 0.01, "seed": 0},
                                      "tune": {"startup_trials": 1, "score": "neg_loss", "final_seeds": [0, 1],
                                               "space": SPACE}}))
    model, home, out = make_tiny_model(tmp_path / "model"), tmp_path / "home", tmp_path / "out"
    args = ["tune", "--pool", str(GOOD / "pool.jsonl"), "--query", str(GOOD / "query.jsonl"),
            "--test", str(GOOD / "test.jsonl"), "--out", str(out), "--config", str(config), "--model", str(model)]

    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(yaml.safe_dump({**TINY_CONFIG, "tune": {"space": {**SPACE, "selection.nope": {"choices": [1]}}}}))
    bad = winnow(*args[:-4], "--config", str(wrong), "--model", str(model), home=home, expect=2)
    assert "tune.space.selection.nope: no such setting" in bad.stderr and "Traceback" not in bad.stderr

    first = winnow(*args, "--trials", "3", home=home)
    trials = json.loads((out / "trials.json").read_text())
    assert [t["trial"] for t in trials] == [0, 1, 2] and {t["state"] for t in trials} <= {"complete", "pruned"}
    pruned = [t for t in trials if t["state"] == "pruned"]
    assert all(t["epochs"] < 2 for t in pruned)  # a pruned trial ran fewer epochs than asked
    md = (out / "tune.md").read_text()
    assert "scored on the **validation** split" in md and "validation = 3 records of the test file" in md
    assert "| best | test |" in md and "| random | test |" in md and "full grid (3 values per range)" in md
    assert (out / "best_so_far.png").stat().st_size > 5000 and "best − random in −response_loss" in first.stdout
    from winnow.settings import build_settings

    best = build_settings(yaml.safe_load((out / "best.yaml").read_text()))  # ready for `winnow curate --config`
    top = max((t for t in trials if t["state"] == "complete"), key=lambda t: t["value"])
    assert best.selection.selector == top["selection.selector"] and best.selection.budget == top["selection.budget"]

    second = winnow(*args, "--trials", "4", home=home)
    again = json.loads((out / "trials.json").read_text())
    assert [t["trial"] for t in again] == [0, 1, 2, 3] and again[:3] == trials  # resumed, nothing re-run
    assert "already done (6/6)" in second.stderr + second.stdout  # the features were not computed again


def test_tune_on_planted_recall_trains_nothing_per_trial(tmp_path: Path) -> None:
    """``tune.score=planted_recall``: each trial plants the validation rows in the pool and is scored by their
    recall within the budget (random: exactly chance), with no fine-tune; a space that tunes the budget or the
    fine-tune is refused in one line; the best configuration is still confirmed on test beside random."""
    from tests.fixtures.tiny import make_tiny_model

    space = {"representation": {"choices": ["gradients"]},
             "selection.selector": {"choices": ["round_robin", "doubly_greedy", "random"]}}
    tune = {"score": "planted_recall", "sampler": "grid", "pruner": "none", "final_seeds": [0], "space": space}
    config = tmp_path / "tune.yaml"
    config.write_text(yaml.safe_dump({**TINY_CONFIG, "selection": {"budget": 6}, "tune": tune}))
    model, home, out = make_tiny_model(tmp_path / "model"), tmp_path / "home", tmp_path / "out"
    args = ["tune", "--pool", str(GOOD / "pool.jsonl"), "--query", str(GOOD / "query.jsonl"),
            "--test", str(GOOD / "test.jsonl"), "--out", str(out), "--model", str(model)]
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(yaml.safe_dump({**TINY_CONFIG, "tune": {**tune, "space": {
        **space, "selection.budget": {"low": 4, "high": 12}}}}))
    bad = winnow(*args, "--config", str(wrong), home=home, expect=2)
    assert "cannot be tuned by planted_recall" in bad.stderr and "Traceback" not in bad.stderr
    winnow(*args, "--config", str(config), home=home)
    trials = json.loads((out / "trials.json").read_text())
    assert len(trials) == 3 and all(t["state"] == "complete" and t["steps"] == 0 for t in trials), trials
    n_pool = len((GOOD / "pool.jsonl").read_text().splitlines())
    n_val = 3  # tune.val_share of the 6 test records, by id
    by_selector = {t["selection.selector"]: t["value"] for t in trials}
    assert by_selector["random"] == pytest.approx(6 / (n_pool + n_val), abs=1e-4)  # trials.json rounds to 4 places
    assert all(0.0 <= v <= 1.0 for v in by_selector.values())
    assert "| best | test |" in (out / "tune.md").read_text()
