"""Training tasks: LESS warm-up on a random slice of the pool, and a fine-tune on a chosen subset."""
from __future__ import annotations

from pathlib import Path

from prefect import task

from tasks import step_task
from winnow.data.loaders import load_records
from winnow.fingerprint import ModelRef
from winnow.results import Space, Warmup
from winnow.settings import LoraSettings, ModelSettings, TrainSettings, WarmupSettings
from winnow.store import lance, ledger, record_tables
from winnow.training.checkpoints import read_checkpoints
from winnow.training.runs import feature_space_key, finetune_key, train_on, warmup_key, warmup_sample


@task(name="feature-space")
def feature_space_task(store_uri: str, pool_table: str, pool_version: int, base: ModelRef, model: ModelSettings,
                       warmup: WarmupSettings, work_dir: str, rewarm: bool = False) -> Space:
    """The warm-up that defines the pool's feature space: the one recorded for this table, model and warm-up
    settings (a grown pool keeps it, so only its new rows need features), or a new one on this version when
    there is none or ``rewarm`` asks for it."""
    space = feature_space_key(pool_table, base, model, warmup)
    known = None if rewarm else ledger.get(lance.connect(store_uri), ledger.SPACES, space)
    if known and Path(known["dir"]).is_dir():
        return Space(space, known["key"], known["dir"], known["version"], kept=True)
    key = warmup_key(pool_table, pool_version, base, model, warmup)
    return Space(space, key, str(Path(work_dir) / "warmup" / key), pool_version, kept=False)


@task(name="record-feature-space")
def record_space_task(store_uri: str, space: Space, pool_table: str) -> None:
    """After the warm-up finished: later runs on this table (grown or not) use its feature space."""
    ledger.record(lance.connect(store_uri), ledger.SPACES, space.space, pool_table,
                  {"key": space.key, "dir": space.dir, "version": space.version})


@step_task("warmup")
def warmup_task(store_uri: str, pool_table: str, pool_version: int, base: ModelRef, model: ModelSettings,
                warmup: WarmupSettings, out_dir: str) -> Warmup:
    """Train the warm-up adapter with a checkpoint per epoch; returns checkpoint weights, not weights."""
    records = record_tables.read_records(lance.connect(store_uri), pool_table, version=pool_version)
    picked = [records[i] for i in warmup_sample(len(records), warmup)]
    train_on(picked, model_path=base.path, model=model, train=warmup.train, lora=warmup.lora, out_dir=out_dir,
             save_checkpoints=True)
    cks = read_checkpoints(out_dir)
    return Warmup(key=Path(out_dir).name, dir=out_dir, space="", version=pool_version, n_examples=len(picked),
                  checkpoints=tuple(c.epoch for c in cks), weights=tuple(round(c.weight, 6) for c in cks))


@step_task("finetune", where=("subset_path",))
def finetune_task(subset_path: str, subset_digest: str, base: ModelRef, model: ModelSettings,
                  train: TrainSettings, lora: LoraSettings, work_dir: str) -> str:
    """Fine-tune a fresh adapter on the records in ``subset_path``, in ``work_dir/finetune/<finetune_key>``;
    returns the adapter folder. ``subset_digest`` identifies the subset's content, so the cache never serves an
    adapter trained on an older file at the same path, and a repeated subset is never trained twice."""
    out_dir = Path(work_dir) / "finetune" / finetune_key(subset_digest, base, model, train, lora)
    summary = train_on(load_records(subset_path).records, model_path=base.path, model=model, train=train, lora=lora,
                       out_dir=out_dir, save_checkpoints=False, progress=False)
    return str(Path(out_dir) / summary["checkpoints"][-1]["dir"] / "adapter")
