"""DUET's within-domain scores, streamed from the store: each pool example's gradient against the mean
held-out gradient of its own domain, Σ_c w_c · cos(pool_c, target_c).

Memory is one batch of pool features (``batch_rows`` × d floats), the scores (one float per pool row) and the
domain targets (C × domains × d), never the pool's feature matrix: a 10⁶-row pool at d = 8192 would need
33 GB in float32. Measured by bench/streaming.py at 10⁶ rows, 2 checkpoints, d = 256: 1.5 GB peak against
7.5 GB for reading every feature (most of the 1.5 GB is the row index: ids, sources and tasks).
"""
from __future__ import annotations

from typing import Any, Literal

import numpy as np

from winnow.store import feature_tables


def domain_targets(held: np.ndarray, held_domains: list[str], names: list[str]) -> np.ndarray:
    """(C, D, d) unit mean held-out gradient of each domain in ``names`` (zeros for a domain without held-out
    rows, so its examples score 0 and a mixture fills it at random order)."""
    C, _, d = held.shape
    out = np.zeros((C, len(names), d), dtype=np.float32)
    hd = np.asarray(held_domains)
    for j, name in enumerate(names):
        if (hd == name).any():
            t = held[:, hd == name].mean(axis=1)
            out[:, j] = t / np.linalg.norm(t, axis=1, keepdims=True).clip(min=1e-30)
    return out


def influence_by_id(db: Any, pool_table: str, heldout_table: str, weights: list[float],
                    key: Literal["source", "task"] = "source", batch_rows: int = 65536) -> dict[str, float]:
    """{pool id: score}, the pool read batch by batch (any order: rows are placed by ``row_idx``)."""
    index = feature_tables.feature_index(db, pool_table)
    held = feature_tables.read_features(db, heldout_table)  # the held-out slice: a few examples per domain
    pool_dom = index.sources if key == "source" else index.tasks
    names = sorted(set(pool_dom))
    targets = domain_targets(held.vectors, held.sources if key == "source" else held.tasks, names)
    position = np.full(int(index.row_idx.max()) + 1, -1, dtype=np.int64)
    position[index.row_idx] = np.arange(len(index.ids))
    dom_of = np.searchsorted(names, pool_dom)  # (N,) domain index of each pool row
    slot = {c: i for i, c in enumerate(index.checkpoints)}
    w = np.asarray(weights, dtype=np.float32)
    scores = np.zeros(len(index.ids), dtype=np.float64)
    for rows, cks, vec in feature_tables.iter_feature_batches(db, pool_table, batch_rows):
        i = position[rows]
        c = np.array([slot[int(k)] for k in cks])
        scores[i] += w[c] * np.einsum("nd,nd->n", vec, targets[c, dom_of[i]])
    return dict(zip(index.ids, scores.tolist()))
