"""The one result type of every selector: a full ordering of the pool, so any budget is a prefix."""
from __future__ import annotations

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
