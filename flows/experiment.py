"""The experiment flow: does selection beat a random subset of the same size, on these targets?

For every target: featurise the pool and the queries in each representation (once, shard by shard), then run
every cell of the grid (select → LoRA fine-tune → evaluate) with fine-tunes and evaluations in parallel on
Dask. A finished cell is a JSON file under ``<out>/cells/`` named by its artifact key (``Cell.key``), so a
re-run (after a crash, a selector edit, or with a seed or budget added) computes only the cells that are
missing.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
from prefect import flow, get_run_logger
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.futures import as_completed
from tqdm.auto import tqdm

from flows.cells import cell_record, cell_subset
from flows.mixture_steps import prepare
from flows.run import open_run
from flows.runtime import deployment_task_runner, versions
from flows.validation import planted_recall, subset_utility
from flows.steps import evaluate, featurise, finetune, load_data, target_files
from tasks.report import publish_task
from tasks.selection import reference_order_task
from winnow.budget import resolve_budget
from winnow.experiment.grid import ExperimentConfig, load_experiment, plan_cells
from winnow.hashing import file_digest
from winnow.recipe import Arm, Recipe
from winnow.reports.verdict import experiment_verdicts
from winnow.reports.guard import experiment_guard_rows, guard_warnings
from winnow.reports.experiment import experiment_tables, frame_rows, render_experiment, results_frame
from winnow.reports.publish import ui_key
from winnow.steps import STEPS
from winnow.settings import WinnowSettings


@flow(name="experiment", log_prints=True, task_runner=deployment_task_runner())
def experiment(config: str, out: str, settings: WinnowSettings, store_uri: str = "", work_dir: str = "",
               worker_threads: int = 0, budgets: list[int | float] | None = None) -> dict[str, Any]:
    """The grid of ``config`` (targets, representations, selectors, budgets, seeds) under ``settings`` (the
    experiment file's settings and overrides, resolved by the caller). ``budgets`` replaces the grid's."""
    logger, t0 = get_run_logger(), time.time()
    exp = load_experiment(config)
    if budgets:
        exp = ExperimentConfig.model_validate({**exp.model_dump(), "budgets": budgets})
    run = open_run(settings, store_uri, work_dir, worker_threads)
    targets = []
    for t in exp.targets:  # data.target's layout and map, when set: canonical copies from here on
        run, files = target_files(run, query=t.query, test=t.test, **({"val": t.val} if t.val else {}))
        targets.append(t.model_copy(update=files))
    exp = exp.model_copy(update={"targets": targets})
    out_dir = Path(out).resolve()
    (out_dir / "cells").mkdir(parents=True, exist_ok=True)
    reps = list(dict.fromkeys([*exp.representations, *([exp.distance.representation] if exp.distance else [])]))
    ref_rep = exp.distance.representation if exp.distance else reps[0]
    slice_ = STEPS["cell"].slice(run.cfg) | ({"nice": run.cfg.nice} if "nice" in reps else {}) | (
        {"mixture": run.cfg.mixture} if exp.mixtures else {})
    cells, done = plan_cells(exp), {p.stem for p in (out_dir / "cells").glob("*.json")}
    keys, work = {}, {}
    for t in exp.targets:
        data, _ = load_data(run, Recipe(pool=exp.pool, query=t.query, test=t.test, settings=run.cfg,
                                        arms=tuple(Arm(name=f"{r}_{b}", representation=r, budget=b)  # budgets checked
                                                   for r in reps for b in exp.budgets)))  # before any training
        pool = data["pool"]
        inputs = {"pool": [pool.table, pool.version], "query": file_digest(t.query), "test": file_digest(t.test),
                  "metric": t.eval_metric, **({"ceiling": file_digest(t.ceiling)} if t.ceiling else {})}
        for c in (c for c in cells if c.target == t.name):
            keys[c] = c.key(inputs, slice_, (run.base, run.trained[0]), ref_rep)
        if all(keys[c] in done for c in cells if c.target == t.name) and exp.utility is None and not t.val:
            continue
        feats = featurise(run, data, reps, t.query)
        ref = feats.tables[ref_rep]
        ref_npz = np.load(reference_order_task(run.store_uri, ref.query, ref.pool, ref.weights,
                                               str(out_dir / "reference" / f"{t.name}.npz")))
        mix = (prepare(run, pool, out_dir / "mixture" / t.name, [t.test], out_dir / "mixture" / t.name)
               if any(c.representation == "mixture" and c.target == t.name for c in cells) else None)
        work[t.name] = (pool, feats, ref_npz, mix)

    todo = [c for c in cells if keys[c] not in done]
    logger.info("%d cells in the grid, %d already finished, %d to run", len(cells), len(cells) - len(todo), len(todo))
    splits = {t.name: (t.test, file_digest(t.test), t.eval_metric) for t in exp.targets}  # each hashed once
    futures = {}
    for cell in todo:
        pool, feats, ref_npz, mix = work[cell.target]
        made = cell_subset(run, cell, exp, pool, feats, ref_npz, out_dir, mix)
        adapter = None if made is None else finetune(run, made[0], run.cfg.finetune.model_copy(update={"seed": cell.seed}))
        futures[evaluate(run, adapter, *splits[cell.target])] = (cell, made, adapter)
    progress = create_progress_artifact(0.0, key=ui_key(f"experiment-{exp.name}", "cells"),
                                        description="experiment cells finished")
    with tqdm(total=len(futures), desc="cells", unit="cell") as bar:
        for n, fut in enumerate(as_completed(list(futures)), start=1):
            cell, made, adapter = futures[fut]
            e = fut.result()
            _save(out_dir / "cells" / f"{keys[cell]}.json", cell_record(run, cell, keys[cell], made, adapter, e,
                                                                       exp.pool, work[cell.target][0]))
            bar.update(1)
            update_progress_artifact(progress, 100.0 * n / len(futures))
            logger.info("cell %s %s budget %s seed %s%s: %s %.3f, response loss %.3f (%d/%d)", cell.target,
                        cell.method, cell.budget, cell.seed, f" quantile {cell.quantile}" if cell.quantile >= 0 else "",
                        e.metric, e.score, e.response_loss, n, len(futures))

    utility = [subset_utility(run, exp, t, work[t.name][0], work[t.name][1], out_dir) for t in exp.targets
               if exp.utility is not None]
    planted = {t.name: _planted(run, exp, t, *work[t.name][:2]) for t in exp.targets if t.val}
    records = [json.loads((out_dir / "cells" / f"{keys[c]}.json").read_text()) for c in cells]
    df, per_example = results_frame(records)
    tables = experiment_tables(exp, df, per_example)
    warnings = guard_warnings({f"{r['cell']['target']} {r['cell']['method']} seed {r['cell']['seed']}": r.get("guard")
                               for r in records})
    md = render_experiment(exp, df, tables, out_dir, ref_rep, len(todo), time.time() - t0, versions(),
                           guard_rows=experiment_guard_rows(records), warnings=warnings, utility=utility,
                           planted=planted)
    df.to_parquet(out_dir / "results.parquet", index=False)
    df.to_csv(out_dir / "results.csv", index=False)
    for (target, metric), (summ, paired) in tables.items():
        summ.to_csv(out_dir / f"summary_{target}_{metric}.csv", index=False)
        paired.to_csv(out_dir / f"paired_{target}_{metric}.csv", index=False)
    verdicts = experiment_verdicts(exp, tables, utility, planted)
    _save(out_dir / "verdicts.json", dict(zip([t.name for t in exp.targets], verdicts)))  # for winnow export
    first = exp.targets[0]
    report = publish_task(str(out_dir), f"experiment-{exp.name}", md, description="selection vs random: tables and plots",
                          tables={"paired": ("paired difference to random", frame_rows(tables[(first.name, first.metric)][1]))})
    return {"report": report, "results": str(out_dir / "results.parquet"), "cells": len(cells), "computed": len(todo),
            "warnings": warnings, "utility": utility, "planted": planted,
            "verdicts": verdicts,
            "paired": {f"{t}:{m}": frame_rows(p) for (t, m), (_, p) in tables.items()}}


def _planted(run: Any, exp: ExperimentConfig, target: Any, pool: Any, feats: Any) -> dict[str, dict[str, float]]:
    """Planted recall of every representation × selector at the grid's first budget: the target's validation
    rows planted in the pool, ranked by each selector; no fine-tune (``flows.validation.planted_recall``)."""
    n = resolve_budget(exp.budgets[0], pool.rows)
    arms = [Arm(name=f"{r}/{s}", representation=r, selector=s, budget=n, seed=exp.seeds[0])
            for r in exp.representations for s in exp.selectors]
    return planted_recall(run, target.val, arms, feats, {a.name: n for a in arms})


def _save(path: Path, obj: dict[str, Any]) -> None:
    """Write-then-rename: a cell file exists whole or not at all (a crash never leaves half a result)."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(obj, indent=1))
    os.replace(tmp, path)
