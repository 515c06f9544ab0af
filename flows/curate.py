"""The curation flow: warm up, featurise pool and query on Dask, select, fine-tune, evaluate, report."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from prefect import flow, get_run_logger

from tasks.data import ingest_task, validate_task
from tasks.evaluation import evaluate_task
from flows.featurize import run_gradient_features, run_warmup, status_of
from flows.nice import run_nice
from flows.runtime import deployment_task_runner, resolve_locations
from tasks.model import prepare_model_task
from tasks.report import report_task
from tasks.selection import select_task
from tasks.training import finetune_task
from winnow.budget import describe_budget, resolve_budget
from winnow.store.ingest import table_name_for
from winnow.hashing import file_digest
from winnow.settings import WinnowSettings


@flow(name="curate", log_prints=True, task_runner=deployment_task_runner())
def curate(pool: str, query: str, test: str, out: str, settings: dict[str, Any], store_uri: str = "",
           work_dir: str = "", worker_threads: int = 1, versions: dict[str, str] | None = None) -> dict[str, Any]:
    """Targeted selection of ``pool`` for the task that ``query`` exemplifies, checked on ``test``.

    ``settings`` is a (partial) settings mapping; empty ``store_uri``/``work_dir`` come from the environment."""
    logger = get_run_logger()
    store_uri, work_dir = resolve_locations(store_uri, work_dir)
    cfg = WinnowSettings.model_validate(settings)
    worker_model = cfg.model.model_copy(update={"num_threads": worker_threads})
    out_dir = Path(out).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    model_path = prepare_model_task(cfg.model.name, str(Path(work_dir) / "models"))

    data = {"pool": ingest_task(pool, store_uri, table_name_for("pool", pool)),
            "query": ingest_task(query, store_uri, table_name_for("query", query)),
            "test": validate_task(test)}
    logger.info("data (in, used, quarantined): %s", {k: (v["in"], v["used"], v["quarantined"]) for k, v in data.items()})
    resolve_budget(cfg.selection.budget, data["pool"]["table_rows"])  # too large a budget fails before any training
    for role in ("pool", "query"):
        if data[role]["ids_not_in_file"]:
            logger.warning("%s table %s holds %d ids that %s lacks (tables are append-only); they take part",
                           role, data[role]["table"], data[role]["ids_not_in_file"], data[role]["path"])

    warm = run_warmup(cfg, data["pool"], model_path, store_uri, work_dir)

    features = run_gradient_features(cfg, data["pool"], data["query"], warm, model_path, worker_model, store_uri)

    subsets = {name: select_task(store_uri, features["query_table"], features["pool_table"], data["pool"]["table"],
                                 selector=selector, budget=cfg.selection.budget, seed=cfg.selection.seed,
                                 out_dir=str(out_dir), name=name, weights=warm["weights"])
               for name, selector in (("selected", cfg.selection.selector), ("random", "random"))}
    nice = None
    if cfg.nice.metric:  # NICE: the same pool features, a policy-gradient query side
        nice = run_nice(cfg, query, model_path, warm["dir"], worker_model, store_uri)
        subsets["nice"] = select_task(store_uri, nice["table"], features["pool_table"], data["pool"]["table"],
                                      selector=cfg.selection.selector, budget=cfg.selection.budget,
                                      seed=cfg.selection.seed, out_dir=str(out_dir), name="nice",
                                      weights=warm["weights"])
    logger.info("selected %d of %d examples (budget: %s) by %s", subsets["selected"]["budget"],
                data["pool"]["table_rows"], describe_budget(cfg.selection.budget), cfg.selection.selector)

    adapters = {}
    for name, sub in subsets.items():
        adapters[name] = finetune_task.submit(sub["path"], sub["digest"], model_path, worker_model, cfg.finetune,
                                              cfg.finetune_lora, work_dir)
    test_digest = file_digest(test)
    evals = {"base": evaluate_task.submit(model_path, None, test, test_digest, worker_model, cfg.eval)}
    evals.update({name: evaluate_task.submit(model_path, fut, test, test_digest, worker_model, cfg.eval)
                  for name, fut in adapters.items()})
    metrics = {name: fut.result() for name, fut in evals.items()}
    artifacts = [{"artifact": "warm-up", "key": warm["key"], "status": warm["status"]},
                 {"artifact": "features", "key": f"{features['pool_table']}, {features['query_table']}",
                  "status": f"{features['computed']} of {features['shards']} shards computed"},
                 *({"artifact": f"fine-tune {name}", "key": Path(fut.result()).parents[1].name,
                    "status": status_of(fut.state)} for name, fut in adapters.items()),
                 *({"artifact": f"evaluation {name}", "key": f"test {test_digest}", "status": status_of(fut.state)}
                   for name, fut in evals.items())]

    settings_yaml = yaml.safe_dump({"pool": pool, "query": query, "test": test, "settings": cfg.model_dump(mode="json")},
                                   sort_keys=False)
    report = report_task(out_dir.name, str(out_dir), data, warm, features, subsets, metrics, settings_yaml,
                         versions or {}, nice, artifacts)
    return {"report": report, "results": {k: {"exact_match": v["exact_match"], "response_loss": v["response_loss"]}
                                          for k, v in metrics.items()}, "budget": subsets["selected"]["budget"]}
