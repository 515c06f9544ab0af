"""The runner: each step of ``winnow.steps`` as the Prefect tasks that compute it on the flow's task runner.

Plain helpers, not subflows, so the tasks run on the *calling* flow's Dask runner. Every helper takes the
``Run`` and hands its task only the step's settings slice; each returns a typed handle (``winnow.results``),
never arrays. ``RUNNERS`` maps every registered step to its helper (a test keeps the two in step).
"""
from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from prefect import get_run_logger, unmapped
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.futures import PrefectFuture, as_completed
from tqdm.auto import tqdm

from flows.nice import run_nice
from flows.run import Run
from tasks.data import data_task, target_file_task, validate_task
from tasks.evaluation import evaluate_task, lm_eval_task
from tasks.features import compact_task, feature_rows_task, feature_shard_task, plan_features_task
from tasks.selection import prefilter_task, select_task
from tasks.training import feature_space_task, finetune_task, record_space_task, warmup_task
from winnow.budget import resolve_budget
from winnow.errors import ConfigError
from winnow.registry import shard_representation
from winnow.hashing import file_digest
from winnow.recipe import Arm, Recipe
from winnow.results import DataSet, FeaturePlan, Features, FeatureTables, ReadReport, Subset, Warmup
from winnow.selection.cascade import candidate_rows
from winnow.settings import TrainSettings
from winnow.store.ingest import is_table_spec


def status_of(state: Any) -> str:
    """How a task's artifact came about: "reused" (a cached result, same key) or "computed" (this run made it)."""
    return "reused" if state.name == "Cached" else "computed"


# ---------------------------------------------------------------------------------------------------- data
def target_files(run: Run, **specs: str) -> tuple[Run, dict[str, str]]:
    """The query, validation and test files as every later step reads them. With ``data.target`` at its default
    they are handed on as given; with a layout or column map, each is read once with them and handed on as a
    canonical copy, and how the original was read stays on the run (the report counts the user's file)."""
    layout = run.cfg.data.target
    if layout.is_default():
        return run, specs
    reads, paths = dict(run.reads), {}
    for role, spec in specs.items():
        if not spec or is_table_spec(spec, run.store_uri):
            paths[role] = spec
            continue
        res = target_file_task(spec, role, str(Path(run.work_dir) / "targets"), layout)
        paths[role], reads[res.path] = res.path, res.read
    return replace(run, reads=reads), paths


def load_data(run: Run, recipe: Recipe) -> tuple[dict[str, DataSet], dict[str, ReadReport]]:
    """Pool and query into the store (or a store table by name), the test set validated; every arm's budget is
    checked against the pool here, before any training. Returns the data sets and every set's read report."""
    logger = get_run_logger()
    data = {"pool": data_task(recipe.pool, run.store_uri, "pool", run.cfg.data)}
    if recipe.query and recipe.needs_query_table():
        data["query"] = data_task(recipe.query, run.store_uri, "query")
    reads = {role: run.reads.get(spec) or data[role].read for role, spec in (("pool", recipe.pool),
                                                                             ("query", recipe.query)) if role in data}
    if recipe.test:
        reads["test"] = run.reads.get(recipe.test) or validate_task(recipe.test)
    for arm in recipe.arms:
        resolve_budget(arm.budget, data["pool"].rows, name="selection.budget")
    for role, d in data.items():
        if d.not_in_file:
            logger.warning("%s table %s holds %d ids that %s lacks (tables are append-only); they take part",
                           role, d.table, d.not_in_file, d.read.path)
    logger.info("data (in, used, quarantined): %s", {k: (v.n_in, v.used, v.quarantined) for k, v in reads.items()})
    return data, reads


# ------------------------------------------------------------------------------------------ warm-up, features
def warm_up(run: Run, pool: DataSet, rewarm: bool = False) -> Warmup:
    """LESS's warm-up, once per feature space: a pool that grew keeps the warm-up it was first featurised under
    (so only its new rows need features) unless ``rewarm`` starts a new space on this table version."""
    cfg = run.cfg
    space = feature_space_task(run.store_uri, pool.table, pool.version, run.base, cfg.model, cfg.warmup, run.work_dir,
                               rewarm)
    state = warmup_task(run.store_uri, pool.table, space.version, run.base, cfg.model, cfg.warmup, space.dir,
                        return_state=True)
    if not space.kept:
        record_space_task(run.store_uri, space, pool.table)
    status = status_of(state)
    if space.kept and space.version != pool.version:
        status = (f"kept: the feature space of table version {space.version} (the pool is at version "
                  f"{pool.version}; --rewarm starts a new one)")
    return replace(state.result(), key=space.key, space=space.space, status=status)


def run_feature_shards(plans: list[FeaturePlan], rows: list[list[int]] | None = None) -> tuple[int, int]:
    """Submit every plan's row ranges (or, for one plan, a cascade's explicit row chunks) and wait; returns how
    many shards ran and how many of them computed anything."""
    logger = get_run_logger()
    futures = ([f for p in plans for f in feature_shard_task.map(unmapped(p.job), [r[0] for r in p.ranges],
                                                                 [r[1] for r in p.ranges])]
               if rows is None else list(feature_rows_task.map(unmapped(plans[0].job), rows)))
    progress_id = create_progress_artifact(0.0, key="feature-shards", description="feature shards finished")
    computed = 0
    with tqdm(total=len(futures), desc="feature shards", unit="shard") as bar:
        for done, fut in enumerate(as_completed(futures), start=1):
            res = fut.result()
            fresh = res.computed > 0 and fut.state.name != "Cached"
            computed += fresh
            bar.update(1)
            update_progress_artifact(progress_id, 100.0 * done / len(futures))
            logger.info("shard %s[%d:%d] %s (%d/%d)", res.table, res.start, res.end,
                        "computed" if fresh else "already done", done, len(futures))
    if computed:
        compact_task(plans[0].job.store_uri, [p.job.feature_table for p in plans])
    return len(futures), computed


def featurise(run: Run, data: dict[str, DataSet], representations: list[str], query_spec: str = "",
              rewarm: bool = False, budget: int = 0) -> Features:
    """Feature tables per representation: pool rows Adam-preconditioned, query rows plain (LESS), shard by shard
    on the workers; shards finished before (by any run on the same store) are skipped. ``nice`` pairs the LESS
    pool features with NICE's query directions for ``nice.metric``, sampled from ``query_spec``'s prompts.

    With ``selection.prefilter`` on and the largest ``budget`` (rows) given, pool gradients are computed only for
    a cascade's candidates (``winnow.selection.cascade``); flows that need every row's gradients pass no budget."""
    cfg, t0, logger = run.cfg, time.time(), get_run_logger()
    if "nice" in representations and not (cfg.nice.metric and query_spec):
        raise ConfigError("nice.metric: the 'nice' representation needs the target's reward (nice.metric=...)")
    reps = list(dict.fromkeys(shard_representation(r) for r in representations))
    pre = cfg.selection.prefilter
    cascading = pre.representation != "none" and "gradients" in reps and "pool" in data
    if cascading and not budget:
        logger.warning("selection.prefilter: this flow needs gradient features of every pool row; no cascade")
        cascading = False
    if cascading:
        reps = list(dict.fromkeys([pre.representation, *reps]))
    warm = warm_up(run, data["pool"], rewarm) if "gradients" in reps else None
    warm_seconds = round(time.time() - t0, 1)
    plans: dict[tuple[str, str], FeaturePlan] = {}
    for rep in reps:
        for role, kind in (("pool", "adam"), ("query", "sgd")):
            if role in data:
                plans[rep, role] = plan_features_task(run.store_uri, data[role].table, data[role].rows, run.base,
                                                      run.worker_model, cfg.features, rep, warm.dir if warm else None,
                                                      kind)
    deferred = plans.get(("gradients", "pool")) if cascading else None
    shards, computed = run_feature_shards([p for p in plans.values() if p is not deferred])
    tables = {rep: FeatureTables(rep, plans[rep, "pool"].job.feature_table,
                                 plans[rep, "query"].job.feature_table if (rep, "query") in plans else "",
                                 warm.weights if rep == "gradients" and warm else None) for rep in reps}
    cascade = None
    if deferred is not None:
        cheap = tables[pre.representation]
        cascade = prefilter_task(run.store_uri, cheap.query, cheap.pool, budget=budget, factor=pre.factor,
                                 tail=pre.tail, selector=pre.selector, seed=cfg.selection.seed)
        rows = candidate_rows(run.store_uri, cascade.table)
        size = cfg.features.shard_size
        more, fresh = run_feature_shards([deferred], [rows[i:i + size] for i in range(0, len(rows), size)])
        shards, computed = shards + more, computed + fresh
        tables["gradients"] = replace(tables["gradients"], cascade=cascade.table, prefilter=pre.representation)
        logger.info("cascade: %s ranked %d rows; gradient features for %d candidates (%d from the tail)",
                    pre.representation, cascade.pool_rows, cascade.candidates, cascade.tail_rows)
    nice = None
    if "nice" in representations:
        assert warm is not None
        nice = run_nice(run, query_spec, warm.dir)
        tables["nice"] = replace(tables["gradients"], representation="nice", query=nice["table"])
    return Features(tables={r: t for r, t in tables.items() if t.query}, warmup=warm, shards=shards,
                    computed=computed, projector=cfg.features.projector, dim=cfg.features.proj_dim,
                    seconds=round(time.time() - t0, 1), warmup_seconds=warm_seconds, cascade=cascade, nice=nice)


# ------------------------------------------------------------------------------------- select, train, evaluate
def select(run: Run, arm: Arm, pool_table: str, feats: Features, out_dir: Path | str,
           held_out: str | list[str] | None = None) -> Subset:
    """One arm's ordering and subset file (``random`` draws over the rows of the first representation's table).
    Given the ``held_out`` split (or splits) it will be scored on, the subset leaves out copies of their items
    (before any fine-tune). Under a prefilter cascade a targeted arm orders the candidates, while ``random`` and
    ``all`` draw over the whole pool (the prefilter's complete table): the baseline is never limited by it."""
    rep = feats.of(arm.representation)
    if rep.cascade and arm.selector in ("random", "all"):
        rep = feats.tables[rep.prefilter]
    return select_task(run.store_uri, rep.query, rep.pool, pool_table, selector=arm.selector, budget=arm.budget,
                       seed=arm.seed, out_dir=str(out_dir), name=arm.name, weights=rep.weights, held_out=held_out,
                       decontaminate=run.cfg.selection.decontaminate, cascade=rep.cascade)


def finetune(run: Run, subset: Subset, train: TrainSettings | None = None) -> PrefectFuture:
    """A LoRA adapter on a subset, submitted to the workers; keyed by the subset's content (``finetune_key``)."""
    base, model = run.trained
    return finetune_task.submit(subset.path, subset.digest, base, model, train or run.cfg.finetune,
                                run.cfg.finetune_lora, run.work_dir)


def evaluate(run: Run, adapter: PrefectFuture | str | None, split: str, split_digest: str = "",
             metric: str = "") -> PrefectFuture:
    """Base (``adapter=None``) or base + adapter on a held-out split, keyed by the split's content (pass its
    digest when evaluating many models on one split, so the file is hashed once). ``metric`` replaces
    ``eval.metric`` (an experiment's targets each have their own)."""
    settings = run.cfg.eval if not metric else run.cfg.eval.model_copy(update={"metric": metric})
    base, model = run.trained
    return evaluate_task.submit(base, adapter, split, split_digest or file_digest(split), model, settings)


def harness(run: Run, adapter: PrefectFuture | str | None) -> PrefectFuture:
    """lm-evaluation-harness's tasks (``eval.lm_eval_tasks``) on one model."""
    include = run.cfg.eval.lm_eval_include
    base, model = run.trained
    return lm_eval_task.submit(base, adapter, model, run.cfg.eval, file_digest(include) if include else "")


RUNNERS = {"data": load_data, "warmup": warm_up, "features": featurise, "nice": run_nice, "select": select,
           "finetune": finetune, "evaluate": evaluate, "harness": harness}
