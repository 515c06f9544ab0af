"""Domains and mixtures: splits, exact budgets, random or influence-ranked filling."""
from __future__ import annotations

import numpy as np

from winnow.data.records import parse_record
from winnow.mixture.build import build_mixture, split_domains


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


def _features(db, name: str, recs, vectors: np.ndarray, start: int = 0) -> None:
    from winnow.store import feature_tables

    feature_tables.create_feature_table(db, name, vectors.shape[-1], {"test": name})
    for c, vec in enumerate(vectors):
        feature_tables.write_features(db, name, records=recs, row_idx=list(range(start, start + len(recs))), checkpoint=c,
                             vectors=vec.astype(np.float32), norms=np.ones(len(recs)), n_tokens=[1] * len(recs))


def test_influence_ranking_prefers_aligned_examples(tmp_path) -> None:
    """Streamed from the store: an example aligned with its domain's held-out gradient ranks first, and the
    order of the stored batches does not matter."""
    from winnow.mixture.influence import influence_by_id
    from winnow.store import lance

    db = lance.connect(str(tmp_path / "store"))
    recs = _recs(3, "a")
    _features(db, "pool", recs[2:], np.array([[[0.6, 0.8]]]), start=2)  # the last row first: any order works
    _features(db, "pool", recs[:2], np.array([[[1.0, 0.0], [0.0, 1.0]]]))
    _features(db, "held", _recs(1, "a"), np.array([[[1.0, 0.1]]]) / np.hypot(1.0, 0.1))
    by_id = influence_by_id(db, "pool", "held", [1.0], batch_rows=1)
    assert by_id["a0"] > by_id["a2"] > by_id["a1"]
    scores = {"a": np.array([by_id[r.id] for r in recs])}
    mix = build_mixture({"a": recs}, [1.0], 2, seed=0, scores=scores, greedy=True)
    assert [r.id for r in mix] == ["a0", "a2"]


def test_duet_drops_the_lowest_influence_then_samples() -> None:
    """DUET's local step: the bottom 20 % by influence is left out, the rest sampled (seeded), so the subset is
    not just the top of the ranking; a share larger than what is kept takes the best of the left-out next."""
    recs = _recs(10, "a")
    scores = {"a": np.arange(10.0)}  # a0 lowest ... a9 highest
    picks = [{r.id for r in build_mixture({"a": recs}, [1.0], 4, seed=s, scores=scores)} for s in range(20)]
    assert all(not ({"a0", "a1"} & p) for p in picks)  # the two lowest never
    assert len({frozenset(p) for p in picks}) > 5 and {"a2", "a3"} & set().union(*picks)  # sampled, not top-4
    assert picks[0] == {r.id for r in build_mixture({"a": recs}, [1.0], 4, seed=0, scores=scores)}  # seeded
    nine = {r.id for r in build_mixture({"a": recs}, [1.0], 9, seed=0, scores=scores)}
    assert nine == {f"a{i}" for i in range(1, 10)}  # the kept 8, then the better of the two left out
    top = [r.id for r in build_mixture({"a": recs}, [1.0], 4, seed=0, scores=scores, greedy=True)]
    assert top == ["a9", "a8", "a7", "a6"]
