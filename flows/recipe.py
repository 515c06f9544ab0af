"""A recipe's whole chain (``winnow.recipe``): data → features → one subset per arm → fine-tunes → evaluations,
with the planner's forecast logged first. Curate and retrain run it as it is; the other flows compose the
same steps (``flows.steps``) around their own loops."""
from __future__ import annotations

import socket
import time
from pathlib import Path
from collections.abc import Callable
from typing import Any

from prefect import get_run_logger
from prefect.futures import PrefectFuture, as_completed
from tqdm.auto import tqdm

from flows.run import Run
from flows.runtime import worker_count
from flows.steps import evaluate, featurise, finetune, harness, load_data, select, status_of
from tasks.plan import lengths_task, noop_task, probe_task
from winnow.budget import resolve_budget
from winnow.hashing import file_digest
from winnow.plan import human
from winnow.plan import plan as plan_run
from winnow.recipe import Recipe
from winnow.results import DataSet, Evaluation, RecipeRun, Subset
from winnow.steps import STEPS


def train_and_evaluate(run: Run, recipe: Recipe, subsets: dict[str, Subset], others: dict[str, str] | None = None
                       ) -> tuple[dict[str, PrefectFuture], dict[str, PrefectFuture], dict[str, PrefectFuture]]:
    """Fine-tune every arm's subset and evaluate base (if the recipe asks), ``others`` (adapters to compare
    with, e.g. the previous retrain's) and every arm, all in parallel on the workers, on the test set and on
    the lm-evaluation-harness tasks of ``eval.lm_eval_tasks``."""
    seeds = {a.name: a.train_seed for a in recipe.arms}
    adapters = {name: finetune(run, sub, None if seeds.get(name) is None
                               else run.cfg.finetune.model_copy(update={"seed": seeds[name]}))
                for name, sub in subsets.items()}
    candidates: dict[str, Any] = {**({"base": None} if recipe.evaluate_base else {}), **(others or {}), **adapters}
    test_digest = file_digest(recipe.test)
    evals = {name: evaluate(run, ad, recipe.test, test_digest) for name, ad in candidates.items()}
    boards = {name: harness(run, ad) for name, ad in candidates.items()} if run.cfg.eval.lm_eval_tasks else {}
    return adapters, evals, boards


def results_of(evals: dict[str, PrefectFuture], boards: dict[str, PrefectFuture]) -> dict[str, Evaluation]:
    """Each model's evaluation, with its lm-evaluation-harness scores when there are any. Waits with a progress
    bar on the terminal and a line in the log per finished model (each waits for its fine-tune first)."""
    names = {fut: name for name, fut in evals.items()}
    logger = get_run_logger()
    with tqdm(total=len(names), desc="fine-tunes and evaluations", unit="model") as bar:
        for n, fut in enumerate(as_completed(list(names)), start=1):
            e = fut.result()
            bar.update(1)
            logger.info("evaluated %s: %s %.3f, response loss %.3f (%d/%d)", names[fut], e.metric, e.score,
                        e.response_loss, n, len(names))
    return {name: fut.result().with_harness(boards[name].result()) if name in boards else fut.result()
            for name, fut in evals.items()}


def run_recipe(run: Run, recipe: Recipe, out_dir: Path, rewarm: bool = False,
               others: dict[str, str] | None = None,
               extra: Callable[[dict[str, Subset]], dict[str, Subset]] | None = None) -> RecipeRun:
    """The whole chain for a recipe, and the artifact table (key and whether each was computed or reused).
    ``extra`` adds subsets trained and evaluated beside the arms' (the ceiling), given the arms' subsets."""
    clock = [time.time()]

    def lap() -> float:
        clock.append(time.time())
        return round(clock[-1] - clock[-2], 1)

    data, reads = load_data(run, recipe)
    timings = {"data": lap()}
    plan = predict_cost(run, recipe, data, reads, timings["data"])
    timings["plan"] = lap()
    feats = featurise(run, data, recipe.representations(), recipe.query, rewarm, budget=largest_budget(recipe, data))
    timings.update(features=lap(), warmup=feats.warmup_seconds)
    subsets = {arm.name: select(run, arm, data["pool"].table, feats, out_dir, recipe.test) for arm in recipe.arms}
    if extra is not None:
        subsets.update(extra(subsets))
    timings["select"] = lap()
    adapters, futures, boards = train_and_evaluate(run, recipe, subsets, others)
    evals = results_of(futures, boards)
    timings["train_evaluate"] = lap()
    warm, test = feats.warmup, file_digest(recipe.test)
    artifacts = [*([{"artifact": "warm-up", "key": warm.key, "status": warm.status}] if warm else []),
                 {"artifact": "features", "key": ", ".join(sorted({t for r in feats.tables.values()
                                                                    for t in (r.pool, r.query)})),
                  "status": f"{feats.computed} of {feats.shards} shards computed"},
                 *({"artifact": f"fine-tune {name}", "key": Path(fut.result()).parents[1].name,
                    "status": status_of(fut.state)} for name, fut in adapters.items()),
                 *({"artifact": f"evaluation {name}", "key": f"test {test}", "status": status_of(fut.state)}
                   for name, fut in futures.items())]
    get_run_logger().info("actual (s): %s; total %.1f s against %.1f s predicted", timings,
                          sum(v for k, v in timings.items() if k not in ("warmup", "plan")), plan["total"])
    return RecipeRun(data=data, reads=reads, features=feats, subsets=subsets,
                     adapters={k: f.result() for k, f in adapters.items()}, evals=evals, artifacts=tuple(artifacts),
                     timings=timings, plan=plan)


def predict_cost(run: Run, recipe: Recipe, data: dict[str, DataSet], reads: dict[str, Any],
                 data_seconds: float) -> dict[str, Any]:
    """The planner's prediction for this run (winnow.plan), from a probe on a worker (cached per model, settings
    and machine) and the task overhead measured now, logged before any training. The data phase has run already:
    its measured time stands in the prediction."""
    pool = data["pool"]
    cfg = run.cfg.model_copy(update={"model": run.worker_model})
    workers = worker_count()
    trained = run.trained_base
    get_run_logger().info("probing this machine on a few pool examples (model load, LoRA steps, features, "
                          "evaluation; cached per model, settings and machine)")
    rates = probe_task.submit(run.store_uri, pool.table, pool.rows, recipe.test, run.base,
                              STEPS["probe"].slice(cfg), work_dir=str(Path(run.work_dir) / "plan"), trained=trained,
                              host=socket.gethostname()).result()
    lengths = lengths_task(run.store_uri, pool.table, pool.rows, run.base, cfg.model)
    overhead = []
    for _ in range(3):  # a task's round trip through Prefect and the workers; the first may meet a cold worker
        t0 = time.time()
        noop_task.submit().result()
        overhead.append(time.time() - t0)
    plan = plan_run(rates, lengths, cfg, pool_rows=pool.rows, query_rows=data["query"].rows if "query" in data else 0,
                    test_rows=reads["test"].used if "test" in reads else 0, arms=len(recipe.arms), workers=workers,
                    cold=workers > 1, data_s=data_seconds, task_overhead_s=min(overhead))
    get_run_logger().info("predicted (s): %s; total %s", {k: v["seconds"] for k, v in plan["phases"].items()},
                          human(plan["total"]))
    return plan


def largest_budget(recipe: Recipe, data: dict[str, DataSet]) -> int:
    """The largest budget of the recipe's arms, in rows: what a prefilter cascade must leave room for."""
    return max((resolve_budget(a.budget, data["pool"].rows) for a in recipe.arms), default=0)
