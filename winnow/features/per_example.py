"""Exact per-example gradients of every LoRA matrix from one backward pass over a padded batch.

A LoRA matrix W (``lora_A`` or ``lora_B``, each a bias-free ``nn.Linear``) sees inputs x_t and output
gradients δ_t at the tokens t of one example, and ∂ℓ/∂W = Σ_t δ_t x_tᵀ. Forward hooks capture x and the
output; ``torch.autograd.grad`` of the *sum* of per-example losses returns δ for all examples at once
(examples do not interact), and one einsum per module forms every example's gradient. Because each
example's loss is normalised by its own response-token count, the result equals a batch-size-1 loop.
"""
from __future__ import annotations

from typing import Any

import torch

from winnow.data.formatting import per_example_loss


def lora_modules(model: torch.nn.Module) -> dict[str, torch.nn.Linear]:
    """Trainable LoRA linears keyed by their weight's *parameter name* (the key of the Adam moments)."""
    out = {}
    for name, mod in model.named_modules():
        if isinstance(mod, torch.nn.Linear) and ".lora_" in f".{name}" and mod.weight.requires_grad:
            if mod.bias is not None:
                raise ValueError(f"{name}: LoRA linear with a bias is not supported (bias='none' expected)")
            out[f"{name}.weight"] = mod
    if not out:
        raise ValueError("model has no trainable LoRA linear layers; load an adapter first")
    return out


def per_example_grads(model: torch.nn.Module, batch: dict[str, torch.Tensor],
                      modules: dict[str, torch.nn.Linear]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Return ({param name: (B, out, in) gradients}, per-example losses (B,)) for one padded batch."""
    inputs: dict[str, torch.Tensor] = {}
    outputs: dict[str, torch.Tensor] = {}

    def hook(name: str) -> Any:
        def fn(_mod: torch.nn.Module, args: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
            if name in inputs:
                raise RuntimeError(f"{name} ran twice in one forward pass; per-example capture needs one call")
            inputs[name] = args[0].detach()
            outputs[name] = out
        return fn

    handles = [m.register_forward_hook(hook(n)) for n, m in modules.items()]
    try:
        losses = per_example_loss(model, batch)  # (B,)
    finally:
        for h in handles:
            h.remove()
    names = list(modules)
    deltas = torch.autograd.grad(losses.sum(), [outputs[n] for n in names])
    mask = batch["attention_mask"].unsqueeze(-1).to(deltas[0].dtype)  # (B, T, 1): no padding leaks in
    grads = {}
    for n, delta in zip(names, deltas):
        x = inputs[n].to(delta.dtype)  # (B, T, in)
        grads[n] = torch.einsum("bto,bti->boi", delta * mask, x).float()  # (B, out, in)
    return grads, losses.detach()


def loop_grads(model: torch.nn.Module, batch: dict[str, torch.Tensor],
               modules: dict[str, torch.nn.Linear]) -> dict[str, torch.Tensor]:
    """Batch-size-1 reference (the test oracle and benchmark baseline): one backward per example."""
    out: dict[str, list[torch.Tensor]] = {n: [] for n in modules}
    B = batch["input_ids"].shape[0]
    for i in range(B):
        n_tok = int(batch["attention_mask"][i].sum())
        right = bool(batch["attention_mask"][i, 0])  # right padding keeps the first position real
        sl = slice(0, n_tok) if right else slice(-n_tok, None)
        one = {k: v[i:i + 1, sl] for k, v in batch.items()}
        model.zero_grad(set_to_none=True)
        per_example_loss(model, one).sum().backward()
        for n, m in modules.items():
            out[n].append(m.weight.grad.detach().float().clone())
    model.zero_grad(set_to_none=True)
    return {n: torch.stack(v) for n, v in out.items()}
