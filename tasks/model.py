"""Model task: resolve the model setting to a local folder (converting the default GGUF once)."""
from __future__ import annotations

from pathlib import Path

from prefect import task

from tasks import unexpected_only
from winnow.models.loading import resolve_model_path


@task(name="prepare-model", retries=1, retry_condition_fn=unexpected_only)
def prepare_model_task(name: str, cache_dir: str) -> str:
    return resolve_model_path(name, Path(cache_dir))
