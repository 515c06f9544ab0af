"""Domains and mixtures: split a pool by domain, and fill a budget by proportions.

Inside a domain, examples are taken at random (seeded) or by influence: the cosine of each example's
gradient feature with the mean gradient of that domain's held-out examples (checkpoint-weighted, from the
feature store; winnow.mixture.influence), by DUET's filter-then-sample rule or greedily. Budgets are exact
(``winnow.mixture.simplex.allocate``)."""
from __future__ import annotations

import random
from collections.abc import Sequence

import numpy as np

from winnow.data.records import Record
from winnow.mixture.simplex import allocate


def split_domains(records: list[Record], key: str, holdout: float, seed: int) -> dict[str, tuple[list[Record], list[Record]]]:
    """{domain: (train, held-out)}; every domain keeps at least one example on each side when it has two."""
    by: dict[str, list[Record]] = {}
    for r in records:
        by.setdefault(getattr(r, key), []).append(r)
    out = {}
    for name in sorted(by):
        recs = sorted(by[name], key=lambda r: r.id)
        random.Random(f"{seed}:{name}").shuffle(recs)
        k = min(len(recs) - 1, max(1, round(holdout * len(recs)))) if len(recs) > 1 else 0
        out[name] = (recs[k:], recs[:k])
    return out


def build_mixture(domains: dict[str, list[Record]], proportions: Sequence[float], budget: int, *, seed: int,
                  scores: dict[str, np.ndarray] | None = None, greedy: bool = False,
                  drop_share: float = 0.2) -> list[Record]:
    """Take round(p_d · budget) examples from each domain (exact total).

    Without ``scores``, at random (seeded). With them, DUET's rule: leave out the ``drop_share`` of the domain
    with the lowest influence and sample the rest at random (seeded), so the subset keeps the domain's variety
    instead of its most similar few; a share larger than what is left takes the left-out examples next, best
    first. ``greedy`` takes the highest influence first instead."""
    names = list(domains)
    counts = allocate(budget, np.asarray(proportions), np.array([len(domains[n]) for n in names]))
    out: list[Record] = []
    for name, k in zip(names, counts):
        recs = domains[name]
        rng = random.Random(f"{seed}:{name}")
        if scores is None:
            order = rng.sample(range(len(recs)), len(recs))
        else:
            ranked = np.lexsort((np.arange(len(recs)), -scores[name])).tolist()  # best first, ties by position
            if greedy:
                order = ranked
            else:
                kept = len(recs) - int(drop_share * len(recs))
                order = rng.sample(ranked[:kept], kept) + ranked[kept:]
        out += [recs[i] for i in order[:k]]
    return out
