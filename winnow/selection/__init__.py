"""Selectors: pure functions ``(similarity (M, N), *, limit, seed, query_groups) -> Ordering``.

Every ordering is a full ranking of the pool (or its first ``limit`` items), so any budget is a prefix.
``NEEDS_POOL_SIMILARITY`` names the selectors that also take ``pool_similarity(indices) -> (n, n)``.
"""
from winnow.selection.greedy import select_all, select_doubly_greedy, select_subtask_topk
from winnow.selection.knn import select_knn_kde, select_knn_uniform
from winnow.budget import resolve_budget
from winnow.selection.ordering import Ordering
from winnow.selection.random import select_random
from winnow.selection.round_robin import select_round_robin
from winnow.selection.similarity import weighted_similarity
from winnow.selection.transport import select_uot

SELECTORS = {
    "round_robin": select_round_robin,
    "doubly_greedy": select_doubly_greedy,
    "subtask_topk": select_subtask_topk,
    "uot": select_uot,
    "knn_uniform": select_knn_uniform,
    "knn_kde": select_knn_kde,
    "random": select_random,
    "all": select_all,
}
ALIASES = {"rr": "round_robin", "dg": "doubly_greedy", "subtask": "subtask_topk", "knn-uniform": "knn_uniform",
           "knn-kde": "knn_kde"}
NEEDS_POOL_SIMILARITY = {"knn_kde"}

__all__ = ["ALIASES", "NEEDS_POOL_SIMILARITY", "SELECTORS", "Ordering", "resolve_budget", "select_all",
           "select_doubly_greedy", "select_knn_kde", "select_knn_uniform", "select_random",
           "select_round_robin", "select_subtask_topk", "select_uot", "weighted_similarity"]
