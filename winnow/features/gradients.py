"""LESS gradient features: per-example LoRA gradients, Adam-preconditioned for the pool, projected.

Pool feature at checkpoint c (one simulated Adam step from the saved moments, β1 = 0.9, β2 = 0.999):
    m' = β1·m + (1−β1)·g,  v' = β2·v + (1−β2)·g²,  feature = m' / (sqrt(v') + ε)
Query feature: the plain gradient g. Both are projected per module and L2-normalised, so a dot product
of stored vectors is the cosine that LESS scores with.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from tqdm.auto import tqdm

from winnow.data.formatting import Encoded, collate
from winnow.features.per_example import per_example_grads
from winnow.features.projection import Projector

if TYPE_CHECKING:
    from winnow.features.job import FeatureJob


def adam_precondition(g: torch.Tensor, m: torch.Tensor, v: torch.Tensor, beta1: float, beta2: float,
                      eps: float, eps_inside: bool = False) -> torch.Tensor:
    """One simulated Adam step direction for per-example gradients g (B, ...) from moments m, v (...):
    m' / (sqrt(v') + ε) as in the LESS paper and torch's Adam, or with ``eps_inside`` m' / sqrt(v' + ε) as the
    released LESS code computes it (the two differ where v' ≲ ε, i.e. for parameters that barely moved)."""
    m2 = beta1 * m + (1 - beta1) * g
    v2 = beta2 * v + (1 - beta2) * g * g
    return m2 / (v2 + eps).sqrt() if eps_inside else m2 / (v2.sqrt() + eps)


class _Clock:
    """Accumulate wall time per phase into a dict (synchronising CUDA so GPU time is counted)."""

    def __init__(self, into: dict[str, float] | None, device: torch.device):
        self.into, self.cuda = into, device.type == "cuda"

    @contextmanager
    def __call__(self, phase: str) -> Iterator[None]:
        if self.into is None:
            yield
            return
        if self.cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        yield
        if self.cuda:
            torch.cuda.synchronize()
        self.into[phase] = self.into.get(phase, 0.0) + time.perf_counter() - t0


CPU_BATCH = 8
GPU_MEMORY_SHARE = 0.7  # of the free memory; the rest absorbs fragmentation and length variation


def batch_size_from_memory(free_bytes: int, per_example_bytes: int, cap: int = 256) -> int:
    """The largest batch whose activations fit in a share of free memory (at least 1, at most ``cap``)."""
    return int(max(1, min(cap, GPU_MEMORY_SHARE * free_bytes // max(1, per_example_bytes))))


def auto_batch_size(model: torch.nn.Module, examples: list[Encoded], modules: dict[str, torch.nn.Linear],
                    pad_id: int) -> int:
    """On CUDA, measure one backward of the longest example and size the batch from free memory."""
    device = next(model.parameters()).device
    if device.type != "cuda" or not examples:
        return CPU_BATCH
    longest = max(examples, key=lambda e: len(e.input_ids))
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats(device)
    base = torch.cuda.memory_allocated(device)
    batch = {k: v.to(device) for k, v in collate([longest], pad_id).items()}
    per_example_grads(model, batch, modules)
    per_example = torch.cuda.max_memory_allocated(device) - base
    free, _ = torch.cuda.mem_get_info(device)
    return batch_size_from_memory(free, per_example)


def gradient_features(model: torch.nn.Module, examples: list[Encoded], modules: dict[str, torch.nn.Linear],
                      projector: Projector, *, pad_id: int, batch_size: int,
                      moments: dict[str, tuple[torch.Tensor, torch.Tensor]] | None = None,
                      betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, eps_inside: bool = False,
                      progress: bool = True, on_batch: Callable[[int], None] | None = None,
                      timings: dict[str, float] | None = None, autocast_bf16: bool = False,
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Projected, L2-normalised features (N, d) and the pre-normalisation norms (N,), in input order.

    Examples are batched by length to waste little compute on padding, then put back in order.
    ``timings``, when given, accumulates seconds spent in "gradients" and "projection" (for benchmarks).
    """
    device = next(model.parameters()).device
    clock = _Clock(timings, device)
    if moments is not None:
        for n, mod in modules.items():
            if n not in moments:
                raise KeyError(f"no Adam moments for parameter {n!r}")
            if tuple(moments[n][0].shape) != tuple(mod.weight.shape):
                raise ValueError(f"Adam moments for {n!r} have shape {tuple(moments[n][0].shape)}, "
                                 f"the parameter has {tuple(mod.weight.shape)}: wrong checkpoint for this model")
        moments = {n: (m.to(device), v.to(device)) for n, (m, v) in moments.items() if n in modules}
    if batch_size <= 0:
        batch_size = auto_batch_size(model, examples, modules, pad_id)
    order = sorted(range(len(examples)), key=lambda i: len(examples[i].input_ids))
    vecs = np.zeros((len(examples), projector.dim), dtype=np.float32)
    norms = np.zeros(len(examples), dtype=np.float32)
    for s in tqdm(range(0, len(order), batch_size), desc="gradient features", unit="batch",
                  disable=not progress):
        idx = order[s:s + batch_size]
        batch = {k: v.to(device) for k, v in collate([examples[i] for i in idx], pad_id).items()}
        with clock("gradients"), torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast_bf16):
            grads, _ = per_example_grads(model, batch, modules)
        with clock("projection"):
            out = torch.zeros(len(idx), projector.dim, device=device)
            for n, g in grads.items():  # g: (B, out, in)
                if moments is not None:
                    g = adam_precondition(g, *moments[n], betas[0], betas[1], eps, eps_inside)
                out += projector.project(n, g.reshape(len(idx), -1))  # (B, d)
        norm = out.norm(dim=1)
        vecs[idx] = (out / norm.clamp(min=1e-30).unsqueeze(1)).cpu().numpy()
        norms[idx] = norm.cpu().numpy()
        if on_batch:
            on_batch(len(idx))
    return vecs, norms


class GradientFeatures:
    """LESS's representation: one vector per warm-up checkpoint, Adam-preconditioned for the pool (``kind``
    "adam"), plain for queries ("sgd"), projected by ``features.projector`` to ``features.proj_dim``."""

    name = "gradients"
    needs_warmup = True

    def table_prefix(self, job: FeatureJob) -> str:
        return f"grads_{job.kind}"

    def dim(self, job: FeatureJob) -> int:
        return job.features.proj_dim

    def checkpoint_indices(self, job: FeatureJob) -> list[int]:
        return [c.index for c in job.checkpoints]

    def provenance(self, job: FeatureJob) -> dict[str, Any]:
        from winnow.features.job import model_provenance
        from winnow.hashing import file_digest

        f = job.features
        return {**model_provenance(job), "kind": job.kind,
                "adapters": file_digest(*[c.adapter_dir / "adapter_model.safetensors" for c in job.checkpoints], n=12),
                "checkpoints": [c.epoch for c in job.checkpoints],
                "checkpoint_weights": [round(c.weight, 8) for c in job.checkpoints],
                "projector": f.projector, "proj_dim": f.proj_dim, "sjlt_nnz": f.sjlt_nnz, "proj_seed": f.seed,
                "codes": f.codes, "adam": [[*c.betas, c.eps] for c in job.checkpoints],  # from the warm-up's own log
                "adam_eps_placement": f.adam_eps_placement, "autocast_bf16": f.autocast_bf16}

    def compute(self, job: FeatureJob, records: list[Any], checkpoint: int, progress: bool
                ) -> tuple[np.ndarray, np.ndarray, list[int]]:
        from winnow.features.job import load_inputs
        from winnow.features.per_example import lora_modules
        from winnow.models.lora import load_adapter
        from winnow.training.checkpoints import load_adam_moments

        tok, encoded, base = load_inputs(job, records)
        ck = job.checkpoints[checkpoint]
        model = load_adapter(base, ck.adapter_dir, trainable=True).eval()  # a clean base per checkpoint; eval: no dropout
        modules = lora_modules(model)
        moments = load_adam_moments(ck.optimizer_file, list(modules)) if job.kind == "adam" else None
        f = job.features
        vecs, norms = gradient_features(model, encoded, modules, Projector(f.projector, f.proj_dim, f.seed, f.sjlt_nnz),
                                        pad_id=tok.pad_token_id, batch_size=f.batch_size, moments=moments,
                                        betas=ck.betas, eps=ck.eps, eps_inside=f.adam_eps_placement == "less_code",
                                        progress=progress, autocast_bf16=f.autocast_bf16)
        return vecs, norms, [len(e.input_ids) for e in encoded]
