"""An experiment cell's training subset: selected, random, the full pool, a distance quantile, or a mixture.

Every subset is written the one way subsets are (``winnow.selection.subset``), left without copies of the
target's test items, and measured in the reference representation (mean distance to the nearest query).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from flows.mixture_steps import Prepared, search
from flows.run import Run
from flows.steps import select
from flows.validation import ceiling_subset
from tasks.mixture import build_mixture_task
from tasks.selection import write_subset_task
from winnow.budget import resolve_budget
from winnow.errors import ConfigError
from winnow.experiment.grid import Cell, ExperimentConfig, Target, cell_row, quantile_sample
from winnow.recipe import Arm
from winnow.reports.guard import guard_summary
from winnow.results import DataSet, Evaluation, Features, Subset
from winnow.selection.distance import subset_distances
from winnow.settings import WinnowSettings


def cell_subset(run: Run, cell: Cell, exp: ExperimentConfig, pool: DataSet, feats: Features, ref: Any,
                out_dir: Path, mixture: Prepared | None = None) -> tuple[Subset, float | None] | None:
    """The cell's training subset and its distance to the queries (None for zero-shot; no distance for the
    ceiling, whose rows are not pool rows)."""
    if cell.method == "zero_shot":
        return None
    target = next(t for t in exp.targets if t.name == cell.target)
    folder = out_dir / "subsets" / cell.target
    if cell.method == "ceiling":
        n = resolve_budget(cell.budget, pool.rows)
        folder = folder / f"ceiling_b{n}"
        folder.mkdir(parents=True, exist_ok=True)
        return ceiling_subset(target.ceiling or "", target.query, n, folder), None
    rows_ref = ref["rows"]  # pool rows in the reference table's order
    position = {int(r): i for i, r in enumerate(rows_ref)}
    if cell.representation == "mixture":
        assert mixture is not None
        sub = mixture_subset(run, cell, exp, target, pool, mixture, folder / "mixture")
        by_id = {str(i): p for p, i in enumerate(ref["ids"])}
        idx = np.array([by_id[i] for i in _ids(sub.path)], dtype=np.int64)
    elif cell.method in ("full", "quantile"):
        if cell.method == "full":
            idx, path = np.arange(len(rows_ref)), folder / "full.jsonl"
        else:
            d = exp.distance
            idx = np.asarray(quantile_sample(ref["order"], d.quantiles, cell.quantile, d.sample, cell.seed))
            path = folder / f"quantile{cell.quantile}_s{cell.seed}.jsonl"
        sub = write_subset_task(run.store_uri, pool.table, [int(r) for r in rows_ref[idx]], str(path), target.test,
                                run.cfg.selection.decontaminate)
        dropped = set(sub.excluded_rows)
        idx = np.array([i for i in idx if int(rows_ref[i]) not in dropped], dtype=np.int64)
    else:
        n = resolve_budget(cell.budget, pool.rows)
        arm = Arm(name=f"{cell.selector}_b{n}_s{cell.seed}", representation=cell.representation or
                  exp.representations[0], selector=cell.selector, budget=cell.budget, seed=cell.seed)
        sub = select(run, arm, pool.table, feats, folder / (cell.representation or "random"), target.test)
        ordering = pd.read_parquet(sub.ordering, columns=["id", "row_idx"])
        row_of = dict(zip(ordering["id"], ordering["row_idx"]))
        idx = np.array([position[int(row_of[i])] for i in _ids(sub.path)], dtype=np.int64)
    return sub, float(subset_distances(ref["similarity"], idx)["nearest"])


def _ids(path: str) -> list[str]:
    return [json.loads(line)["id"] for line in Path(path).read_text().splitlines()]


def mixture_subset(run: Run, cell: Cell, exp: ExperimentConfig, target: Target, pool: DataSet, prep: Prepared,
                   folder: Path) -> Subset:
    """A mixture cell's subset: TaskPGM's proportions, or the best of a DUET search whose trials are scored on
    the target's query set (the test split stays unseen), filled at random inside each domain with the cell's
    seed. The trials train with the cell's seed, so the chosen mixture's adapter is found again by its key."""
    n = resolve_budget(cell.budget, pool.rows)
    room = sum(prep.domains.sizes.values())
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
        props = prep.pgm["proportions"]
    else:
        study = f"{exp.name}-{cell.target}-b{n}-s{cell.seed}"
        storage = str(folder.parents[2] / "mixture.db")  # <out>/mixture.db: the experiment's own studies
        props = search(run.with_settings(cfg), prep, study, storage, n, target.query).best()[0]
    m = cfg.mixture
    return build_mixture_task(prep.domains.train, props, n, cell.seed, str(folder / f"{cell.selector}_b{n}_s{cell.seed}.jsonl"),
                              prep.scores_path, greedy=m.within == "greedy", drop_share=m.drop_share)


def cell_record(run: Run, cell: Cell, key: str, made: tuple[Subset, float | None] | None, adapter: Any,
                e: Evaluation, pool_file: str, pool: DataSet) -> dict[str, Any]:
    """A finished cell's file: its coordinates and measurements (what the tables read), and where its subset
    and adapter are, with the models and pool they came from (what ``winnow export`` hands on)."""
    sub = made[0] if made else None
    where = {} if sub is None else {
        "subset": sub.path, "digest": sub.digest, "selector": sub.selector, "pool_size": sub.pool_size,
        "sources": sub.sources, "adapter": adapter.result() if adapter is not None else "", "pool": pool_file,
        "pool_table": pool.table, "models": {"trained": run.trained[1].name,
                                             "trained_fingerprint": run.trained[0].fingerprint}}
    return {"cell": cell_row(cell, {}), "key": key, "budget_size": sub.size if sub else 0,
            "metric": e.metric, "score": e.score, "response_loss": e.response_loss,
            "distance": made[1] if made else None, "excluded": sub.excluded if sub else 0,
            "guard": guard_summary(sub.decontamination) if sub else None,
            "scores": [p["score"] for p in e.predictions], "losses": [p["loss"] for p in e.predictions], **where}
