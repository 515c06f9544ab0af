"""Task affinities from single-task proxy models (one short LoRA per domain).

- Log-likelihood ratio (PMI-style): with L[a, b] = mean over domain b's held-out examples of the mean
  response-token log-likelihood under proxy a,
      S_ab = ½·[(L[a, b] − L[b, b]) + (L[b, a] − L[a, a])]
  i.e. how much worse each domain's own proxy is replaced by the other's, averaged both ways (≤ 0; 0 on the
  diagonal; closer to 0 = more alike).
- Jensen–Shannon: on a shared probe set, at every response position, JS(P_a ‖ P_b) between the two proxies'
  next-token distributions (natural log), averaged over positions; affinity = 1 − JS / ln 2 ∈ [0, 1].
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from winnow.data.formatting import IGNORE, collate, encode
from winnow.data.records import Record
from winnow.evaluation.evaluate import response_losses


def llr_affinity(L: np.ndarray) -> np.ndarray:
    """S from the proxy × domain mean log-likelihood matrix L (K, K)."""
    L = np.asarray(L, dtype=np.float64)
    d = np.diag(L)
    return 0.5 * ((L - d[None, :]) + (L.T - d[:, None]))


def loglik_row(model: Any, tokenizer: Any, domains: list[list[Record]], *, max_length: int, batch_size: int) -> np.ndarray:
    """One proxy's row of L: mean response log-likelihood on each domain's held-out records."""
    return np.array([-float(response_losses(model, tokenizer, recs, batch_size=batch_size,
                                            max_length=max_length).mean()) for recs in domains])


@torch.no_grad()
def next_token_distributions(model: Any, tokenizer: Any, probe: list[Record], *, max_length: int) -> np.ndarray:
    """(positions, vocab) float32 next-token distributions at the probe's response positions, in a fixed order."""
    device = next(model.parameters()).device
    out = []
    for rec in probe:
        batch = {k: v.to(device) for k, v in collate([encode(tokenizer, rec, max_length)], tokenizer.pad_token_id).items()}
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[0, :-1]
        keep = batch["labels"][0, 1:] != IGNORE
        out.append(torch.softmax(logits[keep].float(), -1).cpu().numpy())
    return np.concatenate(out)


def js_affinity(distributions: list[np.ndarray]) -> np.ndarray:
    """Affinity 1 − mean JS/ln2 between every pair of proxies' (positions, vocab) distributions."""
    K = len(distributions)
    S = np.eye(K)
    for a in range(K):
        for b in range(a + 1, K):
            P, Q = distributions[a].astype(np.float64), distributions[b].astype(np.float64)
            M = 0.5 * (P + Q)
            kl = lambda X: np.sum(X * (np.log(np.clip(X, 1e-12, None)) - np.log(np.clip(M, 1e-12, None))), axis=1)  # noqa: E731
            js = 0.5 * (kl(P) + kl(Q))
            S[a, b] = S[b, a] = 1.0 - float(js.mean()) / math.log(2)
    return S
