"""The end of a tuning study: its best configuration and random, re-run with each final seed and scored once on
the test split, the paired difference with both intervals (``winnow.stats``), the cost, and the report."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import yaml
from optuna.trial import TrialState

from flows.run import Run
from flows.runtime import versions
from flows.steps import evaluate, finetune, select
from tasks.report import publish_task
from winnow.budget import resolve_budget
from winnow.errors import WinnowError
from winnow.hashing import file_digest
from winnow.recipe import Arm
from winnow.reports.plots import plot_study
from winnow.reports.tune import paired_row, render_tune, test_rows, trial_rows
from winnow.results import DataSet, Features, Split
from winnow.stats import paired_difference
from winnow.tune.space import fine_tune_steps, grid_cost, trial_settings
from winnow.tune.study import dashboard_arg, importances


def finish(run: Run, st: optuna.Study, pool: DataSet, feats: Features, split: Split, out_dir: Path, storage: str,
           seconds: float) -> dict[str, Any]:
    cfg, tcfg = run.cfg, run.cfg.tune
    if not st.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        raise WinnowError(f"study {st.study_name!r}: no trial completed (all failed or were pruned); see the log")
    best = st.best_trial
    bcfg, brep = trial_settings(cfg, best.params)
    brun, digest = run.with_settings(bcfg), file_digest(split.test)
    futures: dict[str, dict[int, Any]] = {"best": {}, "random": {}}
    for seed in tcfg.final_seeds:
        for method, selector in (("best", bcfg.selection.selector), ("random", "random")):
            arm = Arm(name=f"{method}_s{seed}", representation=brep, selector=selector, budget=bcfg.selection.budget,
                      seed=seed)
            sub = select(brun, arm, pool.table, feats, out_dir / "final", split.test)
            adapter = finetune(brun, sub, bcfg.finetune.model_copy(update={"seed": seed}))
            futures[method][seed] = evaluate(brun, adapter, split.test, digest)
    evals = {m: [futures[m][s].result() for s in tcfg.final_seeds] for m in futures}
    # per seed × test example: the metric, the response loss, and what the study maximised (one of the two)
    per_ex = {m: {k: np.array([[p[k] for p in e.predictions] for e in evals[m]]) for k in ("score", "loss")}
              for m in evals}
    crit = {m: per_ex[m]["score"] if tcfg.score != "neg_loss" else -per_ex[m]["loss"] for m in per_ex}
    metric = evals["best"][0].metric
    paired = paired_row(metric if tcfg.score != "neg_loss" else "−response_loss",
                        paired_difference(crit["best"], crit["random"]))
    tests = test_rows(per_ex, metric, resolve_budget(bcfg.selection.budget, pool.rows))

    trials = st.get_trials(deepcopy=False)
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    grid = grid_cost(cfg, pool.rows)
    cost = [{"run": "this study", "configurations": len(finished),
             "fine-tune steps": int(sum(t.user_attrs.get("steps", 0) for t in trials))},
            {"run": "same trials without pruning", "configurations": len(finished),
             "fine-tune steps": sum(fine_tune_steps(trial_settings(cfg, t.params)[0], pool.rows) for t in finished)},
            {"run": f"full grid ({tcfg.grid_points} values per range)", "configurations": grid["configurations"],
             "fine-tune steps": grid["steps"]}]
    plot_study([t.user_attrs.get("steps", 0) for t in finished],
               [t.value if t.state == TrialState.COMPLETE else t.user_attrs.get("last_value") for t in finished],
               [t.state == TrialState.PRUNED for t in finished], grid["steps"],
               "score" if tcfg.score != "neg_loss" else "−response loss", out_dir / "best_so_far.png")
    imp = importances(st, tcfg.seed)
    rows = trial_rows(trials)
    md = render_tune(study=st.study_name, trials=trials, best=best, representation=brep, pruner=tcfg.pruner,
                     score=tcfg.score, split=split.how, seconds=seconds, tests=tests, paired=paired,
                     seeds=list(tcfg.final_seeds), cost=cost, importance=imp, storage=storage,
                     dashboard=dashboard_arg(storage), versions=versions())
    report = publish_task(str(out_dir), f"tune-{st.study_name}", md, report="tune.md",
                          description="tuning study: trials, importance, best on test",
                          files={"best.yaml": yaml.safe_dump(bcfg.model_dump(mode="json", exclude={"tune"}),
                                                             sort_keys=False),
                                 "trials.json": json.dumps(rows, indent=1)},
                          tables={"table": ("tuning trials", rows)})
    return {"report": report, "study": st.study_name, "best": best.params, "best_value": best.value, "test": tests,
            "paired": paired, "trials": rows, "cost": cost, "importance": imp}
