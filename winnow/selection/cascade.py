"""A prefilter cascade: rank the whole pool with a cheap forward-only representation, then pay for gradient
features only on the head of that ranking (plus a random slice of its tail).

Why: gradient features cost one forward and backward pass per example and warm-up checkpoint (≈ 2.6 features/s
on two CPU cores), hidden states or sentence embeddings one forward pass (≈ 8–80 examples/s). When the budget is
a small share of the pool, most of the gradient work goes to examples no selector would pick. The cascade keeps
``factor × budget`` candidates by the cheap ranking, adds ``tail × factor × budget`` drawn at random from the
rest (so the final selector still sees some of what the cheap representation ranks low, and a report can show
how often it would have wanted them), and the final selector orders only the candidates. The ordering it
returns is still a full ordering of the pool: the candidates in the final selector's order, then every other
example in the prefilter's order (score NaN), so any budget up to the candidate count is a prefix of it.

``bench/cascade.py`` measures the overlap with full gradient selection and the cost for several factors.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyarrow as pa

from winnow.keys import artifact_key
from winnow.results import Cascade
from winnow.selection.ordering import Ordering
from winnow.registry import selector_code
from winnow.selection.targeted import order_pool
from winnow.store import lance

CASCADE_SCHEMA = pa.schema([("row_idx", pa.int64()), ("prefilter_rank", pa.int64()), ("candidate", pa.bool_()),
                            ("tail", pa.bool_())])


def candidate_count(budget: int, n_pool: int, factor: float, tail: float) -> tuple[int, int]:
    """(head, tail) sizes: ``ceil(factor × budget)`` by the cheap ranking, ``ceil(tail × head)`` at random from
    the rest, both capped by the pool."""
    head = min(n_pool, math.ceil(factor * budget))
    return head, min(n_pool - head, math.ceil(tail * head))


def pick_candidates(prefilter: Ordering, budget: int, *, factor: float, tail: float, seed: int
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Pool positions of the candidates: the prefilter ordering's head, and a seeded random slice of the rest.
    Both sorted ascending (the order features are computed and stored in does not matter)."""
    order = prefilter.indices
    n_head, n_tail = candidate_count(budget, len(order), factor, tail)
    head = order[:n_head]
    rest = order[n_head:]
    drawn = np.random.default_rng(seed).choice(rest, size=n_tail, replace=False) if n_tail else rest[:0]
    return np.sort(head), np.sort(drawn)


def full_ordering(final: Ordering, candidate_pos: np.ndarray, prefilter: Ordering, settings: dict[str, Any]
                  ) -> Ordering:
    """The final selector's order over the candidates (``final`` indexes ``candidate_pos``), then the rest of the
    pool in the prefilter's order with score NaN: a full ordering of the pool, as every selector returns."""
    chosen = candidate_pos[final.indices]
    is_candidate = np.zeros(len(prefilter.indices), dtype=bool)
    is_candidate[candidate_pos] = True
    rest = prefilter.indices[~is_candidate[prefilter.indices]]
    scores = np.concatenate([final.scores.astype(np.float32), np.full(len(rest), np.nan, dtype=np.float32)])
    return Ordering(np.concatenate([chosen, rest]).astype(np.int64), scores, final.method,
                    {**final.settings, "cascade": settings})


def plan_cascade(store_uri: str, query_table: str, pool_table: str, *, budget: int, factor: float, tail: float,
                 selector: str, seed: int) -> Cascade:
    """Rank the pool in the cheap representation (``query_table`` / ``pool_table``, complete feature tables) and
    store the candidates as ``cascade__<hash>`` (row, prefilter rank, candidate, tail): the table the gradient
    shards read their rows from and selection restricts the pool to. Named by its inputs, so a re-run with the
    same features, budget and settings finds it. Returns a handle, never the rows."""
    db = lance.connect(store_uri)
    settings = {"query": query_table, "pool": pool_table, "pool_version": lance.open_table(db, pool_table).version,
                "budget": int(budget), "factor": float(factor), "tail": float(tail), "selector": selector,
                "seed": int(seed)}
    name = artifact_key("cascade", inputs=settings, code=(__name__, *selector_code(selector)))
    if lance.table_exists(db, name):
        t = lance.open_table(db, name).to_lance().to_table(columns=["candidate", "tail"])
        return _handle(name, settings, t)
    prefilter, pool, _ = order_pool(store_uri, query_table, pool_table, selector=selector, seed=seed)
    head, drawn = pick_candidates(prefilter, budget, factor=factor, tail=tail, seed=seed)
    rank = np.empty(len(pool.row_idx), dtype=np.int64)
    rank[prefilter.indices] = np.arange(len(prefilter.indices))
    flag_head = np.zeros(len(pool.row_idx), dtype=bool)
    flag_head[head] = True
    flag_tail = np.zeros(len(pool.row_idx), dtype=bool)
    flag_tail[drawn] = True
    t = pa.table({"row_idx": pool.row_idx, "prefilter_rank": rank, "candidate": flag_head | flag_tail,
                  "tail": flag_tail}, schema=CASCADE_SCHEMA)
    tbl = lance.open_or_create(db, name, CASCADE_SCHEMA, settings)
    with lance.writer_lock(db.uri, name):
        tbl.checkout_latest()
        if not tbl.count_rows():
            lance.commit(lambda: tbl.add(t))
    return _handle(name, settings, t)


def _handle(name: str, settings: dict[str, Any], t: pa.Table) -> Cascade:
    cand = np.asarray(t.column("candidate").to_numpy(zero_copy_only=False))
    tail = np.asarray(t.column("tail").to_numpy(zero_copy_only=False))
    return Cascade(table=name, prefilter=settings["pool"], pool_rows=len(cand), candidates=int(cand.sum()),
                   tail_rows=int(tail.sum()))


def read_cascade(store_uri: str, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(candidate rows ascending, every pool row in prefilter order) of a cascade table."""
    t = lance.open_table(lance.connect(store_uri), name).to_arrow()
    rows = t.column("row_idx").to_numpy()
    cand = np.asarray(t.column("candidate").to_numpy(zero_copy_only=False))
    order = np.argsort(t.column("prefilter_rank").to_numpy(), kind="stable")
    return np.sort(rows[cand]), rows[order]


def candidate_rows(store_uri: str, name: str) -> list[int]:
    """The candidates' pool rows, ascending: what the gradient shards compute."""
    return read_cascade(store_uri, name)[0].tolist()
