"""The select flow: order an existing pool feature table against a query feature table and cut a budget.

No model is loaded; it re-uses features already in the store, so it is the cheap deployment to run when only
the budget or the selector changes.
"""
from __future__ import annotations

from dataclasses import asdict
from typing import Any

from prefect import flow
from prefect.artifacts import create_table_artifact

from flows.env import EnvSettings
from tasks.selection import select_task
from winnow.reports.publish import ui_key
from winnow.reports.tables import source_table
from winnow.registry import canonical_selector


@flow(name="select", log_prints=True)
def select_flow(pool_features: str, query_features: str, out: str, selector: str = "round_robin",
                budget: int | float = 0.05, seed: int = 0, store_uri: str = "") -> dict[str, Any]:
    store_uri = store_uri or EnvSettings().store_uri
    selector = canonical_selector(selector, "selector")
    sub = select_task(store_uri, query_features, pool_features, None, selector=selector, budget=budget, seed=seed,
                      out_dir=out, name=selector)
    create_table_artifact(table=source_table(sub.sources, None, sub.pool_sources),
                          key=ui_key(f"select-{pool_features}", "sources"),
                          description=f"{sub.size} of {sub.pool_size} examples by {sub.selector}, per source")
    return {k: v for k, v in asdict(sub).items() if k in ("selector", "size", "pool_size", "path", "digest", "distances")}
