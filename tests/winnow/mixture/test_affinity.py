"""Affinity definitions on hand-made inputs and on proxies of the tiny model."""
from __future__ import annotations

import numpy as np
import pytest

from winnow.mixture.affinity import js_affinity, llr_affinity, loglik_row, next_token_distributions


def test_llr_affinity_definition() -> None:
    L = np.array([[-1.0, -3.0], [-2.5, -1.5]])  # proxy a (row) on domain b (column)
    S = llr_affinity(L)
    assert S[0, 0] == S[1, 1] == 0
    assert S[0, 1] == S[1, 0] == pytest.approx(0.5 * ((-3.0 + 1.5) + (-2.5 + 1.0)))


def test_js_affinity_bounds() -> None:
    P = np.array([[0.5, 0.5], [0.9, 0.1]])
    same, opposite = np.array([[0.5, 0.5], [0.9, 0.1]]), np.array([[0.5, 0.5], [0.1, 0.9]])
    S = js_affinity([P, same, opposite])
    assert S[0, 1] == pytest.approx(1.0) and 0 < S[0, 2] < 1 and np.allclose(S, S.T)
    disjoint = js_affinity([np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]])])
    assert disjoint[0, 1] == pytest.approx(0.0, abs=1e-6)


def test_proxy_rows_and_distributions(tiny_model_path: str, data_dir) -> None:
    from winnow.data.loaders import load_records
    from winnow.models.loading import load_model, load_tokenizer

    recs = load_records(data_dir / "good" / "pool.jsonl").records
    tok, model = load_tokenizer(tiny_model_path), load_model(tiny_model_path)
    row = loglik_row(model, tok, [recs[:3], recs[3:6]], max_length=64, batch_size=2)
    assert row.shape == (2,) and (row < 0).all()
    dist = next_token_distributions(model, tok, recs[:2], max_length=64)
    assert dist.shape[1] == model.config.vocab_size and np.allclose(dist.sum(1), 1.0, atol=1e-4)
