"""The two training runs of a curation: LESS's warm-up on a random slice, and a fine-tune on a subset."""
from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from winnow.data.formatting import encode
from winnow.data.records import Record
from winnow.keys import artifact_key
from winnow.steps import STEPS
from winnow.fingerprint import ModelRef
from winnow.models.loading import load_model, load_tokenizer, set_threads
from winnow.settings import LoraSettings, ModelSettings, TrainSettings, WarmupSettings
from winnow.training.trainer import train_lora


def result_settings(model: ModelSettings) -> dict[str, Any]:
    """The model settings that change a trained adapter or a feature (not where or how many threads it ran
    on, nor the name: the key takes the model's content fingerprint instead)."""
    return model.model_dump(mode="json", exclude={"name", "device", "num_threads"})


def warmup_key(pool_table: str, pool_version: int, base: ModelRef | str, model: ModelSettings,
               warmup: WarmupSettings) -> str:
    """The warm-up's artifact key: the pool table version it samples, the model, the settings, the code."""
    return STEPS["warmup"].key(inputs={"pool": pool_table, "version": pool_version}, models=(base,),
                               settings={"model": result_settings(model), "warmup": warmup})


def feature_space_key(pool_table: str, base: ModelRef | str, model: ModelSettings, warmup: WarmupSettings) -> str:
    """A pool table's feature space: its warm-up without the table version. Features of rows under one space
    are comparable, so a grown table keeps the space (and its old rows' features) until asked to re-warm."""
    return artifact_key("space", inputs={"pool": pool_table}, models=(base,),
                        settings={"model": result_settings(model), "warmup": warmup}, code=(__name__,))


def finetune_key(subset_digest: str, base: ModelRef | str, model: ModelSettings, train: TrainSettings,
                 lora: LoraSettings) -> str:
    """The one key of every fine-tune (curate, compare, experiment cells, mixture trials and proxies, retrain):
    the subset's content, the model, the settings and the training code. A repeated subset never re-trains."""
    return STEPS["finetune"].key(inputs={"subset": subset_digest}, models=(base,),
                                 settings={"model": result_settings(model), "train": train, "lora": lora})


def warmup_sample(n_pool: int, warmup: WarmupSettings) -> list[int]:
    """Seeded random positions for the warm-up (LESS: 5 % of the pool, with a floor for tiny pools)."""
    k = min(n_pool, max(warmup.min_examples, round(warmup.fraction * n_pool)))
    return sorted(random.Random(warmup.train.seed).sample(range(n_pool), k))


def train_on(records: list[Record], *, model_path: str, model: ModelSettings, train: TrainSettings,
             lora: LoraSettings, out_dir: str | Path, save_checkpoints: bool, progress: bool = True,
             on_epoch: Callable[[int, int, Any], bool] | None = None) -> dict[str, Any]:
    """Fine-tune a fresh adapter on a clean base model (never one that already holds an adapter).
    ``on_epoch``: see ``train_lora`` (a tuning trial's validation check)."""
    set_threads(model.num_threads)
    tok = load_tokenizer(model_path, trust_remote_code=model.trust_remote_code)
    base = load_model(model_path, device=model.device, dtype=model.dtype, trust_remote_code=model.trust_remote_code)
    examples = [encode(tok, r, model.max_length) for r in records]
    return train_lora(base, examples, pad_id=tok.pad_token_id, train=train, lora=lora, out_dir=out_dir,
                      save_checkpoints=save_checkpoints, progress=progress, on_epoch=on_epoch)
