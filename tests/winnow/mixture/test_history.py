"""A history of mixture runs by outcome: each defect is a one-line error naming file, line and field; every
surrogate recovers a known ranking; suggestions are new mixtures on the simplex."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from winnow.errors import DataFormatError
from winnow.mixture import surrogates
from winnow.mixture.design import suggest_among, suggest_simplex
from winnow.mixture.history import read_history, validate_shares

SOURCES = ["a", "b", "c", "d"]


def _history(n: int = 120, seed: int = 0) -> pd.DataFrame:
    """Mixtures with an outcome that is a known smooth function of the shares (higher is better)."""
    rng = np.random.default_rng(seed)
    X = rng.dirichlet(np.ones(len(SOURCES)), n)
    y = 2 * X[:, 0] - X[:, 1] ** 2 + 0.5 * np.sin(3 * X[:, 2])
    return pd.DataFrame({"run": np.arange(n), **{s: X[:, i] for i, s in enumerate(SOURCES)}, "score": y})


def _write(frame: pd.DataFrame, path) -> str:
    frame.to_csv(path, index=False)
    return str(path)


def test_each_defect_is_one_line_naming_file_line_and_field(tmp_path) -> None:
    good = _history(10)
    bad = good.copy()
    bad.loc[3, "a"] += 0.2  # line 5: the shares sum to 1.2
    with pytest.raises(DataFormatError, match=r"h\.csv:5: field 'shares': run 3: shares sum to 1\.2"):
        read_history([_write(bad, tmp_path / "h.csv")], "score", sources=SOURCES)
    dup = pd.concat([good, good.iloc[[2]]])
    with pytest.raises(DataFormatError, match=r"run 2 appears twice"):
        read_history([_write(dup, tmp_path / "d.csv")], "score", sources=SOURCES)
    with pytest.raises(DataFormatError, match=r"field 'e': no column 'e'"):
        read_history([_write(good, tmp_path / "g.csv")], "score", sources=[*SOURCES, "e"])
    with pytest.raises(DataFormatError, match=r"no outcome column 'loss'"):
        read_history([_write(good, tmp_path / "g.csv")], "loss", sources=SOURCES)
    neg = good.copy()
    neg.loc[1, "b"], neg.loc[1, "a"] = -0.5, neg.loc[1, "a"] + 0.5
    with pytest.raises(DataFormatError, match=r":3: field 'b': run 1: share 'b' must be a number >= 0"):
        read_history([_write(neg, tmp_path / "n.csv")], "score", sources=SOURCES)
    nan = good.copy()
    nan.loc[4, "score"] = np.nan  # quarantined with its reason, the rest kept
    h = read_history([_write(nan, tmp_path / "q.csv")], "score", sources=SOURCES)
    assert len(h.frame) == 9 and [(q.line, q.field) for q in h.quarantined] == [(6, "score")]
    cands = good[SOURCES].rename(columns={"d": "z"})
    with pytest.raises(DataFormatError, match=r"source 'd' is missing"):
        validate_shares(cands, tuple(SOURCES), "c.csv")


def test_rounded_shares_within_what_their_rounding_allows_are_accepted(tmp_path) -> None:
    """RegMix prints 17 shares to 3 decimals: their sums run from 0.996 to 1.003, and that is no defect."""
    frame = _history(30).round({s: 3 for s in SOURCES})
    h = read_history([_write(frame, tmp_path / "r.csv")], "score", sources="[abcd]")
    assert h.sources == tuple(SOURCES) and np.allclose(h.shares.sum(axis=1), 1.0)


@pytest.mark.parametrize("name", surrogates.SURROGATES)
def test_every_surrogate_recovers_a_known_ranking(name: str, tmp_path) -> None:
    h = read_history([_write(_history(), tmp_path / "h.csv")], "score", sources=SOURCES)
    cv = surrogates.cross_validate(name, h.shares, h.outcome, folds=4, repeats=1)
    assert cv["spearman"] > 0.9, cv["spearman"]


def test_suggestions_are_new_mixtures_on_the_simplex(tmp_path) -> None:
    frame = _history(20)
    h = read_history([_write(frame, tmp_path / "h.csv")], "score", sources=SOURCES)
    pool = np.vstack([h.shares[:5], np.random.default_rng(1).dirichlet(np.ones(4), 30)])
    picks = suggest_among(h.shares, h.outcome, pool, 4)
    assert len(set(picks)) == 4 and all(p >= 5 for p in picks)  # never one the history holds
    storage = str(tmp_path / "optuna.db")
    first = suggest_simplex(h.shares, h.outcome, SOURCES, 3, storage=storage, study_name="s")
    again = suggest_simplex(h.shares, h.outcome, SOURCES, 2, storage=storage, study_name="s")  # history added once
    points = np.array([[r[s] for s in SOURCES] for r in first + again])
    assert np.allclose(points.sum(axis=1), 1.0) and (points >= 0).all()
    assert len({tuple(np.round(p, 9)) for p in points}) == 5
    assert not any(np.abs(h.shares - p).max(axis=1).min() < 1e-9 for p in points)
    import optuna

    study = optuna.load_study(study_name="s", storage=f"sqlite:///{storage}")
    done = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    waiting = study.get_trials(states=(optuna.trial.TrialState.RUNNING,))
    assert len(done) == 20 and len(waiting) == 5  # the history once; the suggestions wait for `winnow feedback`
