"""Which mixture to run next: DUET's acquisition, warm-started from a history of runs.

``suggest_among`` picks from candidate mixtures by expected improvement under the GP surrogate (batches by
the kriging believer: each pick is added with its predicted value before the next). ``suggest_simplex``
continues an Optuna study (the one ``winnow mixture`` and ``winnow feedback`` use) with the history added as
finished trials (``add_trials``), and asks the GP sampler for new points anywhere on the simplex; they stay
waiting until ``winnow feedback`` tells their scores. Neither repeats a mixture the history holds.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from winnow.mixture import surrogates
from winnow.mixture.simplex import from_unit_cube, to_unit_cube


def expected_improvement(mean: np.ndarray, std: np.ndarray, best: float, xi: float = 0.01) -> np.ndarray:
    from scipy.stats import norm

    std = np.maximum(std, 1e-12)
    z = (mean - best - xi) / std
    return (mean - best - xi) * norm.cdf(z) + std * norm.pdf(z)


def _seen(X: np.ndarray, history: np.ndarray, atol: float = 1e-6) -> np.ndarray:
    """Which rows of ``X`` are mixtures of the history (to the tolerance of their printed shares)."""
    if not len(history):
        return np.zeros(len(X), dtype=bool)
    d = np.abs(X[:, None, :] - history[None, :, :]).max(axis=2)
    return (d <= atol).any(axis=1)


def suggest_among(X_hist: np.ndarray, y_hist: np.ndarray, candidates: np.ndarray, n: int, seed: int = 0
                  ) -> list[int]:
    """``n`` candidate indices (never one the history holds), by expected improvement under the GP."""
    X, y = np.array(X_hist, dtype=float), np.array(y_hist, dtype=float)
    free = ~_seen(candidates, X)
    chosen: list[int] = []
    for _ in range(min(n, int(free.sum()))):
        model = surrogates.fit("gp", X, y, seed)
        mean, std = surrogates.predict(model, candidates)
        ei = expected_improvement(mean, std, float(y.max()))
        ei[~free] = -np.inf
        j = int(np.argmax(ei))
        chosen.append(j)
        free[j] = False
        X, y = np.vstack([X, candidates[j]]), np.append(y, mean[j])  # the believer: its prediction stands in
    return chosen


def suggest_simplex(X_hist: np.ndarray, y_hist: np.ndarray, sources: list[str], n: int, *, storage: str,
                    study_name: str, seed: int = 0) -> list[dict[str, Any]]:
    """``n`` new mixtures from an Optuna GP study that knows the history, left waiting for their scores."""
    import optuna

    from winnow.mixture.duet import storage_for

    keys = [f"u{i}" for i in range(len(sources))]
    dist = {k: optuna.distributions.FloatDistribution(1e-6, 1.0) for k in keys}
    study = optuna.create_study(study_name=study_name, storage=storage_for(storage), direction="maximize",
                                sampler=optuna.samplers.GPSampler(seed=seed, n_startup_trials=0), load_if_exists=True)
    stored = study.user_attrs.get("domains")
    if stored is None:
        study.set_user_attr("domains", list(sources))
    elif stored != list(sources):
        from winnow.errors import ConfigError

        raise ConfigError(f"--study: {study_name!r} was made for sources {stored}, not these; pick another name")
    known = {tuple(np.round(t.user_attrs.get("proportions", []), 6)) for t in study.get_trials(deepcopy=False)}
    trials = []
    for x, v in zip(X_hist, y_hist):
        if tuple(np.round(x, 6)) in known:
            continue  # a history already added (a second `suggest`): added once
        u = np.clip(to_unit_cube(x), 1e-6, 1.0)
        trials.append(optuna.trial.create_trial(params=dict(zip(keys, u.tolist())), distributions=dist, value=float(v),
                                                user_attrs={"proportions": list(map(float, x)), "history": True}))
    study.add_trials(trials)
    out = []
    seen = np.array(X_hist, dtype=float)
    while len(out) < n:
        trial = study.ask(dist)
        p = from_unit_cube(np.array([trial.params[k] for k in keys]))
        if _seen(p[None, :], seen, atol=1e-9)[0]:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            continue
        trial.set_user_attr("proportions", p.tolist())
        seen = np.vstack([seen, p])
        out.append({"trial": trial.number, **dict(zip(sources, p.tolist()))})
    return out
