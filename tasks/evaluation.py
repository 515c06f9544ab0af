"""Evaluation tasks: one model (base or base + adapter) on one held-out split, and lm-evaluation-harness tasks."""
from __future__ import annotations

import os

from tasks import step_task
from winnow.evaluation.evaluate import evaluate_adapter
from winnow.fingerprint import ModelRef
from winnow.results import Evaluation
from winnow.settings import EvalSettings, ModelSettings

JUDGE_KEY_ENV = "WINNOW_JUDGE_API_KEY"  # read here, on the worker; never a task parameter, never in a result


@step_task("evaluate", where=("test_spec",))
def evaluate_task(base: ModelRef, adapter_dir: str | None, test_spec: str, test_digest: str,
                  model: ModelSettings, settings: EvalSettings) -> Evaluation:
    """``test_digest`` (content hash of the split) keys the cache on content, not on the path."""
    return evaluate_adapter(base.path, adapter_dir, test_spec, model=model, settings=settings,
                            judge_api_key=os.environ.get(JUDGE_KEY_ENV, ""), progress=False)


@step_task("harness", name="lm-eval")
def lm_eval_task(base: ModelRef, adapter_dir: str | None, model: ModelSettings, settings: EvalSettings,
                 include_digest: str) -> dict[str, dict[str, float]]:
    """lm-evaluation-harness tasks on one model; ``include_digest`` (the local task YAMLs and their data) keys
    the cache on content."""
    from winnow.evaluation.harness import harness_adapter

    return harness_adapter(base.path, adapter_dir, list(settings.lm_eval_tasks), model=model,
                           include_path=settings.lm_eval_include, batch_size=settings.batch_size,
                           limit=settings.lm_eval_limit)
