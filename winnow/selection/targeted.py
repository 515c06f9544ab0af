"""Targeted selection over stored features: similarity of every pool example to the query set, then a
selector's ordering, saved with enough provenance to reproduce it."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from winnow.selection import SELECTORS, Ordering, weighted_similarity
from winnow.store import lance
from winnow.store.lance import FeatureMatrix


def order_pool(store_uri: str, query_table: str, pool_table: str, weights: list[float], *, selector: str,
               seed: int) -> tuple[Ordering, FeatureMatrix]:
    db = lance.connect(store_uri)
    query, pool = lance.read_features(db, query_table), lance.read_features(db, pool_table)
    S = weighted_similarity(query.vectors, pool.vectors, np.asarray(weights, dtype=np.float32))  # (M, N)
    return SELECTORS[selector](S, seed=seed), pool


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
