"""LoRA fine-tuning: the warm-up of LESS and the final fine-tunes share this one loop.

Each epoch leaves a checkpoint folder with the adapter (safetensors, via PEFT) and the AdamW moments stored
*by parameter name*, never by position (the reference code's position mapping silently paired wrong
moments with gradients). The per-step learning rate goes to ``train_log.json``; checkpoint weights for
LESS are derived from it (``winnow.training.checkpoints``), never typed by hand.
"""
from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from tqdm.auto import tqdm

from winnow.data.formatting import Encoded, collate, per_example_loss
from winnow.models.lora import attach_lora
from winnow.settings import LoraSettings, TrainSettings

OPTIMIZER_FILE = "optimizer.safetensors"
LOG_FILE = "train_log.json"


def lr_at(step: int, total: int, peak: float, warmup_ratio: float) -> float:
    """Linear warm-up then linear decay to zero (LESS: 3 % warm-up); ``step`` counts from 0."""
    warm = max(1, math.ceil(total * warmup_ratio)) if warmup_ratio > 0 else 0
    if step < warm:
        return peak * (step + 1) / warm
    return peak * max(0.0, (total - step) / max(1, total - warm))


def save_optimizer_state(opt: torch.optim.Optimizer, names: dict[torch.nn.Parameter, str], path: Path) -> None:
    tensors, steps = {}, {}
    for p, state in opt.state.items():
        name = names[p]
        tensors[f"{name}::exp_avg"] = state["exp_avg"].detach().float().cpu().contiguous()
        tensors[f"{name}::exp_avg_sq"] = state["exp_avg_sq"].detach().float().cpu().contiguous()
        steps[name] = str(int(state["step"]))
    save_file(tensors, str(path), metadata=steps)


def epoch_batches(lengths: list[int], batch_size: int, rng: random.Random, *, grouped: bool = True,
                  group: int = 16) -> list[list[int]]:
    """One epoch's batches (positions). Random batches pad every example to the longest of its batch; grouped
    ones (HF Trainer's ``group_by_length``) shuffle, cut mega-batches of ``group`` batches, sort each by length,
    split it and shuffle the batches: as random in which examples meet an epoch's early steps, with far less
    padding (the demo pool: 50 % of the tokens padding at batch 4 → 5 %)."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    if not grouped:
        return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    batches = []
    for s in range(0, len(order), batch_size * group):
        chunk = sorted(order[s:s + batch_size * group], key=lambda i: -lengths[i])
        batches += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def train_lora(model: torch.nn.Module, examples: list[Encoded], *, pad_id: int, train: TrainSettings,
               lora: LoraSettings, out_dir: str | Path, save_checkpoints: bool = True,
               on_step: Callable[[int, int], None] | None = None, progress: bool = True,
               on_epoch: Callable[[int, int, torch.nn.Module], bool] | None = None) -> dict[str, Any]:
    """Train a fresh LoRA adapter on ``examples`` and save it (and per-epoch checkpoints) under ``out_dir``.

    ``model`` must be a clean base model; it is wrapped in place. Returns the training summary that is
    also written to ``train_log.json``. ``on_epoch(epoch, step, model)`` runs after each epoch's checkpoint (a
    tuning study's validation check); returning True stops training there (a pruned trial costs only its steps).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if not examples:
        raise ValueError("train_lora: no examples to train on")
    model = attach_lora(model, lora, seed=train.seed)
    device = next(model.parameters()).device
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    names = {p: n for n, p in params.items()}
    opt = torch.optim.AdamW(params.values(), lr=train.lr, betas=(train.adam_beta1, train.adam_beta2),
                            eps=train.adam_eps, weight_decay=train.weight_decay)
    per_epoch = math.ceil(len(examples) / (train.batch_size * train.grad_accum))
    total = per_epoch * train.epochs
    rng = random.Random(train.seed)
    log: list[dict[str, Any]] = []
    checkpoints: list[dict[str, Any]] = []
    step, t0, stopped = 0, time.time(), 0
    bar = tqdm(total=total, desc="LoRA training", unit="step", disable=not progress)
    model.train()
    lengths = [len(e.input_ids) for e in examples]
    for epoch in range(1, train.epochs + 1):
        batches = epoch_batches(lengths, train.batch_size, rng, grouped=train.group_by_length)
        for s in range(0, len(batches), train.grad_accum):
            group = batches[s:s + train.grad_accum]
            n_group = sum(len(b) for b in group)
            loss_sum = 0.0
            for b in group:
                batch = {k: v.to(device) for k, v in collate([examples[i] for i in b], pad_id).items()}
                loss = per_example_loss(model, batch).sum() / n_group  # mean over examples
                loss.backward()
                loss_sum += loss.item()
            lr = lr_at(step, total, train.lr, train.warmup_ratio)
            for g in opt.param_groups:
                g["lr"] = lr
            opt.step()
            opt.zero_grad(set_to_none=True)
            step += 1
            log.append({"step": step, "epoch": epoch, "lr": lr, "loss": loss_sum})
            bar.update(1)
            bar.set_postfix(loss=f"{loss_sum:.3f}", epoch=epoch)
            if on_step:
                on_step(step, total)
        if save_checkpoints or epoch == train.epochs:
            ck = out_dir / f"epoch-{epoch}"
            model.save_pretrained(ck / "adapter")
            save_optimizer_state(opt, names, ck / OPTIMIZER_FILE)
            checkpoints.append({"epoch": epoch, "dir": ck.name, "step": step})
        if on_epoch is not None:
            model.eval()
            stop = on_epoch(epoch, step, model)
            model.train()
            if stop and epoch < train.epochs:
                stopped = epoch
                break
    bar.close()
    model.eval()
    summary = {"steps": log, "checkpoints": checkpoints, "n_examples": len(examples), "stopped_at_epoch": stopped,
               "optimizer": {"betas": list(opt.defaults["betas"]), "eps": opt.defaults["eps"]},
               "train": train.model_dump(), "lora": lora.model_dump(), "seconds": time.time() - t0}
    tmp = out_dir / (LOG_FILE + ".tmp")
    tmp.write_text(json.dumps(summary, indent=1))
    tmp.replace(out_dir / LOG_FILE)
    return summary
