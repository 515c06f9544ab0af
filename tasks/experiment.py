"""Experiment tasks: the reference ordering (for distance quantiles and subset distances) and writing a
subset given by pool rows. Arrays go to files; tasks return paths."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from prefect import task

from tasks import unexpected_only
from tasks.selection import guard_for
from winnow.selection.subset import write_subset
from winnow.settings import DecontaminationSettings
from winnow.selection.targeted import order_pool


@task(name="reference-order", retries=1, retry_condition_fn=unexpected_only)
def reference_order_task(store_uri: str, query_table: str, pool_table: str, weights: list[float] | None,
                         path: str) -> dict[str, Any]:
    """Round-robin order of the whole pool, the (queries × pool) similarity and the pool rows of its columns,
    saved to ``path`` (.npz)."""
    ordering, pool, S = order_pool(store_uri, query_table, pool_table, selector="round_robin", seed=0, weights=weights)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, order=ordering.indices, similarity=S, rows=pool.row_idx, ids=np.array(pool.ids))
    return {"path": path, "n": len(pool.ids)}


@task(name="write-subset", retries=1, retry_condition_fn=unexpected_only)
def write_subset_task(store_uri: str, records_table: str, rows: list[int], path: str, test_spec: str | None = None,
                      decontaminate: DecontaminationSettings | None = None) -> dict[str, Any]:
    """The rows as a subset file; given the test set, copies of its items are left out (listed beside it)."""
    guard = guard_for(test_spec, decontaminate or DecontaminationSettings()) if test_spec else None
    return write_subset(store_uri, records_table, rows, path, guard)
