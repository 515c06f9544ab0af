"""Compare representations × selectors on one pool and query set: featurise each representation once
(sharded on Dask), run every selector, and publish sizes, sources picked and distances to the queries."""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger

from flows.recipe import largest_budget
from flows.run import open_run
from flows.steps import featurise, load_data, select, target_files
from tasks.report import publish_task
from winnow.recipe import Arm, Recipe
from winnow.reports.compare import compare_row, render_compare
from winnow.registry import FEATURISED, SELECTORS, canonical_representation, canonical_selector
from winnow.settings import WinnowSettings


@flow(name="compare", log_prints=True)
def compare(pool: str, query: str, out: str, settings: WinnowSettings, store_uri: str = "", work_dir: str = "",
            representations: list[str] | None = None, selectors: list[str] | None = None,
            worker_threads: int = 0) -> list[dict[str, Any]]:
    """Selection only: one arm per representation × selector, no fine-tuning."""
    reps = [canonical_representation(r, "--representation") for r in representations or FEATURISED]
    sels = [canonical_selector(s, "--selector") for s in selectors or SELECTORS if s != "all"]  # all: a baseline
    run = open_run(settings, store_uri, work_dir, worker_threads)
    run, files = target_files(run, query=query)  # data.target's layout and map, when set
    sel = run.cfg.selection
    recipe = Recipe(pool=pool, query=files["query"], settings=run.cfg, evaluate_base=False,
                    arms=tuple(Arm(name=s, representation=r, selector=s, budget=sel.budget, seed=sel.seed)
                               for r in reps for s in sels))
    out_dir = Path(out).resolve()
    data, _ = load_data(run, recipe)
    feats = featurise(run, data, recipe.representations(), files["query"], budget=largest_budget(recipe, data))
    rows = []
    for arm in recipe.arms:
        rows.append(compare_row(arm.representation, select(run, arm, data["pool"].table, feats,
                                                           out_dir / arm.representation)))
        get_run_logger().info("%s × %s: %s", arm.representation, arm.selector, rows[-1])
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    publish_task(str(out_dir), f"compare-{out_dir.name}", render_compare(rows), report="compare.md",
                 description="representation × selector", files={"compare.csv": buf.getvalue()},
                 tables={"table": ("representation × selector", rows)})
    return rows
