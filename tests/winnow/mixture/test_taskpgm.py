"""TaskPGM: the closed form, the exact simplex minimum against a scipy QP solve, singular S, clustering."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize

from winnow.mixture.taskpgm import ClusteredTaskPGM, TaskPGM, closed_form


def _qp(S: np.ndarray, beta: float, lam: float) -> np.ndarray:
    n = len(S)
    lin = beta * S.sum(axis=1)
    res = minimize(lambda p: lam / 2 * p @ S @ p - lin @ p, np.full(n, 1 / n), jac=lambda p: lam * S @ p - lin,
                   bounds=[(0, 1)] * n, constraints=[{"type": "eq", "fun": lambda p: p.sum() - 1}],
                   method="SLSQP", options={"ftol": 1e-14, "maxiter": 1000})
    return res.x


@pytest.mark.parametrize("seed", range(12))
def test_simplex_minimum_equals_qp_on_random_pd(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 9))
    X = rng.standard_normal((n, n))
    S = X @ X.T + 0.1 * np.eye(n)
    beta, lam = float(rng.uniform(0, 1)), float(rng.uniform(0.5, 2))
    est = TaskPGM(beta, lam, ridge=0.0).fit(S)
    qp = _qp(est.affinity_, beta, lam)
    assert est.energy(est.proportions_) <= est.energy(qp) + 1e-9
    np.testing.assert_allclose(est.proportions_, qp, atol=1e-5)
    assert est.proportions_.min() >= 0 and est.proportions_.sum() == pytest.approx(1.0)


def test_closed_form_when_feasible_is_the_optimum() -> None:
    S = np.array([[2.0, 0.5, 0.1], [0.5, 1.5, 0.2], [0.1, 0.2, 1.0]])
    p = closed_form(S, 0.25, 1.25)
    assert (p > 0).all() and p.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(TaskPGM(0.25, 1.25, ridge=0.0).fit(S).proportions_, p, atol=1e-10)


def test_singular_affinity_is_handled() -> None:
    S = np.ones((4, 4))  # rank one: the reference's |λ_min| shift would stay singular
    est = TaskPGM().fit(S)
    assert np.linalg.eigvalsh(est.affinity_)[0] > 0
    np.testing.assert_allclose(est.proportions_, 0.25, atol=1e-6)  # symmetric tasks: uniform
    with pytest.raises(ValueError, match="finite square"):
        TaskPGM().fit(np.array([[1.0, np.nan], [0.0, 1.0]]))


def test_asymmetric_affinity_is_symmetrised() -> None:
    A = np.array([[1.0, 0.8, 0.0], [0.2, 1.0, 0.0], [0.0, 0.0, 1.0]])
    np.testing.assert_allclose(TaskPGM().fit(A).proportions_, TaskPGM().fit((A + A.T) / 2).proportions_)


def test_clustered_variant_for_many_tasks() -> None:
    rng = np.random.default_rng(0)
    blocks = np.kron(np.eye(4), np.ones((50, 50)))  # 200 tasks in 4 groups
    S = blocks + 0.05 * rng.standard_normal((200, 200))
    est = ClusteredTaskPGM(n_clusters=4).fit(S)
    assert est.proportions_.shape == (200,) and est.proportions_.sum() == pytest.approx(1.0)
    assert len(set(est.labels_.tolist())) == 4 and (est.proportions_ >= 0).all()
