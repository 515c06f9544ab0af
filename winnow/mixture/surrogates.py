"""Surrogates of a mixture's outcome, fitted on a history of runs and judged by how well they *rank* mixtures.

Three, side by side, all from scikit-learn (maintained, on every platform, already a dependency, and fast at
this size: fitting all three on RegMix's 512 runs takes seconds on 2 cores):

- ``linear``: least squares on the shares (RegMix's linear baseline).
- ``boosting``: gradient-boosted trees (``HistGradientBoostingRegressor``; RegMix used LightGBM, the same
  method; scikit-learn's spares a compiled dependency).
- ``gp``: a Gaussian process (Matérn 5/2 with a noise term), the model behind DUET's Bayesian search, and the
  one with an uncertainty, which ``suggest``'s acquisition needs.

Each is judged by repeated K-fold cross-validation: Spearman's ρ between predicted and observed outcomes on
the held-out runs, and the top-k hit rate (whether the held-out run it ranks first is among the k best held-out
runs), each with a percentile interval over folds and repeats. Outcomes are "higher is better" throughout.
"""
from __future__ import annotations

from typing import Any

import numpy as np

SURROGATES = ("linear", "boosting", "gp")


def make(name: str, seed: int = 0, n: int = 512) -> Any:
    """A fresh surrogate for ``n`` runs (the trees' leaves shrink with a short history: 8 leaves of 8 runs
    cannot split 16 runs at all)."""
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel
    from sklearn.linear_model import LinearRegression

    if name == "linear":
        return LinearRegression()
    if name == "boosting":
        return HistGradientBoostingRegressor(max_iter=300, learning_rate=0.05, min_samples_leaf=max(2, min(8, n // 8)),
                                             random_state=seed)
    if name == "gp":
        kernel = ConstantKernel(1.0) * Matern(length_scale=0.3, nu=2.5) + WhiteKernel(1e-2)
        return GaussianProcessRegressor(kernel=kernel, normalize_y=True, random_state=seed)
    raise ValueError(f"unknown surrogate {name!r} (one of {', '.join(SURROGATES)})")


def fit(name: str, X: np.ndarray, y: np.ndarray, seed: int = 0) -> Any:
    """The surrogate fitted on (shares, outcomes); the GP's optimiser warnings (a flat likelihood on a few runs)
    are not the user's to act on, and are silenced."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return make(name, seed, len(y)).fit(X, y)


def predict(model: Any, X: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """The predicted outcome of each mixture and, for the GP, its standard deviation."""
    if hasattr(model, "kernel_"):
        mean, std = model.predict(X, return_std=True)
        return mean, std
    return model.predict(X), None


def _interval(values: list[float], level: float = 0.95) -> tuple[float, float, float]:
    v = np.asarray([x for x in values if np.isfinite(x)], dtype=float)
    if not len(v):
        return float("nan"), float("nan"), float("nan")
    lo, hi = np.quantile(v, [(1 - level) / 2, (1 + level) / 2])
    return float(v.mean()), float(lo), float(hi)


def cross_validate(name: str, X: np.ndarray, y: np.ndarray, *, folds: int = 5, repeats: int = 4, top_k: int = 5,
                   seed: int = 0) -> dict[str, Any]:
    """Held-out Spearman and top-k hit rate over ``repeats`` × ``folds`` splits, and the out-of-fold
    predictions of the first repeat (for the predicted-vs-observed plot)."""
    from scipy.stats import spearmanr
    from sklearn.model_selection import KFold

    rhos, hits = [], []
    oof = np.full(len(y), np.nan)
    for r in range(repeats):
        for train, test in KFold(folds, shuffle=True, random_state=seed + r).split(X):
            pred, _ = predict(fit(name, X[train], y[train], seed), X[test])
            if r == 0:
                oof[test] = pred
            rhos.append(float(spearmanr(pred, y[test]).statistic) if np.ptp(y[test]) > 0 else np.nan)
            best = test[int(np.argmax(pred))]
            hits.append(float(best in test[np.argsort(-y[test])[:top_k]]))
    from scipy.stats import binomtest

    rho, rho_lo, rho_hi = _interval(rhos)
    k = int(sum(hits))
    ci = binomtest(k, len(hits)).proportion_ci(method="wilson")  # a proportion over the held-out folds
    return {"surrogate": name, "spearman": rho, "spearman_low": rho_lo, "spearman_high": rho_hi,
            "top_k": top_k, "hit": k / len(hits), "hit_low": float(ci.low), "hit_high": float(ci.high),
            "folds": len(hits), "oof": oof.tolist()}


def compare(X: np.ndarray, y: np.ndarray, *, folds: int = 5, repeats: int = 4, top_k: int = 5, seed: int = 0
            ) -> list[dict[str, Any]]:
    """Every surrogate's cross-validation, best (by held-out Spearman) first."""
    rows = [cross_validate(n, X, y, folds=folds, repeats=repeats, top_k=top_k, seed=seed) for n in SURROGATES]
    return sorted(rows, key=lambda r: -np.nan_to_num(r["spearman"], nan=-2.0))
