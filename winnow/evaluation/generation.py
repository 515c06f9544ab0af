"""Responses from a model: greedy and batched for evaluation, sampled and seeded per prompt for NICE and
pass@k (so a re-run or another worker draws the same samples)."""
from __future__ import annotations

from typing import Any

import torch
from tqdm.auto import tqdm

from winnow.data.formatting import prompt_text
from winnow.data.records import Record
from winnow.hashing import counter_seed


@torch.no_grad()
def generate(model: Any, tokenizer: Any, records: list[Record], *, max_new_tokens: int, batch_size: int,
             max_length: int, progress: bool = True) -> list[str]:
    """Greedy responses in input order, batched with left padding (prompts cut from the left to ``max_length``).
    Prompts are batched by length, so a batch pads its prompts little; the answers are put back in order."""
    device = next(model.parameters()).device
    encoded = [tokenizer(prompt_text(tokenizer, r), add_special_tokens=False)["input_ids"][-max_length:]
               for r in records]
    order = sorted(range(len(records)), key=lambda i: len(encoded[i]))
    out: list[str] = [""] * len(records)
    for s in tqdm(range(0, len(order), batch_size), desc="generating", unit="batch", disable=not progress):
        idx = order[s:s + batch_size]
        prompts = [encoded[i] for i in idx]
        T = max(map(len, prompts))
        ids = torch.full((len(prompts), T), tokenizer.pad_token_id, dtype=torch.long)
        attn = torch.zeros_like(ids)
        for i, p in enumerate(prompts):
            ids[i, T - len(p):], attn[i, T - len(p):] = torch.tensor(p), 1
        gen = model.generate(input_ids=ids.to(device), attention_mask=attn.to(device), do_sample=False,
                             max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id,
                             eos_token_id=tokenizer.eos_token_id)
        for i, text in zip(idx, tokenizer.batch_decode(gen[:, T:], skip_special_tokens=True)):
            out[i] = text
    return out


@torch.no_grad()
def sample_responses(model: Any, tokenizer: Any, records: list[Record], *, samples: int, temperature: float,
                     top_p: float, top_k: int, max_new_tokens: int, seed: int, max_length: int,
                     stream: str = "nice-sample", progress: bool = True) -> list[list[dict[str, Any]]]:
    """Per prompt, ``samples`` responses ``{"text", "truncated"}``: truncated = cut at ``max_new_tokens`` before
    the model ended its turn (such a sample is scored and differentiated as the open-ended text it is).
    ``stream`` names the seed stream, so NICE's samples and an evaluation's never coincide by accident."""
    device = next(model.parameters()).device
    out: list[list[dict[str, Any]]] = []
    for rec in tqdm(records, desc="sampling", unit="prompt", disable=not progress):
        ids = tokenizer(prompt_text(tokenizer, rec), add_special_tokens=False, return_tensors="pt")["input_ids"]
        ids = ids[:, -max_length:].to(device)
        torch.manual_seed(counter_seed(seed, stream, rec.id))
        gen = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=True,
                             temperature=temperature, top_p=top_p, top_k=top_k,
                             max_new_tokens=max_new_tokens, num_return_sequences=samples,
                             pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
        new = gen[:, ids.shape[1]:]  # (M, ≤ max_new_tokens)
        ended = (new == tokenizer.eos_token_id).any(dim=1).tolist()
        out.append([{"text": text, "truncated": not done}
                    for text, done in zip(tokenizer.batch_decode(new, skip_special_tokens=True), ended)])
    return out
