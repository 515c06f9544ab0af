"""Map feature shards over the flow's task runner, with progress in the CLI and in the Prefect UI.

A plain helper (not a subflow) so the shards run on the *calling* flow's Dask task runner.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from prefect import get_run_logger, unmapped
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.futures import as_completed
from tqdm.auto import tqdm

from flows.nice import run_nice
from tasks.features import feature_shard_task, plan_features_task
from tasks.training import warmup_task
from winnow.errors import ConfigError
from winnow.settings import ModelSettings, WinnowSettings
from winnow.training.runs import warmup_key


def run_feature_shards(plans: list[dict[str, Any]]) -> dict[str, int]:
    """Submit every plan's row ranges; returns how many shards ran and how many were already done."""
    logger = get_run_logger()
    futures = [f for p in plans for f in feature_shard_task.map(unmapped(p["job"]), [r[0] for r in p["ranges"]],
                                                                  [r[1] for r in p["ranges"]])]
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
    return {"shards": len(futures), "computed": computed, "skipped": len(futures) - computed}


def run_warmup(cfg: WinnowSettings, pool: dict[str, Any], model_path: str, store_uri: str, work_dir: str) -> dict[str, Any]:
    """LESS's warm-up on a pool table version, in a folder named after what made it (so it is reused)."""
    key = warmup_key(pool["table"], pool["version"], model_path, cfg.model, cfg.warmup)
    state = warmup_task(store_uri, pool["table"], pool["version"], model_path, cfg.model, cfg.warmup,
                        str(Path(work_dir) / "warmup" / key), return_state=True)
    return {**state.result(), "key": key, "status": status_of(state)}


def status_of(state: Any) -> str:
    """How a task's artifact came about, for reports: "reused" (a cached result, same artifact key) or
    "computed" (this run made it)."""
    return "reused" if state.name == "Cached" else "computed"


def run_gradient_features(cfg: WinnowSettings, pool: dict[str, Any], query: dict[str, Any], warm: dict[str, Any],
                          model_path: str, worker_model: ModelSettings, store_uri: str) -> dict[str, Any]:
    """LESS features of a pool table (Adam-preconditioned) and a query table (plain gradients), shard by shard;
    shards finished before (by this run or any other on the same store) are skipped."""
    t0 = time.time()
    plans = [plan_features_task(store_uri, data["table"], data["table_rows"], model_path, worker_model,
                                cfg.features, "gradients", warm["dir"], kind)
             for data, kind in ((pool, "adam"), (query, "sgd"))]
    feats = run_feature_shards(plans)
    return {"pool_table": plans[0]["job"].feature_table, "query_table": plans[1]["job"].feature_table,
            "projector": cfg.features.projector, "dim": cfg.features.proj_dim, **feats,
            "seconds": round(time.time() - t0, 1)}


def featurise_all(cfg: WinnowSettings, data: dict[str, Any], representations: list[str], model_path: str,
                  worker_model: Any, store_uri: str, work_dir: str, query_spec: str | None = None
                  ) -> dict[str, dict[str, str]]:
    """Feature tables {representation: {"pool": table, "query": table, "weights": [...]}} (warm-up if needed).

    ``nice`` pairs the LESS pool features with NICE's query directions for the metric ``nice.metric`` (sampled
    from ``query_spec``'s prompts), so it compares with the other representations cell for cell."""
    if "nice" in representations and not (cfg.nice.metric and query_spec):
        raise ConfigError("nice.metric: the 'nice' representation needs the target's reward (nice.metric=...)")
    shard_reps = list(dict.fromkeys(["gradients" if r == "nice" else r for r in representations]))
    tables: dict[str, dict[str, Any]] = {}
    plans = []
    warm = None
    if "gradients" in shard_reps:
        warm = run_warmup(cfg, data["pool"], model_path, store_uri, work_dir)
    for rep in shard_reps:
        tables[rep] = {"weights": warm["weights"] if rep == "gradients" and warm else None}
        for role, kind in (("pool", "adam"), ("query", "sgd")):
            plan = plan_features_task(store_uri, data[role]["table"], data[role]["table_rows"], model_path,
                                      worker_model, cfg.features, rep, warm["dir"] if warm else None, kind)
            tables[rep][role] = plan["job"].feature_table
            plans.append(plan)
    run_feature_shards(plans)
    if "nice" in representations:
        nice = run_nice(cfg, query_spec, model_path, warm["dir"], worker_model, store_uri)
        tables["nice"] = {**tables["gradients"], "query": nice["table"]}
    return tables
