"""The retrain flow: the pool table grew, so featurise the new rows, re-select, fine-tune, evaluate, and
compare with the adapter of the previous retrain of the same line (same settings, same target).

Started by the ``winnow.pool.updated`` event (deployment trigger), and weekly by cron as recurring curation.
The table keeps its feature space (flows.steps.warm_up): later retrains compute features only for shards
holding new rows, and a changed model or warm-up setting makes a new space with its own warm-up.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import yaml
from prefect import flow, get_run_logger

from flows.recipe import run_recipe
from flows.run import open_run
from flows.runtime import deployment_task_runner, versions
from flows.steps import target_files
from tasks.report import publish_task
from tasks.retrain import previous_retrain_task, record_retrain_task
from winnow.keys import digest
from winnow.recipe import retraining
from winnow.reports.plots import plot_history
from winnow.reports.retrain import render_retrain, results_rows
from winnow.settings import WinnowSettings


@flow(name="retrain", log_prints=True, task_runner=deployment_task_runner())
def retrain(pool_table: str, query: str, test: str, out: str, settings: WinnowSettings | None = None,
            min_new_rows: int = 1, store_uri: str = "", work_dir: str = "", worker_threads: int = 0) -> dict[str, Any]:
    """Re-curate ``pool_table`` for the target of ``query``/``test`` when at least ``min_new_rows`` rows arrived
    since the last retrain of the same line (0 = always, as the weekly schedule does)."""
    logger = get_run_logger()
    run = open_run(settings, store_uri, work_dir, worker_threads)
    run, files = target_files(run, query=query, test=test)  # data.target's layout and map, when set
    recipe = retraining(pool_table, files["query"], files["test"], run.cfg)
    # A line of retrains compares like with like: same settings, same models (by content), same target.
    line = digest({"settings": run.cfg.model_dump(mode="json", exclude={"model": {"name"}}),
                   "models": [run.base, run.trained[0]]})
    prev = previous_retrain_task(run.store_uri, pool_table, line, files["query"], files["test"])
    last, history, why_new = prev["last"], prev["history"], prev["why_new"]
    if why_new:
        logger.info("%s: %s", pool_table, why_new)
    new_rows = prev["table_rows"] - (last["n_rows"] if last else 0)
    if last and new_rows < min_new_rows:
        logger.info("%s: %d new rows since the last retrain (version %s), fewer than %d; nothing to do",
                    pool_table, new_rows, last["version"], min_new_rows)
        return {"skipped": True, "new_rows": new_rows, "table_rows": prev["table_rows"]}

    out_dir = Path(out).resolve() / f"v{prev['version']}"
    res = run_recipe(run, recipe, out_dir, others={"previous": last["adapter"]} if last else None)
    feats, sub, new, pool = res.features, res.subsets["new"], res.evals["new"], res.data["pool"]
    logger.info("features: %d shards computed, %d already done", feats.computed, feats.skipped)
    entry = {"line": prev["line"], "version": pool.version, "n_rows": pool.rows, "new_rows": new_rows,
             "warmup": {"key": feats.warmup.key, "dir": feats.warmup.dir} if feats.warmup else None,
             "adapter": res.adapters["new"], "budget": sub.size, "report": str(out_dir / "report.md"),
             "metric": new.metric, "score": new.score, "response_loss": new.response_loss}
    runs = [*history, {**entry, "at": time.time()}]
    same = [r for r in runs if r.get("metric", "exact_match") == new.metric]  # a retrain line keeps its metric
    plot = plot_history([r.get("score", r.get("exact_match")) for r in same], [r["n_rows"] for r in same], new.metric,
                        out_dir / "history.png")
    md = render_retrain(table=pool_table, entry=entry, last=last, features=feats, sub=sub, evals=res.evals,
                        test=res.reads["test"], runs=runs, plot=plot, why_new=why_new, versions=versions())
    results = results_rows(res.evals)
    report = publish_task(str(out_dir), f"retrain-{pool_table}", md, description="retrain: new adapter vs previous",
                          files={"metrics.json": json.dumps({"results": results, "entry": entry}, indent=1, default=str),
                                 "settings.yaml": yaml.safe_dump({"table": pool_table, "version": entry["version"]})},
                          tables={"results": ("base / previous / new adapter on the test set", results)})
    record_retrain_task(run.store_uri, pool_table, entry)
    return {"skipped": False, "new_rows": new_rows, "table_rows": pool.rows, "report": report,
            "results": {k: e.scores() for k, e in res.evals.items()},
            "shards": {"computed": feats.computed, "skipped": feats.skipped}}
