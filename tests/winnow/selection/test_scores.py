"""Blocked LESS scores equal the dense computation for every aggregation and any block sizes."""
from __future__ import annotations

import numpy as np
import pytest

from winnow.selection.scores import array_blocks, less_scores
from winnow.selection.similarity import weighted_similarity


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize("qb,pb", [(1, 1), (3, 7), (1024, 1000)])
def test_blocked_equals_dense(qb: int, pb: int) -> None:
    rng = np.random.default_rng(0)
    Q, P = _unit(rng.standard_normal((2, 9, 16))), _unit(rng.standard_normal((2, 40, 16)))
    w = [0.7, 0.3]
    S = weighted_similarity(Q, P, np.array(w))  # (9, 40), the dense reference
    groups = ["a", "b", "a", "c", "b", "a", "c", "c", "a"]
    np.testing.assert_allclose(less_scores(Q, array_blocks(P, pb), w, aggregate="max", query_block=qb),
                               S.max(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(less_scores(Q, array_blocks(P, pb), w, aggregate="mean", query_block=qb),
                               S.mean(0), rtol=1e-5, atol=1e-6)
    g = np.array(groups)
    by_task = np.stack([S[g == t].mean(0) for t in ("a", "b", "c")]).max(0)
    np.testing.assert_allclose(less_scores(Q, array_blocks(P, pb), w, aggregate="subtask", query_groups=groups,
                                           query_block=qb), by_task, rtol=1e-5, atol=1e-6)


def test_subtask_needs_labels() -> None:
    with pytest.raises(ValueError, match="subtask label per query"):
        less_scores(np.zeros((1, 2, 3), np.float32), [np.zeros((1, 4, 3), np.float32)], [1.0], aggregate="subtask")
