"""Evaluate a model (base or with an adapter) on a test set: greedy exact match and response loss."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from winnow.data.formatting import collate, encode, per_example_loss, prompt_text
from winnow.data.records import Record
from winnow.evaluation.metrics import exact_match
from winnow.settings import EvalSettings, ModelSettings


@torch.no_grad()
def generate(model: Any, tokenizer: Any, records: list[Record], *, max_new_tokens: int, batch_size: int,
             max_length: int, progress: bool = True) -> list[str]:
    """Greedy responses, batched with left padding (prompts cut from the left to ``max_length``)."""
    device = next(model.parameters()).device
    out: list[str] = []
    for s in tqdm(range(0, len(records), batch_size), desc="generating", unit="batch", disable=not progress):
        prompts = [tokenizer(prompt_text(tokenizer, r), add_special_tokens=False)["input_ids"][-max_length:]
                   for r in records[s:s + batch_size]]
        T = max(map(len, prompts))
        ids = torch.full((len(prompts), T), tokenizer.pad_token_id, dtype=torch.long)
        attn = torch.zeros_like(ids)
        for i, p in enumerate(prompts):
            ids[i, T - len(p):], attn[i, T - len(p):] = torch.tensor(p), 1
        gen = model.generate(input_ids=ids.to(device), attention_mask=attn.to(device), do_sample=False,
                             max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id,
                             eos_token_id=tokenizer.eos_token_id)
        out += tokenizer.batch_decode(gen[:, T:], skip_special_tokens=True)
    return out


@torch.no_grad()
def response_losses(model: Any, tokenizer: Any, records: list[Record], *, batch_size: int, max_length: int) -> np.ndarray:
    device = next(model.parameters()).device
    enc = [encode(tokenizer, r, max_length) for r in records]
    losses = []
    for s in range(0, len(enc), batch_size):
        batch = {k: v.to(device) for k, v in collate(enc[s:s + batch_size], tokenizer.pad_token_id).items()}
        losses.append(per_example_loss(model, batch).float().cpu().numpy())
    return np.concatenate(losses)


def evaluate(model: Any, tokenizer: Any, records: list[Record], settings: EvalSettings, *, max_length: int,
             progress: bool = True) -> dict[str, Any]:
    """Exact match of greedy answers against each record's response, and mean response NLL."""
    model.eval()
    preds = generate(model, tokenizer, records, max_new_tokens=settings.max_new_tokens,
                     batch_size=settings.batch_size, max_length=max_length, progress=progress)
    hits = [exact_match(p, r.response) for p, r in zip(preds, records)]
    losses = response_losses(model, tokenizer, records, batch_size=settings.batch_size, max_length=max_length)
    return {"n": len(records), "exact_match": float(np.mean(hits)), "response_loss": float(losses.mean()),
            "predictions": [{"id": r.id, "prediction": p, "gold": r.response, "hit": h, "loss": float(l)}
                            for r, p, h, l in zip(records, preds, hits, losses)]}


def evaluate_adapter(model_path: str, adapter_dir: str | None, test_spec: str, *, model: ModelSettings,
                     settings: EvalSettings, progress: bool = True) -> dict[str, Any]:
    """Evaluate the base model (``adapter_dir=None``) or a fresh base plus a saved adapter."""
    from winnow.data.loaders import load_records
    from winnow.models.loading import load_model, load_tokenizer, set_threads
    from winnow.models.lora import load_adapter

    set_threads(model.num_threads)
    tok = load_tokenizer(model_path, trust_remote_code=model.trust_remote_code)
    net = load_model(model_path, device=model.device, dtype=model.dtype, trust_remote_code=model.trust_remote_code)
    if adapter_dir is not None:
        net = load_adapter(net, adapter_dir)
    records = load_records(test_spec).records
    return evaluate(net, tok, records, settings, max_length=model.max_length, progress=progress)
