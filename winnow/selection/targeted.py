"""Targeted selection over stored features: similarity of every pool example to the query set, then a
selector's ordering, saved with enough provenance to reproduce it.

Memory: the pool's vectors as float32, C·N·d·4 bytes, plus the (M, N) similarity, M·N·4 bytes
(N = 10⁵, M = 10³, d = 8192, C = 1: 3.3 GB + 0.4 GB).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from winnow.selection import ALIASES, NEEDS_POOL_SIMILARITY, SELECTORS, Ordering, weighted_similarity
from winnow.store import lance
from winnow.store.lance import FeatureMatrix


def canonical_selector(name: str) -> str:
    name = ALIASES.get(name, name)
    if name not in SELECTORS:
        raise KeyError(f"unknown selector {name!r}; choose from {sorted(SELECTORS)} or {sorted(ALIASES)}")
    return name


def order_pool(store_uri: str, query_table: str, pool_table: str, *, selector: str, seed: int,
               weights: list[float] | None = None) -> tuple[Ordering, FeatureMatrix, np.ndarray]:
    """Ordering of the pool, the pool's features and the (M, N) similarity behind it.

    Checkpoint weights default to the ones stored with the pool features (LESS: epoch-average LR)."""
    db = lance.connect(store_uri)
    query, pool = lance.read_features(db, query_table), lance.read_features(db, pool_table)
    if weights is None:
        C = pool.vectors.shape[0]
        weights = lance.provenance_of(db, pool_table).get("checkpoint_weights") or [1.0 / C] * C
    w = np.asarray(weights, dtype=np.float32)
    S = weighted_similarity(query.vectors, pool.vectors, w)  # (M, N)
    name = canonical_selector(selector)
    extra: dict[str, Any] = {}
    if name in NEEDS_POOL_SIMILARITY:
        extra["pool_similarity"] = lambda idx: weighted_similarity(pool.vectors[:, idx], pool.vectors[:, idx], w)
    return SELECTORS[name](S, seed=seed, query_groups=query.tasks, **extra), pool, S


def save_ordering(path: str | Path, ordering: Ordering, pool: FeatureMatrix, provenance: dict[str, Any]) -> None:
    """Parquet with one row per ranked example (rank, id, score, source, task) and provenance metadata."""
    idx = ordering.indices
    table = pa.table({"rank": np.arange(len(idx)), "id": [pool.ids[i] for i in idx],
                      "row_idx": pool.row_idx[idx], "score": ordering.scores,
                      "source": [pool.sources[i] for i in idx], "task": [pool.tasks[i] for i in idx]})
    meta = {"method": ordering.method, "settings": ordering.settings, **provenance}
    table = table.replace_schema_metadata({b"winnow": json.dumps(meta, sort_keys=True, default=str).encode()})
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, str(path))
