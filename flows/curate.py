"""The curation flow: the curation recipe (selected, random, and NICE when a metric is set) run end to end,
then the report."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from prefect import flow, get_run_logger

from flows.recipe import feature_summary, open_run, run_recipe, target_files
from flows.runtime import deployment_task_runner
from tasks.data import query_labels_task
from tasks.report import report_task
from winnow.budget import describe_budget
from winnow.recipe import curation
from winnow.report import scores


@flow(name="curate", log_prints=True, task_runner=deployment_task_runner())
def curate(pool: str, query: str, test: str, out: str, settings: dict[str, Any], store_uri: str = "",
           work_dir: str = "", worker_threads: int = 0, versions: dict[str, str] | None = None,
           rewarm: bool = False) -> dict[str, Any]:
    """Targeted selection of ``pool`` (a file, or a store table by name) for the task that ``query``
    exemplifies, checked on ``test``. ``rewarm`` starts a new feature space instead of keeping the pool's."""
    logger = get_run_logger()
    run = open_run(settings, store_uri, work_dir, worker_threads)
    run, files = target_files(run, query=query, test=test)  # data.target's layout and map, when set
    recipe = curation(pool, files["query"], files["test"], run.cfg,
                      unlabelled=query_labels_task(files["query"])["unlabelled"])
    out_dir = Path(out).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    res = run_recipe(run, recipe, out_dir, rewarm=rewarm)
    sel = res["subsets"][recipe.arms[0].name]  # "selected", or "nice" for a prompts-only query set
    logger.info("selected %d of %d examples (budget: %s) by %s", sel["budget"], sel["pool_size"],
                describe_budget(run.cfg.selection.budget), run.cfg.selection.selector)
    settings_yaml = yaml.safe_dump({"pool": pool, "query": query, "test": test,
                                    "settings": run.cfg.model_dump(mode="json")}, sort_keys=False)
    feats = res["features"]
    report = report_task(out_dir.name, str(out_dir), res["data"], feats["warmup"], feature_summary(feats),
                         res["subsets"], res["metrics"], settings_yaml, versions or {}, feats["nice"], res["artifacts"],
                         models={"selection": run.cfg.model.name, "trained": run.cfg.finetune.model or run.cfg.model.name},
                         timings={"actual": res["timings"],
                                  "predicted": {k: v["seconds"] for k, v in res["plan"]["phases"].items()},
                                  "plan": res["plan"]})
    return {"report": report, "budget": sel["budget"],
            "results": {k: scores(v) for k, v in res["metrics"].items()}}
