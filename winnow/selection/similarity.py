"""Checkpoint-weighted cosine similarity between query and pool features (LESS's score)."""
from __future__ import annotations

import numpy as np

POOL_BLOCK = 65536  # pool rows per matmul block: bounds temporaries to (C, block, d) float32


def weighted_similarity(query: np.ndarray, pool: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """S (M, N) = Σ_c w_c · Q_c P_cᵀ for L2-normalised features Q (C, M, d), P (C, N, d), weights (C,).

    Works in pool blocks so temporaries stay small; memory is the (M, N) float32 result plus one block.
    """
    if query.shape[0] != pool.shape[0] or len(weights) != pool.shape[0]:
        raise ValueError(f"checkpoints differ: query {query.shape[0]}, pool {pool.shape[0]}, weights {len(weights)}")
    C, N = pool.shape[0], pool.shape[1]
    S = np.zeros((query.shape[1], N), dtype=np.float32)
    for s in range(0, N, POOL_BLOCK):
        for c in range(C):
            S[:, s:s + POOL_BLOCK] += np.float32(weights[c]) * (query[c] @ pool[c, s:s + POOL_BLOCK].T)
    return S
