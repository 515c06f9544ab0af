"""lm-evaluation-harness on Winnow's models: the evaluation ML teams already use, on base and adapters alike.

The model is loaded the way every other step loads it (a converted GGUF, a local directory or a hub id) and an
adapter is merged into it (exact for LoRA), then handed to lm-eval's ``HFLM`` as an instance, so lm-eval never
downloads or re-resolves it. Tasks are lm-eval task names (online: lm-eval fetches their data) or tasks defined
by YAML files in ``include_path`` over local files (offline: ``dataset_path: json`` with ``data_files``).
"""
from __future__ import annotations

import math
from typing import Any

from winnow.errors import ConfigError, MissingDependencyError
from winnow.settings import ModelSettings


def run_tasks(model: Any, tokenizer: Any, tasks: list[str], *, include_path: str = "", batch_size: int = 8,
              limit: int = 0, seed: int = 0) -> dict[str, dict[str, float]]:
    """{task: {metric: value}} of lm-eval's ``simple_evaluate`` (stderr entries dropped: they come from
    lm-eval's own bootstrap over examples, not over seeds, so they are not reported as Winnow intervals)."""
    try:
        import lm_eval
        from lm_eval.models.huggingface import HFLM
        from lm_eval.tasks import TaskManager
    except ImportError:
        raise MissingDependencyError("eval.lm_eval_tasks needs lm-evaluation-harness: pip install lm-eval") from None
    manager = TaskManager(include_path=include_path or None)
    unknown = [t for t in tasks if t not in manager.all_tasks]
    if unknown:
        where = f" or in {include_path}" if include_path else " (eval.lm_eval_include names a folder of task YAMLs)"
        raise ConfigError(f"eval.lm_eval_tasks: unknown task(s) {unknown}: not an lm-eval task{where}")
    lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size, device=str(next(model.parameters()).device))
    out = lm_eval.simple_evaluate(model=lm, tasks=list(tasks), task_manager=manager, limit=limit or None,
                                  log_samples=False, bootstrap_iters=0, random_seed=seed, numpy_random_seed=seed,
                                  torch_random_seed=seed, fewshot_random_seed=seed)
    results: dict[str, dict[str, float]] = {}
    for task, values in out["results"].items():
        results[task] = {k.split(",")[0]: float(v) for k, v in values.items()
                         if isinstance(v, (int, float)) and not isinstance(v, bool) and "stderr" not in k
                         and not (isinstance(v, float) and math.isnan(v))}
        results[task].update(n=float(out.get("n-samples", {}).get(task, {}).get("effective", math.nan)))
    return results


def harness_adapter(model_path: str, adapter_dir: str | None, tasks: list[str], *, model: ModelSettings,
                    include_path: str = "", batch_size: int = 8, limit: int = 0) -> dict[str, dict[str, float]]:
    """The base model (``adapter_dir=None``) or a fresh base with a saved adapter merged, on lm-eval tasks."""
    from winnow.models.loading import load_model, load_tokenizer, set_threads
    from winnow.models.lora import load_adapter

    set_threads(model.num_threads)
    tok = load_tokenizer(model_path, trust_remote_code=model.trust_remote_code)
    net = load_model(model_path, device=model.device, dtype=model.dtype, trust_remote_code=model.trust_remote_code)
    if adapter_dir is not None:
        net = load_adapter(net, adapter_dir).merge_and_unload()
    return run_tasks(net.eval(), tok, tasks, include_path=include_path, batch_size=batch_size, limit=limit)
