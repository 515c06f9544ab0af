"""TSDS's KNN selectors (Li et al., 2024, as run by the TIS study): each query spreads probability mass over its
nearest pool examples, and examples are ranked by their total mass.

Distances are cosine distances, d = max(0, 1 − S), in float32 as the reference computes them; neighbour lists
are stable sorts (ties: lower index). With α = 0.01 and C = 5:

- KNN-Uniform: each query keeps its L = min(5000, N) nearest; K grows from 1 while
  (α / C) · Σ_i Σ_{k ≤ K} (d_{i,K+1} − d_{i,k}) < (1 − α) · M, so K is the first value that fails (or L);
  query i gives 1/(K·M) to each of its K nearest.
- KNN-KDE: each query prefetches its L = min(5000, max(1, N // 10)) nearest. Every prefetched candidate gets a
  kernel density over its min(1000, max(1, N // 10)) nearest candidates (itself included):
  kde = Σ max(0, 1 − 2·d/σ²), σ = 0.75, so near-duplicates share their mass. Then TSDS's allocation: the
  query with the least cumulative 1/kde takes its next neighbour until the transport cost
  (α / C) · Σ_i (d_{i,k+1}·s_i − Σ_{k' ≤ k} d_{i,k'}/kde_{i,k'}) reaches (1 − α) · M; each query gives
  1/(M·s·kde) to the neighbours it took (s = the cumulative weight at which the search stopped) and the rest
  of its 1/M to its next neighbour.

Ranking: by mass, ties (including every example no query reached) by index, as the reference. The reference
refuses pools where fewer than 10,000 candidates get mass; here that is the caller's business (small pools
are legitimate). The released TSDS code sends the uniform option to KDE by mistake; here each name runs its
own rule. Parity with the reference's outputs: tests/winnow/selection/test_parity.py.
"""
from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence

import numpy as np

from winnow.selection.ordering import Ordering

ALPHA, C_CONST = 0.01, 5.0


def nearest(similarity: np.ndarray, L: int) -> tuple[np.ndarray, np.ndarray]:
    """Each query's L nearest pool indices (M, L) and their distances max(0, 1 − S) in float32, ascending;
    a stable sort, so ties keep the lower index."""
    dist = np.maximum(1.0 - similarity, 0.0).astype(np.float32)
    idx = np.argsort(dist, axis=1, kind="stable")[:, :L]
    return idx, np.take_along_axis(dist, idx, axis=1)


def uniform_k(dist: np.ndarray, alpha: float = ALPHA, C: float = C_CONST) -> int:
    """TSDS's K for KNN-Uniform: grown from 1 while the condition holds (the first K that fails, at most L)."""
    M, L = dist.shape
    d = dist.astype(np.float64)
    csum = np.cumsum(d, axis=1)
    K = 1
    while K < L and (alpha / C) * float((K * d[:, K] - csum[:, K - 1]).sum()) < (1 - alpha) * M:
        K += 1
    return K


def _rank(mass: np.ndarray, method: str, settings: dict, limit: int | None) -> Ordering:
    idx = np.lexsort((np.arange(len(mass)), -mass))[:limit]  # mass descending, then index (the reference)
    return Ordering(idx.astype(np.int64), mass[idx].astype(np.float32), method, settings)


def select_knn_uniform(similarity: np.ndarray, *, limit: int | None = None, seed: int = 0,
                       query_groups: Sequence[str] | None = None, alpha: float = ALPHA, C: float = C_CONST,
                       cap: int = 5000) -> Ordering:
    M, N = similarity.shape
    idx, dist = nearest(similarity, min(cap, N))
    K = uniform_k(dist, alpha, C)
    mass = np.zeros(N)
    np.add.at(mass, idx[:, :K].ravel(), 1.0 / (K * M))
    return _rank(mass, "knn_uniform", {"K": K, "alpha": alpha, "C": C, "cap": cap}, limit)


def candidate_density(cands: np.ndarray, pool_similarity: Callable[[np.ndarray, np.ndarray], np.ndarray], k: int,
                      sigma: float, block: int = 2048) -> np.ndarray:
    """Kernel density of each candidate over its k nearest candidates (itself included), in row blocks:
    memory is block × n, never n × n."""
    k = min(k, len(cands))
    out = np.zeros(len(cands), dtype=np.float32)
    for s in range(0, len(cands), block):
        rows = cands[s:s + block]
        dist = np.maximum(1.0 - pool_similarity(rows, cands), 0.0).astype(np.float32)  # (b, n)
        near = np.partition(dist, k - 1, axis=1)[:, :k] if k < len(cands) else dist
        out[s:s + len(rows)] = np.clip(1.0 - 2.0 * near / sigma**2, 0.0, None).sum(axis=1)
    return out


def select_knn_kde(similarity: np.ndarray, *, limit: int | None = None, seed: int = 0,
                   query_groups: Sequence[str] | None = None,
                   pool_similarity: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
                   alpha: float = ALPHA, C: float = C_CONST, cap: int = 5000, kde_cap: int = 1000,
                   sigma: float = 0.75, block: int = 2048) -> Ordering:
    """``pool_similarity(rows, cols) -> (len(rows), len(cols))``: the representation's (checkpoint-weighted)
    similarities among pool examples (the selection runner builds it from the stored features). Time is
    O(n² d) for the n prefetched candidates."""
    if pool_similarity is None:
        raise ValueError("knn_kde needs pool_similarity: similarities among candidate pool examples")
    M, N = similarity.shape
    L = min(cap, max(1, N // 10))
    idx, dist = nearest(similarity, L)
    cands = np.unique(idx)
    density = candidate_density(cands, pool_similarity, min(kde_cap, max(1, N // 10)), sigma, block)
    kde = density[np.searchsorted(cands, idx)].astype(np.float64)  # (M, L)
    d = dist.astype(np.float64)
    last = [0] * M  # the last neighbour each query takes
    heap = [(1.0 / kde[i, 0], 0, i) for i in range(M)]
    heapq.heapify(heap)
    weighted = [d[i, 0] / kde[i, 0] for i in range(M)]
    cost, total, s = np.zeros(M), 0.0, 0.0
    while heap:
        s, k, i = heapq.heappop(heap)
        if k + 1 < L:
            total += d[i, k + 1] * s - weighted[i] - cost[i]
            cost[i] = d[i, k + 1] * s - weighted[i]
        if (alpha / C) * total >= (1 - alpha) * M:
            break
        last[i] = k
        if k < L - 2:
            heapq.heappush(heap, (s + 1.0 / kde[i, k + 1], k + 1, i))
            weighted[i] += d[i, k + 1] / kde[i, k + 1]
    mass = np.zeros(N)
    for i in range(M):
        share = 1.0 / (M * s * kde[i, :last[i] + 1])
        np.add.at(mass, idx[i, :last[i] + 1], share)
        if last[i] + 1 < L:
            mass[idx[i, last[i] + 1]] += max(1.0 / M - share.sum(), 0.0)
    return _rank(mass, "knn_kde", {"alpha": alpha, "C": C, "cap": cap, "kde_cap": kde_cap, "sigma": sigma}, limit)
