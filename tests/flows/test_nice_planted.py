"""NICE selects for its metric, end to end (issue #15): ``winnow curate --target-metric`` with the real default
model on a pool with a planted source whose responses earn the reward. The planted source must dominate the
NICE subset and the source that answers the opposite must stay out of it — an outcome, not a formula, so a sign
error in the query direction (which once ranked the best examples last) fails here."""
from __future__ import annotations

import json
from collections import Counter

import pytest
import yaml

from tests.flows.test_cli import GOOD, table_rows, winnow

pytestmark = pytest.mark.integration
SETTINGS = {"model": {"max_length": 64},
            "warmup": {"fraction": 0.3, "train": {"epochs": 1, "lr": 5.0e-4, "batch_size": 4}},
            "features": {"proj_dim": 2048, "shard_size": 24, "batch_size": 8},
            "selection": {"selector": "round_robin", "budget": 8},
            "finetune": {"epochs": 1, "lr": 1.0e-3, "batch_size": 4}, "eval": {"max_new_tokens": 3},
            "nice": {"metric": "tests.fixtures.rewards:says_yes", "samples": 8, "max_new_tokens": 6,
                     "baseline": "mean"}}


def _question(n: int) -> str:
    return f"Is {n} an even number? Answer yes or no."


def test_planted_source_dominates_the_nice_subset(tmp_path) -> None:
    pool = [json.loads(line) for line in (GOOD / "pool.jsonl").read_text().splitlines()]
    pool += [{"prompt": _question(n), "response": "Yes.", "source": "planted", "task": "parity"} for n in range(40, 52)]
    pool += [{"prompt": _question(n), "response": "No.", "source": "contrary", "task": "parity"} for n in range(60, 72)]
    files = {"pool": pool,
             "query": [{"prompt": _question(n), "source": "target", "task": "parity"} for n in (7, 12, 25, 30)],
             "test": [{"prompt": _question(n), "response": "yes", "source": "target", "task": "parity"} for n in (2, 9)]}
    for name, rows in files.items():
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = tmp_path / "planted.yaml"
    config.write_text(yaml.safe_dump(SETTINGS))
    out = tmp_path / "run"
    proc = winnow("curate", "--pool", str(tmp_path / "pool.jsonl"), "--query", str(tmp_path / "query.jsonl"),
                  "--test", str(tmp_path / "test.jsonl"), "--out", str(out), "--config", str(config),
                  "--target-metric", "tests.fixtures.rewards:says_yes", home=tmp_path / "home", timeout=1200)
    assert {"base", "random", "nice"} <= set(table_rows(proc.stdout)), proc.stdout
    picked = Counter(json.loads(line)["source"] for line in (out / "nice.jsonl").read_text().splitlines())
    drawn = Counter(json.loads(line)["source"] for line in (out / "random.jsonl").read_text().splitlines())
    report = (out / "report.md").read_text()
    assert picked["planted"] >= 6 and picked["contrary"] <= 1, (picked, report)
    assert picked["planted"] > drawn["planted"], (picked, drawn)
