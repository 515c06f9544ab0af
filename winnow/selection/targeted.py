"""Targeted selection over stored features: similarity of every pool example to the query set, then a
selector's ordering, saved with enough provenance to reproduce it.

Pool vectors stream from LanceDB in batches and never sit in memory together. Memory ≈ the (M, N) float32
similarity, 4·M·N bytes, + the queries, 4·C·M·d, + one batch, 4·b·d (+ the decoded fp16/int8/bit copy),
+ the selector's own state (round-robin: one candidate list per query; UOT: a few (M, N) float64 arrays).
N = 10⁶, M = 10³: 4 GB for S; round-robin and the score-sorting selectors fit in 24 GB with room to spare.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from winnow.selection.ordering import Ordering
from winnow.registry import SELECTORS, canonical_selector, selector_fn
from winnow.selection.similarity import weighted_similarity
from winnow.store import feature_tables, lance
from winnow.store.feature_tables import FeatureIndex


def order_pool(store_uri: str, query_table: str, pool_table: str, *, selector: str, seed: int,
               weights: list[float] | None = None, rows: np.ndarray | None = None
               ) -> tuple[Ordering, FeatureIndex, np.ndarray]:
    """Ordering of the pool, the pool's features and the (M, N) similarity behind it. ``rows`` limits the pool
    to those rows (a prefilter cascade's candidates; the ordering then indexes them).

    Checkpoint weights default to the ones stored with the pool features (LESS: epoch-average LR). Memory: the
    pool is streamed (``streamed_similarity``), so the peak is the row index (ids, sources, tasks), the (M, N)
    float32 similarity and one batch of vectors — measured by bench/streaming.py at 10⁶ rows, 2 checkpoints,
    d = 256, M = 32: 1.6 GB against 7.5 GB for reading every feature; it does not grow with d."""
    db = lance.connect(store_uri)
    query, pool = feature_tables.read_features(db, query_table), feature_tables.feature_index(db, pool_table, rows)
    if weights is None:
        C = len(pool.checkpoints)
        weights = lance.provenance_of(db, pool_table).get("checkpoint_weights") or [1.0 / C] * C
    w = np.asarray(weights, dtype=np.float32)
    S = streamed_similarity(db, pool_table, pool, query.vectors, w)  # (M, N)
    name = canonical_selector(selector)
    extra: dict[str, Any] = {}
    if SELECTORS[name].needs_pool_similarity:
        fetched: dict[str, np.ndarray] = {}

        def pool_similarity(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
            if "cols" not in fetched:  # the candidates are fetched once, then sliced per block
                fetched["idx"], fetched["cols"] = cols, feature_tables.take_features(db, pool_table, pool.row_idx[cols])
            where = np.searchsorted(fetched["idx"], rows)
            vec = fetched["cols"]
            return weighted_similarity(vec[:, where], vec, w)
        extra["pool_similarity"] = pool_similarity
    return selector_fn(name)(S, seed=seed, query_groups=query.tasks, **extra), pool, S


def streamed_similarity(db: Any, pool_table: str, pool: FeatureIndex, query: np.ndarray, weights: np.ndarray,
                        batch_rows: int = 65536) -> np.ndarray:
    """S (M, N) = Σ_c w_c Q_c P_cᵀ with pool batches streamed from the store in any order (placed by row); rows
    of the table that ``pool`` does not index (outside a cascade's candidates) are skipped."""
    position = np.full(int(pool.row_idx.max()) + 1 if len(pool.row_idx) else 0, -1, dtype=np.int64)
    position[pool.row_idx] = np.arange(len(pool.row_idx))
    ck_slot = {c: i for i, c in enumerate(pool.checkpoints)}
    if query.shape[0] != len(ck_slot):
        raise ValueError(f"query features have {query.shape[0]} checkpoints, pool features {len(ck_slot)}")
    S = np.zeros((query.shape[1], len(pool.ids)), dtype=np.float32)
    for rows, cks, vec in feature_tables.iter_feature_batches(db, pool_table, batch_rows):
        at = np.full(len(rows), -1, dtype=np.int64)
        inside = rows < len(position)
        at[inside] = position[rows[inside]]
        for c in np.unique(cks):
            sel = (cks == c) & (at >= 0)
            slot = ck_slot[int(c)]
            S[:, at[sel]] += weights[slot] * (query[slot] @ vec[sel].T)
    return S


def save_ordering(path: str | Path, ordering: Ordering, pool: FeatureIndex, provenance: dict[str, Any]) -> None:
    """Parquet with one row per ranked example (rank, id, score, source, task) and provenance metadata."""
    idx = ordering.indices
    table = pa.table({"rank": np.arange(len(idx)), "id": [pool.ids[i] for i in idx],
                      "row_idx": pool.row_idx[idx], "score": ordering.scores,
                      "source": [pool.sources[i] for i in idx], "task": [pool.tasks[i] for i in idx]})
    meta = {"method": ordering.method, "settings": ordering.settings, **provenance}
    table = table.replace_schema_metadata({b"winnow": json.dumps(meta, sort_keys=True, default=str).encode()})
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, str(path))
