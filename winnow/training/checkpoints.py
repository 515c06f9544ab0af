"""Read warm-up checkpoints back: adapter folders, Adam moments by name, and LESS checkpoint weights."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open

from winnow.errors import StaleArtifactError
from winnow.training.trainer import LOG_FILE, OPTIMIZER_FILE


@dataclass(frozen=True)
class Checkpoint:
    index: int  # 0-based position among the run's checkpoints
    epoch: int
    adapter_dir: Path
    optimizer_file: Path
    avg_lr: float
    weight: float  # avg_lr normalised over the run's checkpoints
    betas: tuple[float, float] = (0.9, 0.999)  # the optimizer's, as recorded in the training log
    eps: float = 1e-8


def read_checkpoints(run_dir: str | Path) -> list[Checkpoint]:
    """Checkpoints of a training run, each weighted by its epoch's average learning rate (from the log)."""
    run_dir = Path(run_dir)
    log_path = run_dir / LOG_FILE
    if not log_path.exists():
        raise FileNotFoundError(f"{log_path}: no training log; did the warm-up finish?")
    log = json.loads(log_path.read_text())
    lrs: dict[int, list[float]] = {}
    for s in log["steps"]:
        lrs.setdefault(s["epoch"], []).append(s["lr"])
    avg = [sum(lrs[c["epoch"]]) / len(lrs[c["epoch"]]) for c in log["checkpoints"]]
    total = sum(avg) or 1.0
    if "optimizer" not in log:
        raise StaleArtifactError(f"{log_path}: the log does not record the optimizer's betas and eps (made by an "
                                 "older Winnow); re-run the warm-up so LESS's preconditioning can match them")
    betas, eps = tuple(log["optimizer"]["betas"]), float(log["optimizer"]["eps"])
    return [Checkpoint(i, c["epoch"], run_dir / c["dir"] / "adapter", run_dir / c["dir"] / OPTIMIZER_FILE,
                       a, a / total, betas, eps) for i, (c, a) in enumerate(zip(log["checkpoints"], avg))]


def load_adam_moments(path: Path, names: list[str]) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Adam first and second moments for ``names``, looked up by name; a missing name is an error."""
    out: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    with safe_open(str(path), framework="pt") as f:
        keys = set(f.keys())
        missing = [n for n in names if f"{n}::exp_avg" not in keys or f"{n}::exp_avg_sq" not in keys]
        if missing:
            stored = sorted({k.split("::")[0] for k in keys})
            raise StaleArtifactError(
                f"{path}: optimizer state has no moments for {len(missing)} parameter(s), e.g. {missing[0]!r}; "
                f"it holds {len(stored)} parameter(s), e.g. {stored[:1]}. The checkpoint was made with other "
                "LoRA settings (rank, target modules) than the model being featurised.")
        for n in names:
            out[n] = (f.get_tensor(f"{n}::exp_avg"), f.get_tensor(f"{n}::exp_avg_sq"))
    return out
