"""Selection from the store: streamed similarity equals the in-memory one; candidate vectors come back in order."""
from __future__ import annotations

import numpy as np
import pytest

from winnow.data.records import parse_record
from winnow.errors import ConfigError
from winnow.selection.similarity import weighted_similarity
from winnow.selection.targeted import order_pool, streamed_similarity
from winnow.store import feature_tables, lance


def _fill(db, name: str, n: int, codes: str, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    recs = [parse_record({"prompt": f"p{i}", "response": "r", "source": f"s{i % 3}", "task": f"t{i % 2}",
                          "id": f"{name}{i}"}) for i in range(n)]
    feature_tables.create_feature_table(db, name, 16, {"checkpoint_weights": [0.75, 0.25]}, codes=codes)
    vecs = rng.standard_normal((2, n, 16)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=-1, keepdims=True)
    order = rng.permutation(n)  # write rows in a shuffled order, in two pieces, as shards would
    for c in (1, 0):
        for part in (order[: n // 2], order[n // 2:]):
            feature_tables.write_features(db, name, records=[recs[i] for i in part], row_idx=part.tolist(), checkpoint=c,
                                 vectors=vecs[c, part], norms=np.ones(len(part)), n_tokens=[1] * len(part))
    return vecs


@pytest.mark.parametrize("codes", ["fp16", "int8"])
def test_streamed_similarity_equals_in_memory(tmp_path, codes: str) -> None:
    db = lance.connect(str(tmp_path))
    _fill(db, "pool", 37, codes, seed=1)
    _fill(db, "query", 5, "fp16", seed=2)
    query, pool = feature_tables.read_features(db, "query"), feature_tables.read_features(db, "pool")
    w = np.array([0.75, 0.25], dtype=np.float32)
    dense = weighted_similarity(query.vectors, pool.vectors, w)
    streamed = streamed_similarity(db, "pool", feature_tables.feature_index(db, "pool"), query.vectors, w, batch_rows=4)
    np.testing.assert_allclose(streamed, dense, rtol=1e-5, atol=1e-6)
    rows = np.array([30, 2, 17])
    np.testing.assert_array_equal(feature_tables.take_features(db, "pool", rows), pool.vectors[:, rows])


def test_order_pool_uses_stored_checkpoint_weights_and_kde_candidates(tmp_path) -> None:
    db = lance.connect(str(tmp_path))
    _fill(db, "pool", 40, "fp16", seed=3)
    _fill(db, "query", 4, "fp16", seed=4)
    ordering, pool, S = order_pool(str(tmp_path), "query", "pool", selector="rr", seed=0)
    q, p = feature_tables.read_features(db, "query"), feature_tables.read_features(db, "pool")
    np.testing.assert_allclose(S, weighted_similarity(q.vectors, p.vectors, np.array([0.75, 0.25])), atol=1e-6)
    assert pool.ids == p.ids and sorted(ordering.indices.tolist()) == list(range(40))
    kde, _, _ = order_pool(str(tmp_path), "query", "pool", selector="knn-kde", seed=0)
    assert sorted(kde.indices.tolist()) == list(range(40))
    with pytest.raises(ConfigError, match="selection.selector: unknown selector 'best'"):
        order_pool(str(tmp_path), "query", "pool", selector="best", seed=0)
