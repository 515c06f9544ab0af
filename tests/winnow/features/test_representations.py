"""Hidden-state pooling is independent of padding side and batch size; the embedder loads offline."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from winnow.data.formatting import collate, encode
from winnow.data.records import parse_record
from winnow.features.hidden_states import hidden_state_features, position_weights
from winnow.models.loading import load_model, load_tokenizer


def test_position_weights_under_padding() -> None:
    right = torch.tensor([[1, 1, 1, 0, 0]])
    left = torch.tensor([[0, 0, 1, 1, 1]])
    expected = torch.tensor([1, 2, 3]) / 6
    torch.testing.assert_close(position_weights(right)[0, :3], expected.float())
    torch.testing.assert_close(position_weights(left)[0, 2:], expected.float())
    assert position_weights(right)[0, 3:].sum() == 0 and position_weights(left)[0, :2].sum() == 0


def test_hidden_states_do_not_depend_on_batching(tiny_model_path: str) -> None:
    tok, model = load_tokenizer(tiny_model_path), load_model(tiny_model_path)
    recs = [parse_record({"prompt": "the quick brown fox " * k, "response": "yes", "source": "s", "task": "t"})
            for k in (1, 3, 6, 2)]
    enc = [encode(tok, r, 128) for r in recs]
    one, _ = hidden_state_features(model, enc, pad_id=tok.pad_token_id, batch_size=1, progress=False)
    many, norms = hidden_state_features(model, enc, pad_id=tok.pad_token_id, batch_size=4, progress=False)
    np.testing.assert_allclose(one, many, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(many, axis=1), 1.0, atol=1e-5)
    # A manual right-padded pass agrees with the (left-padded) engine.
    batch = collate(enc, tok.pad_token_id, padding_side="right")
    with torch.no_grad():
        h = model.base_model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
    pooled = (position_weights(batch["attention_mask"]).unsqueeze(-1) * h).sum(1)
    np.testing.assert_allclose(many, (pooled / pooled.norm(dim=1, keepdim=True)).numpy(), atol=1e-5)


def test_default_embedder_loads_offline() -> None:
    pytest.importorskip("sentence_transformers")
    from winnow.features.embeddings import embedding_features

    recs = [parse_record({"prompt": p, "response": r, "source": "s", "task": "t"})
            for p, r in [("Is this sarcastic? great, more rain", "1"), ("Is this sarcastic? it is raining", "0"),
                         ("Convert 0101 to decimal", "5")]]
    vecs, norms = embedding_features("default", recs, batch_size=2, device="cpu", progress=False)
    assert vecs.shape == (3, 384) and np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    sims = vecs @ vecs.T
    assert sims[0, 1] > sims[0, 2]  # two sarcasm questions are closer than sarcasm vs arithmetic
