"""How targeted is a subset: distances between the query set and the selected examples.

The selectors are approximate minimisers of a distance between subset and query set; reporting it explains
results. Two views, both on d = 1 − S:
- ``nearest``: mean over queries of the distance to the nearest selected example (coverage of the queries);
- ``transport``: the optimal-transport cost between uniform measures on queries and subset, cost (1 − S)/2
  (exact network simplex while M·k ≤ 4·10⁶, else entropic with ε = 0.01).
"""
from __future__ import annotations

import numpy as np

from winnow.errors import MissingDependencyError


def subset_distances(similarity: np.ndarray, subset: np.ndarray) -> dict[str, float]:
    S = similarity[:, subset].astype(np.float64)  # (M, k)
    out = {"nearest": float((1.0 - S.max(axis=1)).mean())}
    try:
        import ot
    except ImportError:
        raise MissingDependencyError("the transport distance needs POT: pip install pot") from None
    M, k = S.shape
    a, b, cost = np.full(M, 1.0 / M), np.full(k, 1.0 / k), (1.0 - S) / 2.0
    out["transport"] = float(ot.emd2(a, b, cost) if M * k <= 4_000_000 else ot.sinkhorn2(a, b, cost, 0.01,
                                                                                          method="sinkhorn_log"))
    return out
