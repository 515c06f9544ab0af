"""NICE's query direction: equal to −∇J by autograd, and pointing the way pool loss-gradient features do, pinned
by outcomes (a pool copy of a rewarded sample ranks first, of a penalised sample last)."""
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


def _policy(tiny_model_path: str):
    """The tiny model with a LoRA whose B is non-zero (so A has gradients), and one query."""
    tok = load_tokenizer(tiny_model_path)
    model = attach_lora(load_model(tiny_model_path), LoraSettings(r=4, alpha=8, dropout=0.0), seed=0).eval()
    torch.manual_seed(0)
    for n, p in model.named_parameters():
        if "lora_B" in n:
            torch.nn.init.normal_(p, std=0.2)
    return tok, model, parse_record({"prompt": "what is two plus two", "response": "four", "source": "s", "task": "t"})


def test_matches_autograd_policy_gradient(tiny_model_path: str) -> None:
    tok, model, query = _policy(tiny_model_path)
    responses, rewards = ["four", "four four", "yes", "the fox"], [1.0, 0.5, 0.0, 2.0]
    enc = [encode(tok, s, 64) for s in as_sample_records(query, responses)]
    mods = lora_modules(model)
    proj = Projector("sjlt", 512, seed=1)
    for baseline in ("none", "mean"):
        got = policy_gradient_directions(model, mods, proj, [enc], [rewards], pad_id=tok.pad_token_id,
                                         baseline=baseline, batch_size=3)[0]
        # Direct: J = Σ_m (r_m − b) · Σ_t log π(y_mt | ...); the query side is −∇J (autograd on the LoRA matrices).
        b = np.mean(rewards) if baseline == "mean" else 0.0
        model.zero_grad(set_to_none=True)
        batch = collate(enc, tok.pad_token_id)
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                       position_ids=(batch["attention_mask"].cumsum(-1) - 1).clamp(min=0)).logits[:, :-1]
        targets = batch["labels"][:, 1:]
        logp = torch.log_softmax(logits.float(), -1).gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)
        seq_logp = (logp * (targets != IGNORE)).sum(-1)  # (M,)
        (-(torch.tensor([r - b for r in rewards]) * seq_logp).sum()).backward()
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


def _ranking(tiny_model_path: str, responses: list[str], rewards: list[float], pool: list[str], baseline: str):
    """The pool (prompt + each response in ``pool``) ranked by cosine of its loss-gradient feature with the
    query's NICE direction — exactly how selection scores pool examples."""
    from winnow.features.gradients import gradient_features

    tok, model, query = _policy(tiny_model_path)
    mods, proj = lora_modules(model), Projector("sjlt", 1024, seed=1)
    enc = [encode(tok, s, 64) for s in as_sample_records(query, responses)]
    direction = policy_gradient_directions(model, mods, proj, [enc], [rewards], pad_id=tok.pad_token_id,
                                           baseline=baseline)[0].vector
    pool_enc = [encode(tok, s, 64) for s in as_sample_records(query, pool)]
    vecs, _ = gradient_features(model, pool_enc, mods, proj, pad_id=tok.pad_token_id, batch_size=4, progress=False)
    scores = np.asarray(vecs, dtype=np.float32) @ direction
    return [pool[i] for i in np.argsort(-scores)], scores


def test_a_pool_copy_of_a_rewarded_sample_ranks_first(tiny_model_path: str) -> None:
    pool = ["count the letters", "four", "the lazy dog", "paris", "yes no maybe"]
    order, scores = _ranking(tiny_model_path, ["four", "the fox", "yes"], [1.0, 0.0, 0.0], pool, "none")
    assert order[0] == "four" and scores.max() > 0.5, (order, scores)


def test_a_pool_copy_of_a_penalised_sample_ranks_last(tiny_model_path: str) -> None:
    # Mean baseline: "four" is rewarded (+2/3), "the fox" and "yes" are penalised (−1/3 each).
    pool = ["count the letters", "four", "the lazy dog", "paris", "the fox"]
    order, scores = _ranking(tiny_model_path, ["four", "the fox", "yes"], [1.0, 0.0, 0.0], pool, "mean")
    assert order[0] == "four" and order[-1] == "the fox", (order, scores)
    assert scores[pool.index("the fox")] < 0


def test_samples_cut_at_the_limit_are_marked_truncated(tiny_model_path: str) -> None:
    from winnow.evaluation.generation import sample_responses

    tok, model, query = _policy(tiny_model_path)
    short = sample_responses(model, tok, [query], samples=6, temperature=1.2, top_p=0.95, top_k=50, max_new_tokens=1,
                             seed=0, max_length=64, progress=False)[0]
    assert len(short) == 6 and all(set(s) == {"text", "truncated"} for s in short)
    # One new token: a sample is complete only if that token ended the turn (then its text is empty).
    assert all(s["truncated"] == (s["text"] != "") for s in short)
