"""TSDS's KNN selectors: each query spreads its mass over its K nearest pool examples.

Distances d = 1 − S. Each query keeps its L = min(cap, N) nearest; K is the largest common value with
    (α / C) · Σ_i Σ_{k ≤ K} (d_{i,K+1} − d_{i,k}) < (1 − α) · M          (α = 0.01, C = 5)
- KNN-Uniform: query i gives 1/(K·M) to each of its K nearest.
- KNN-KDE: query i splits 1/M over its K nearest in proportion to 1/kde, where kde_j = 1 + Σ over the
  other candidates j' of max(0, 1 − 2·d(j, j')/σ²) (σ = 0.75): dense clumps of near-duplicates get less.
Examples are ranked by mass; examples no query reached follow by their best similarity. (The released
TSDS code sends the uniform option to KDE by mistake; here each name runs its own rule.)
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from winnow.selection.ordering import Ordering


def neighbour_lists(similarity: np.ndarray, cap: int) -> tuple[np.ndarray, np.ndarray]:
    """Each query's L nearest pool indices (M, L) and their distances, ascending (ties: lower index)."""
    M, N = similarity.shape
    L = min(cap, N)
    idx = np.empty((M, L), dtype=np.int64)
    for i in range(M):
        row = similarity[i]
        part = np.argpartition(-row, L - 1)[:L] if L < N else np.arange(N)
        idx[i] = part[np.lexsort((part, -row[part]))]
    return idx, 1.0 - np.take_along_axis(similarity, idx, axis=1).astype(np.float64)


def common_k(dist: np.ndarray, alpha: float, C: float) -> int:
    """The largest K (1 ≤ K < L) meeting TSDS's condition; 1 if none does."""
    M, L = dist.shape
    csum = np.cumsum(dist, axis=1)  # (M, L): Σ_{k ≤ K} d_{i,k} at column K-1
    best = 1
    for K in range(1, L):
        lhs = (alpha / C) * float((K * dist[:, K] - csum[:, K - 1]).sum())
        if lhs < (1 - alpha) * M:
            best = K
        else:
            break  # the sum grows with K
    return best


def _rank(mass: np.ndarray, similarity: np.ndarray, method: str, settings: dict, limit: int | None) -> Ordering:
    best = similarity.max(axis=0)
    idx = np.lexsort((np.arange(len(mass)), -best, -mass))[:limit]  # mass, then best similarity, then index
    return Ordering(idx.astype(np.int64), mass[idx].astype(np.float32), method, settings)


def select_knn_uniform(similarity: np.ndarray, *, limit: int | None = None, seed: int = 0,
                       query_groups: Sequence[str] | None = None, alpha: float = 0.01, C: float = 5.0,
                       cap: int = 5000) -> Ordering:
    M, N = similarity.shape
    idx, dist = neighbour_lists(similarity, cap)
    K = common_k(dist, alpha, C)
    mass = np.zeros(N)
    np.add.at(mass, idx[:, :K].ravel(), 1.0 / (K * M))
    return _rank(mass, similarity, "knn_uniform", {"K": K, "alpha": alpha, "C": C, "cap": cap}, limit)


def select_knn_kde(similarity: np.ndarray, *, limit: int | None = None, seed: int = 0,
                   query_groups: Sequence[str] | None = None,
                   pool_similarity: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
                   alpha: float = 0.01, C: float = 5.0, cap: int = 5000, sigma: float = 0.75,
                   block: int = 2048) -> Ordering:
    """``pool_similarity(rows, cols) -> (len(rows), len(cols))``: the representation's similarities among
    pool examples (the selection runner builds it from the stored features). The kernel sums run in row
    blocks, so memory is block × n, never n × n; time is O(n² d) for n candidates."""
    if pool_similarity is None:
        raise ValueError("knn_kde needs pool_similarity: similarities among candidate pool examples")
    M, N = similarity.shape
    idx, dist = neighbour_lists(similarity, cap)
    K = common_k(dist, alpha, C)
    cands = np.unique(idx[:, :K])
    density = np.zeros(len(cands))
    for s in range(0, len(cands), block):
        rows = cands[s:s + block]
        kernel = np.clip(1.0 - 2.0 * (1.0 - pool_similarity(rows, cands)) / sigma**2, 0.0, None)  # (b, n)
        kernel[np.arange(len(rows)), np.arange(s, s + len(rows))] = 0.0  # not its own neighbour
        density[s:s + len(rows)] = kernel.sum(axis=1)
    inv = 1.0 / (1.0 + density)  # (n,)
    inv_of = dict(zip(cands.tolist(), inv.tolist()))
    mass = np.zeros(N)
    for i in range(M):
        w = np.array([inv_of[j] for j in idx[i, :K]])
        np.add.at(mass, idx[i, :K], w / w.sum() / M)
    return _rank(mass, similarity, "knn_kde", {"K": K, "alpha": alpha, "C": C, "cap": cap, "sigma": sigma}, limit)
