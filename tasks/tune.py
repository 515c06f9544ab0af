"""Tuning task: one trial's fine-tune, checked on the validation split after every epoch and pruned by the study.

Not cached by Prefect: whether it stops early depends on the study's other trials at the time. The library keeps
a finished checked fine-tune under its artifact key (``winnow.tune.trial.checked_key``), so the same
configuration is never trained twice to completion.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import task

from winnow.data.loaders import load_records
from winnow.fingerprint import ModelRef
from winnow.settings import EvalSettings, LoraSettings, ModelSettings, TrainSettings, TuneSettings
from winnow.tune.study import epoch_reporter
from winnow.tune.trial import checked_key, train_with_checks


@task(name="checked-finetune", task_run_name="checked-finetune-trial-{trial}")
def checked_finetune_task(subset_path: str, subset_digest: str, base: ModelRef, model: ModelSettings,
                          train: TrainSettings, lora: LoraSettings, val_spec: str, val_digest: str,
                          eval_settings: EvalSettings, work_dir: str, storage: str, study: str, trial: int,
                          tune: TuneSettings, max_epochs: int) -> dict[str, Any]:
    """Returns the trial's per-epoch validation history, whether it was pruned, its steps and last adapter."""
    key = checked_key(subset_digest, base, model, train, lora, val_digest, eval_settings, tune.score)
    report = epoch_reporter(study, storage, tune, max_epochs, trial)
    return {**train_with_checks(load_records(subset_path).records, load_records(val_spec).records,
                                model_path=base.path, model=model, train=train, lora=lora,
                                eval_settings=eval_settings, score=tune.score,
                                out_dir=Path(work_dir) / "tune" / key, report=report), "key": key}
