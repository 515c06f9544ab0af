"""Can a representation find in-domain data at all? Planted recall answers it without a single fine-tune.

The target's validation rows are featurised as pool rows (the train side, Adam-preconditioned for gradients)
and ranked together with the pool by the selector, under the same query set. A representation that serves the
target ranks them at the top: their recall within the budget is near 1 and their mean rank percentile near 0.
A representation that cannot tell the target from the rest ranks them like any other row (recall ≈ budget /
pool size). Only similarities and one ordering are computed; the pool's stored features are reused.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from winnow.registry import SELECTORS, canonical_selector, selector_fn
from winnow.selection.similarity import weighted_similarity
from winnow.selection.targeted import streamed_similarity
from winnow.store import feature_tables, lance


def planted_ranks(store_uri: str, query_table: str, pool_table: str, planted_table: str, *, selector: str, seed: int,
                  weights: list[float] | None = None) -> tuple[np.ndarray, int]:
    """The 0-based ranks of the planted rows in the selector's ordering of pool ∪ planted, and that size."""
    db = lance.connect(store_uri)
    query = feature_tables.read_features(db, query_table)
    pool, planted = feature_tables.feature_index(db, pool_table), feature_tables.feature_index(db, planted_table)
    if pool.checkpoints != planted.checkpoints:
        raise ValueError(f"{planted_table}: checkpoints {planted.checkpoints}, the pool's are {pool.checkpoints}")
    if weights is None:
        C = len(pool.checkpoints)
        weights = lance.provenance_of(db, pool_table).get("checkpoint_weights") or [1.0 / C] * C
    w = np.asarray(weights, dtype=np.float32)
    S = np.hstack([streamed_similarity(db, pool_table, pool, query.vectors, w),
                   streamed_similarity(db, planted_table, planted, query.vectors, w)])
    n = len(pool.ids)
    name = canonical_selector(selector)
    extra: dict[str, Any] = {}
    if SELECTORS[name].needs_pool_similarity:
        vectors = np.concatenate([feature_tables.take_features(db, pool_table, pool.row_idx),
                                  feature_tables.take_features(db, planted_table, planted.row_idx)], axis=1)
        extra["pool_similarity"] = lambda rows, cols: weighted_similarity(vectors[:, rows], vectors[:, cols], w)
    ordering = selector_fn(name)(S, seed=seed, query_groups=query.tasks, **extra)
    rank = np.empty(S.shape[1], dtype=np.int64)
    rank[ordering.indices] = np.arange(len(ordering.indices))
    return rank[n:], S.shape[1]


def pool_scores(store_uri: str, query_table: str, pool_table: str, weights: list[float] | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
    """Each pool row's score for the target (its mean similarity to the queries) and the rows, in row order:
    what a subset's aggregate score is the mean of."""
    db = lance.connect(store_uri)
    query, pool = feature_tables.read_features(db, query_table), feature_tables.feature_index(db, pool_table)
    if weights is None:
        C = len(pool.checkpoints)
        weights = lance.provenance_of(db, pool_table).get("checkpoint_weights") or [1.0 / C] * C
    S = streamed_similarity(db, pool_table, pool, query.vectors, np.asarray(weights, dtype=np.float32))
    return S.mean(axis=0), pool.row_idx


def planted_recall(ranks: np.ndarray, total: int, k: int) -> dict[str, float]:
    """Recall of the planted rows within the first ``k`` (of at most ``k`` that fit), their mean rank
    percentile (0 = the top), and what a representation blind to the target would score (``chance``)."""
    p = len(ranks)
    fit = min(p, k)
    return {"planted": p, "budget": k, "ranks": sorted(int(r) for r in ranks),
            "recall": float((ranks < k).sum() / fit) if fit else float("nan"),
            "mean_percentile": float(100.0 * ranks.mean() / max(total - 1, 1)) if p else float("nan"),
            "chance": float(k / total) if total else float("nan")}


def utility_subsets(scores: np.ndarray, k: int, m: int, seed: int = 0) -> list[np.ndarray]:
    """``m`` subsets of ``k`` pool rows for the subset-utility correlation: half drawn uniformly, half drawn
    with probability rising with the score (rank-proportional, so a few extreme scores cannot take every draw),
    so that the subsets' predicted utility spreads from random to near the top of the ranking."""
    rng = np.random.default_rng(seed)
    n = len(scores)
    if not 0 < k < n:
        raise ValueError(f"a subset of {k} rows of a pool of {n}: each must be smaller than the pool")
    ranks = np.empty(n)
    ranks[np.argsort(scores)] = np.arange(1, n + 1)
    out = []
    for i in range(m):
        if i % 2 == 0:
            out.append(np.sort(rng.choice(n, size=k, replace=False)))
        else:
            power = 1.0 + 3.0 * (i // 2) / max(1, m // 2)  # later draws lean harder on the top of the ranking
            p = ranks ** power
            out.append(np.sort(rng.choice(n, size=k, replace=False, p=p / p.sum())))
    return out


def utility_correlation(predicted: np.ndarray, observed: np.ndarray, n_boot: int = 2000, seed: int = 0,
                        level: float = 0.95) -> dict[str, float]:
    """Spearman's ρ between each subset's aggregate score and the metric its fine-tune reached, with a
    percentile bootstrap over subsets: does a higher score mean a better model?"""
    from scipy.stats import spearmanr

    x, y = np.asarray(predicted, dtype=float), np.asarray(observed, dtype=float)
    rho = float(spearmanr(x, y).statistic)
    rng = np.random.default_rng(seed)
    boots = []
    for _ in range(n_boot):
        idx = rng.integers(0, len(x), len(x))
        if np.ptp(x[idx]) > 0 and np.ptp(y[idx]) > 0:
            boots.append(spearmanr(x[idx], y[idx]).statistic)
    lo, hi = (np.quantile(boots, [(1 - level) / 2, (1 + level) / 2]) if boots else (np.nan, np.nan))
    return {"rho": rho, "low": float(lo), "high": float(hi), "subsets": int(len(x))}
