"""The selection diagnostics by outcome: planted recall's arithmetic, and the subset-utility correlation sees a
score that is the true utility and sees nothing in a shuffled one."""
from __future__ import annotations

import numpy as np

from winnow.selection.validation import planted_recall, utility_correlation, utility_subsets


def test_planted_recall_counts_within_the_budget_and_reports_chance() -> None:
    r = planted_recall(np.array([0, 1, 2, 50]), total=100, k=10)
    assert r["recall"] == 0.75 and r["chance"] == 0.1 and r["planted"] == 4
    assert abs(r["mean_percentile"] - 100 * 53 / 4 / 99) < 1e-9
    assert planted_recall(np.array([0, 5, 1]), total=100, k=2)["recall"] == 1.0  # only 2 of 3 fit in a budget of 2


def _experiment(scores: np.ndarray, utility: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Each subset's mean score, and its 'fine-tune' outcome: the mean true utility of its rows plus noise."""
    rng = np.random.default_rng(seed)
    subsets = utility_subsets(scores, k=20, m=12, seed=seed)
    predicted = np.array([scores[s].mean() for s in subsets])
    observed = np.array([utility[s].mean() for s in subsets]) + rng.normal(0, 0.02, len(subsets))
    return predicted, observed


def test_a_score_that_is_the_true_utility_correlates_and_a_shuffled_one_does_not() -> None:
    rng = np.random.default_rng(0)
    utility = rng.normal(size=400)
    true = utility_correlation(*_experiment(utility, utility, 1))
    assert true["rho"] > 0.8 and true["low"] > 0.3
    shuffled = [utility_correlation(*_experiment(rng.permutation(utility), utility, s), n_boot=0)["rho"]
                for s in range(20)]
    assert abs(np.mean(shuffled)) < 0.3


def test_utility_subsets_spread_from_random_to_the_top() -> None:
    scores = np.arange(1000, dtype=float)
    subsets = utility_subsets(scores, k=50, m=8, seed=0)
    means = [scores[s].mean() for s in subsets]
    assert all(len(np.unique(s)) == 50 for s in subsets)
    assert max(means[0::2]) < 600 < min(means[1::2])  # uniform draws sit mid-pool; score-led ones above
