"""Round-robin equals its naive definition exactly (ties included); orderings are nested permutations."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from winnow.selection.round_robin import select_round_robin, select_round_robin_naive, top_sorted


@pytest.mark.parametrize("M,N", [(1, 50), (3, 40), (7, 200), (40, 30)])
def test_matches_naive_on_random_and_tied_similarities(M: int, N: int) -> None:
    rng = np.random.default_rng(M * N)
    for S in (rng.standard_normal((M, N)).astype(np.float32),
              rng.integers(0, 4, (M, N)).astype(np.float32)):  # heavy ties
        np.testing.assert_array_equal(select_round_robin(S).indices, select_round_robin_naive(S))


@settings(max_examples=60, deadline=None)
@given(arrays(np.float32, st.tuples(st.integers(1, 6), st.integers(1, 40)),
              elements=st.sampled_from([-1.0, 0.0, 0.25, 0.5, 1.0])), st.data())
def test_property_permutation_prefix_and_naive(S: np.ndarray, data: st.DataObject) -> None:
    full = select_round_robin(S).indices
    assert sorted(full.tolist()) == list(range(S.shape[1]))
    k = data.draw(st.integers(1, S.shape[1]))
    np.testing.assert_array_equal(select_round_robin(S, limit=k).indices, full[:k])  # prefixes nest
    np.testing.assert_array_equal(full, select_round_robin_naive(S))


def test_top_sorted_breaks_ties_by_lower_index() -> None:
    row = np.array([1, 3, 3, 2, 3, 0], dtype=np.float32)
    assert top_sorted(row, 2).tolist() == [1, 2]
    assert top_sorted(row, 4).tolist() == [1, 2, 4, 3]
    assert top_sorted(row, 10).tolist() == [1, 2, 4, 3, 0, 5]
