"""RDS+ features: the base model's last-layer hidden states, position-weighted mean, L2-normalised.

Token t of an example's n real tokens (t = 1..n) weighs t / Σ t' = 2t / (n(n+1)), so later tokens, which
have seen more of the example, count more. Positions are counted from each example's own first real token,
so the result does not depend on padding side or batch composition.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from tqdm.auto import tqdm

from winnow.data.formatting import Encoded, collate

if TYPE_CHECKING:
    from winnow.features.job import FeatureJob


def position_weights(attention_mask: torch.Tensor) -> torch.Tensor:
    """(B, T) weights t/Σt' over each row's real tokens, 0 on padding."""
    pos = attention_mask.cumsum(-1) * attention_mask  # 1..n on real tokens, 0 on pads (either side)
    return pos / pos.sum(-1, keepdim=True).clamp(min=1)


@torch.no_grad()
def hidden_state_features(model: torch.nn.Module, examples: list[Encoded], *, pad_id: int, batch_size: int,
                          progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(N, H) normalised pooled states and their norms, in input order (batched by length)."""
    device = next(model.parameters()).device
    batch_size = batch_size if batch_size > 0 else 16  # forward only: no per-example gradients to hold
    body = model.base_model  # the transformer without the LM head: no vocabulary projection needed
    order = sorted(range(len(examples)), key=lambda i: len(examples[i].input_ids))
    vecs: np.ndarray | None = None
    norms = np.zeros(len(examples), dtype=np.float32)
    for s in tqdm(range(0, len(order), batch_size), desc="hidden states", unit="batch", disable=not progress):
        idx = order[s:s + batch_size]
        batch = {k: v.to(device) for k, v in collate([examples[i] for i in idx], pad_id).items()}
        attn = batch["attention_mask"]
        h = body(input_ids=batch["input_ids"], attention_mask=attn,
                 position_ids=(attn.cumsum(-1) - 1).clamp(min=0)).last_hidden_state.float()  # (B, T, H)
        pooled = (position_weights(attn).unsqueeze(-1) * h).sum(1)  # (B, H)
        n = pooled.norm(dim=1)
        if vecs is None:
            vecs = np.zeros((len(examples), pooled.shape[1]), dtype=np.float32)
        vecs[idx] = (pooled / n.clamp(min=1e-30).unsqueeze(1)).cpu().numpy()
        norms[idx] = n.cpu().numpy()
    assert vecs is not None
    return vecs, norms


class HiddenStates:
    """RDS+: the base model's pooled last layer, one "checkpoint" (0), no warm-up."""

    name = "hidden"
    needs_warmup = False

    def table_prefix(self, job: FeatureJob) -> str:
        return "hidden"

    def dim(self, job: FeatureJob) -> int:
        import json
        from pathlib import Path

        cfg = json.loads((Path(job.model_path) / "config.json").read_text()) if Path(job.model_path).is_dir() else {}
        if "hidden_size" in cfg:
            return int(cfg["hidden_size"])
        from transformers import AutoConfig

        return int(AutoConfig.from_pretrained(job.model_path).hidden_size)

    def checkpoint_indices(self, job: FeatureJob) -> list[int]:
        return [0]

    def provenance(self, job: FeatureJob) -> dict[str, Any]:
        from winnow.features.job import model_provenance

        return model_provenance(job)

    def compute(self, job: FeatureJob, records: list[Any], checkpoint: int, progress: bool
                ) -> tuple[np.ndarray, np.ndarray, list[int]]:
        from winnow.features.job import load_inputs

        tok, encoded, base = load_inputs(job, records)
        vecs, norms = hidden_state_features(base, encoded, pad_id=tok.pad_token_id, batch_size=job.features.batch_size,
                                            progress=progress)
        return vecs, norms, [len(e.input_ids) for e in encoded]
