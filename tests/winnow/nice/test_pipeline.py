"""NICE's feature table: a query with reward at some checkpoints only keeps its direction, and the checkpoints
where every sample scored the baseline add nothing to its score (pinned by an outcome: the pool copy of its
rewarded sample still ranks first)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.winnow.nice.test_policy_gradient import _policy
from winnow.data.formatting import encode
from winnow.features.per_example import lora_modules
from winnow.features.projection import Projector
from winnow.nice.pipeline import as_sample_records, nice_features
from winnow.settings import FeatureSettings, ModelSettings, NiceSettings
from winnow.store import feature_tables, lance
from winnow.training.checkpoints import Checkpoint


def test_a_direction_at_one_checkpoint_is_kept_and_the_other_adds_nothing(tiny_model_path: str, tmp_path: Path) -> None:
    from winnow.features.gradients import gradient_features

    tok, model, query = _policy(tiny_model_path)
    adapter = tmp_path / "adapter"
    model.save_pretrained(str(adapter))
    cks = [Checkpoint(c, c + 1, adapter, tmp_path / "unused", avg_lr=1.0, weight=0.5) for c in range(2)]
    responses = ["four", "the fox", "yes"]
    samples = [[[{"text": y, "truncated": False} for y in responses]] * 2] * 2  # [checkpoint][query][sample]
    # Query 0 earns a reward at checkpoint 1 only; query 1 never does.
    rewards = [[[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]], [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]]
    other = query.__class__("q1", query.messages, query.source, query.task)
    features = FeatureSettings(proj_dim=1024, seed=1)
    store = str(tmp_path / "store")
    feature_tables.create_feature_table(lance.connect(store), "nice_t", 1024, {"test": True})

    info = nice_features(store, "nice_t", tiny_model_path, cks, [query, other], samples, rewards,
                         features=features, model=ModelSettings(max_length=64), nice=NiceSettings())

    assert info["usable"] == 1
    q0, q1 = info["queries"]
    assert q0["stored"] and q0["reason"] == "no direction at checkpoint 2", q0
    assert not q1["stored"] and "baseline" in q1["reason"], q1
    stored = feature_tables.read_features(lance.connect(store), "nice_t")
    assert stored.ids == [query.id] and stored.vectors.shape == (2, 1, 1024)
    assert np.allclose(stored.vectors[1], 0.0) and abs(np.linalg.norm(stored.vectors[0]) - 1) < 1e-3

    pool = ["count the letters", "four", "the lazy dog", "paris", "yes no maybe"]
    pool_enc = [encode(tok, s, 64) for s in as_sample_records(query, pool)]
    vecs, _ = gradient_features(model, pool_enc, lora_modules(model), Projector("sjlt", 1024, seed=1),
                                pad_id=tok.pad_token_id, batch_size=4, progress=False)
    pool_vecs = np.asarray(vecs, dtype=np.float32)
    from winnow.selection.similarity import weighted_similarity

    scores = weighted_similarity(stored.vectors, np.stack([pool_vecs, pool_vecs]), np.array([0.5, 0.5]))[0]
    assert pool[int(np.argmax(scores))] == "four", scores
