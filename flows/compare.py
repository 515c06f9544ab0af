"""Compare representations × selectors on one pool and query set: featurise each representation once
(sharded on Dask), run every selector, and publish sizes, sources picked and distances to the queries."""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from flows.featurize import featurise_all
from tasks.data import ingest_task
from tasks.model import prepare_model_task
from tasks.selection import select_task
from winnow.budget import resolve_budget
from winnow.features import REPRESENTATIONS
from winnow.selection import SELECTORS
from winnow.store.ingest import table_name_for
from winnow.report import markdown_table
from winnow.settings import WinnowSettings



@flow(name="compare", log_prints=True)
def compare(pool: str, query: str, out: str, settings: dict[str, Any], store_uri: str, work_dir: str,
            representations: list[str] | None = None, selectors: list[str] | None = None,
            worker_threads: int = 1) -> list[dict[str, Any]]:
    logger = get_run_logger()
    cfg = WinnowSettings.model_validate(settings)
    reps = representations or list(REPRESENTATIONS)
    sels = selectors or [s for s in SELECTORS if s != "all"]  # "all" is the full-data baseline, not a selection
    out_dir = Path(out).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    model_path = prepare_model_task(cfg.model.name, str(Path(work_dir) / "models"))
    worker_model = cfg.model.model_copy(update={"num_threads": worker_threads})
    data = {role: ingest_task(spec, store_uri, table_name_for(role, spec)) for role, spec in (("pool", pool), ("query", query))}
    resolve_budget(cfg.selection.budget, data["pool"]["table_rows"])  # too large a budget fails before featurising
    tables = featurise_all(cfg, data, reps, model_path, worker_model, store_uri, work_dir, query_spec=query)
    rows = []
    for rep in reps:
        for sel in sels:
            sub = select_task(store_uri, tables[rep]["query"], tables[rep]["pool"], data["pool"]["table"],
                              selector=sel, budget=cfg.selection.budget, seed=cfg.selection.seed,
                              out_dir=str(out_dir / rep), name=sel, weights=tables[rep]["weights"])
            top = ", ".join(f"{s} {n}" for s, n in Counter(sub["sources"]).most_common(3))
            rows.append({"representation": rep, "selector": sub["selector"], "size": sub["budget"],
                         "distance_nearest": round(sub["distances"]["nearest"], 4),
                         "distance_transport": round(sub["distances"]["transport"], 4), "top_sources": top})
            logger.info("%s × %s: %s", rep, sel, rows[-1])
    md = "# Representations × selectors\n\n" + markdown_table(rows) + (
        "\n\nDistances are measured in each row's own representation (d = 1 − similarity), so compare "
        "selectors within a representation; across representations compare the sources picked.\n")
    (out_dir / "compare.md").write_text(md)
    import csv

    with open(out_dir / "compare.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    create_table_artifact(table=rows, key="compare-table", description="representation × selector")
    create_markdown_artifact(markdown=md, key="compare-report", description="representation × selector")
    return rows
