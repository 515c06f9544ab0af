"""The probability simplex: an explicit parameterisation for search, floors and exact budgets."""
from __future__ import annotations

import numpy as np


def from_unit_cube(u: np.ndarray) -> np.ndarray:
    """Normalised exponentials: r_i = −log u_i / Σ_j −log u_j for u ∈ (0, 1]^K.

    Uniform u gives Dirichlet(1), i.e. uniform on the simplex (unlike softmax of logits, which piles mass
    near the centre); every u gives a valid point. Inverse: ``to_unit_cube``."""
    e = -np.log(np.clip(np.asarray(u, dtype=np.float64), 1e-12, 1.0))
    if e.sum() <= 0:  # all u = 1: the centre
        return np.full(len(e), 1.0 / len(e))
    return e / e.sum()


def to_unit_cube(p: np.ndarray) -> np.ndarray:
    """A u with ``from_unit_cube(u) == p`` (u_i = exp(−p_i)); used to enqueue known mixtures."""
    return np.exp(-np.asarray(p, dtype=np.float64))


def apply_floor(p: np.ndarray, floor: float) -> np.ndarray:
    """Zero proportions under ``floor`` and renormalise the rest (the reference forgot to renormalise)."""
    p = np.asarray(p, dtype=np.float64)
    q = np.where(p >= floor, p, 0.0)
    if q.sum() == 0:  # every share under the floor: all on the largest (the first one on ties)
        q = np.zeros_like(p)
        q[int(np.argmax(p))] = 1.0
    return q / q.sum()


def allocate(budget: int, p: np.ndarray, available: np.ndarray) -> np.ndarray:
    """Integer counts per domain summing to exactly ``budget`` (largest remainder), none above what a domain
    holds; a domain's overflow goes to the others in proportion to their shares."""
    p, available = np.asarray(p, dtype=np.float64), np.asarray(available, dtype=np.int64)
    if budget > available.sum():
        raise ValueError(f"budget {budget} exceeds the {int(available.sum())} examples of all domains")
    counts = np.zeros(len(p), dtype=np.int64)
    open_ = available > 0
    left = budget
    while left > 0:
        share = np.where(open_, p, 0.0)
        if share.sum() == 0:  # only zero-share domains have room left: use them evenly
            share = open_.astype(np.float64)
        want = share / share.sum() * left
        add = np.floor(want).astype(np.int64)
        rema = want - add
        for i in np.argsort(-rema, kind="stable")[: left - add.sum()]:
            add[i] += 1
        add = np.minimum(add, available - counts)
        counts += add
        left = budget - counts.sum()
        open_ = counts < available
    return counts
