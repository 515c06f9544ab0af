"""Evaluation task: one model (base or base + adapter) on one test set."""
from __future__ import annotations

from typing import Any

import os

from prefect import task

from tasks import CACHED, cached_by_content, unexpected_only
from winnow.evaluation.evaluate import evaluate_adapter
from winnow.settings import EvalSettings, ModelSettings

JUDGE_KEY_ENV = "WINNOW_JUDGE_API_KEY"  # read here, on the worker; never a task parameter, never in a result


@task(name="evaluate", cache_policy=cached_by_content("test_spec"), persist_result=True, retries=1, retry_condition_fn=unexpected_only)
def evaluate_task(model_path: str, adapter_dir: str | None, test_spec: str, test_digest: str,
                  model: ModelSettings, settings: EvalSettings) -> dict[str, Any]:
    """``test_digest`` (content hash of the test set) keys the cache on content, not on the path."""
    return evaluate_adapter(model_path, adapter_dir, test_spec, model=model, settings=settings,
                            judge_api_key=os.environ.get(JUDGE_KEY_ENV, ""), progress=False)


@task(name="lm-eval", cache_policy=CACHED, persist_result=True, retries=1,
      retry_condition_fn=unexpected_only)
def lm_eval_task(model_path: str, adapter_dir: str | None, model: ModelSettings, settings: EvalSettings,
                 include_digest: str) -> dict[str, dict[str, float]]:
    """lm-evaluation-harness tasks on one model; ``include_digest`` (the local task YAMLs and their data) keys
    the cache on content."""
    from winnow.evaluation.harness import harness_adapter

    return harness_adapter(model_path, adapter_dir, list(settings.lm_eval_tasks), model=model,
                           include_path=settings.lm_eval_include, batch_size=settings.batch_size,
                           limit=settings.lm_eval_limit)
