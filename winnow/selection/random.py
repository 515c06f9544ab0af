"""Seeded random ordering: the baseline every targeted selection must beat."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from winnow.selection.ordering import Ordering


def select_random(similarity: np.ndarray, *, limit: int | None = None, seed: int = 0,
                  query_groups: Sequence[str] | None = None) -> Ordering:
    """A seeded permutation of the pool; ``similarity`` only fixes N (M may be zero)."""
    N = similarity.shape[1]
    perm = np.random.default_rng(seed).permutation(N)[: N if limit is None else limit]
    return Ordering(perm.astype(np.int64), np.zeros(len(perm), dtype=np.float32), "random", {"seed": seed})
