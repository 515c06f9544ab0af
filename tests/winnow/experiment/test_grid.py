"""The experiment grid: cells, keys, quantile splits and config errors."""
from __future__ import annotations

import numpy as np
import pytest

from winnow.errors import ConfigError
from winnow.experiment.grid import ExperimentConfig, load_experiment, plan_cells, quantile_sample, quantile_split


def _cfg(**kw) -> ExperimentConfig:
    base = {"name": "x", "pool": "p.jsonl", "targets": [{"name": "t", "query": "q", "test": "e"}],
            "representations": ["gradients", "embedding"], "selectors": ["rr", "dg"], "budgets": [5, 10],
            "seeds": [0, 1], "distance": {"quantiles": 3, "sample": 2}}
    return ExperimentConfig.model_validate({**base, **kw})


def test_quantile_split_sizes() -> None:
    assert [len(p) for p in quantile_split(10, 3)] == [4, 3, 3]
    assert [len(p) for p in quantile_split(12, 4)] == [3, 3, 3, 3]
    parts = quantile_split(101, 5)
    assert sum(map(len, parts)) == 101 and max(map(len, parts)) - min(map(len, parts)) <= 1
    assert np.array_equal(np.concatenate(parts), np.arange(101))
    with pytest.raises(ConfigError, match="quantiles"):
        quantile_split(3, 4)


def test_quantile_sample_stays_in_its_part() -> None:
    order = np.random.default_rng(0).permutation(40)
    for q in range(4):
        picked = quantile_sample(order, 4, q, 5, seed=3)
        assert len(set(picked)) == 5 and set(picked) <= set(order[q * 10:(q + 1) * 10])
    assert np.array_equal(quantile_sample(order, 4, 1, 5, 3), quantile_sample(order, 4, 1, 5, 3))
    with pytest.raises(ConfigError, match="sample"):
        quantile_sample(order, 4, 0, 11, 0)


def test_cells_and_keys() -> None:
    cells = plan_cells(_cfg())
    # zero-shot 1, full 2 seeds, per budget x seed: random + 2 reps x 2 selectors, quantiles 3 x 2 seeds
    assert len(cells) == 1 + 2 + 2 * 2 * (1 + 4) + 3 * 2
    assert {c.selector for c in cells if "/" in c.method} == {"round_robin", "doubly_greedy"}
    keys = {c.key({"pool": "f"}) for c in cells}
    assert len(keys) == len(cells) and {c.key({"pool": "g"}) for c in cells}.isdisjoint(keys)
    fewer = plan_cells(_cfg(distance={"quantiles": 3, "sample": 2, "seeds": [0]}))
    assert len([c for c in fewer if c.method == "quantile"]) == 3
    more = plan_cells(_cfg(seeds=[0, 1, 2]))  # adding a seed keeps every old cell (and its key)
    assert keys < {c.key({"pool": "f"}) for c in more}


def test_bad_config_names_the_field(tmp_path) -> None:
    p = tmp_path / "e.yaml"
    p.write_text("name: x\npool: p\ntargets: []\nselectors: [nope]\n")
    with pytest.raises(ConfigError) as e:
        load_experiment(str(p))
    assert "targets" in str(e.value) and "selectors" in str(e.value)


def test_full_config_is_less_recipe() -> None:
    """configs/experiment-full.yaml loads, and its settings are LESS's (rank, alpha, lr, effective batch, epochs)."""
    from pathlib import Path

    from winnow.experiment.grid import load_experiment
    from winnow.settings import build_settings

    exp = load_experiment(str(Path(__file__).parents[3] / "configs" / "experiment-full.yaml"))
    s = build_settings(None, list(exp.overrides))
    for lora, train in ((s.warmup.lora, s.warmup.train), (s.finetune_lora, s.finetune)):
        assert (lora.r, lora.alpha, lora.dropout) == (128, 512, 0.1)
        assert (train.lr, train.epochs, train.warmup_ratio, train.batch_size * train.grad_accum) == (2e-5, 4, 0.03, 128)
    assert (s.warmup.fraction, s.features.projector, s.features.proj_dim) == (0.05, "rademacher", 8192)
    assert [t.metric for t in exp.targets] == ["mc_accuracy", "exact_match", "token_f1"]
