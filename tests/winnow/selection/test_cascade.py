"""The prefilter cascade: candidates from a cheap ranking, gradients only for them, a full ordering back."""
from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from winnow.data.records import parse_record
from winnow.errors import StaleArtifactError
from winnow.selection.cascade import candidate_count, full_ordering, pick_candidates, plan_cascade, read_cascade
from winnow.selection.ordering import Ordering
from winnow.selection.subset import select_subset
from winnow.selection.targeted import order_pool
from winnow.store import feature_tables, lance, record_tables


def test_candidates_are_the_head_and_a_seeded_tail() -> None:
    pre = Ordering(np.array([5, 3, 9, 0, 1, 2, 4, 6, 7, 8]), np.zeros(10), "x")
    assert candidate_count(2, 10, factor=2, tail=0.5) == (4, 2)
    assert candidate_count(4, 10, factor=5, tail=0.5) == (10, 0)  # capped by the pool
    head, tail = pick_candidates(pre, 2, factor=2, tail=0.5, seed=0)
    assert head.tolist() == [0, 3, 5, 9] and len(tail) == 2 and not set(tail) & set(head)
    assert pick_candidates(pre, 2, factor=2, tail=0.5, seed=0)[1].tolist() == tail.tolist()
    draws = {tuple(pick_candidates(pre, 2, factor=2, tail=0.5, seed=s)[1]) for s in range(20)}
    assert len(draws) > 3  # the tail is a random slice, not the next in line


def test_full_ordering_is_candidates_then_the_rest_in_prefilter_order() -> None:
    pre = Ordering(np.array([5, 3, 9, 0, 1, 2, 4, 6, 7, 8]), np.zeros(10), "x")
    cand = np.array([0, 3, 5, 7])  # pool positions
    final = Ordering(np.array([2, 0, 3, 1]), np.array([4.0, 3.0, 2.0, 1.0]), "round_robin")  # indexes cand
    full = full_ordering(final, cand, pre, {"table": "c"})
    assert full.indices.tolist() == [5, 0, 7, 3, 9, 1, 2, 4, 6, 8]
    assert full.scores[:4].tolist() == [4.0, 3.0, 2.0, 1.0] and np.isnan(full.scores[4:]).all()
    assert full.settings["cascade"] == {"table": "c"} and full.method == "round_robin"


def _store(tmp_path, n: int = 30, dim: int = 16):
    """A pool of ``n`` records; complete 'cheap' features; 'grads' features of every row (as a full run would
    leave them); one query per table. The planted row 17 is the gradient query's nearest by far."""
    db = lance.connect(str(tmp_path))
    recs = [parse_record({"prompt": f"p{i}", "response": "r", "source": f"s{i % 3}", "id": f"r{i}"}) for i in range(n)]
    record_tables.write_records(db, "pool", recs)
    rng = np.random.default_rng(0)
    for name, rows, plant in (("cheap", n, None), ("grads", n, 17), ("cheap_q", 1, None), ("grads_q", 1, None)):
        feature_tables.create_feature_table(db, name, dim, {"records": "pool", "checkpoint_weights": [1.0]})
        vec = rng.standard_normal((rows, dim)).astype(np.float32)
        if name.endswith("_q"):
            vec[0] = np.eye(dim, dtype=np.float32)[0] if name == "grads_q" else vec[0]
        if plant is not None:
            vec[plant] = np.eye(dim, dtype=np.float32)[0]
        vec /= np.linalg.norm(vec, axis=1, keepdims=True)
        which = recs if rows == n else [parse_record({"prompt": "q", "response": "a", "id": "q0", "source": "q"})]
        feature_tables.write_features(db, name, records=which, row_idx=list(range(rows)), checkpoint=0, vectors=vec,
                                      norms=np.ones(rows), n_tokens=[1] * rows)
    return db


def test_cascade_selection_orders_the_candidates_and_saves_a_full_ordering(tmp_path) -> None:
    _store(tmp_path)
    uri = str(tmp_path)
    handle = plan_cascade(uri, "cheap_q", "cheap", budget=3, factor=2, tail=0.5, selector="doubly_greedy", seed=0)
    assert (handle.candidates, handle.tail_rows, handle.pool_rows) == (9, 3, 30)
    assert plan_cascade(uri, "cheap_q", "cheap", budget=3, factor=2, tail=0.5, selector="doubly_greedy",
                        seed=0).table == handle.table  # found again by its inputs
    cand, prefilter = read_cascade(uri, handle.table)
    cheap_order, _, _ = order_pool(uri, "cheap_q", "cheap", selector="doubly_greedy", seed=0)
    assert prefilter.tolist() == cheap_order.indices.tolist()  # rows = positions in this pool

    out = tmp_path / "out"
    sub = select_subset(uri, "grads_q", "grads", selector="doubly_greedy", budget=3, seed=0, out_dir=out, name="sel",
                        cascade=handle.table)
    chosen = [json.loads(line)["id"] for line in (out / "sel.jsonl").read_text().splitlines()]
    assert sub.pool_size == 30 and sub.candidates == 9 and len(chosen) == 3
    assert {int(c[1:]) for c in chosen} <= set(cand.tolist())
    # The same selector over the candidates' rows alone gives the same prefix: the cascade is a restriction.
    inside, pool, _ = order_pool(uri, "grads_q", "grads", selector="doubly_greedy", seed=0, rows=cand)
    assert chosen == [pool.ids[i] for i in inside.indices[:3]]
    ordering = pq.read_table(out / "sel_ordering.parquet")
    assert sorted(ordering.column("row_idx").to_pylist()) == list(range(30))  # a full ordering of the pool
    scores = np.asarray(ordering.column("score").to_pylist(), dtype=float)
    assert np.isfinite(scores[:9]).all() and np.isnan(scores[9:]).all()
    meta = json.loads(ordering.schema.metadata[b"winnow"])
    assert meta["cascade"] == handle.table and meta["settings"]["cascade"]["candidates"] == 9


def test_a_planted_example_found_by_the_prefilter_ranks_first(tmp_path) -> None:
    """Outcome: when the cheap ranking keeps the planted row, the gradient step puts it first; when every row is
    a candidate, the cascade equals full selection."""
    _store(tmp_path)
    uri = str(tmp_path)
    full, pool, _ = order_pool(uri, "grads_q", "grads", selector="round_robin", seed=0)
    assert pool.ids[full.indices[0]] == "r17"
    everything = plan_cascade(uri, "cheap_q", "cheap", budget=3, factor=10, tail=0.0, selector="round_robin", seed=0)
    assert everything.candidates == 30
    sub = select_subset(uri, "grads_q", "grads", selector="round_robin", budget=3, seed=0, out_dir=tmp_path / "o",
                        name="all", cascade=everything.table)
    plain = select_subset(uri, "grads_q", "grads", selector="round_robin", budget=3, seed=0, out_dir=tmp_path / "o",
                          name="plain")
    assert sub.digest == plain.digest
    lines = (tmp_path / "o" / "all.jsonl").read_text().splitlines()
    assert json.loads(lines[0])["id"] == "r17"


def test_rows_without_features_are_refused_by_name(tmp_path) -> None:
    db = _store(tmp_path)
    with pytest.raises(StaleArtifactError, match="1 of the asked rows have no features .*row 99"):
        feature_tables.feature_index(db, "grads", np.array([1, 2, 99]))
