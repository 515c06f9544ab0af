"""Chat-template formatting and response-only loss masks.

The model's own chat template formats every example; the loss counts the last assistant turn only. Labels
are built from the prompt length, never from the pad id, because SmolLM2's pad and eos are the same token.

Truncation policy (``max_length`` tokens): the prompt is cut from the *left* (the instruction nearest the
response survives); if the response alone leaves fewer than ``MIN_PROMPT_TOKENS`` for the prompt, the
response is cut on the right. ``Encoded.truncated`` records either cut so reports can count them.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import torch

from winnow.data.records import Record

MIN_PROMPT_TOKENS = 8
IGNORE = -100


@dataclass(frozen=True, slots=True)
class Encoded:
    input_ids: list[int]
    labels: list[int]  # IGNORE on prompt tokens
    truncated: bool

    @property
    def n_response_tokens(self) -> int:
        return sum(1 for x in self.labels if x != IGNORE)


def template_hash(tokenizer: Any) -> str:
    """Hash of the chat template, stored with features: a new template means new features."""
    return hashlib.sha256((tokenizer.chat_template or "").encode()).hexdigest()[:12]


def prompt_text(tokenizer: Any, record: Record) -> str:
    return tokenizer.apply_chat_template(record.as_chat()[:-1], tokenize=False, add_generation_prompt=True)


def encode(tokenizer: Any, record: Record, max_length: int, *, open_ended: bool = False) -> Encoded:
    """Tokenise one record as prompt + response with a response-only label mask.

    ``open_ended``: the response stops where it stands, without the chat template's end-of-turn — for a sampled
    response cut at the length limit, whose log-likelihood must not include a token it never produced."""
    prompt = prompt_text(tokenizer, record)
    full = prompt + record.response if open_ended else tokenizer.apply_chat_template(record.as_chat(), tokenize=False)
    if not full.startswith(prompt):
        raise ValueError("chat template does not render the prompt as a prefix of the full chat; "
                         f"cannot mask the response of record {record.id!r}")
    p_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    r_ids = tokenizer(full[len(prompt):], add_special_tokens=False)["input_ids"]
    truncated = False
    room = max_length - len(r_ids)
    if room < MIN_PROMPT_TOKENS:
        r_ids = r_ids[: max_length - MIN_PROMPT_TOKENS]
        room, truncated = MIN_PROMPT_TOKENS, True
    if len(p_ids) > room:
        p_ids, truncated = p_ids[len(p_ids) - room:], True
    return Encoded(p_ids + r_ids, [IGNORE] * len(p_ids) + list(r_ids), truncated)


def collate(batch: list[Encoded], pad_id: int, padding_side: str = "left") -> dict[str, torch.Tensor]:
    """Pad a batch; padded positions are masked out of attention and loss.

    Left padding by default: every response then ends at the right edge, so ``per_example_loss`` needs
    the vocabulary projection only for the last few positions (demo data: ~6 response tokens of ~68).
    """
    T = max(len(e.input_ids) for e in batch)
    ids = torch.full((len(batch), T), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), T), IGNORE, dtype=torch.long)
    attn = torch.zeros((len(batch), T), dtype=torch.long)
    for i, e in enumerate(batch):
        n = len(e.input_ids)
        sl = slice(0, n) if padding_side == "right" else slice(T - n, T)
        ids[i, sl] = torch.tensor(e.input_ids)
        labels[i, sl] = torch.tensor(e.labels)
        attn[i, sl] = 1
    return {"input_ids": ids, "labels": labels, "attention_mask": attn}


def per_example_loss(model: Any, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Mean response-token NLL of each example, shape (B,).

    Each example is normalised by its own response-token count, so an example's gradient does not depend
    on what else is in the batch (LESS computes with batch size 1; this makes batching equivalent).
    Logits are computed only from the earliest labelled position on (``logits_to_keep``): the vocabulary
    projection and its softmax are a fifth of the model's FLOPs per position, wasted on prompt tokens.
    """
    attn, labels = batch["attention_mask"], batch["labels"]
    T = labels.shape[1]
    labelled = (labels != IGNORE).any(dim=0).nonzero()
    first = int(labelled[0]) if len(labelled) else T - 1
    keep = min(T, T - first + 1)  # the logit at position t predicts the label at t + 1
    position_ids = (attn.cumsum(-1) - 1).clamp(min=0)  # correct positions under left padding
    logits = model(input_ids=batch["input_ids"], attention_mask=attn, position_ids=position_ids,
                   logits_to_keep=keep).logits  # (B, keep, V)
    logits = logits[:, :-1].float()  # (B, keep-1, V): predictions for positions T-keep+1 .. T-1
    targets = labels[:, T - keep + 1:]  # (B, keep-1)
    mask = targets != IGNORE
    nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), targets.clamp(min=0), reduction="none")
    counts = mask.sum(-1).clamp(min=1)
    return (nll * mask).sum(-1) / counts
