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

from flows.mixture import prepare as prepare_mixture
from flows.mixture import search as search_mixture
from flows.recipe import Run, evaluate, featurise, finetune, load_data, open_run, select, target_files
from flows.runtime import deployment_task_runner, versions
from tasks.experiment import reference_order_task, write_subset_task
from tasks.mixture import build_mixture_task
from tasks.report import artifact_key, with_inline_images
from winnow.budget import describe_budget, resolve_budget
from winnow.errors import ConfigError
from winnow.experiment.grid import Cell, ExperimentConfig, cell_row, load_experiment, plan_cells, quantile_sample
from winnow.experiment.plots import plot_budget, plot_distance, plot_quantiles
from winnow.experiment.stats import paired_vs_random, summarize
from winnow.hashing import file_digest
from winnow.keys import code_version, digest
from winnow.recipe import Arm, Recipe, step_code
from winnow.report import markdown_table
from winnow.selection.distance import subset_distances
from winnow.settings import WinnowSettings


def _save_json(path: Path, obj: dict[str, Any]) -> None:
    """Write-then-rename: a cell file exists whole or not at all (a crash never leaves half a result)."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(obj, indent=1))
    os.replace(tmp, path)


@flow(name="experiment", log_prints=True, task_runner=deployment_task_runner())
def experiment(config: str, out: str, settings: dict[str, Any], store_uri: str = "", work_dir: str = "",
               worker_threads: int = 0, budgets: list[int | float] | None = None) -> dict[str, Any]:
    """The grid of ``config`` (targets, representations, selectors, budgets, seeds) under ``settings`` (the
    experiment file's settings and overrides, resolved by the caller). ``budgets`` replaces the grid's."""
    logger = get_run_logger()
    t0 = time.time()
    exp = load_experiment(config)
    if budgets:
        exp = ExperimentConfig.model_validate({**exp.model_dump(), "budgets": budgets})
    run = open_run(settings, store_uri, work_dir, worker_threads)
    targets_read = []
    for t in exp.targets:  # data.target's layout and map, when set: canonical copies from here on
        run, files = target_files(run, query=t.query, test=t.test)
        targets_read.append(t.model_copy(update=files))
    exp = exp.model_copy(update={"targets": targets_read})
    cfg = run.cfg
    out_dir = Path(out).resolve()
    (out_dir / "cells").mkdir(parents=True, exist_ok=True)
    reps = list(dict.fromkeys([*exp.representations, *([exp.distance.representation] if exp.distance else [])]))
    ref_rep = exp.distance.representation if exp.distance else reps[0]
    cell_code = code_version(*step_code("features", "select", "finetune", "evaluate", *(["nice"] if "nice" in reps
                                                                                        else [])),
                             "winnow.experiment.grid", *(["winnow.mixture.build", "winnow.mixture.duet",
                                                          "winnow.mixture.taskpgm", "winnow.mixture.affinity"]
                                                         if exp.mixtures else []))

    cells = plan_cells(exp)
    done = {p.stem for p in (out_dir / "cells").glob("*.json")}
    fingerprints, refs, tables_by_target, targets, pool = {}, {}, {}, {t.name: t for t in exp.targets}, None
    mixtures: dict[str, dict[str, Any]] = {}
    for t in exp.targets:
        data = load_data(run, Recipe(pool=exp.pool, query=t.query, test=t.test, settings=cfg,
                                     arms=tuple(Arm(name=f"{r}_{b}", representation=r, budget=b)  # budgets checked
                                                for r in reps for b in exp.budgets)))    # before any training
        pool = data["pool"]
        fingerprints[t.name] = digest({  # a cell is keyed by this and its own settings (Cell.key)
            "pool": [pool["table"], pool["version"]], "query": file_digest(t.query), "test": file_digest(t.test),
            "settings": cfg.model_dump(mode="json", exclude={"selection", "tune"} | ({"nice"} if "nice" not in reps else set())
                                       | ({"mixture"} if not exp.mixtures else set())),
            "decontaminate": cfg.selection.decontaminate.model_dump(),
            "model": run.model_path, "code": cell_code, "metric": t.eval_metric})
        todo = [c for c in cells if c.target == t.name and c.key(fingerprints[t.name]) not in done]
        if not todo:
            continue
        tables_by_target[t.name] = featurise(run, data, reps, t.query)["tables"]
        ref = tables_by_target[t.name][ref_rep]
        refs[t.name] = np.load(reference_order_task(run.store_uri, ref["query"], ref["pool"], ref["weights"],
                                                    str(out_dir / "reference" / f"{t.name}.npz"))["path"])
        if any(c.representation == "mixture" for c in todo):  # domains, proxies and TaskPGM, once per target
            mixtures[t.name] = prepare_mixture(run, pool, out_dir / "mixture" / t.name, [t.test],
                                               out_dir / "mixture" / t.name)

    todo = [c for c in cells if c.key(fingerprints[c.target]) not in done]
    test_digests = {t.name: file_digest(t.test) for t in exp.targets}  # hashed once, not once per cell
    logger.info("%d cells in the grid, %d already finished, %d to run", len(cells), len(cells) - len(todo), len(todo))
    futures = {}
    for cell in todo:
        key = cell.key(fingerprints[cell.target])
        sub = _subset(run, cell, exp, pool, tables_by_target[cell.target], refs[cell.target], out_dir,
                      mixtures.get(cell.target))
        adapter = None if sub is None else finetune(run, sub, cfg.finetune.model_copy(update={"seed": cell.seed}))
        t = targets[cell.target]
        futures[evaluate(run, adapter, t.test, test_digests[cell.target], t.eval_metric)] = (cell, key, sub)

    progress = create_progress_artifact(0.0, key=artifact_key(f"experiment-{exp.name}", "cells"),
                                        description="experiment cells finished")
    with tqdm(total=len(futures), desc="cells", unit="cell") as bar:
        for n, fut in enumerate(as_completed(list(futures)), start=1):
            cell, key, sub = futures[fut]
            m = fut.result()
            _save_json(out_dir / "cells" / f"{key}.json", {
                "cell": cell_row(cell, {}), "key": key,
                "budget_size": 0 if sub is None else sub["size"],
                "metric": m["metric"], "score": m["score"], "response_loss": m["response_loss"],
                "distance": None if sub is None else sub["distance"],
                "excluded": 0 if sub is None else sub["excluded"],
                "scores": [p["score"] for p in m["predictions"]],
                "losses": [p["loss"] for p in m["predictions"]]})
            bar.update(1)
            update_progress_artifact(progress, 100.0 * n / len(futures))
            logger.info("cell %s %s budget %s seed %s%s: %s %.3f, response loss %.3f (%d/%d)", cell.target,
                        cell.method, cell.budget, cell.seed, f" quantile {cell.quantile}" if cell.quantile >= 0 else "",
                        m["metric"], m["score"], m["response_loss"], n, len(futures))

    return _publish(exp, cells, fingerprints, out_dir, ref_rep, len(todo), time.time() - t0)


def _subset(run: Run, cell: Cell, exp: ExperimentConfig, pool: dict[str, Any], tables: dict[str, dict[str, Any]],
            ref: Any, out_dir: Path, mixture: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """The cell's training subset (None for zero-shot), with its distance to the queries in the reference
    representation (mean distance to the nearest query)."""
    subsets = out_dir / "subsets" / cell.target
    test = next(t.test for t in exp.targets if t.name == cell.target)
    if cell.method == "zero_shot":
        return None
    rows_ref = ref["rows"]  # pool rows in the reference table's order
    if cell.representation == "mixture":
        assert mixture is not None
        sub = _mixture_subset(run, cell, exp, pool, mixture, subsets / "mixture")
        position = {str(i): p for p, i in enumerate(ref["ids"])}
        ids = [json.loads(line)["id"] for line in Path(sub["path"]).read_text().splitlines()]
        idx = np.array([position[i] for i in ids], dtype=np.int64)
    elif cell.method in ("full", "quantile"):
        if cell.method == "full":
            idx, path = np.arange(len(rows_ref)), subsets / "full.jsonl"
        else:
            d = exp.distance
            idx = np.asarray(quantile_sample(ref["order"], d.quantiles, cell.quantile, d.sample, cell.seed))
            path = subsets / f"quantile{cell.quantile}_s{cell.seed}.jsonl"
        sub = write_subset_task(run.store_uri, pool["table"], [int(r) for r in rows_ref[idx]], str(path), test,
                                run.cfg.selection.decontaminate)
        dropped = set(sub["excluded_rows"])
        idx = np.array([i for i in idx if int(rows_ref[i]) not in dropped], dtype=np.int64)
    else:
        n = resolve_budget(cell.budget, pool["table_rows"])
        arm = Arm(name=f"{cell.selector}_b{n}_s{cell.seed}", representation=cell.representation or exp.representations[0],
                  selector=cell.selector, budget=cell.budget, seed=cell.seed)
        sel = select(run, arm, pool["table"], tables, subsets / (cell.representation or "random"), test)
        ordering = pd.read_parquet(Path(sel["path"]).with_name(f"{arm.name}_ordering.parquet"), columns=["id", "row_idx"])
        row_of = dict(zip(ordering["id"], ordering["row_idx"]))
        position = {int(r): i for i, r in enumerate(rows_ref)}
        ids = [json.loads(line)["id"] for line in Path(sel["path"]).read_text().splitlines()]  # the subset, in order
        idx = np.array([position[int(row_of[i])] for i in ids], dtype=np.int64)
        sub = {**sel, "size": sel["budget"]}
    dist = subset_distances(ref["similarity"], idx)["nearest"]
    excluded = (sub.get("decontamination") or {}).get("excluded", 0)
    return {"path": sub["path"], "digest": sub["digest"], "size": sub["size"], "distance": float(dist),
            "excluded": excluded}


def _mixture_subset(run: Run, cell: Cell, exp: ExperimentConfig, pool: dict[str, Any], prep: dict[str, Any],
                    folder: Path) -> dict[str, Any]:
    """A mixture cell's subset: TaskPGM's proportions, or the best of a DUET search whose trials are scored on
    the target's query set (the test split stays unseen), filled at random inside each domain with the cell's
    seed. The trials train with the cell's seed, so the chosen mixture's adapter is found again by its key."""
    target = next(t for t in exp.targets if t.name == cell.target)
    domains = prep["domains"]
    n = resolve_budget(cell.budget, pool["table_rows"])
    room = sum(domains["sizes"].values())
    if n > room:
        raise ConfigError(f"budgets: {n} examples asked of the mixture cells, the domains' trainable parts hold {room} "
                          f"(mixture.holdout keeps {run.cfg.mixture.holdout:.0%} of each domain aside)")
    tree = run.cfg.model_dump(mode="json")
    tree["mixture"]["seed"] = tree["finetune"]["seed"] = cell.seed
    tree["eval"]["metric"] = target.eval_metric
    if target.metric == "response_loss":  # a loss target: DUET's trials are judged by the same (negated) loss
        tree["mixture"]["score"] = "neg_loss"
    cfg = WinnowSettings.model_validate(tree)
    if cell.selector == "taskpgm":
        props = prep["pgm"]["proportions"]
    else:
        study = f"{exp.name}-{cell.target}-b{n}-s{cell.seed}"
        storage = str(folder.parents[2] / "mixture.db")  # <out>/mixture.db: the experiment's own studies
        props = search_mixture(run, prep, study, storage, n, target.query, cfg=cfg).best()[0]
    m = cfg.mixture
    sub = build_mixture_task(domains["train"], props, n, cell.seed, str(folder / f"{cell.selector}_b{n}_s{cell.seed}.jsonl"),
                             prep["scores_path"], greedy=m.within == "greedy", drop_share=m.drop_share)
    return {**sub, "size": n, "decontamination": None}


def _publish(exp: ExperimentConfig, cells: list[Cell], fingerprints: dict[str, str], out_dir: Path, ref_rep: str,
             computed: int, seconds: float) -> dict[str, Any]:
    """Results table, statistics, plots and the report — from every cell of this grid, old and new."""
    records = [json.loads((out_dir / "cells" / f"{c.key(fingerprints[c.target])}.json").read_text()) for c in cells]
    df = pd.DataFrame([{**r["cell"], "key": r["key"], "budget_size": r["budget_size"], "metric": r["metric"],
                        "score": r["score"], "response_loss": r["response_loss"], "distance": r["distance"],
                        "excluded": r["excluded"]}
                       for r in records])
    df.to_parquet(out_dir / "results.parquet", index=False)
    df.to_csv(out_dir / "results.csv", index=False)
    per_example = {"score": {r["key"]: np.asarray(r["scores"]) for r in records},
                   "response_loss": {r["key"]: np.asarray(r["losses"]) for r in records}}

    parts = [f"# Winnow experiment: {exp.name}",
             f"{len(cells)} cells ({computed} computed in this run, {len(cells) - computed} reused), "
             f"{seconds / 60:.1f} min. Seeds {exp.seeds}; budgets {', '.join(describe_budget(b) for b in exp.budgets)}."]
    plots, tables = [], {}
    for t in exp.targets:
        d = df[df.target == t.name].rename(columns={"score": t.eval_metric})
        main = d[d.method != "quantile"]
        for metric in dict.fromkeys([t.metric, t.eval_metric, "response_loss"]):  # the target's own metric first
            summ = summarize(main, metric)
            paired = paired_vs_random(main, metric, per_example["response_loss" if metric == "response_loss" else "score"])
            summ.to_csv(out_dir / f"summary_{t.name}_{metric}.csv", index=False)
            paired.to_csv(out_dir / f"paired_{t.name}_{metric}.csv", index=False)
            tables[(t.name, metric)] = (summ, paired)
        summ, paired = tables[(t.name, t.metric)]
        base = summ[summ.method.isin(["zero_shot", "full"])]
        plots.append(plot_budget(summ[~summ.method.isin(["zero_shot", "full"])], base, t.metric, t.name,
                                 out_dir / f"budget_{t.name}.png"))
        plots.append(plot_distance(d[d.method != "zero_shot"], t.metric, t.name, ref_rep, out_dir / f"distance_{t.name}.png"))
        parts += [f"## Target {t.name} ({t.metric}, test split)",
                  "### Mean ± std over seeds\n" + markdown_table(_fmt(summ)),
                  "### Paired difference to random (same budget and seed)\n" + markdown_table(_fmt(paired)) +
                  "\n\ndiff = method − random" + (" (negative = lower loss = better)" if t.metric == "response_loss" else
                                                 "") + "; t: 95 % t-interval over seeds (wide with few seeds); boot: "
                  "95 % hierarchical bootstrap that resamples seeds and test examples (`boot_over` says which; with "
                  "one seed it reflects the test examples only).",
                  f"![{t.metric} vs budget]({Path(plots[-2]).name})", f"![distance vs {t.metric}]({Path(plots[-1]).name})"]
        for other in dict.fromkeys([t.eval_metric, "response_loss"]):
            if other != t.metric:
                parts.append(f"### Paired difference to random in {other}\n" +
                             markdown_table(_fmt(tables[(t.name, other)][1])))
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
