"""The NICE estimator equals the policy gradient computed directly by autograd on a tiny policy."""
from __future__ import annotations

import numpy as np
import torch

from winnow.data.formatting import IGNORE, collate, encode
from winnow.data.records import parse_record
from winnow.features.per_example import lora_modules
from winnow.features.projection import Projector
from winnow.models.loading import load_model, load_tokenizer
from winnow.models.lora import attach_lora
from winnow.nice.pipeline import as_sample_records
from winnow.nice.policy_gradient import policy_gradient_directions
from winnow.settings import LoraSettings


def test_matches_autograd_policy_gradient(tiny_model_path: str) -> None:
    tok = load_tokenizer(tiny_model_path)
    model = attach_lora(load_model(tiny_model_path), LoraSettings(r=4, alpha=8, dropout=0.0), seed=0).eval()
    torch.manual_seed(0)
    for n, p in model.named_parameters():
        if "lora_B" in n:
            torch.nn.init.normal_(p, std=0.2)
    query = parse_record({"prompt": "what is two plus two", "response": "four", "source": "s", "task": "t"})
    responses, rewards = ["four", "four four", "yes", "the fox"], [1.0, 0.5, 0.0, 2.0]
    enc = [encode(tok, s, 64) for s in as_sample_records(query, responses)]
    mods = lora_modules(model)
    proj = Projector("sjlt", 512, seed=1)
    for baseline in ("none", "mean"):
        got = policy_gradient_directions(model, mods, proj, [enc], [rewards], pad_id=tok.pad_token_id,
                                         baseline=baseline, batch_size=3)[0]
        # Direct: J = Σ_m (r_m − b) · Σ_t log π(y_mt | ...) ; ∇J from autograd on the LoRA matrices.
        b = np.mean(rewards) if baseline == "mean" else 0.0
        model.zero_grad(set_to_none=True)
        batch = collate(enc, tok.pad_token_id)
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                       position_ids=(batch["attention_mask"].cumsum(-1) - 1).clamp(min=0)).logits[:, :-1]
        targets = batch["labels"][:, 1:]
        logp = torch.log_softmax(logits.float(), -1).gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)
        seq_logp = (logp * (targets != IGNORE)).sum(-1)  # (M,)
        (torch.tensor([r - b for r in rewards]) * seq_logp).sum().backward()
        direct = sum(proj.project(n, m.weight.grad.reshape(1, -1))[0] for n, m in mods.items())
        direct = (direct / direct.norm()).numpy()
        np.testing.assert_allclose(got.vector, direct, atol=2e-5)
        assert got.mean_reward == np.mean(rewards) and got.nonzero_share == 0.75


def test_all_zero_rewards_are_reported_not_stored(tiny_model_path: str) -> None:
    tok = load_tokenizer(tiny_model_path)
    model = attach_lora(load_model(tiny_model_path), LoraSettings(r=4, alpha=8, dropout=0.0), seed=0).eval()
    query = parse_record({"prompt": "p", "response": "r", "source": "s", "task": "t"})
    enc = [encode(tok, s, 64) for s in as_sample_records(query, ["a", "b"])]
    out = policy_gradient_directions(model, lora_modules(model), Projector("sjlt", 64, 0), [enc, enc],
                                     [[0.0, 0.0], [1.0, float("nan")]], pad_id=tok.pad_token_id)
    assert out[0].vector is None and "baseline" in out[0].reason
    assert out[1].vector is None and "non-finite" in out[1].reason
