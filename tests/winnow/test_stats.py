"""Experiment statistics against values computed by hand."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from winnow.stats import hierarchical_interval, paired_vs_random, summarize, t_interval


def _df() -> pd.DataFrame:
    rows = []
    for seed, (rnd, sel) in enumerate([(0.10, 0.30), (0.20, 0.50), (0.30, 0.40)]):
        rows.append({"target": "t", "method": "random", "budget_size": 10, "seed": seed, "em": rnd, "key": f"r{seed}"})
        rows.append({"target": "t", "method": "gradients/round_robin", "budget_size": 10, "seed": seed, "em": sel,
                     "key": f"s{seed}"})
    rows.append({"target": "t", "method": "zero_shot", "budget_size": 0, "seed": 0, "em": 0.05, "key": "z"})
    return pd.DataFrame(rows)


def test_summary_is_mean_and_sample_std_over_seeds() -> None:
    s = summarize(_df(), "em").set_index("method")
    assert s.loc["random", "mean"] == pytest.approx(0.2)
    assert s.loc["random", "std"] == pytest.approx(0.1)  # sqrt(((-.1)^2 + 0 + .1^2) / 2)
    assert s.loc["gradients/round_robin", "mean"] == pytest.approx(0.4)
    assert s.loc["gradients/round_robin", "std"] == pytest.approx(0.1)
    assert math.isnan(s.loc["zero_shot", "std"]) and s.loc["zero_shot", "n"] == 1


def test_t_interval_by_hand() -> None:
    # differences 0.2, 0.3, 0.1: mean 0.2, sd 0.1, t(0.975, 2) = 4.302653 -> half width 0.248414
    m, lo, hi = t_interval(np.array([0.2, 0.3, 0.1]))
    assert (m, lo, hi) == pytest.approx((0.2, 0.2 - 0.248414, 0.2 + 0.248414), abs=1e-6)
    m1, lo1, hi1 = t_interval(np.array([0.5]))
    assert m1 == 0.5 and math.isnan(lo1) and math.isnan(hi1)


def test_paired_difference_to_random_by_hand() -> None:
    per_example = {"r0": np.array([0, 0, 1, 0]), "s0": np.array([1, 0, 1, 0]), "r1": np.array([0, 1, 0, 0]),
                   "s1": np.array([1, 1, 1, 0]), "r2": np.array([1, 0, 0, 0]), "s2": np.array([1, 0, 0, 1])}
    p = paired_vs_random(_df(), "em", per_example).iloc[0]
    assert (p["method"], p["n_seeds"]) == ("gradients/round_robin", 3)
    assert (p["diff"], p["t_low"], p["t_high"]) == pytest.approx((0.2, 0.2 - 0.248414, 0.2 + 0.248414), abs=1e-6)
    # per-example differences (seeds x items): 1,0,0,0 / 1,0,1,0 / 0,0,0,1 -> mean 1/3; every resample in [0, 1]
    assert 0 <= p["boot_low"] < 1 / 3 < p["boot_high"] <= 1 and p["boot_over"] == "seeds × test examples"


def test_hierarchical_interval_by_hand() -> None:
    # a constant difference has no spread at all
    assert hierarchical_interval(np.full((3, 20), 0.25)) == pytest.approx((0.25, 0.25))
    # two seeds that disagree (0 and 1 on every item): a replicate's mean is 0, 1/2 or 1 with probabilities
    # 1/4, 1/2, 1/4 (two seed draws), so the 2.5 % and 97.5 % quantiles are 0 and 1 — the seed spread
    assert hierarchical_interval(np.array([[0.0] * 30, [1.0] * 30])) == pytest.approx((0.0, 1.0))
    # one seed, two items 0 and 1: the same three values from the two item draws
    assert hierarchical_interval(np.array([[0.0, 1.0]])) == pytest.approx((0.0, 1.0))


def test_hierarchical_interval_carries_seed_noise_that_pooling_hides() -> None:
    rng = np.random.default_rng(0)
    seed_effect = np.array([-0.2, 0.0, 0.3])[:, None]  # the fine-tune's seed moves every item the same way
    D = seed_effect + rng.normal(0.05, 0.3, (3, 400))
    lo, hi = hierarchical_interval(D)
    pooled = D.ravel()[rng.integers(0, D.size, (10_000, D.size))].mean(axis=1)
    p_lo, p_hi = np.quantile(pooled, [0.025, 0.975])
    assert hi - lo > 5 * (p_hi - p_lo) and lo < D.mean() < hi


def test_hierarchical_interval_is_seeded_and_tightens_with_more_examples() -> None:
    rng = np.random.default_rng(0)
    small, large = rng.normal(0.1, 1, (1, 50)), rng.normal(0.1, 1, (1, 5000))
    assert hierarchical_interval(small, seed=1) == hierarchical_interval(small, seed=1)
    lo_s, hi_s = hierarchical_interval(small)
    lo_l, hi_l = hierarchical_interval(large)
    assert hi_l - lo_l < (hi_s - lo_s) / 5 and lo_l < large.mean() < hi_l
