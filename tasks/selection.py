"""Selection tasks: order the pool against the query set, cut the budget (leaving out copies of held-out items),
write the subset and its ordering; a prefilter cascade's candidates; a subset given by rows."""
from __future__ import annotations

from functools import lru_cache

import numpy as np
from prefect import task

from tasks import unexpected_only
from winnow.results import Cascade, Subset
from winnow.selection.cascade import plan_cascade
from winnow.selection.decontaminate import Guard
from winnow.selection.subset import select_subset, write_subset
from winnow.settings import DecontaminationSettings


@lru_cache(maxsize=4)
def _unit_embeddings(embedder: str, device: str, texts: tuple[str, ...]) -> np.ndarray:
    """Unit sentence embeddings, kept per worker process for the held-out side: every arm of a run checks its
    subset against the same items, which need embedding once, not once per arm (keyed by the texts themselves)."""
    from winnow.features.embeddings import embed_texts

    raw = embed_texts(embedder, list(texts), device=device)
    out = raw / np.linalg.norm(raw, axis=1, keepdims=True).clip(min=1e-30)
    out.flags.writeable = False
    return out


def guard_for(held_out: str | list[str], settings: DecontaminationSettings, device: str = "cpu") -> Guard:
    """The held-out set (or sets) and the rule a subset is checked against."""
    from winnow.data.loaders import load_records
    from winnow.features.embeddings import embed_texts

    specs = [held_out] if isinstance(held_out, str) else held_out
    test = [r for s in specs for r in load_records(s).records]
    held = None

    def embed(texts: list[str]) -> np.ndarray:
        nonlocal held
        if held is None or tuple(texts) == held:  # the first call: the held-out items, kept once per process
            held = tuple(texts)
            return _unit_embeddings(settings.embedder, device, held)
        raw = embed_texts(settings.embedder, texts, device=device)
        return raw / np.linalg.norm(raw, axis=1, keepdims=True).clip(min=1e-30)

    return Guard(test, n=settings.ngram, overlap_threshold=settings.overlap_threshold,
                 answer_ratio=settings.answer_ratio, cosine_threshold=settings.cosine_threshold,
                 template_share=settings.template_share, embed=embed if settings.embedder else None,
                 exclude=settings.enabled, warn_share=settings.warn_share)


@task(name="prefilter", retries=1, retry_condition_fn=unexpected_only)
def prefilter_task(store_uri: str, query_table: str, pool_table: str, *, budget: int, factor: float, tail: float,
                   selector: str, seed: int) -> Cascade:
    """Rank the pool in a cheap representation and store the cascade's candidates (a table name and counts)."""
    return plan_cascade(store_uri, query_table, pool_table, budget=budget, factor=factor, tail=tail,
                        selector=selector, seed=seed)


@task(name="select", retries=1, retry_condition_fn=unexpected_only, task_run_name="select-{name}")
def select_task(store_uri: str, query_table: str, pool_table: str, records_table: str, *, selector: str,
                budget: int | float, seed: int, out_dir: str, name: str,
                weights: tuple[float, ...] | None = None, held_out: str | list[str] | None = None,
                decontaminate: DecontaminationSettings | None = None, cascade: str = "") -> Subset:
    """``held_out``: the split (or splits: a tuning trial's validation and test) the subset must not copy
    (checked under ``decontaminate``); ``cascade``: a prefilter cascade's table (the pool is its candidates).
    Not cached by Prefect: ordering stored features takes seconds, and the subset's digest keys what follows."""
    guard = guard_for(held_out, decontaminate or DecontaminationSettings()) if held_out else None
    return select_subset(store_uri, query_table, pool_table, selector=selector, budget=budget, seed=seed,
                         out_dir=out_dir, name=name, records_table=records_table,
                         weights=list(weights) if weights else None, guard=guard, cascade=cascade)


@task(name="write-subset", retries=1, retry_condition_fn=unexpected_only)
def write_subset_task(store_uri: str, records_table: str, rows: list[int], path: str,
                      held_out: str | list[str] | None = None,
                      decontaminate: DecontaminationSettings | None = None) -> Subset:
    """The rows as a subset file; given the held-out split, copies of its items are left out (listed beside it)."""
    guard = guard_for(held_out, decontaminate or DecontaminationSettings()) if held_out else None
    return write_subset(store_uri, records_table, rows, path, guard)


@task(name="reference-order", retries=1, retry_condition_fn=unexpected_only)
def reference_order_task(store_uri: str, query_table: str, pool_table: str, weights: tuple[float, ...] | None,
                         path: str) -> str:
    """Round-robin order of the whole pool, the (queries × pool) similarity and the pool rows of its columns,
    saved to ``path`` (.npz): the experiment's distances and quantiles are measured in it."""
    from pathlib import Path

    from winnow.selection.targeted import order_pool

    ordering, pool, S = order_pool(store_uri, query_table, pool_table, selector="round_robin", seed=0,
                                   weights=list(weights) if weights else None)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, order=ordering.indices, similarity=S, rows=pool.row_idx, ids=np.array(pool.ids))
    return path
