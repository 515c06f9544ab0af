"""Validation tasks: the planted-recall diagnostic of one arm (ranks of the validation rows planted in the pool),
and the pool's scores that the subset-utility correlation draws its subsets by."""
from __future__ import annotations

import numpy as np
from prefect import task

from tasks import unexpected_only
from winnow.selection.validation import planted_ranks, planted_recall, pool_scores


@task(name="planted-recall", retries=1, retry_condition_fn=unexpected_only, task_run_name="planted-{selector}")
def planted_recall_task(store_uri: str, query_table: str, pool_table: str, planted_table: str, *, selector: str,
                        budget: int, seed: int, weights: tuple[float, ...] | None = None) -> dict[str, float]:
    """Recall within ``budget`` and mean rank percentile of the planted rows (similarities only, no training)."""
    ranks, total = planted_ranks(store_uri, query_table, pool_table, planted_table, selector=selector, seed=seed,
                                 weights=list(weights) if weights else None)
    return planted_recall(ranks, total, budget)


@task(name="pool-scores", retries=1, retry_condition_fn=unexpected_only)
def pool_scores_task(store_uri: str, query_table: str, pool_table: str, weights: tuple[float, ...] | None,
                     out_path: str) -> str:
    """Every pool row's mean similarity to the queries, saved with the rows (``scores``, ``rows``) to a file."""
    scores, rows = pool_scores(store_uri, query_table, pool_table, list(weights) if weights else None)
    np.savez(out_path, scores=scores, rows=rows)
    return out_path
