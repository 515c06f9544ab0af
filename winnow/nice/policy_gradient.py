"""NICE query features: the policy gradient of a metric, projected like the pool's gradient features.

For query x with sampled responses y_1..y_M and rewards r_m (minus an optional baseline b):
    feature(x) = Σ_m (r_m − b) · ∇_θ NLL(y_m | x) = −∇_θ J,   NLL summed over the response's tokens,
the gradient of the reward-weighted loss (the reference backpropagates ``loss × reward``).

**Orientation.** Pool features are *loss* gradients, and training on an example moves the parameters against
its feature. An example whose training raises the expected reward J therefore has a loss gradient pointing
along −∇J, so the query side must be −∇J for "higher cosine = more helpful" to hold, as it does for LESS's
loss-gradient queries. +∇J = Σ r·∇log π would rank the most helpful examples *last* (issue #15: a pool copy of
a rewarded sample had cosine −0.99999988 with it). ``tests/winnow/nice/test_policy_gradient.py`` pins this by
an outcome: a pool copy of a rewarded sample ranks first, of a penalised one last.

The engine gives ∇ of each sample's *mean* token NLL, so ∇ NLL(y_m | x) = n_m · ∇ mean-NLL_m. Projection
is linear, so samples are projected first and combined after: no full-size gradient is summed.
A query whose rewards are all equal to the baseline (e.g. all zero without a baseline) has no direction:
it is reported, not stored.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from winnow.data.formatting import Encoded, collate
from winnow.features.per_example import per_example_grads
from winnow.features.projection import Projector


@dataclass(frozen=True)
class QueryDirection:
    vector: np.ndarray | None  # (d,) L2-normalised, None when the query has no usable direction
    norm: float
    mean_reward: float
    nonzero_share: float
    reason: str = ""  # why vector is None


def policy_gradient_directions(model: torch.nn.Module, modules: dict[str, torch.nn.Linear], projector: Projector,
                               samples: list[list[Encoded]], rewards: list[list[float]], *, pad_id: int,
                               baseline: str = "none", batch_size: int = 8) -> list[QueryDirection]:
    """One direction per query from its samples (each sample: prompt + sampled response, response-masked)."""
    device = next(model.parameters()).device
    out = []
    for enc, r in zip(samples, rewards):
        r_arr = np.asarray(r, dtype=np.float64)
        stats = dict(mean_reward=float(r_arr.mean()) if len(r_arr) else 0.0,
                     nonzero_share=float((r_arr != 0).mean()) if len(r_arr) else 0.0)
        if not len(r_arr) or not np.isfinite(r_arr).all():
            out.append(QueryDirection(None, 0.0, reason="no samples" if not len(r_arr) else "non-finite reward", **stats))
            continue
        coef = r_arr - (r_arr.mean() if baseline == "mean" else 0.0)
        keep = [i for i in range(len(enc)) if coef[i] != 0 and enc[i].n_response_tokens > 0]
        if not keep:
            out.append(QueryDirection(None, 0.0, reason="all rewards equal the baseline", **stats))
            continue
        total = torch.zeros(projector.dim, device=device)
        for s in range(0, len(keep), batch_size):
            idx = keep[s:s + batch_size]
            batch = {k: v.to(device) for k, v in collate([enc[i] for i in idx], pad_id).items()}
            grads, _ = per_example_grads(model, batch, modules)
            # ∇ NLL (summed over tokens) = n · ∇(mean NLL); weight each sample by its (reward − baseline)
            w = torch.tensor([coef[i] * enc[i].n_response_tokens for i in idx], device=device, dtype=torch.float32)
            for n, g in grads.items():  # g: (B, out, in)
                total += (w[:, None] * projector.project(n, g.reshape(len(idx), -1))).sum(0)
        norm = float(total.norm())
        if not np.isfinite(norm) or norm == 0.0:
            out.append(QueryDirection(None, norm, reason="zero or non-finite gradient", **stats))
            continue
        out.append(QueryDirection((total / norm).cpu().numpy(), norm, **stats))
    return out
