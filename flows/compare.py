"""Compare representations × selectors on one pool and query set: featurise each representation once
(sharded on Dask), run every selector, and publish sizes, sources picked and distances to the queries."""
from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from flows.recipe import featurise, largest_budget, load_data, open_run, select, target_files
from winnow.features import REPRESENTATIONS
from winnow.recipe import Arm, Recipe
from winnow.report import markdown_table
from winnow.selection import SELECTORS


@flow(name="compare", log_prints=True)
def compare(pool: str, query: str, out: str, settings: dict[str, Any], store_uri: str = "", work_dir: str = "",
            representations: list[str] | None = None, selectors: list[str] | None = None,
            worker_threads: int = 0) -> list[dict[str, Any]]:
    """Selection only: one arm per representation × selector, no fine-tuning."""
    logger = get_run_logger()
    run = open_run(settings, store_uri, work_dir, worker_threads)
    run, files = target_files(run, query=query)  # data.target's layout and map, when set
    query = files["query"]
    sel = run.cfg.selection
    reps = representations or list(REPRESENTATIONS)
    sels = selectors or [s for s in SELECTORS if s != "all"]  # "all" is the full-data baseline, not a selection
    recipe = Recipe(pool=pool, query=query, settings=run.cfg, evaluate_base=False,
                    arms=tuple(Arm(name=s, representation=r, selector=s, budget=sel.budget, seed=sel.seed)
                               for r in reps for s in sels))
    out_dir = Path(out).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    data = load_data(run, recipe)
    tables = featurise(run, data, recipe.representations(), query, budget=largest_budget(recipe, data))["tables"]
    rows = []
    for arm in recipe.arms:
        sub = select(run, arm, data["pool"]["table"], tables, out_dir / arm.representation)
        top = ", ".join(f"{s} {n}" for s, n in Counter(sub["sources"]).most_common(3))
        rows.append({"representation": arm.representation, "selector": sub["selector"], "size": sub["budget"],
                     "distance_nearest": round(sub["distances"]["nearest"], 4),
                     "distance_transport": round(sub["distances"]["transport"], 4), "top_sources": top})
        logger.info("%s × %s: %s", arm.representation, arm.selector, rows[-1])
    md = "# Representations × selectors\n\n" + markdown_table(rows) + (
        "\n\nDistances are measured in each row's own representation (d = 1 − similarity), so compare "
        "selectors within a representation; across representations compare the sources picked.\n")
    (out_dir / "compare.md").write_text(md)
    with open(out_dir / "compare.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    create_table_artifact(table=rows, key="compare-table", description="representation × selector")
    create_markdown_artifact(markdown=md, key="compare-report", description="representation × selector")
    return rows
