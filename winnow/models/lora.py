"""LoRA adapters through PEFT: attach a fresh one, or load a saved one onto a clean base."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from winnow.settings import LoraSettings


def attach_lora(model: torch.nn.Module, lora: LoraSettings, seed: int) -> Any:
    """Wrap ``model`` with a new trainable adapter.

    PEFT draws ``lora_A`` from the global RNG, so the seed is set right before; ``lora_B`` starts at zero,
    which is why gradients of A are zero until B has moved (one reason LESS warms up first).
    """
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(seed)
    cfg = LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                     target_modules=list(lora.target_modules), task_type="CAUSAL_LM", bias="none")
    return get_peft_model(model, cfg)


def load_adapter(model: torch.nn.Module, adapter_dir: str | Path, *, trainable: bool = False) -> Any:
    """Load a saved adapter (safetensors) onto a base model that holds none."""
    from peft import PeftModel

    if hasattr(model, "peft_config"):
        raise RuntimeError("load_adapter needs a clean base model; this one already holds an adapter")
    return PeftModel.from_pretrained(model, str(adapter_dir), is_trainable=trainable)
