"""The one result type of every selector: a full ordering of the pool, so any budget is a prefix."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from winnow.errors import ConfigError


@dataclass(frozen=True)
class Ordering:
    indices: np.ndarray  # (K,) pool positions, best first; K = N unless the selector was asked to stop early
    scores: np.ndarray  # (K,) the selector's score of each picked item (higher = picked for a better reason)
    method: str
    settings: dict[str, Any] = field(default_factory=dict)

    def prefix(self, budget: int) -> np.ndarray:
        if budget > len(self.indices):
            raise ConfigError(f"selection.budget: {budget} examples asked, the ordering has {len(self.indices)}")
        return self.indices[:budget]


def resolve_budget(budget: float, n_pool: int) -> int:
    """``budget <= 1`` is a share of the pool (rounded up, at least 1); ``> 1`` a number of examples."""
    if budget <= 0:
        raise ConfigError(f"selection.budget: must be positive, got {budget}")
    k = math.ceil(budget * n_pool) if budget <= 1 else int(budget)
    if budget > 1 and budget != int(budget):
        raise ConfigError(f"selection.budget: {budget} is neither a share (<= 1) nor a whole count")
    if k > n_pool:
        raise ConfigError(f"selection.budget: {k} examples asked, the pool has only {n_pool}")
    return max(1, k)
