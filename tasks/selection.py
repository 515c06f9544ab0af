"""Selection task: order the pool against the query set, cut the budget (leaving out copies of test items),
write the subset and its ordering."""
from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
from prefect import task

from tasks import unexpected_only
from winnow.selection.cascade import plan_cascade
from winnow.selection.decontaminate import Guard
from winnow.selection.subset import select_subset
from winnow.settings import DecontaminationSettings


@lru_cache(maxsize=4)
def _unit_embeddings(embedder: str, device: str, texts: tuple[str, ...]) -> np.ndarray:
    """Unit sentence embeddings, kept per worker process for the test side: every arm of a run checks its subset
    against the same test items, which need embedding once, not once per arm (keyed by the texts themselves)."""
    from winnow.features.embeddings import embed_texts

    raw = embed_texts(embedder, list(texts), device=device)
    out = raw / np.linalg.norm(raw, axis=1, keepdims=True).clip(min=1e-30)
    out.flags.writeable = False
    return out


def guard_for(test_spec: str | list[str], settings: DecontaminationSettings, device: str = "cpu") -> Guard:
    """The test set (or sets) and the rule a subset is checked against (embeddings of each item's own text)."""
    from winnow.data.loaders import load_records
    from winnow.features.embeddings import embed_texts
    from winnow.selection.decontaminate import item_text

    specs = [test_spec] if isinstance(test_spec, str) else test_spec
    test = [r for s in specs for r in load_records(s).records]

    def embed(records: list) -> np.ndarray:
        if records is test:  # the guard's own test items: embedded once per process
            return _unit_embeddings(settings.embedder, device, tuple(item_text(r) for r in records))
        raw = embed_texts(settings.embedder, [item_text(r) for r in records], device=device)
        return raw / np.linalg.norm(raw, axis=1, keepdims=True).clip(min=1e-30)

    return Guard(test, n=settings.ngram, ngram_threshold=settings.ngram_threshold,
                 cosine_threshold=settings.cosine_threshold, template_df=settings.template_df,
                 embed=embed if settings.embedder else None, exclude=settings.enabled)


@task(name="prefilter", retries=1, retry_condition_fn=unexpected_only)
def prefilter_task(store_uri: str, query_table: str, pool_table: str, *, budget: int, factor: float, tail: float,
                   selector: str, seed: int) -> dict[str, Any]:
    """Rank the pool in a cheap representation and store the cascade's candidates (a table name and counts)."""
    return plan_cascade(store_uri, query_table, pool_table, budget=budget, factor=factor, tail=tail,
                        selector=selector, seed=seed)


@task(name="select", retries=1, retry_condition_fn=unexpected_only, task_run_name="select-{name}")
def select_task(store_uri: str, query_table: str, pool_table: str, records_table: str, *, selector: str,
                budget: int | float, seed: int, out_dir: str, name: str,
                weights: list[float] | None = None, test_spec: str | list[str] | None = None,
                decontaminate: DecontaminationSettings | None = None, cascade: str = "") -> dict[str, Any]:
    """``test_spec``: the test set (or sets: a tuning trial's validation and test) the subset must not copy
    (checked under ``decontaminate``); ``cascade``: a prefilter cascade's table (the pool is its candidates)."""
    guard = guard_for(test_spec, decontaminate or DecontaminationSettings()) if test_spec else None
    return select_subset(store_uri, query_table, pool_table, selector=selector, budget=budget, seed=seed,
                         out_dir=out_dir, name=name, records_table=records_table, weights=weights, guard=guard,
                         cascade=cascade)
