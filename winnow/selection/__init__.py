"""Selectors: pure functions ``(similarity (M, N), *, limit, seed) -> Ordering``."""
from winnow.selection.ordering import Ordering, resolve_budget
from winnow.selection.random import select_random
from winnow.selection.round_robin import select_round_robin
from winnow.selection.similarity import weighted_similarity

SELECTORS = {"round_robin": select_round_robin, "random": select_random}

__all__ = ["SELECTORS", "Ordering", "resolve_budget", "select_random", "select_round_robin", "weighted_similarity"]
