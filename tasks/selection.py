"""Selection task: order the pool against the query set, cut the budget, write the subset and its ordering."""
from __future__ import annotations

from typing import Any

from prefect import task

from tasks import unexpected_only
from winnow.selection.subset import select_subset


@task(name="select", retries=1, retry_condition_fn=unexpected_only, task_run_name="select-{name}")
def select_task(store_uri: str, query_table: str, pool_table: str, records_table: str, *, selector: str,
                budget: int | float, seed: int, out_dir: str, name: str,
                weights: list[float] | None = None) -> dict[str, Any]:
    return select_subset(store_uri, query_table, pool_table, selector=selector, budget=budget, seed=seed,
                         out_dir=out_dir, name=name, records_table=records_table, weights=weights)
