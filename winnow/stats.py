"""Statistics of the experiment: mean ± std over seeds, and the paired difference to random.

Two intervals for "method minus random" at the same target, budget and seed:
- over seeds (the published protocol): the mean of per-seed differences ± t(0.975, n−1)·sd/√n (scipy's t);
- hierarchical bootstrap: seeds and test examples resampled independently (a crossed design: every seed is
  scored on the same test items), so the interval carries the fine-tune's seed noise *and* the test set's.
  Pooling examples across seeds, as this module once did, treats three seeds as three times the test set and
  gives intervals that are too narrow whenever seeds disagree. With one seed the interval can only reflect the
  test examples, and its label says so.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as st

GROUP = ["target", "method", "budget_size"]


def summarize(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Mean, sample std (ddof=1; NaN for one seed) and count over seeds per target × method × budget."""
    g = df.groupby(GROUP, dropna=False)[metric]
    return g.agg(mean="mean", std="std", n="count").reset_index()


def t_interval(diffs: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """Mean and two-sided t confidence interval of paired differences (NaN bounds for fewer than 2)."""
    d = np.asarray(diffs, dtype=float)
    m = float(d.mean())
    if len(d) < 2:
        return m, math.nan, math.nan
    half = float(st.t.ppf(0.5 + level / 2, len(d) - 1) * d.std(ddof=1) / math.sqrt(len(d)))
    return m, m - half, m + half


def hierarchical_interval(diffs: np.ndarray, level: float = 0.95, n_boot: int = 10_000,
                          seed: int = 0) -> tuple[float, float]:
    """Percentile interval of the mean of a seeds × examples matrix of paired differences, resampling seeds
    (rows) and examples (columns) with replacement, independently. A replicate's mean is wᵀ D u with w and u
    the resampled rows' and columns' multiplicities over their counts, so no B × S × N array is built."""
    D = np.atleast_2d(np.asarray(diffs, dtype=float))
    S, N = D.shape
    rng = np.random.default_rng(seed)
    w = rng.multinomial(S, np.full(S, 1 / S), size=n_boot) / S
    u = rng.multinomial(N, np.full(N, 1 / N), size=n_boot) / N
    means = ((w @ D) * u).sum(axis=1)
    return float(np.quantile(means, (1 - level) / 2)), float(np.quantile(means, (1 + level) / 2))


def interval_label(n_seeds: int) -> str:
    return "seeds × test examples" if n_seeds > 1 else "test examples only (1 seed)"


def paired_vs_random(df: pd.DataFrame, metric: str, per_example: dict[str, np.ndarray] | None = None) -> pd.DataFrame:
    """One row per target × method × budget (random itself excluded): mean difference to random over the
    seeds both have, its t interval, and (given per-example values by cell key) the hierarchical bootstrap."""
    rand = df[df.method == "random"].set_index(["target", "budget_size", "seed"])
    rows: list[dict[str, Any]] = []
    for (target, method, size), grp in df[df.method.str.contains("/")].groupby(["target", "method", "budget_size"]):
        pairs = [(r, rand.loc[(target, size, r.seed)]) for r in grp.itertuples()
                 if (target, size, r.seed) in rand.index]
        if not pairs:
            continue
        diffs = np.array([getattr(a, metric) - b[metric] for a, b in pairs])
        mean, lo, hi = t_interval(diffs)
        row = {"target": target, "method": method, "budget_size": size, "n_seeds": len(pairs),
               "diff": mean, "t_low": lo, "t_high": hi}
        if per_example is not None:
            ex = [per_example[a.key] - per_example[b["key"]] for a, b in pairs
                  if a.key in per_example and b["key"] in per_example]
            if ex and len({len(e) for e in ex}) == 1:
                row["boot_low"], row["boot_high"] = hierarchical_interval(np.stack(ex))
                row["boot_over"] = interval_label(len(ex))
        rows.append(row)
    return pd.DataFrame(rows)


def paired_difference(method: np.ndarray, baseline: np.ndarray, level: float = 0.95) -> dict[str, Any]:
    """Method minus baseline from two seeds × test examples matrices scored on the same items with the same
    seeds: the mean difference, its t-interval over seeds and its hierarchical bootstrap over seeds × examples.
    The one paired comparison every report uses (experiment, tune, compare, mixture, the verdict)."""
    method, baseline = np.atleast_2d(method), np.atleast_2d(baseline)
    diff, t_lo, t_hi = t_interval(method.mean(axis=1) - baseline.mean(axis=1), level)
    b_lo, b_hi = hierarchical_interval(method - baseline, level)
    return {"diff": diff, "t_low": t_lo, "t_high": t_hi, "boot_low": b_lo, "boot_high": b_hi,
            "boot_over": interval_label(method.shape[0]), "n_seeds": int(method.shape[0]),
            "n_examples": int(method.shape[1])}
