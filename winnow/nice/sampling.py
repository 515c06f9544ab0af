"""Sample M responses per query prompt from the warmed-up model (seeded per prompt, so a re-run or another
worker draws the same samples)."""
from __future__ import annotations

from typing import Any

import torch
from tqdm.auto import tqdm

from winnow.data.formatting import prompt_text
from winnow.data.records import Record
from winnow.features.projection import counter_seed
from winnow.settings import NiceSettings


@torch.no_grad()
def sample_responses(model: Any, tokenizer: Any, records: list[Record], nice: NiceSettings, *, max_length: int,
                     progress: bool = True) -> list[list[dict[str, Any]]]:
    """Per query, M samples ``{"text", "truncated"}``: truncated = cut at ``nice.max_new_tokens`` before the
    model ended its turn (such a sample is scored and differentiated as the open-ended text it is)."""
    device = next(model.parameters()).device
    out: list[list[dict[str, Any]]] = []
    for rec in tqdm(records, desc="sampling", unit="query", disable=not progress):
        ids = tokenizer(prompt_text(tokenizer, rec), add_special_tokens=False, return_tensors="pt")["input_ids"]
        ids = ids[:, -max_length:].to(device)
        torch.manual_seed(counter_seed(nice.seed, "nice-sample", rec.id))
        gen = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=True,
                             temperature=nice.temperature, top_p=nice.top_p, top_k=nice.top_k,
                             max_new_tokens=nice.max_new_tokens, num_return_sequences=nice.samples,
                             pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
        new = gen[:, ids.shape[1]:]  # (M, ≤ max_new_tokens)
        ended = (new == tokenizer.eos_token_id).any(dim=1).tolist()
        out.append([{"text": text, "truncated": not done}
                    for text, done in zip(tokenizer.batch_decode(new, skip_special_tokens=True), ended)])
    return out
