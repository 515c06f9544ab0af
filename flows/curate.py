"""The curation flow: the curation recipe (selected, random, and NICE when a metric is set) run end to end,
then the report."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from prefect import flow, get_run_logger

from flows.recipe import run_recipe
from flows.run import open_run
from flows.runtime import deployment_task_runner
from flows.steps import target_files
from flows.validation import ceiling_subset, planted_recall
from tasks.data import unlabelled_task, validation_split_task
from tasks.report import publish_task
from winnow.budget import describe_budget
from winnow.data.loaders import jsonl_text
from winnow.export import run_outputs
from winnow.recipe import curation
from winnow.reports.curate import render_curation, sources
from winnow.reports.guard import guard_warnings
from winnow.reports.plots import plot_sources
from winnow.reports.tables import quarantine_rows, results_table
from winnow.reports.verdict import verdict
from winnow.results import Split
from winnow.settings import WinnowSettings


@flow(name="curate", log_prints=True, task_runner=deployment_task_runner())
def curate(pool: str, query: str, test: str, out: str, settings: WinnowSettings, store_uri: str = "",
           work_dir: str = "", worker_threads: int = 0, versions: dict[str, str] | None = None,
           rewarm: bool = False, diagnose: bool = False, val: str = "", ceiling: str = "") -> dict[str, Any]:
    """Targeted selection of ``pool`` (a file, or a store table by name) for the task that ``query``
    exemplifies, checked on ``test``. ``rewarm`` starts a new feature space instead of keeping the pool's.
    ``diagnose`` adds the diagnostics on the validation split (``val``, or a share of ``test`` by id, the rest
    staying the test split): planted recall per arm and the ``ceiling`` arm (in-domain rows; default the
    query rows repeated to the budget), and the verdict."""
    run = open_run(settings, store_uri, work_dir, worker_threads)
    run, files = target_files(run, query=query, test=test)  # data.target's layout and map, when set
    out_dir = Path(out).resolve()
    split = None
    if diagnose:
        v = run.cfg.validation
        split = (Split(val, files["test"], 0, 0, f"validation `{Path(val).name}`") if val else
                 validation_split_task(files["test"], str(out_dir / "validation"), v.val_share, v.seed))
        files = {**files, "test": split.test}
    recipe = curation(pool, files["query"], files["test"], run.cfg, unlabelled=unlabelled_task(files["query"]))
    extra = (lambda subs: {"ceiling": ceiling_subset(ceiling, files["query"], subs[recipe.arms[0].name].size,
                                                     out_dir)}) if diagnose else None
    res = run_recipe(run, recipe, out_dir, rewarm=rewarm, extra=extra)
    arm = recipe.arms[0].name  # "selected", or "nice" for a prompts-only query set
    planted = (planted_recall(run, split.val, list(recipe.arms), res.features,
                              {a.name: res.subsets[a.name].size for a in recipe.arms}) if split else None)
    judged = verdict(res.evals, arm, planted)
    sel = res.subsets[arm]
    get_run_logger().info("selected %d of %d examples (budget: %s) by %s", sel.size, sel.pool_size,
                          describe_budget(run.cfg.selection.budget), sel.selector)
    settings_yaml = yaml.safe_dump({"pool": pool, "query": query, "test": test,
                                    "settings": run.cfg.model_dump(mode="json")}, sort_keys=False)
    rows = sources(res.subsets, arm)
    plot = plot_sources(rows, out_dir / "subset_sources.png")
    models = {"selection": run.cfg.model.name, "selection_fingerprint": run.base.fingerprint,
              "trained": run.trained[1].name, "trained_fingerprint": run.trained[0].fingerprint}
    md = render_curation(name=out_dir.name, run=res, selected=arm, settings_yaml=settings_yaml,
                         versions=versions or {}, models=models, plot=Path(plot).name, verdict=judged,
                         planted=planted, split=split)
    summary = {k: {**e.scores(), "metric": e.metric, "split": "test", "n": e.n, "counters": e.counters,
                   **({"lm_eval": e.lm_eval} if e.lm_eval else {})} for k, e in res.evals.items()}
    metrics = {"results": summary, "budget": sel.size, "selector": sel.selector, "models": models,
               "verdict": {k: v for k, v in judged.items() if k != "lines"}, "planted_recall": planted,
               "versions": versions or {}, "timings": res.timings, "artifacts": list(res.artifacts),
               "outputs": run_outputs(res, pool, files["test"])}
    files_out = {"settings.yaml": settings_yaml, "metrics.json": json.dumps(metrics, indent=1, default=str),
                 "quarantine.jsonl": jsonl_text([q for d in res.reads.values() for q in d.quarantine]),
                 **{f"predictions_{k}.jsonl": jsonl_text(e.predictions) for k, e in res.evals.items()}}
    report = publish_task(str(out_dir), out_dir.name, md, description="Winnow curation report", files=files_out,
                          tables={"results": ("base / random / selected on the test set", results_table(res.evals)),
                                  "quarantine": ("quarantined records per set and reason", quarantine_rows(res.reads)),
                                  "subset-sources": ("examples per source in each subset", rows)})
    return {"report": report, "out": str(out_dir), "selector": sel.selector, "budget": sel.size, "models": models, "verdict": judged,
            "warnings": guard_warnings({k: s.decontamination for k, s in res.subsets.items()}),
            "results": {k: e.scores() for k, e in res.evals.items()}}
