"""Training tasks: LESS warm-up on a random slice of the pool, and a fine-tune on a chosen subset."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import task

from tasks import CACHED, cached_by_content, unexpected_only
from winnow.data.loaders import load_records
from winnow.settings import LoraSettings, ModelSettings, TrainSettings, WarmupSettings
from winnow.store import lance, ledger, record_tables
from winnow.training.checkpoints import read_checkpoints
from winnow.training.runs import feature_space_key, finetune_key, train_on, warmup_key, warmup_sample


@task(name="feature-space")
def feature_space_task(store_uri: str, pool_table: str, pool_version: int, model_path: str, model: ModelSettings,
                       warmup: WarmupSettings, work_dir: str, rewarm: bool = False) -> dict[str, Any]:
    """The warm-up that defines the pool's feature space: the one recorded for this table, model and warm-up
    settings (a grown pool keeps it, so only its new rows need features), or a new one on this version when
    there is none or ``rewarm`` asks for it. Returns its key, folder and the table version it samples."""
    space = feature_space_key(pool_table, model_path, model, warmup)
    known = None if rewarm else ledger.get(lance.connect(store_uri), ledger.SPACES, space)
    if known and Path(known["dir"]).is_dir():
        return {"space": space, "key": known["key"], "dir": known["dir"], "version": known["version"], "kept": True}
    key = warmup_key(pool_table, pool_version, model_path, model, warmup)
    return {"space": space, "key": key, "dir": str(Path(work_dir) / "warmup" / key), "version": pool_version,
            "kept": False}


@task(name="record-feature-space")
def record_space_task(store_uri: str, space: dict[str, Any], pool_table: str) -> None:
    """After the warm-up finished: later runs on this table (grown or not) use its feature space."""
    ledger.record(lance.connect(store_uri), ledger.SPACES, space["space"], pool_table,
                  {k: space[k] for k in ("key", "dir", "version")})


@task(name="warmup", cache_policy=CACHED, persist_result=True, retries=1, retry_condition_fn=unexpected_only)
def warmup_task(store_uri: str, pool_table: str, pool_version: int, model_path: str, model: ModelSettings,
                warmup: WarmupSettings, out_dir: str) -> dict[str, Any]:
    """Train the warm-up adapter with a checkpoint per epoch; returns checkpoint weights, not weights."""
    db = lance.connect(store_uri)
    records = record_tables.read_records(db, pool_table, version=pool_version)
    picked = [records[i] for i in warmup_sample(len(records), warmup)]
    train_on(picked, model_path=model_path, model=model, train=warmup.train, lora=warmup.lora, out_dir=out_dir,
             save_checkpoints=True)
    cks = read_checkpoints(out_dir)
    return {"dir": out_dir, "n_examples": len(picked), "checkpoints": [c.epoch for c in cks],
            "weights": [round(c.weight, 6) for c in cks]}


@task(name="finetune", cache_policy=cached_by_content("subset_path"), persist_result=True, retries=1, retry_condition_fn=unexpected_only)
def finetune_task(subset_path: str, subset_digest: str, model_path: str, model: ModelSettings,
                  train: TrainSettings, lora: LoraSettings, work_dir: str) -> str:
    """Fine-tune a fresh adapter on the records in ``subset_path``, in ``work_dir/finetune/<finetune_key>``;
    returns the adapter folder.

    ``subset_digest`` identifies the subset's content, so the cache never serves an adapter trained on an
    older file at the same path, and a repeated subset is never trained twice (the key decides)."""
    out_dir = Path(work_dir) / "finetune" / finetune_key(subset_digest, model_path, model, train, lora)
    records = load_records(subset_path).records
    summary = train_on(records, model_path=model_path, model=model, train=train, lora=lora, out_dir=out_dir,
                       save_checkpoints=False, progress=False)
    return str(Path(out_dir) / summary["checkpoints"][-1]["dir"] / "adapter")
