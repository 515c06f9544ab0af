"""The retrain flow: the pool table grew, so featurise the new rows, re-select, fine-tune, evaluate, and
compare with the adapter of the previous retrain.

Started by the ``winnow.pool.updated`` event (deployment trigger), and weekly by cron as recurring curation.
The LESS warm-up of the first retrain is kept: its checkpoints define the feature space, so later retrains
compute features only for shards holding new rows (a pool that keeps its warm-up keeps its old features).
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import yaml
from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from flows.env import EnvSettings
from flows.featurize import run_gradient_features, run_warmup
from flows.runtime import deployment_task_runner, resolve_locations, versions
from tasks.data import ingest_task, validate_task
from tasks.evaluation import evaluate_task
from tasks.model import prepare_model_task
from tasks.report import artifact_key, with_inline_images
from tasks.selection import select_task
from tasks.training import finetune_task
from winnow.store.ingest import table_name_for
from winnow.hashing import file_digest
from winnow.report import markdown_table, plot_history, source_table
from winnow.keys import digest
from winnow.settings import load_settings
from winnow.store import lance, ledger


@flow(name="retrain", log_prints=True, task_runner=deployment_task_runner())
def retrain(pool_table: str, query: str, test: str, out: str, config: str | None = None,
            overrides: list[str] | None = None, min_new_rows: int = 1, store_uri: str = "",
            work_dir: str = "") -> dict[str, Any]:
    """Re-curate ``pool_table`` for the target of ``query``/``test`` when at least ``min_new_rows`` rows arrived
    since the last retrain (0 = always, as the weekly schedule does)."""
    logger = get_run_logger()
    env = EnvSettings()
    store_uri, work_dir = resolve_locations(store_uri, work_dir)
    cfg = load_settings(config, [*(overrides or []), *([] if any(o.startswith("model.name=") for o in overrides or [])
                                                      else [f"model.name={env.model}"])])
    db = lance.connect(store_uri)
    tbl = lance.open_table(db, pool_table)  # a missing table is an error naming it and the store's tables
    pool = {"table": pool_table, "version": tbl.version, "table_rows": tbl.count_rows()}
    # A line of retrains compares like with like: same settings (model and LoRA included) and same target.
    line = digest({"settings": cfg, "query": file_digest(query), "test": file_digest(test)})
    every = ledger.entries(db, ledger.RETRAINS, pool_table)
    history = [e for e in every if e.get("line") == line]
    last = history[-1] if history else None
    why_new = (f"a new line of retrains ({line}): the settings or the target differ from the last retrain's "
               f"({every[-1].get('line', 'unrecorded')}), so it starts with its own warm-up and nothing to beat"
               if every and not history else "")
    if why_new:
        logger.info("%s: %s", pool_table, why_new)
    new_rows = pool["table_rows"] - (last["n_rows"] if last else 0)
    if last and new_rows < min_new_rows:
        logger.info("%s: %d new rows since the last retrain (version %s), fewer than %d; nothing to do",
                    pool_table, new_rows, last["version"], min_new_rows)
        return {"skipped": True, "new_rows": new_rows, "table_rows": pool["table_rows"]}

    worker_model = cfg.model.model_copy(update={"num_threads": env.threads_per_worker})
    out_dir = Path(out).resolve() / f"v{pool['version']}"
    out_dir.mkdir(parents=True, exist_ok=True)
    model_path = prepare_model_task(cfg.model.name, str(Path(work_dir) / "models"))
    query_data = ingest_task(query, store_uri, table_name_for("query", query))
    test_data = validate_task(test)
    warm = last["warmup"] if last else run_warmup(cfg, pool, model_path, store_uri, work_dir)
    features = run_gradient_features(cfg, pool, query_data, warm, model_path, worker_model, store_uri)
    logger.info("features: %d shards computed, %d already done", features["computed"], features["skipped"])

    sub = select_task(store_uri, features["query_table"], features["pool_table"], pool_table,
                      selector=cfg.selection.selector, budget=cfg.selection.budget, seed=cfg.selection.seed,
                      out_dir=str(out_dir), name="selected", weights=warm["weights"])
    adapter = finetune_task(sub["path"], sub["digest"], model_path, worker_model, cfg.finetune, cfg.finetune_lora,
                            work_dir)
    test_digest = file_digest(test)
    candidates = {"base": None, **({"previous": last["adapter"]} if last else {}), "new": adapter}
    futures = {name: evaluate_task.submit(model_path, ad, test, test_digest, worker_model, cfg.eval)
               for name, ad in candidates.items()}
    metrics = {name: fut.result() for name, fut in futures.items()}

    entry = {"line": line, "version": pool["version"], "n_rows": pool["table_rows"], "new_rows": new_rows, "warmup": warm,
             "adapter": adapter, "budget": sub["budget"], "report": str(out_dir / "report.md"),
             "exact_match": metrics["new"]["exact_match"], "response_loss": metrics["new"]["response_loss"]}
    report = _report(pool_table, entry, last, features, sub, metrics, test_data, history, out_dir, why_new)
    ledger.record(db, ledger.RETRAINS, f"{pool_table}@{pool['version']}:{line}", pool_table, entry)
    return {"skipped": False, "new_rows": new_rows, "table_rows": pool["table_rows"], "report": report,
            "results": {k: {"exact_match": v["exact_match"], "response_loss": v["response_loss"]}
                        for k, v in metrics.items()},
            "shards": {"computed": features["computed"], "skipped": features["skipped"]}}


def _report(table: str, entry: dict[str, Any], last: dict[str, Any] | None, features: dict[str, Any],
            sub: dict[str, Any], metrics: dict[str, dict[str, Any]], test_data: dict[str, Any],
            history: list[dict[str, Any]], out_dir: Path, why_new: str = "") -> str:
    """Markdown on disk and as a keyed Prefect artifact (the same key every run, so the UI shows its history)."""
    results = [{"model": k, "exact_match": round(v["exact_match"], 4), "response_loss": round(v["response_loss"], 4),
                "Δ exact match vs previous": (round(v["exact_match"] - metrics["previous"]["exact_match"], 4)
                                              if "previous" in metrics else "–")} for k, v in metrics.items()]
    sources = source_table(sub["sources"], None, sub["pool_sources"])
    runs = [*history, {**entry, "at": time.time()}]
    plot = plot_history([r["exact_match"] for r in runs], [r["n_rows"] for r in runs], out_dir / "history.png")
    md = "\n\n".join([
        f"# Winnow retrain: {table} at version {entry['version']}",
        f"{entry['new_rows']} new rows since " + (f"the retrain at version {last['version']}" if last else
                                                  "the start") + f"; the pool holds {entry['n_rows']} rows." +
        (f" This is {why_new}." if why_new else ""),
        "## Result on the test set\n" + markdown_table(results),
        f"new = a fresh adapter on the top {sub['budget']} examples by {sub['selector']}; previous = the adapter "
        "of the last retrain; base = no fine-tuning.",
        "## Features\n" + f"{features['computed']} shards computed, {features['skipped']} already in the store "
        f"(only shards holding new rows are computed); {features['seconds']} s.",
        "## Subset by source\n" + markdown_table(sources),
        "## History\n" + markdown_table([{"version": r["version"], "rows": r["n_rows"], "budget": r["budget"],
                                          "exact_match": round(r["exact_match"], 4),
                                          "response_loss": round(r["response_loss"], 4)} for r in runs]),
        f"![exact match per retrain]({Path(plot).name})",
        f"Test set: {test_data['used']} examples ({test_data['quarantined']} quarantined). Versions: " +
        ", ".join(f"{k} {v}" for k, v in versions().items()),
    ]) + "\n"
    (out_dir / "report.md").write_text(md)
    (out_dir / "metrics.json").write_text(json.dumps({"results": results, "entry": entry}, indent=1, default=str))
    (out_dir / "settings.yaml").write_text(yaml.safe_dump({"table": table, "version": entry["version"]}))
    create_markdown_artifact(markdown=with_inline_images(md, out_dir), key=artifact_key(f"retrain-{table}", "report"),
                             description=f"retrain of {table}: new adapter vs previous")
    create_table_artifact(table=results, key=artifact_key(f"retrain-{table}", "results"),
                          description="base / previous / new adapter on the test set")
    return str(out_dir / "report.md")
