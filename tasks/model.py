"""Model task: resolve the model setting to a local folder (converting the default GGUF once) and fingerprint it."""
from __future__ import annotations

from pathlib import Path

from prefect import task

from tasks import unexpected_only
from winnow.fingerprint import ModelRef, model_ref
from winnow.models.loading import resolve_model_path


@task(name="prepare-model", retries=1, retry_condition_fn=unexpected_only)
def prepare_model_task(name: str, cache_dir: str) -> ModelRef:
    """Where the model is, and what it is (its content fingerprint, remembered in ``cache_dir`` per file stamp):
    every later task takes this, so artifacts are keyed by the model's content, never by its path."""
    return model_ref(resolve_model_path(name, Path(cache_dir)), cache_dir)
