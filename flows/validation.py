"""Validation of a run's selection on the target's validation split (never test): planted recall and the
ceiling arm, and the verdict they add up to.

Planted recall featurises the validation rows as pool rows and asks each arm's selector to rank them among the
pool: no fine-tune. The ceiling arm trains on in-domain rows under the same recipe (``--ceiling``, or the
query rows repeated to the budget), so every arm reads as a share of what in-domain data would have given.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from prefect import get_run_logger

from flows.run import Run
from flows.steps import evaluate, finetune, run_feature_shards
from tasks.data import data_task
from tasks.features import plan_features_task
from tasks.selection import write_subset_task
from tasks.validation import planted_recall_task, pool_scores_task
from winnow.budget import resolve_budget
from winnow.data.loaders import load_records, write_jsonl
from winnow.hashing import file_digest
from winnow.recipe import Arm
from winnow.results import DataSet, Features, Subset
from winnow.selection.validation import utility_correlation, utility_subsets


def planted_recall(run: Run, val: str, arms: list[Arm], feats: Features, budgets: dict[str, int]
                   ) -> dict[str, dict[str, float]]:
    """Per arm (representation × selector): recall of the validation rows planted in the pool within the arm's
    budget, their mean rank percentile, and chance. Arms without a featurised representation are skipped."""
    planted = data_task(val, run.store_uri, "query")
    warm = feats.warmup
    out: dict[str, dict[str, float]] = {}
    plans = {}
    for arm in arms:
        rep = feats.tables.get(arm.representation)
        if rep is None or arm.selector in ("random", "all") or rep.representation == "nice":
            continue
        if rep.representation not in plans:
            plans[rep.representation] = plan_features_task(run.store_uri, planted.table, planted.rows, run.base,
                                                           run.worker_model, run.cfg.features, rep.representation,
                                                           warm.dir if warm and rep.weights else None, "adam")
    if plans:
        run_feature_shards(list(plans.values()))
    for arm in arms:
        rep = feats.tables.get(arm.representation)
        if rep is None or rep.representation not in plans:
            continue
        out[arm.name] = {"representation": rep.representation, "selector": arm.selector,
                         **planted_recall_task(run.store_uri, rep.query, rep.pool,
                                               plans[rep.representation].job.feature_table,
                                               selector=arm.selector, budget=budgets[arm.name],
                                               seed=arm.seed, weights=rep.weights)}
    return out


def ceiling_subset(spec: str, query: str, budget: int, out_dir: Path) -> Subset:
    """The ceiling arm's training set: the rows of ``spec`` (in-domain data the user has), or, without one, the
    query rows repeated in turn up to the budget. Exactly those rows, in that order, are what it trains on."""
    rows = load_records(spec or query).records
    if not spec:
        rows = [rows[i % len(rows)] for i in range(budget)]
    path = out_dir / "ceiling.jsonl"
    write_jsonl(path, [r.to_json() for r in rows])
    return Subset(name="ceiling", selector="ceiling", path=str(path), digest=file_digest(str(path)), size=len(rows),
                  pool_size=len(rows), sources={}, pool_sources={})


def subset_utility(run: Run, exp: Any, target: Any, pool: DataSet, feats: Features, out_dir: Path) -> dict[str, Any]:
    """The subset-utility correlation of one target (``exp.utility``): its subsets fine-tuned with one seed and
    evaluated on the target's validation split, and Spearman's ρ of their mean score against their metric
    (minus the loss for a response-loss target, so that higher is better on both axes)."""
    u = exp.utility
    rep = feats.of(u.representation)
    folder = out_dir / "utility" / target.name
    folder.mkdir(parents=True, exist_ok=True)
    npz = np.load(pool_scores_task(run.store_uri, rep.query, rep.pool, rep.weights, str(folder / "scores.npz")))
    scores, rows = npz["scores"], npz["rows"]
    k = resolve_budget(u.budget if u.budget is not None else exp.budgets[0], pool.rows)
    draws = utility_subsets(scores, k, u.subsets, u.seed)
    train = run.cfg.finetune.model_copy(update={"seed": u.seed})
    val_digest, jobs = file_digest(target.val), []
    for i, idx in enumerate(draws):
        sub = write_subset_task(run.store_uri, pool.table, [int(r) for r in rows[idx]], str(folder / f"subset{i}.jsonl"),
                                [target.test, target.val], run.cfg.selection.decontaminate)
        dropped = set(sub.excluded_rows)
        kept = np.array([j for j in idx if int(rows[j]) not in dropped], dtype=np.int64)
        jobs.append((float(scores[kept].mean()), evaluate(run, finetune(run, sub, train), target.val, val_digest,
                                                          target.eval_metric)))
    loss, logger, observed = target.metric == "response_loss", get_run_logger(), []
    for i, (p, f) in enumerate(jobs, start=1):  # in order: a line per subset as the fine-tunes finish
        e = f.result()
        observed.append(-e.response_loss if loss else e.score)
        logger.info("subset utility %s: subset %d/%d (mean score %.4f) -> %s %.3f, response loss %.3f on validation",
                    target.name, i, len(jobs), p, e.metric, e.score, e.response_loss)
    predicted, observed = np.array([p for p, _ in jobs]), np.array(observed)
    return {"target": target.name, "representation": u.representation, "budget": k,
            "metric": "−response_loss" if loss else target.eval_metric, **utility_correlation(predicted, observed),
            "points": [{"predicted": float(p), "observed": float(o)} for p, o in zip(predicted, observed)]}
