"""Score-sorting selectors: doubly greedy (max over queries) and LESS's subtask top-k."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from winnow.selection.ordering import Ordering


def order_by_score(score: np.ndarray, method: str, settings: dict, limit: int | None) -> Ordering:
    """Sort by score descending, ties by lower pool index (deterministic)."""
    idx = np.lexsort((np.arange(len(score)), -score))[:limit]
    return Ordering(idx.astype(np.int64), score[idx].astype(np.float32), method, settings)


def select_doubly_greedy(similarity: np.ndarray, *, limit: int | None = None, seed: int = 0,
                         query_groups: Sequence[str] | None = None) -> Ordering:
    """score_j = max_i S_ij: each example is as good as the query it matches best."""
    return order_by_score(similarity.max(axis=0), "doubly_greedy", {}, limit)


def select_subtask_topk(similarity: np.ndarray, *, limit: int | None = None, seed: int = 0,
                        query_groups: Sequence[str] | None = None) -> Ordering:
    """LESS: mean over the queries of each subtask, then max over subtasks (one subtask if unlabelled)."""
    groups = np.asarray(query_groups if query_groups is not None else [""] * similarity.shape[0])
    per_task = np.stack([similarity[groups == g].mean(axis=0) for g in sorted(set(groups.tolist()))])
    return order_by_score(per_task.max(axis=0), "subtask_topk", {"subtasks": len(per_task)}, limit)


def select_all(similarity: np.ndarray, *, limit: int | None = None, seed: int = 0,
               query_groups: Sequence[str] | None = None) -> Ordering:
    """The whole pool in stored order: the full-data baseline (its budget is the pool)."""
    N = similarity.shape[1]
    return Ordering(np.arange(N, dtype=np.int64)[:limit], np.zeros(min(N, limit or N), np.float32), "all", {})
