"""TaskPGM: mixture proportions over tasks from the closed-form minimum of an energy on the simplex.

E(p) = (λ/2)·pᵀSp − β·(S1)ᵀp with S the (symmetrised) task-affinity matrix. With only Σp = 1 the minimum is
    p* = S⁻¹1/(1ᵀS⁻¹1) + (β/λ)·(1 − n·S⁻¹1/(1ᵀS⁻¹1)).
S is made positive definite by a shift of its smallest eigenvalue plus a ridge εI (the reference shifts by
|λ_min| only, which leaves S exactly singular). When p* has negative entries the exact simplex optimum is
found by an active-set loop: solve the closed form on a support, drop the most negative coordinate, and
re-admit any dropped coordinate whose KKT condition fails — for positive-definite S this is the QP optimum.
``ClusteredTaskPGM`` scales to hundreds of tasks: k-means over the rows of S, TaskPGM over clusters, then
within each cluster.
"""
from __future__ import annotations

import numpy as np


def make_positive_definite(S: np.ndarray, ridge: float) -> np.ndarray:
    S = (np.asarray(S, dtype=np.float64) + np.asarray(S, dtype=np.float64).T) / 2
    lam_min = float(np.linalg.eigvalsh(S)[0])
    return S + (max(0.0, -lam_min) + ridge) * np.eye(len(S))


def closed_form(S: np.ndarray, beta: float, lam: float) -> np.ndarray:
    """Minimum of E under Σp = 1 only (may leave the simplex)."""
    n = len(S)
    s1 = np.linalg.solve(S, np.ones(n))
    base = s1 / s1.sum()
    return base + (beta / lam) * (1.0 - n * base)


def simplex_minimum(S: np.ndarray, beta: float, lam: float, max_iter: int = 1000) -> np.ndarray:
    """Exact minimum of E on the simplex for positive-definite S (active set over the closed form)."""
    n = len(S)
    lin = beta * S.sum(axis=1)  # β·S1
    support = np.ones(n, dtype=bool)
    for _ in range(max_iter):
        idx = np.flatnonzero(support)
        sub = S[np.ix_(idx, idx)]
        # minimise (λ/2) qᵀ sub q − lin_idxᵀ q s.t. Σq = 1 (closed form with this support's linear term)
        a = np.linalg.solve(sub, np.ones(len(idx)))
        b = np.linalg.solve(sub, lin[idx]) / lam
        mu = (1.0 - b.sum()) / a.sum()
        q = b + mu * a
        if (q < -1e-12).any():
            support[idx[np.argmin(q)]] = False
            continue
        p = np.zeros(n)
        p[idx] = np.maximum(q, 0.0)
        grad = lam * S @ p - lin  # KKT: grad_i ≥ grad on the support for i off the support
        nu = float(np.mean(grad[idx]))
        bad = np.flatnonzero(~support & (grad < nu - 1e-10))
        if len(bad) == 0:
            return p / p.sum()
        support[bad[np.argmin(grad[bad])]] = True
    raise RuntimeError("TaskPGM active set did not converge")


class TaskPGM:
    """Estimator: ``TaskPGM(beta, lam, ridge).fit(affinity).proportions_``."""

    def __init__(self, beta: float = 0.25, lam: float = 1.25, ridge: float = 1e-6):
        self.beta, self.lam, self.ridge = beta, lam, ridge

    def fit(self, affinity: np.ndarray) -> "TaskPGM":
        A = np.asarray(affinity, dtype=np.float64)
        if A.ndim != 2 or A.shape[0] != A.shape[1] or not np.isfinite(A).all():
            raise ValueError(f"affinity must be a finite square matrix, got shape {A.shape}")
        self.affinity_ = make_positive_definite(A, self.ridge)
        self.unconstrained_ = closed_form(self.affinity_, self.beta, self.lam)
        self.proportions_ = simplex_minimum(self.affinity_, self.beta, self.lam)
        return self

    def energy(self, p: np.ndarray) -> float:
        S = self.affinity_
        return float(self.lam / 2 * p @ S @ p - self.beta * S.sum(axis=1) @ p)


class ClusteredTaskPGM:
    """TaskPGM over k-means clusters of tasks (rows of S as features), then inside each cluster."""

    def __init__(self, n_clusters: int = 8, beta: float = 0.25, lam: float = 1.25, ridge: float = 1e-6, seed: int = 0):
        self.n_clusters, self.beta, self.lam, self.ridge, self.seed = n_clusters, beta, lam, ridge, seed

    def fit(self, affinity: np.ndarray) -> "ClusteredTaskPGM":
        from scipy.cluster.vq import kmeans2

        S = (np.asarray(affinity, dtype=np.float64) + np.asarray(affinity, dtype=np.float64).T) / 2
        k = min(self.n_clusters, len(S))
        _, labels = kmeans2(S, k, seed=self.seed, minit="++")
        clusters = [np.flatnonzero(labels == c) for c in range(k) if (labels == c).any()]
        between = np.array([[S[np.ix_(a, b)].mean() for b in clusters] for a in clusters])
        top = TaskPGM(self.beta, self.lam, self.ridge).fit(between).proportions_
        p = np.zeros(len(S))
        for share, members in zip(top, clusters):
            inner = TaskPGM(self.beta, self.lam, self.ridge).fit(S[np.ix_(members, members)]).proportions_
            p[members] = share * inner
        self.labels_ = labels
        self.proportions_ = p / p.sum()
        return self
