"""LESS scores of pool examples, computed in (query block × pool block) tiles.

score_j = aggregate over queries i of Σ_c w_c · cos(pool_c[j], query_c[i]), with aggregate one of
- ``max``: the best-matching query (the "doubly greedy" ranking);
- ``mean``: the average over all queries;
- ``subtask``: LESS's choice — mean over the queries of each subtask, then max over subtasks.

Memory: one tile of (query_block × pool_block) float32 plus the (C, pool_block, d) slice in flight, so
N = 10⁶ pool rows need no M × N matrix; only the (N,) scores and, for ``subtask``, (G, pool_block) sums.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Literal

import numpy as np

Aggregate = Literal["max", "mean", "subtask"]


def less_scores(query: np.ndarray, pool_blocks: Iterable[np.ndarray], weights: Sequence[float], *,
                aggregate: Aggregate = "max", query_groups: Sequence[str] | None = None,
                query_block: int = 1024) -> np.ndarray:
    """Scores (N,) for pool blocks (C, b, d) streamed in row order against queries (C, M, d)."""
    C, M, _ = query.shape
    w = np.asarray(weights, dtype=np.float32)
    if len(w) != C:
        raise ValueError(f"{len(w)} checkpoint weights for {C} checkpoints")
    if aggregate == "subtask":
        if query_groups is None or len(query_groups) != M:
            raise ValueError("aggregate='subtask' needs one subtask label per query")
        names = sorted(set(query_groups))
        gid = np.array([names.index(g) for g in query_groups])
        gsize = np.bincount(gid, minlength=len(names)).astype(np.float32)
    out: list[np.ndarray] = []
    for block in pool_blocks:  # (C, b, d)
        b = block.shape[1]
        if aggregate == "max":
            acc = np.full(b, -np.inf, dtype=np.float32)
        elif aggregate == "mean":
            acc = np.zeros(b, dtype=np.float32)
        else:
            acc = np.zeros((len(names), b), dtype=np.float32)
        for q0 in range(0, M, query_block):
            tile = np.zeros((min(query_block, M - q0), b), dtype=np.float32)  # (mq, b)
            for c in range(C):
                tile += w[c] * (query[c, q0:q0 + query_block] @ block[c].T)
            if aggregate == "max":
                acc = np.maximum(acc, tile.max(axis=0))
            elif aggregate == "mean":
                acc += tile.sum(axis=0)
            else:
                np.add.at(acc, gid[q0:q0 + query_block], tile)
        if aggregate == "mean":
            acc /= M
        elif aggregate == "subtask":
            acc = (acc / gsize[:, None]).max(axis=0)
        out.append(acc)
    return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)


def array_blocks(pool: np.ndarray, block: int) -> Iterable[np.ndarray]:
    """Row blocks (C, b, d) of an in-memory pool array (C, N, d)."""
    for s in range(0, pool.shape[1], block):
        yield pool[:, s:s + block]
