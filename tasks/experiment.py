"""Experiment tasks: the reference ordering (for distance quantiles and subset distances) and writing a
subset given by ids. Arrays go to files; tasks return paths."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from prefect import task

from tasks import unexpected_only
from winnow.data.loaders import write_jsonl
from winnow.hashing import text_digest
from winnow.selection.targeted import order_pool
from winnow.store import lance


@task(name="reference-order", retries=1, retry_condition_fn=unexpected_only)
def reference_order_task(store_uri: str, query_table: str, pool_table: str, weights: list[float] | None,
                         path: str) -> dict[str, Any]:
    """Round-robin order of the whole pool and the (queries × pool) similarity, saved to ``path`` (.npz)."""
    ordering, pool, S = order_pool(store_uri, query_table, pool_table, selector="round_robin", seed=0, weights=weights)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, order=ordering.indices, similarity=S, ids=np.array(pool.ids))
    return {"path": path, "n": len(pool.ids)}


@task(name="write-subset", retries=1, retry_condition_fn=unexpected_only)
def write_subset_task(store_uri: str, records_table: str, ids: list[str], path: str) -> dict[str, Any]:
    by_id = {r.id: r for r in lance.read_records(lance.connect(store_uri), records_table)}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_jsonl(path, [by_id[i].to_json() for i in ids])
    return {"path": path, "digest": text_digest(ids), "sources": [by_id[i].source for i in ids]}
