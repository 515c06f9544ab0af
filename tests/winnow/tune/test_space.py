"""The tuning space: YAML dimensions become the right Optuna distributions, a trial's point becomes valid
settings, bad keys and values fail before any work, and the full grid is priced by hand-countable steps."""
from __future__ import annotations

import optuna
import pytest

from winnow.errors import ConfigError
from winnow.settings import build_settings
from winnow.tune.space import check_space, distributions, fine_tune_steps, grid_cost, grid_values, trial_settings


def _cfg(space: dict, **tune) -> object:
    return build_settings({"finetune": {"epochs": 2, "batch_size": 4}, "tune": {"space": space, **tune}})


def test_dimensions_become_optuna_distributions() -> None:
    cfg = _cfg({"representation": {"choices": ["gradients", "embedding"]},
                "selection.budget": {"low": 10, "high": 40},  # two integers: a count
                "finetune.lr": {"low": 1e-4, "high": 1e-2, "log": True}})
    d = distributions(cfg.tune.space)
    assert isinstance(d["representation"], optuna.distributions.CategoricalDistribution)
    assert isinstance(d["selection.budget"], optuna.distributions.IntDistribution)
    assert isinstance(d["finetune.lr"], optuna.distributions.FloatDistribution) and d["finetune.lr"].log
    assert check_space(cfg) == ["gradients", "embedding"]


def test_a_trial_point_is_settings_at_their_paths() -> None:
    cfg = _cfg({"selection.selector": {"choices": ["round_robin", "knn_uniform"]}})
    got, rep = trial_settings(cfg, {"selection.selector": "knn_uniform", "selection.budget": 0.2,
                                    "finetune.lr": 5e-4, "representation": "hidden"})
    assert (got.selection.selector, got.selection.budget, got.finetune.lr, rep) == ("knn_uniform", 0.2, 5e-4, "hidden")
    assert got.finetune.epochs == 2  # what the trial does not vary stays the study's


@pytest.mark.parametrize("space, says", [
    ({"selection.nope": {"choices": [1]}}, "tune.space.selection.nope: no such setting"),
    ({"selection.selector": {"choices": ["round_robin", "bogus"]}}, "tune.space.selection.selector: 'bogus'"),
    ({"selection.budget": {"low": 0.1, "high": 1.5}}, "tune.space.selection.budget: 1.5"),
    ({"representation": {"choices": ["gradients", "pixels"]}}, "tune.space.representation"),
])
def test_bad_dimensions_fail_before_any_work(space: dict, says: str) -> None:
    with pytest.raises(ConfigError) as e:
        check_space(_cfg(space))
    assert says in str(e.value)


def test_fixed_sections_are_refused_by_the_settings() -> None:
    with pytest.raises(ConfigError, match="features.proj_dim: fixed for a study"):
        _cfg({"features.proj_dim": {"choices": [256, 512]}})
    with pytest.raises(ConfigError, match="low' < 'high"):
        _cfg({"finetune.lr": {"low": 1e-3, "high": 1e-4}})


def test_full_grid_is_priced_in_fine_tune_steps() -> None:
    cfg = _cfg({"selection.selector": {"choices": ["round_robin", "knn_uniform"]},
                "selection.budget": {"low": 8, "high": 24}}, grid_points=3)
    assert grid_values(cfg.tune.space["selection.budget"], 3) == [8, 16, 24]
    # 2 selectors x budgets 8, 16, 24 at batch 4 and 2 epochs: (2 + 4 + 6) steps per epoch x 2 epochs x 2
    assert grid_cost(cfg, pool_rows=100) == {"configurations": 6, "steps": 48}
    assert fine_tune_steps(trial_settings(cfg, {"selection.budget": 0.1})[0], 100) == 6  # 10 examples: 3 x 2
