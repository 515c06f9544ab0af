"""The two training runs of a curation: LESS's warm-up on a random slice, and a fine-tune on a subset."""
from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from winnow.data.formatting import encode
from winnow.data.records import Record
from winnow.models.loading import load_model, load_tokenizer, set_threads
from winnow.settings import LoraSettings, ModelSettings, TrainSettings, WarmupSettings
from winnow.training.trainer import train_lora


def warmup_sample(n_pool: int, warmup: WarmupSettings) -> list[int]:
    """Seeded random positions for the warm-up (LESS: 5 % of the pool, with a floor for tiny pools)."""
    k = min(n_pool, max(warmup.min_examples, round(warmup.fraction * n_pool)))
    return sorted(random.Random(warmup.train.seed).sample(range(n_pool), k))


def train_on(records: list[Record], *, model_path: str, model: ModelSettings, train: TrainSettings,
             lora: LoraSettings, out_dir: str | Path, save_checkpoints: bool, progress: bool = True) -> dict[str, Any]:
    """Fine-tune a fresh adapter on a clean base model (never one that already holds an adapter)."""
    set_threads(model.num_threads)
    tok = load_tokenizer(model_path, trust_remote_code=model.trust_remote_code)
    base = load_model(model_path, device=model.device, dtype=model.dtype, trust_remote_code=model.trust_remote_code)
    examples = [encode(tok, r, model.max_length) for r in records]
    return train_lora(base, examples, pad_id=tok.pad_token_id, train=train, lora=lora, out_dir=out_dir,
                      save_checkpoints=save_checkpoints, progress=progress)
