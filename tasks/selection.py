"""Selection task: order the pool against the query set, cut the budget, write the two subsets."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from prefect import task

from winnow.data.loaders import write_jsonl
from winnow.hashing import text_digest
from winnow.selection import resolve_budget, select_random
from winnow.selection.targeted import order_pool, save_ordering
from winnow.settings import SelectionSettings
from winnow.store import lance


@task(name="select", retries=1)
def select_task(store_uri: str, query_table: str, pool_table: str, records_table: str, weights: list[float],
                settings: SelectionSettings, out_dir: str) -> dict[str, Any]:
    """Writes ``ordering.parquet``, ``selected.jsonl`` and ``random.jsonl`` (same size) to ``out_dir``."""
    ordering, pool = order_pool(store_uri, query_table, pool_table, weights, selector=settings.selector,
                                seed=settings.seed)
    k = resolve_budget(settings.budget, len(pool.ids))
    out = Path(out_dir)
    save_ordering(out / "ordering.parquet", ordering, pool,
                  {"query_table": query_table, "pool_table": pool_table, "weights": weights})
    by_id = {r.id: r for r in lance.read_records(lance.connect(store_uri), records_table)}
    chosen = [pool.ids[i] for i in ordering.prefix(k)]
    rand = [pool.ids[i] for i in select_random(np.zeros((0, len(pool.ids))), seed=settings.seed).prefix(k)]
    write_jsonl(out / "selected.jsonl", [by_id[i].to_json() for i in chosen])
    write_jsonl(out / "random.jsonl", [by_id[i].to_json() for i in rand])
    return {"budget": k, "selected_digest": text_digest(chosen), "random_digest": text_digest(rand), "selector": settings.selector, "selected_path": str(out / "selected.jsonl"),
            "random_path": str(out / "random.jsonl"), "selected_sources": [by_id[i].source for i in chosen],
            "random_sources": [by_id[i].source for i in rand], "pool_sources": pool.sources,
            "top_scores": [float(s) for s in ordering.scores[:k]]}
