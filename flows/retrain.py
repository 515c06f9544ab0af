"""The retrain flow: the pool table grew, so featurise the new rows, re-select, fine-tune, evaluate, and
compare with the adapter of the previous retrain of the same line (same settings, same target).

Started by the ``winnow.pool.updated`` event (deployment trigger), and weekly by cron as recurring curation.
The table keeps its feature space (flows.recipe.warm_up): later retrains compute features only for shards
holding new rows, and a changed model or warm-up setting makes a new space with its own warm-up.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import yaml
from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from flows.recipe import open_run, run_recipe, target_files
from flows.runtime import deployment_task_runner, versions
from tasks.report import artifact_key, with_inline_images
from tasks.retrain import previous_retrain_task, record_retrain_task
from winnow.recipe import retraining
from winnow.report import markdown_table, plot_history, scores, source_table


@flow(name="retrain", log_prints=True, task_runner=deployment_task_runner())
def retrain(pool_table: str, query: str, test: str, out: str, settings: dict[str, Any] | None = None,
            min_new_rows: int = 1, store_uri: str = "", work_dir: str = "", worker_threads: int = 0) -> dict[str, Any]:
    """Re-curate ``pool_table`` for the target of ``query``/``test`` when at least ``min_new_rows`` rows arrived
    since the last retrain of the same line (0 = always, as the weekly schedule does)."""
    logger = get_run_logger()
    run = open_run(settings or {}, store_uri, work_dir, worker_threads)
    run, files = target_files(run, query=query, test=test)  # data.target's layout and map, when set
    query, test = files["query"], files["test"]
    recipe = retraining(pool_table, query, test, run.cfg)
    # A line of retrains compares like with like: same settings (model and LoRA included) and same target.
    prev = previous_retrain_task(run.store_uri, pool_table, run.cfg, query, test)
    last, history, why_new = prev["last"], prev["history"], prev["why_new"]
    if why_new:
        logger.info("%s: %s", pool_table, why_new)
    new_rows = prev["table_rows"] - (last["n_rows"] if last else 0)
    if last and new_rows < min_new_rows:
        logger.info("%s: %d new rows since the last retrain (version %s), fewer than %d; nothing to do",
                    pool_table, new_rows, last["version"], min_new_rows)
        return {"skipped": True, "new_rows": new_rows, "table_rows": prev["table_rows"]}

    out_dir = Path(out).resolve() / f"v{prev['version']}"
    out_dir.mkdir(parents=True, exist_ok=True)
    res = run_recipe(run, recipe, out_dir, others={"previous": last["adapter"]} if last else None)
    features, sub, metrics = res["features"], res["subsets"]["new"], res["metrics"]
    pool = res["data"]["pool"]
    logger.info("features: %d shards computed, %d already done", features["computed"], features["skipped"])
    entry = {"line": prev["line"], "version": pool["version"], "n_rows": pool["table_rows"], "new_rows": new_rows,
             "warmup": {k: features["warmup"][k] for k in ("key", "dir")}, "adapter": res["adapters"]["new"], "budget": sub["budget"],
             "report": str(out_dir / "report.md"), "metric": metrics["new"]["metric"], "score": metrics["new"]["score"],
             "response_loss": metrics["new"]["response_loss"]}
    report = _report(pool_table, entry, last, features, sub, metrics, res["data"]["test"], history, out_dir, why_new)
    record_retrain_task(run.store_uri, pool_table, entry)
    return {"skipped": False, "new_rows": new_rows, "table_rows": pool["table_rows"], "report": report,
            "results": {k: scores(v) for k, v in metrics.items()},
            "shards": {"computed": features["computed"], "skipped": features["skipped"]}}


def _report(table: str, entry: dict[str, Any], last: dict[str, Any] | None, features: dict[str, Any],
            sub: dict[str, Any], metrics: dict[str, dict[str, Any]], test_data: dict[str, Any],
            history: list[dict[str, Any]], out_dir: Path, why_new: str = "") -> str:
    """Markdown on disk and as a keyed Prefect artifact (the same key every run, so the UI shows its history)."""
    metric = entry["metric"]
    results = [{"model": k, **scores(v), f"Δ {metric} vs previous": (round(v["score"] - metrics["previous"]["score"], 4)
                                                                     if "previous" in metrics else "–")}
               for k, v in metrics.items()]
    sources = source_table(sub["sources"], None, sub["pool_sources"])
    runs = [*history, {**entry, "at": time.time()}]
    same = [r for r in runs if r.get("metric", "exact_match") == metric]  # a retrain line keeps its metric
    plot = plot_history([r.get("score", r.get("exact_match")) for r in same], [r["n_rows"] for r in same], metric,
                        out_dir / "history.png")
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
                                          r.get("metric", "exact_match"): round(r.get("score", r.get("exact_match")), 4),
                                          "response_loss": round(r["response_loss"], 4)} for r in runs]),
        f"![{metric} per retrain]({Path(plot).name})",
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
