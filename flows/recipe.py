"""The one place where a recipe's steps (``winnow.recipe``) become Prefect tasks on the flow's task runner.

Every flow — curate, compare, experiment, mixture, retrain — opens a ``Run`` (settings validated once, the store,
the work folder, the model), then calls these steps; none wires warm-up, features, selection, fine-tunes or
evaluations by hand. Plain helpers, not subflows, so the tasks run on the *calling* flow's Dask runner, and each
step returns handles (table names, paths, counts, digests), never arrays.
"""
from __future__ import annotations

import socket
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from prefect import get_run_logger, unmapped
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.futures import PrefectFuture, as_completed
from tqdm.auto import tqdm

from flows.env import EnvSettings
from flows.nice import run_nice
from flows.runtime import resolve_locations, worker_count
from tasks.data import data_task, target_file_task, validate_task
from tasks.evaluation import evaluate_task, lm_eval_task
from tasks.features import compact_task, feature_rows_task, feature_shard_task, plan_features_task
from tasks.model import prepare_model_task
from tasks.plan import lengths_task, noop_task, probe_task
from tasks.selection import prefilter_task, select_task
from tasks.training import feature_space_task, finetune_task, record_space_task, warmup_task
from winnow.budget import resolve_budget
from winnow.errors import ConfigError
from winnow.hashing import file_digest
from winnow.plan import human
from winnow.plan import plan as plan_run
from winnow.recipe import Arm, Recipe
from winnow.selection.cascade import candidate_rows
from winnow.settings import ModelSettings, TrainSettings, WinnowSettings, build_settings
from winnow.store.ingest import is_table_spec


@dataclass(frozen=True)
class Run:
    """What every step of one flow run shares: validated settings, where things live, the model."""

    cfg: WinnowSettings
    store_uri: str
    work_dir: str
    model_path: str
    worker_model: ModelSettings  # cfg.model with the workers' thread count
    reads: dict[str, dict[str, Any]] = field(default_factory=dict)  # canonical target file -> how its original read
    train_model_path: str = ""  # finetune.model (LESS-T), trained and evaluated; "" = model_path
    train_model: ModelSettings | None = None  # worker_model with finetune.model's name

    @property
    def trained(self) -> tuple[str, ModelSettings]:
        """The model the fine-tunes train and the evaluations score: finetune.model, else the selection model."""
        return self.train_model_path or self.model_path, self.train_model or self.worker_model


def open_run(settings: dict[str, Any], store_uri: str = "", work_dir: str = "", worker_threads: int = 0) -> Run:
    """The one way settings reach a flow: a (partial) settings mapping, validated here once. Empty locations,
    a missing ``model.name`` and ``worker_threads=0`` come from the environment (runs started by a deployment)."""
    env = EnvSettings()
    store_uri, work_dir = resolve_locations(store_uri, work_dir)
    tree = {**settings, "model": {"name": env.model, **settings.get("model", {})}}
    cfg = build_settings(tree)
    model_path = prepare_model_task(cfg.model.name, str(Path(work_dir) / "models"))
    other = cfg.finetune.model if cfg.finetune.model and cfg.finetune.model != cfg.model.name else ""
    train_path = prepare_model_task(other, str(Path(work_dir) / "models")) if other else ""
    return run_at(cfg, {"store_uri": store_uri, "work_dir": work_dir, "model_path": model_path,
                        "train_model_path": train_path, "threads": worker_threads or env.threads_per_worker})


def locations_of(run: Run) -> dict[str, Any]:
    """What a subflow needs to rebuild the run (its parameters must be plain data): ``run_at`` takes it back."""
    return {"store_uri": run.store_uri, "work_dir": run.work_dir, "model_path": run.model_path,
            "train_model_path": run.train_model_path, "threads": run.worker_model.num_threads}


def run_at(cfg: WinnowSettings, loc: dict[str, Any]) -> Run:
    """A run of ``cfg`` over models already prepared at ``loc`` (``locations_of``)."""
    worker_model = cfg.model.model_copy(update={"num_threads": loc["threads"]})
    train_model = worker_model.model_copy(update={"name": cfg.finetune.model}) if loc["train_model_path"] else None
    return Run(cfg, loc["store_uri"], loc["work_dir"], loc["model_path"], worker_model,
               train_model_path=loc["train_model_path"], train_model=train_model)


# ---------------------------------------------------------------------------------------------------- data
def target_files(run: Run, **specs: str) -> tuple[Run, dict[str, str]]:
    """The query, validation and test files as every later step reads them. With ``data.target`` at its default
    they are handed on as given (each reader detects layouts itself); with a layout or column map, each is read
    once with them and handed on as a canonical copy under the work folder, and how the original was read stays
    on the run, so the report counts the user's file, not the copy. A store table name is handed on as it is."""
    layout = run.cfg.data.target
    if layout.is_default():
        return run, specs
    reads, paths = dict(run.reads), {}
    for role, spec in specs.items():
        if not spec or is_table_spec(spec, run.store_uri):
            paths[role] = spec
            continue
        res = target_file_task(spec, role, str(Path(run.work_dir) / "targets"), layout)
        paths[role] = res["canonical"]
        reads[res["canonical"]] = res
    return replace(run, reads=reads), paths


_READ_KEYS = ("path", "in", "used", "quarantined", "quarantine", "read_as", "layouts", "defaulted", "reasons")


def load_data(run: Run, recipe: Recipe) -> dict[str, dict[str, Any]]:
    """Pool and query into the store (or a store table by name), the test set validated; every arm's budget is
    checked against the pool here, before any training."""
    logger = get_run_logger()
    data = {"pool": data_task(recipe.pool, run.store_uri, "pool", run.cfg.data)}
    if recipe.query and recipe.needs_query_table():
        data["query"] = data_task(recipe.query, run.store_uri, "query")
        if recipe.query in run.reads:  # a canonical copy: report the user's file
            data["query"] = {**data["query"], **{k: run.reads[recipe.query][k] for k in _READ_KEYS}}
    if recipe.test:
        data["test"] = run.reads.get(recipe.test) or validate_task(recipe.test)
    for arm in recipe.arms:
        resolve_budget(arm.budget, data["pool"]["table_rows"], name="selection.budget")
    for role in ("pool", "query"):
        if data.get(role, {}).get("ids_not_in_file"):
            logger.warning("%s table %s holds %d ids that %s lacks (tables are append-only); they take part",
                           role, data[role]["table"], data[role]["ids_not_in_file"], data[role]["path"])
    logger.info("data (in, used, quarantined): %s", {k: (v["in"], v["used"], v["quarantined"]) for k, v in data.items()})
    return data


# ------------------------------------------------------------------------------------------ warm-up, features
def status_of(state: Any) -> str:
    """How a task's artifact came about, for reports: "reused" (a cached result, same artifact key) or
    "computed" (this run made it)."""
    return "reused" if state.name == "Cached" else "computed"


def warm_up(run: Run, pool: dict[str, Any], rewarm: bool = False) -> dict[str, Any]:
    """LESS's warm-up, once per feature space: a pool that grew keeps the warm-up it was first featurised under
    (so only its new rows need features) unless ``rewarm`` starts a new space on this table version."""
    cfg = run.cfg
    space = feature_space_task(run.store_uri, pool["table"], pool["version"], run.model_path, cfg.model, cfg.warmup,
                               run.work_dir, rewarm)
    state = warmup_task(run.store_uri, pool["table"], space["version"], run.model_path, cfg.model, cfg.warmup,
                        space["dir"], return_state=True)
    if not space["kept"]:
        record_space_task(run.store_uri, space, pool["table"])
    status = status_of(state)
    if space["kept"] and space["version"] != pool["version"]:
        status = (f"kept: the feature space of table version {space['version']} (the pool is at version "
                  f"{pool['version']}; --rewarm starts a new one)")
    return {**state.result(), "key": space["key"], "space": space["space"], "version": space["version"],
            "status": status}


def run_feature_shards(plans: list[dict[str, Any]]) -> dict[str, int]:
    """Submit every plan's work — row ranges, or a cascade's explicit row chunks (``plan["rows"]``) — and wait;
    returns how many shards ran and how many were already done."""
    logger = get_run_logger()
    futures = [f for p in plans for f in (
        feature_rows_task.map(unmapped(p["job"]), p["rows"]) if "rows" in p else
        feature_shard_task.map(unmapped(p["job"]), [r[0] for r in p["ranges"]], [r[1] for r in p["ranges"]]))]
    progress_id = create_progress_artifact(0.0, key="feature-shards", description="feature shards finished")
    computed = 0
    with tqdm(total=len(futures), desc="feature shards", unit="shard") as bar:
        for done, fut in enumerate(as_completed(futures), start=1):
            res = fut.result()
            fresh = res["computed"] > 0 and fut.state.name != "Cached"
            computed += fresh
            bar.update(1)
            update_progress_artifact(progress_id, 100.0 * done / len(futures))
            logger.info("shard %s[%d:%d] %s (%d/%d)", res["table"], res["start"], res["end"],
                        "computed" if fresh else "already done", done, len(futures))
    if computed:
        compact_task(plans[0]["job"].store_uri, [p["job"].feature_table for p in plans])
    return {"shards": len(futures), "computed": computed, "skipped": len(futures) - computed}


def featurise(run: Run, data: dict[str, Any], representations: list[str], query_spec: str = "",
              rewarm: bool = False, budget: int = 0) -> dict[str, Any]:
    """Feature tables ``{"tables": {representation: {"pool", "query", "weights"[, "cascade", "prefilter"]}},
    "warmup", "nice", "cascade", shard counts}``: pool rows Adam-preconditioned, query rows plain (LESS), shard by
    shard on the workers; shards finished before (by any run on the same store) are skipped.

    ``nice`` pairs the LESS pool features with NICE's query directions for ``nice.metric``, sampled from
    ``query_spec``'s prompts, so it compares with the other representations cell for cell.

    With ``selection.prefilter`` on and the largest ``budget`` (rows) given, the pool's gradient features are
    computed only for a cascade's candidates: the cheap representation first (whole pool), then its ranking,
    then gradients for the top ``factor × budget`` and a random tail (winnow.selection.cascade). Flows that need
    every row's gradients (experiment, mixture, tune) pass no budget and featurise the whole pool."""
    cfg, t0 = run.cfg, time.time()
    logger = get_run_logger()
    if "nice" in representations and not (cfg.nice.metric and query_spec):
        raise ConfigError("nice.metric: the 'nice' representation needs the target's reward (nice.metric=...)")
    shard_reps = list(dict.fromkeys(["gradients" if r == "nice" else r for r in representations]))
    pre = cfg.selection.prefilter
    cascading = pre.representation != "none" and "gradients" in shard_reps and "pool" in data
    if cascading and not budget:
        logger.warning("selection.prefilter: this flow needs gradient features of every pool row; no cascade")
        cascading = False
    if cascading:
        shard_reps = list(dict.fromkeys([pre.representation, *shard_reps]))
    warm = warm_up(run, data["pool"], rewarm) if "gradients" in shard_reps else None
    warm_seconds = round(time.time() - t0, 1)
    tables: dict[str, dict[str, Any]] = {}
    plans, deferred = [], None
    for rep in shard_reps:
        tables[rep] = {"weights": warm["weights"] if rep == "gradients" else None}
        tables[rep]["query"] = None  # NICE alone reads no query features of its own
        for role, kind in (("pool", "adam"), ("query", "sgd")):
            if role not in data:
                continue
            plan = plan_features_task(run.store_uri, data[role]["table"], data[role]["table_rows"], run.model_path,
                                      run.worker_model, cfg.features, rep, warm["dir"] if warm else None, kind)
            tables[rep][role] = plan["job"].feature_table
            if cascading and rep == "gradients" and role == "pool":
                deferred = plan  # its rows come from the cascade, once the cheap features exist
            else:
                plans.append(plan)
    shards = run_feature_shards(plans)
    cascade = None
    if deferred is not None:
        cheap = tables[pre.representation]
        cascade = prefilter_task(run.store_uri, cheap["query"], cheap["pool"], budget=budget, factor=pre.factor,
                                 tail=pre.tail, selector=pre.selector, seed=cfg.selection.seed)
        rows = candidate_rows(run.store_uri, cascade["table"])
        size = cfg.features.shard_size
        grads = run_feature_shards([{**deferred, "rows": [rows[i:i + size] for i in range(0, len(rows), size)]}])
        shards = {k: shards[k] + grads[k] for k in shards}
        tables["gradients"].update(cascade=cascade["table"], prefilter=pre.representation)
        logger.info("cascade: %s ranked %d rows; gradient features for %d candidates (%d from the tail)",
                    pre.representation, cascade["pool_rows"], cascade["candidates"], cascade["tail_rows"])
    nice = None
    if "nice" in representations:
        nice = run_nice(cfg, query_spec, run.model_path, warm["dir"], run.worker_model, run.store_uri)
        tables["nice"] = {**tables["gradients"], "query": nice["table"]}
    tables = {r: t for r, t in tables.items() if t["query"] is not None}  # a representation without queries
    return {"tables": tables, "warmup": warm, "nice": nice, "cascade": cascade, **shards,
            "projector": cfg.features.projector, "dim": cfg.features.proj_dim, "seconds": round(time.time() - t0, 1),
            "warmup_seconds": warm_seconds}


# ------------------------------------------------------------------------------------- select, train, evaluate
def select(run: Run, arm: Arm, pool_table: str, tables: dict[str, dict[str, Any]], out_dir: Path | str,
           test: str | list[str] | None = None) -> dict[str, Any]:
    """One arm's ordering and subset file (``random`` draws over the rows of the first representation's table).
    Given the ``test`` set (or sets) it will be scored on, the subset leaves out copies of their items (before
    any fine-tune). Under a prefilter cascade a targeted arm orders the candidates, while ``random`` and ``all``
    draw over the whole pool (the prefilter's complete table): the baseline is never limited by the cascade."""
    rep = tables[arm.representation] if arm.representation in tables else next(iter(tables.values()))
    if rep.get("cascade") and arm.selector in ("random", "all"):
        rep = tables[rep["prefilter"]]
    return select_task(run.store_uri, rep["query"], rep["pool"], pool_table, selector=arm.selector, budget=arm.budget,
                       seed=arm.seed, out_dir=str(out_dir), name=arm.name, weights=rep["weights"], test_spec=test,
                       decontaminate=run.cfg.selection.decontaminate, cascade=rep.get("cascade", ""))


def finetune(run: Run, subset: dict[str, Any], train: TrainSettings | None = None) -> PrefectFuture:
    """A LoRA adapter on a subset, submitted to the workers; keyed by the subset's content (``finetune_key``)."""
    path, model = run.trained
    return finetune_task.submit(subset["path"], subset["digest"], path, model, train or run.cfg.finetune,
                                run.cfg.finetune_lora, run.work_dir)


def evaluate(run: Run, adapter: PrefectFuture | str | None, test: str, test_digest: str = "",
             metric: str = "") -> PrefectFuture:
    """Base (``adapter=None``) or base + adapter on a test set, keyed by the test set's content (pass its
    ``test_digest`` when evaluating many models on one set, so the file is hashed once). ``metric`` replaces
    ``eval.metric`` (an experiment's targets each have their own)."""
    settings = run.cfg.eval if not metric else type(run.cfg.eval).model_validate(
        {**run.cfg.eval.model_dump(), "metric": metric})
    path, model = run.trained
    return evaluate_task.submit(path, adapter, test, test_digest or file_digest(test), model, settings)


def train_and_evaluate(run: Run, recipe: Recipe, subsets: dict[str, dict[str, Any]],
                       others: dict[str, str] | None = None
                       ) -> tuple[dict[str, PrefectFuture], dict[str, PrefectFuture], dict[str, PrefectFuture]]:
    """Fine-tune every arm's subset and evaluate base (if the recipe asks), ``others`` (adapters to compare
    with, e.g. the previous retrain's) and every arm, all in parallel on the workers: on the test set, and on
    the lm-evaluation-harness tasks of ``eval.lm_eval_tasks`` (the third map; empty without them)."""
    seeds = {a.name: a.train_seed for a in recipe.arms}
    adapters = {name: finetune(run, sub, None if seeds.get(name) is None
                               else run.cfg.finetune.model_copy(update={"seed": seeds[name]}))
                for name, sub in subsets.items()}
    candidates: dict[str, Any] = {**({"base": None} if recipe.evaluate_base else {}), **(others or {}), **adapters}
    test_digest = file_digest(recipe.test)
    harness: dict[str, PrefectFuture] = {}
    if run.cfg.eval.lm_eval_tasks:
        include = run.cfg.eval.lm_eval_include
        include_digest = file_digest(include) if include else ""
        path, model = run.trained
        harness = {name: lm_eval_task.submit(path, ad, model, run.cfg.eval, include_digest)
                   for name, ad in candidates.items()}
    return adapters, {name: evaluate(run, ad, recipe.test, test_digest) for name, ad in candidates.items()}, harness


def run_recipe(run: Run, recipe: Recipe, out_dir: Path, rewarm: bool = False,
               others: dict[str, str] | None = None) -> dict[str, Any]:
    """The whole chain for a recipe: data → features → one subset per arm → fine-tunes → evaluations.
    Returns the handles a report needs, and the artifact table (key and whether each was computed or reused)."""
    clock = [time.time()]

    def lap() -> float:
        clock.append(time.time())
        return round(clock[-1] - clock[-2], 1)

    data = load_data(run, recipe)
    timings = {"data": lap()}
    plan = predict_cost(run, recipe, data, timings["data"])
    timings["plan"] = lap()
    feats = featurise(run, data, recipe.representations(), recipe.query, rewarm, budget=largest_budget(recipe, data))
    timings.update(features=lap(), warmup=feats["warmup_seconds"])
    subsets = {arm.name: select(run, arm, data["pool"]["table"], feats["tables"], out_dir, recipe.test)
               for arm in recipe.arms}
    timings["select"] = lap()
    adapters, evals, harness = train_and_evaluate(run, recipe, subsets, others)
    metrics = {name: {**fut.result(), **({"lm_eval": harness[name].result()} if name in harness else {})}
               for name, fut in evals.items()}
    timings["train_evaluate"] = lap()
    test_digest = file_digest(recipe.test)
    warm = feats["warmup"]
    artifacts = [*([{"artifact": "warm-up", "key": warm["key"], "status": warm["status"]}] if warm else []),
                 {"artifact": "features", "key": ", ".join(sorted({t for r in feats["tables"].values()
                                                                    for t in (r["pool"], r["query"])})),
                  "status": f"{feats['computed']} of {feats['shards']} shards computed"},
                 *({"artifact": f"fine-tune {name}", "key": Path(fut.result()).parents[1].name,
                    "status": status_of(fut.state)} for name, fut in adapters.items()),
                 *({"artifact": f"evaluation {name}", "key": f"test {test_digest}", "status": status_of(fut.state)}
                   for name, fut in evals.items())]
    get_run_logger().info("actual (s): %s; total %.1f s against %.1f s predicted", timings,
                          sum(v for k, v in timings.items() if k not in ("warmup", "plan")), plan["total"])
    return {"data": data, "features": feats, "subsets": subsets, "adapters": {k: f.result() for k, f in adapters.items()},
            "metrics": metrics, "artifacts": artifacts, "timings": timings, "plan": plan}


def predict_cost(run: Run, recipe: Recipe, data: dict[str, Any], data_seconds: float) -> dict[str, Any]:
    """The planner's prediction for this run (winnow.plan), from a probe on a worker (cached per model, settings
    and machine) and the task overhead measured now, logged before any training. The data phase has run already:
    its measured time stands in the prediction."""
    pool, cfg = data["pool"], run.cfg.model_copy(update={"model": run.worker_model})
    workers = worker_count()
    rates = probe_task.submit(run.store_uri, pool["table"], pool["table_rows"], recipe.test, run.model_path, cfg,
                              work_dir=str(Path(run.work_dir) / "plan"), train_model_path=run.train_model_path,
                              host=socket.gethostname()).result()
    lengths = lengths_task(run.store_uri, pool["table"], pool["table_rows"], run.model_path, cfg)
    overhead = []
    for _ in range(3):  # a task's round trip through Prefect and the workers; the first may meet a cold worker
        t0 = time.time()
        noop_task.submit().result()
        overhead.append(time.time() - t0)
    plan = plan_run(rates, lengths, cfg, pool_rows=pool["table_rows"],
                    query_rows=data.get("query", {}).get("table_rows", 0),
                    test_rows=data.get("test", {}).get("used", 0), arms=len(recipe.arms), workers=workers,
                    cold=workers > 1, data_s=data_seconds, task_overhead_s=min(overhead))
    get_run_logger().info("predicted (s): %s; total %s", {k: v["seconds"] for k, v in plan["phases"].items()},
                          human(plan["total"]))
    return plan


def largest_budget(recipe: Recipe, data: dict[str, Any]) -> int:
    """The largest budget of the recipe's arms, in rows: what a prefilter cascade must leave room for."""
    return max((resolve_budget(a.budget, data["pool"]["table_rows"]) for a in recipe.arms), default=0)


def feature_summary(feats: dict[str, Any]) -> dict[str, Any]:
    """One row for a report: the gradient tables, the projection and how many shards this run computed."""
    grads = feats["tables"].get("gradients") or next(iter(feats["tables"].values()))
    c = feats.get("cascade")
    cascade = (f"{c['prefilter'].split('__')[0]} ranked {c['pool_rows']}; gradients for {c['candidates']} "
               f"({c['tail_rows']} from the tail)") if c else "none"
    return {"pool_table": grads["pool"], "query_table": grads["query"], "projector": feats["projector"],
            "dim": feats["dim"], "cascade": cascade, "shards": feats["shards"], "computed": feats["computed"],
            "skipped": feats["skipped"], "seconds": feats["seconds"]}
