"""Round-robin selection: queries take turns, each taking its most similar example not yet taken.

The reference does an O(N) masked argmax per pick (O(k·N)). Here each query keeps a sorted candidate list
(its top-L by similarity, ties broken by lower pool index) and a pointer; taken items are skipped, and a
list that runs dry is regrown to twice its length. The order equals the naive definition exactly.
"""
from __future__ import annotations

import math

from collections.abc import Sequence

import numpy as np

from winnow.selection.ordering import Ordering


def top_sorted(row: np.ndarray, L: int) -> np.ndarray:
    """Indices of the L largest values of ``row``, sorted by (value desc, index asc) — exact under ties."""
    N = len(row)
    if L >= N:
        return np.lexsort((np.arange(N), -row))
    part = np.argpartition(-row, L - 1)[:L]
    t = row[part].min()
    above = np.flatnonzero(row > t)
    equal = np.flatnonzero(row == t)[: L - len(above)]
    sel = np.concatenate([above, equal])
    return sel[np.lexsort((sel, -row[sel]))]


def select_round_robin(similarity: np.ndarray, *, limit: int | None = None, seed: int = 0,
                       query_groups: Sequence[str] | None = None) -> Ordering:
    """Order the pool by round-robin over queries; ``limit`` stops after that many picks.

    ``similarity``: (M queries, N pool). ``seed`` is unused (the method is deterministic) and accepted so all
    selectors share one signature.
    """
    M, N = similarity.shape
    k = N if limit is None else min(limit, N)
    taken = np.zeros(N, dtype=bool)
    L0 = min(N, max(16, 2 * math.ceil(k / M)))
    cand = [top_sorted(similarity[i], L0) for i in range(M)]
    ptr = [0] * M
    picks = np.empty(k, dtype=np.int64)
    scores = np.empty(k, dtype=np.float32)
    n = 0
    while n < k:
        for i in range(M):
            if n == k:
                break
            c, p = cand[i], ptr[i]
            while True:
                while p < len(c) and taken[c[p]]:
                    p += 1
                if p < len(c):
                    break
                c = cand[i] = top_sorted(similarity[i], min(N, 2 * len(c)))  # grow; old list is a prefix
            j = c[p]
            taken[j] = True
            ptr[i] = p + 1
            picks[n], scores[n] = j, similarity[i, j]
            n += 1
    return Ordering(picks, scores, "round_robin", {"limit": limit})


def select_round_robin_naive(similarity: np.ndarray, *, limit: int | None = None) -> np.ndarray:
    """The definition, O(k·N): kept as the test oracle and the benchmark baseline."""
    M, N = similarity.shape
    k = N if limit is None else min(limit, N)
    S = similarity.astype(np.float64).copy()
    out: list[int] = []
    while len(out) < k:
        for i in range(M):
            if len(out) == k:
                break
            j = int(np.argmax(S[i]))
            out.append(j)
            S[:, j] = -np.inf
    return np.array(out, dtype=np.int64)
