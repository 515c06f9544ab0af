"""Domains and mixtures: splits, exact budgets, random or influence-ranked filling."""
from __future__ import annotations

import numpy as np

from winnow.data.records import parse_record
from winnow.mixture.build import build_mixture, influence_scores, split_domains


def _recs(n: int, source: str):
    return [parse_record({"prompt": f"{source} {i}", "response": "r", "source": source, "task": source,
                          "id": f"{source}{i}"}) for i in range(n)]


def test_split_and_build() -> None:
    recs = _recs(10, "a") + _recs(4, "b") + _recs(1, "c")
    doms = split_domains(recs, "source", 0.3, seed=0)
    assert {k: (len(t), len(h)) for k, (t, h) in doms.items()} == {"a": (7, 3), "b": (3, 1), "c": (1, 0)}
    train = {k: t for k, (t, _) in doms.items()}
    mix = build_mixture(train, [0.5, 0.3, 0.2], 8, seed=1)
    assert len(mix) == 8 and len({r.id for r in mix}) == 8
    assert build_mixture(train, [0.5, 0.3, 0.2], 8, seed=1) == mix  # seeded


def test_influence_ranking_prefers_aligned_examples() -> None:
    recs = _recs(3, "a")
    pool = np.array([[[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]]])  # (C=1, 3, 2)
    held = np.array([[[1.0, 0.1]]])
    scores = influence_scores(pool, ["a", "a", "a"], held, ["a"], [1.0])
    mix = build_mixture({"a": recs}, [1.0], 2, seed=0, scores=scores)
    assert [r.id for r in mix] == ["a0", "a2"]
