"""The select flow: order an existing pool feature table against a query feature table and cut a budget.

No model is loaded; it re-uses features already in the store, so it is the cheap deployment to run when only
the budget or the selector changes.
"""
from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.artifacts import create_table_artifact

from flows.env import EnvSettings
from tasks.report import artifact_key
from tasks.selection import select_task
from winnow.report import source_table
from winnow.selection.targeted import canonical_selector


@flow(name="select", log_prints=True)
def select_flow(pool_features: str, query_features: str, out: str, selector: str = "rr", budget: int | float = 0.05,
                seed: int = 0, store_uri: str = "") -> dict[str, Any]:
    store_uri = store_uri or EnvSettings().store_uri
    selector = canonical_selector(selector)
    sub = select_task(store_uri, query_features, pool_features, None, selector=selector, budget=budget, seed=seed,
                      out_dir=out, name=selector)
    rows = source_table(sub["sources"], None, sub["pool_sources"])
    create_table_artifact(table=rows, key=artifact_key(f"select-{pool_features}", "sources"),
                          description=f"{sub['budget']} of {sub['pool_size']} examples by {sub['selector']}, per source")
    return {k: sub[k] for k in ("selector", "budget", "pool_size", "path", "digest", "distances")}
