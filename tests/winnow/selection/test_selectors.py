"""Every selector against a small brute-force reference, plus the shared contract (scikit-learn style)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from winnow.registry import SELECTOR_NAMES as NAMES, SELECTORS, selector_fn
from winnow.selection.distance import subset_distances
from winnow.selection.knn import select_knn_kde, select_knn_uniform
from winnow.selection.transport import select_uot, transport_plan


def _case(M: int, N: int, seed: int = 0, d: int = 8):
    rng = np.random.default_rng(seed)
    Q, P = rng.standard_normal((M, d)), rng.standard_normal((N, d))
    Q /= np.linalg.norm(Q, axis=1, keepdims=True)
    P /= np.linalg.norm(P, axis=1, keepdims=True)
    return (Q @ P.T).astype(np.float32), P


def _kwargs(name: str, P: np.ndarray) -> dict:
    return {"pool_similarity": lambda r, c: P[r] @ P[c].T} if SELECTORS[name].needs_pool_similarity else {}


@pytest.mark.parametrize("name", sorted(NAMES))
def test_contract_permutation_prefix_determinism(name: str) -> None:
    S, P = _case(4, 30)
    kw = _kwargs(name, P)
    full = selector_fn(name)(S, seed=5, query_groups=["a", "a", "b", "b"], **kw)
    assert sorted(full.indices.tolist()) == list(range(30)) and len(full.scores) == 30
    again = selector_fn(name)(S, seed=5, query_groups=["a", "a", "b", "b"], **kw)
    np.testing.assert_array_equal(full.indices, again.indices)
    head = selector_fn(name)(S, limit=7, seed=5, query_groups=["a", "a", "b", "b"], **kw)
    np.testing.assert_array_equal(head.indices, full.indices[:7])


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 5), st.integers(2, 25), st.integers(0, 10_000), st.sampled_from(sorted(NAMES)))
def test_property_any_shape(M: int, N: int, seed: int, name: str) -> None:
    S, P = _case(M, N, seed)
    S = np.round(S * 4) / 4  # many ties
    o = selector_fn(name)(S, seed=seed, query_groups=[str(i % 2) for i in range(M)], **_kwargs(name, P))
    assert sorted(o.indices.tolist()) == list(range(N))


def test_doubly_greedy_and_subtask_against_loops() -> None:
    S, _ = _case(6, 40, seed=3)
    groups = ["x", "y", "x", "z", "y", "x"]
    dg = sorted(range(40), key=lambda j: (-max(S[i, j] for i in range(6)), j))
    assert selector_fn("doubly_greedy")(S).indices.tolist() == dg

    def subtask(j: int) -> float:
        return max(np.mean([S[i, j] for i in range(6) if groups[i] == g]) for g in set(groups))
    ref = sorted(range(40), key=lambda j: (-round(subtask(j), 6), j))
    assert selector_fn("subtask_topk")(S, query_groups=groups).indices.tolist() == ref


def test_knn_kde_downweights_near_duplicates() -> None:
    """A query at e1; near it, five near-copies of one point and a distinct point a little nearer; 54 far
    points. Both rules prefetch N // 10 = 6 neighbours (the clump and the lone point); uniform gives them equal
    mass, KDE makes the clump share its mass, so the lone point gets clearly more than any clump member."""
    rng = np.random.default_rng(0)
    q = np.array([[1.0, 0.0, 0.0]])
    clump = np.array([[0.9, 0.43, 0.0]] * 5) + rng.normal(0, 1e-3, (5, 3))
    lone = np.array([[0.95, 0.0, 0.31]])
    far = -np.abs(rng.normal(0, 1, (54, 3))) - np.array([2.0, 0.0, 0.0])
    P = np.vstack([clump, lone, far])
    P /= np.linalg.norm(P, axis=1, keepdims=True)
    S = (q @ P.T).astype(np.float32)
    kde = select_knn_kde(S, pool_similarity=lambda r, c: P[r] @ P[c].T)
    assert kde.indices[0] == 5 and kde.scores[0] > 1.3 * kde.scores[1]
    uni = select_knn_uniform(S, cap=6)
    assert set(uni.indices[:6].tolist()) == set(range(6)) and np.ptp(uni.scores[:6]) == 0
    with pytest.raises(ValueError, match="pool_similarity"):
        select_knn_kde(S)


def test_uot_ships_all_query_mass_to_nearest_examples() -> None:
    S, _ = _case(4, 50, seed=2)
    S[:, 7] = 1.0  # an example identical to every query
    T = transport_plan(S)
    np.testing.assert_allclose(T.sum(axis=1), 1 / 4, rtol=1e-3)  # hard constraint on the query side
    o = select_uot(S)
    assert o.indices[0] == 7 and o.scores[0] > 0.5


def test_subset_distances() -> None:
    S, _ = _case(3, 20, seed=4)
    far = np.argsort(S.max(axis=0))[:5]
    near = np.argsort(-S.max(axis=0))[:5]
    d_far, d_near = subset_distances(S, far), subset_distances(S, near)
    assert d_near["nearest"] < d_far["nearest"] and d_near["transport"] <= d_far["transport"]
    exact = subset_distances(S, np.arange(20))
    assert exact["nearest"] == pytest.approx(float((1 - S.max(axis=1)).mean()), rel=1e-6)
