"""The experiment flow: does selection beat a random subset of the same size, on these targets?

For every target: featurise the pool and the queries in each representation (once, shard by shard), then run
every cell of the grid — select → LoRA fine-tune → evaluate — with fine-tunes and evaluations in parallel on
Dask. A finished cell is a JSON file under ``<out>/cells/`` keyed by everything that decides its result, so a
re-run (after a crash, or with a seed or budget added) computes only the cells that are missing.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_progress_artifact, create_table_artifact, \
    update_progress_artifact
from prefect.futures import as_completed
from tqdm.auto import tqdm

from flows.featurize import featurise_all
from flows.runtime import deployment_task_runner, resolve_locations, versions
from tasks.data import ingest_task, validate_task
from tasks.evaluation import evaluate_task
from tasks.experiment import reference_order_task, write_subset_task
from tasks.model import prepare_model_task
from tasks.report import artifact_key, with_inline_images
from tasks.selection import select_task
from tasks.training import finetune_task
from winnow.budget import describe_budget
from winnow.store.ingest import table_name_for
from winnow.experiment.grid import Cell, ExperimentConfig, cell_row, load_experiment, plan_cells, quantile_sample
from winnow.experiment.plots import plot_budget, plot_distance, plot_quantiles
from winnow.experiment.stats import paired_vs_random, summarize
from winnow.hashing import file_digest
from winnow.report import markdown_table
from winnow.selection import resolve_budget
from winnow.selection.distance import subset_distances
from winnow.keys import code_version, digest
from winnow.settings import WinnowSettings, load_settings


# The library code a cell's result runs through: features, selection, training, evaluation.
CELL_CODE = ("winnow.features.shards", "winnow.selection.subset", "winnow.training.runs", "winnow.evaluation.evaluate",
             "winnow.experiment.grid")


def _save_json(path: Path, obj: dict[str, Any]) -> None:
    """Write-then-rename: a cell file exists whole or not at all (a crash never leaves half a result)."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(obj, indent=1))
    os.replace(tmp, path)


@flow(name="experiment", log_prints=True, task_runner=deployment_task_runner())
def experiment(config: str, out: str, overrides: list[str] | None = None, store_uri: str = "", work_dir: str = "",
               worker_threads: int = 1, budgets: list[int | float] | None = None) -> dict[str, Any]:
    """``budgets``, when given, replaces the config's budgets (the CLI's ``--budget``)."""
    logger = get_run_logger()
    t0 = time.time()
    exp = load_experiment(config)
    if budgets:
        exp = ExperimentConfig.model_validate({**exp.model_dump(), "budgets": budgets})
    cfg = load_settings(exp.settings, [*exp.overrides, *(overrides or [])])
    store_uri, work_dir = resolve_locations(store_uri, work_dir)
    out_dir = Path(out).resolve()
    (out_dir / "cells").mkdir(parents=True, exist_ok=True)
    worker_model = cfg.model.model_copy(update={"num_threads": worker_threads})
    model_path = prepare_model_task(cfg.model.name, str(Path(work_dir) / "models"))
    pool = ingest_task(exp.pool, store_uri, table_name_for("pool", exp.pool))
    n_pool = pool["table_rows"]
    reps = list(dict.fromkeys([*exp.representations, *([exp.distance.representation] if exp.distance else [])]))
    ref_rep = exp.distance.representation if exp.distance else reps[0]

    cells = plan_cells(exp)
    done = {p.stem for p in (out_dir / "cells").glob("*.json")}
    fingerprints, refs, tables_by_target, targets = {}, {}, {}, {t.name: t for t in exp.targets}
    for t in exp.targets:
        query = ingest_task(t.query, store_uri, table_name_for("query", t.query))
        validate_task(t.test)
        fingerprints[t.name] = digest({  # a cell is keyed by this and its own settings (Cell.key)
            "pool": [pool["table"], pool["version"]], "query": file_digest(t.query), "test": file_digest(t.test),
            "settings": cfg.model_dump(mode="json", exclude={"mixture", "selection"} | ({"nice"} if "nice" not in reps
                                                                                        else set())), "model": model_path,
            "code": code_version(*CELL_CODE, *(["winnow.nice.pipeline"] if "nice" in reps else []))})
        todo = [c for c in cells if c.target == t.name and c.key(fingerprints[t.name]) not in done]
        if not todo:
            continue
        tables_by_target[t.name] = featurise_all(cfg, {"pool": pool, "query": query}, reps, model_path, worker_model,
                                                 store_uri, work_dir, query_spec=t.query)
        ref = tables_by_target[t.name][ref_rep]
        refs[t.name] = np.load(reference_order_task(store_uri, ref["query"], ref["pool"], ref["weights"],
                                                    str(out_dir / "reference" / f"{t.name}.npz"))["path"])

    todo = [c for c in cells if c.key(fingerprints[c.target]) not in done]
    logger.info("%d cells in the grid, %d already finished, %d to run", len(cells), len(cells) - len(todo), len(todo))
    futures = {}
    for cell in todo:
        key = cell.key(fingerprints[cell.target])
        sub = _subset(cell, key, exp, cfg, pool, n_pool, tables_by_target[cell.target], refs[cell.target],
                      store_uri, out_dir)
        adapter = None
        if sub is not None:
            train = cfg.finetune.model_copy(update={"seed": cell.seed})
            adapter = finetune_task.submit(sub["path"], sub["digest"], model_path, worker_model, train,
                                           cfg.finetune_lora, work_dir)
        test = targets[cell.target].test
        fut = evaluate_task.submit(model_path, adapter, test, file_digest(test), worker_model, cfg.eval)
        futures[fut] = (cell, key, sub)

    progress = create_progress_artifact(0.0, key=artifact_key(f"experiment-{exp.name}", "cells"),
                                        description="experiment cells finished")
    with tqdm(total=len(futures), desc="cells", unit="cell") as bar:
        for n, fut in enumerate(as_completed(list(futures)), start=1):
            cell, key, sub = futures[fut]
            m = fut.result()
            _save_json(out_dir / "cells" / f"{key}.json", {
                "cell": cell_row(cell, {}), "key": key,
                "budget_size": 0 if sub is None else len(sub["sources"]),
                "exact_match": m["exact_match"], "response_loss": m["response_loss"],
                "distance": None if sub is None else sub["distance"],
                "hits": [float(p["hit"]) for p in m["predictions"]],
                "losses": [p.get("loss", float("nan")) for p in m["predictions"]]})
            bar.update(1)
            update_progress_artifact(progress, 100.0 * n / len(futures))
            logger.info("cell %s %s budget %s seed %s%s: exact match %.3f, response loss %.3f (%d/%d)", cell.target,
                        cell.method, cell.budget, cell.seed, f" quantile {cell.quantile}" if cell.quantile >= 0 else "",
                        m["exact_match"], m["response_loss"], n, len(futures))

    return _publish(exp, cells, fingerprints, out_dir, ref_rep, len(todo), time.time() - t0)


def _subset(cell: Cell, key: str, exp: ExperimentConfig, cfg: WinnowSettings, pool: dict[str, Any], n_pool: int,
            tables: dict[str, dict[str, Any]], ref: Any, store_uri: str, out_dir: Path) -> dict[str, Any] | None:
    """The cell's training subset (None for zero-shot), with its distance to the queries in the reference
    representation (mean distance to the nearest query)."""
    subsets = out_dir / "subsets" / cell.target
    ids_ref = list(ref["ids"])
    if cell.method == "zero_shot":
        return None
    if cell.method == "full":
        sub = write_subset_task(store_uri, pool["table"], ids_ref, str(subsets / "full.jsonl"))
        ids = ids_ref
    elif cell.method == "quantile":
        d = exp.distance
        idx = quantile_sample(ref["order"], d.quantiles, cell.quantile, d.sample, cell.seed)
        ids = [ids_ref[i] for i in idx]
        sub = write_subset_task(store_uri, pool["table"], ids, str(subsets / f"quantile{cell.quantile}_s{cell.seed}.jsonl"))
    else:
        rep = cell.representation or exp.representations[0]
        sub = select_task(store_uri, tables[rep]["query"], tables[rep]["pool"], pool["table"], selector=cell.selector,
                          budget=cell.budget, seed=cell.seed, out_dir=str(subsets / (cell.representation or "random")),
                          name=f"{cell.selector}_b{resolve_budget(cell.budget, n_pool)}_s{cell.seed}", weights=tables[rep]["weights"])
        ids = [json.loads(line)["id"] for line in Path(sub["path"]).read_text().splitlines()]
    position = {i: n for n, i in enumerate(ids_ref)}
    dist = subset_distances(ref["similarity"], np.array([position[i] for i in ids]))["nearest"]
    return {"path": sub["path"], "digest": sub["digest"], "sources": sub["sources"], "distance": float(dist)}


def _publish(exp: ExperimentConfig, cells: list[Cell], fingerprints: dict[str, str], out_dir: Path, ref_rep: str,
             computed: int, seconds: float) -> dict[str, Any]:
    """Results table, statistics, plots and the report — from every cell of this grid, old and new."""
    records = [json.loads((out_dir / "cells" / f"{c.key(fingerprints[c.target])}.json").read_text()) for c in cells]
    df = pd.DataFrame([{**r["cell"], "key": r["key"], "budget_size": r["budget_size"], "exact_match": r["exact_match"],
                        "response_loss": r["response_loss"], "distance": r["distance"]} for r in records])
    df.to_parquet(out_dir / "results.parquet", index=False)
    df.to_csv(out_dir / "results.csv", index=False)
    per_example = {r["key"]: np.asarray(r["hits"]) for r in records}
    per_example_loss = {r["key"]: np.asarray(r["losses"]) for r in records}

    parts = [f"# Winnow experiment: {exp.name}",
             f"{len(cells)} cells ({computed} computed in this run, {len(cells) - computed} reused), "
             f"{seconds / 60:.1f} min. Seeds {exp.seeds}; budgets {', '.join(describe_budget(b) for b in exp.budgets)}."]
    plots, tables = [], {}
    for t in exp.targets:
        d = df[df.target == t.name]
        main = d[d.method != "quantile"]
        for metric in dict.fromkeys([t.metric, "exact_match", "response_loss"]):
            summ = summarize(main, metric)
            paired = paired_vs_random(main, metric, per_example if metric == "exact_match" else per_example_loss)
            summ.to_csv(out_dir / f"summary_{t.name}_{metric}.csv", index=False)
            paired.to_csv(out_dir / f"paired_{t.name}_{metric}.csv", index=False)
            tables[(t.name, metric)] = (summ, paired)
        summ, paired = tables[(t.name, t.metric)]
        base = summ[summ.method.isin(["zero_shot", "full"])]
        plots.append(plot_budget(summ[~summ.method.isin(["zero_shot", "full"])], base, t.metric, t.name,
                                 out_dir / f"budget_{t.name}.png"))
        plots.append(plot_distance(d[d.method != "zero_shot"], t.metric, t.name, ref_rep, out_dir / f"distance_{t.name}.png"))
        parts += [f"## Target {t.name} ({t.metric})",
                  "### Mean ± std over seeds\n" + markdown_table(_fmt(summ)),
                  "### Paired difference to random (same budget and seed)\n" + markdown_table(_fmt(paired)) +
                  "\n\ndiff = method − random" + (" (negative = lower loss = better)" if t.metric == "response_loss" else
                                                 "") + "; t: 95 % t-interval over seeds (wide with few seeds); boot: "
                  "95 % paired bootstrap over test examples pooled over seeds.",
                  f"![{t.metric} vs budget]({Path(plots[-2]).name})", f"![distance vs {t.metric}]({Path(plots[-1]).name})"]
        other = "response_loss" if t.metric == "exact_match" else "exact_match"
        parts.append(f"### Paired difference to random in {other}\n" + markdown_table(_fmt(tables[(t.name, other)][1])))
        q = d[d.method == "quantile"]
        if len(q):
            qs = q.groupby("quantile")[t.metric].agg(mean="mean", std="std", n="count").reset_index()
            qs["target"] = t.name
            plots.append(plot_quantiles(qs, t.metric, t.name, ref_rep, out_dir / f"quantiles_{t.name}.png"))
            parts += [f"### Distance quantiles ({ref_rep} round-robin order, {exp.distance.sample} examples each)\n" +
                      markdown_table(_fmt(qs[["quantile", "mean", "std", "n"]])), f"![quantiles]({Path(plots[-1]).name})"]
    parts.append("Versions: " + ", ".join(f"{k} {v}" for k, v in versions().items()))
    md = "\n\n".join(parts) + "\n"
    (out_dir / "report.md").write_text(md)
    create_markdown_artifact(markdown=with_inline_images(md, out_dir), key=artifact_key(f"experiment-{exp.name}", "report"),
                             description="selection vs random: tables and plots")
    first = exp.targets[0]
    create_table_artifact(table=_fmt(tables[(first.name, first.metric)][1]),
                          key=artifact_key(f"experiment-{exp.name}", "paired"), description="paired difference to random")
    return {"report": str(out_dir / "report.md"), "results": str(out_dir / "results.parquet"), "cells": len(cells),
            "computed": computed,
            "paired": {f"{t}:{m}": _fmt(p) for (t, m), (_, p) in tables.items()}}


def _fmt(df: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()} for r in df.to_dict("records")]
