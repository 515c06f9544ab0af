"""The verdict's yes is earned only by intervals over seeds: one curate run (one seed) that happens to be ahead
of random says it is not settled, never yes (the demo once printed yes beside a README that said no)."""
from __future__ import annotations

import numpy as np

from winnow.reports.verdict import experiment_verdict, verdict
from winnow.results import Evaluation


def _eval(scores: list[float]) -> Evaluation:
    return Evaluation(metric="token_f1", score=float(np.mean(scores)), response_loss=1.0, n=len(scores),
                      predictions=tuple({"id": str(i), "score": s} for i, s in enumerate(scores)))


def test_one_seed_ahead_of_random_is_not_settled_and_points_to_experiment() -> None:
    rng = np.random.default_rng(0)
    rand = rng.uniform(0.0, 0.3, 60).tolist()
    sel = [s + 0.3 for s in rand]  # far ahead on every test item: the bootstrap over items clears 0
    v = verdict({"selected": _eval(sel), "random": _eval(rand)}, "selected")
    assert v["vs_random"]["boot_low"] > 0 and not v["beats_random"]
    assert v["headline"].startswith("not settled:") and "winnow experiment" in v["headline"]


def test_one_seed_behind_random_is_no_and_says_it_is_one_seed() -> None:
    rand = [0.5] * 30
    v = verdict({"selected": _eval([0.1] * 30), "random": _eval(rand)}, "selected")
    assert v["headline"].startswith("no:") and "one seed" in v["headline"]


def test_experiment_yes_needs_both_intervals_over_seeds() -> None:
    import pandas as pd

    row = {"method": "gradients/round_robin", "budget_size": 29, "diff": 0.1, "t_low": 0.02, "t_high": 0.2,
           "boot_low": 0.03, "boot_high": 0.18, "n_seeds": 3}
    assert ": yes," in experiment_verdict("tomi", "token_f1", pd.DataFrame([row]))
    one_seed = {**row, "t_low": np.nan, "t_high": np.nan, "n_seeds": 1}
    assert ": no method beats random" in experiment_verdict("tomi", "token_f1", pd.DataFrame([one_seed]))


def test_the_experiment_verdict_gives_the_share_of_the_ceiling_and_planted_recall() -> None:
    import pandas as pd

    paired = pd.DataFrame([{"method": "gradients/round_robin", "budget_size": 29, "diff": 0.05, "t_low": -0.1,
                            "t_high": 0.2, "boot_low": -0.05, "boot_high": 0.15, "n_seeds": 3}])
    summary = pd.DataFrame([{"method": "zero_shot", "budget_size": 0, "mean": 0.1},
                            {"method": "ceiling", "budget_size": 29, "mean": 0.5},
                            {"method": "gradients/round_robin", "budget_size": 29, "mean": 0.2},
                            {"method": "random", "budget_size": 29, "mean": 0.15}])
    planted = {"gradients/round_robin": {"recall": 0.9, "chance": 0.1}}
    line = experiment_verdict("t", "exact_match", paired, summary=summary, planted=planted)
    assert "25 % of the ceiling's gain" in line and "planted recall 0.90" in line
    flat = summary.assign(mean=[0.1, 0.05, 0.2, 0.15])  # in-domain rows teach nothing: the cause is the fine-tune
    assert "does not learn the target even from in-domain data" in experiment_verdict("t", "exact_match", paired,
                                                                                     summary=flat)


def test_a_ceiling_that_random_already_reaches_says_there_is_nothing_to_select_for() -> None:
    """A True/False target: every fine-tune learns the majority label, in-domain rows no better than random."""
    import pandas as pd

    paired = pd.DataFrame([{"method": "gradients/round_robin", "budget_size": 29, "diff": 0.0, "t_low": 0.0,
                            "t_high": 0.0, "boot_low": 0.0, "boot_high": 0.0, "n_seeds": 3}])
    summary = pd.DataFrame([{"method": "zero_shot", "budget_size": 0, "mean": 0.03},
                            {"method": "ceiling", "budget_size": 29, "mean": 0.63},
                            {"method": "gradients/round_robin", "budget_size": 29, "mean": 0.63},
                            {"method": "random", "budget_size": 29, "mean": 0.63}])
    line = experiment_verdict("tf", "exact_match", paired, summary=summary)
    assert ": no method beats random" in line and "random already reaches the ceiling" in line
