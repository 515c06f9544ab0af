"""Unbalanced optimal transport selection (POT): rank pool examples by the mass the query set sends them.

Cost C = (1 − S)/2 in [0, 1]; uniform marginals; entropic ε = 0.01; KL marginal relaxation ∞ on the query
side (every query ships all its mass) and 1e-4 on the pool side (examples need not receive theirs), so
mass flows to the examples nearest the queries, spread by ε. The log-stabilised Sinkhorn is required at
ε = 0.01: exp(−C/ε) underflows in plain scaling.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from winnow.errors import MissingDependencyError
from winnow.selection.greedy import order_by_score
from winnow.selection.ordering import Ordering


def transport_plan(similarity: np.ndarray, *, eps: float = 0.01,
                   reg_m: tuple[float, float] = (float("inf"), 1e-4), max_iter: int = 1000) -> np.ndarray:
    """Unbalanced entropic plan T (M, N) between uniform query and pool measures."""
    try:
        import ot
    except ImportError:
        raise MissingDependencyError("UOT selection needs POT: pip install pot") from None
    M, N = similarity.shape
    cost = ((1.0 - similarity.astype(np.float64)) / 2.0)
    a, b = np.full(M, 1.0 / M), np.full(N, 1.0 / N)
    return ot.unbalanced.sinkhorn_unbalanced(a, b, cost, reg=eps, reg_m=reg_m, method="sinkhorn_stabilized",
                                             numItermax=max_iter)


def select_uot(similarity: np.ndarray, *, limit: int | None = None, seed: int = 0,
               query_groups: Sequence[str] | None = None, eps: float = 0.01,
               reg_m: tuple[float, float] = (float("inf"), 1e-4)) -> Ordering:
    mass = transport_plan(similarity, eps=eps, reg_m=reg_m).sum(axis=0)
    return order_by_score(mass, "uot", {"eps": eps, "reg_m": list(reg_m)}, limit)
