"""Select a subset from the store and write it: the one code path behind the select task and `winnow select`."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from winnow.data.loaders import write_jsonl
from winnow.hashing import text_digest
from winnow.results import Subset
from winnow.budget import resolve_budget
from winnow.selection.cascade import full_ordering, read_cascade
from winnow.selection.decontaminate import Guard, guarded_prefix
from winnow.selection.distance import subset_distances
from winnow.selection.ordering import Ordering
from winnow.registry import canonical_selector
from winnow.selection.targeted import order_pool, save_ordering
from winnow.store import lance, record_tables


def select_subset(store_uri: str, query_table: str, pool_table: str, *, selector: str, budget: int | float, seed: int,
                  out_dir: str | Path, name: str, records_table: str | None = None,
                  weights: list[float] | None = None, guard: Guard | None = None, cascade: str = "") -> Subset:
    """Writes ``<name>.jsonl`` (the subset) and ``<name>_ordering.parquet`` (the full ranking) to ``out_dir``.

    Returns sizes, examples per source (subset and pool), its distance to the query set and a content digest (cache key for
    the fine-tune), never the vectors. ``records_table`` defaults to the one the pool features were made from.
    With a ``guard``, the subset is the first ``k`` of the ordering that copy no test item (the others are
    listed in ``<name>_contaminated.jsonl`` and the result's ``decontamination``).

    With a ``cascade`` (a prefilter cascade's table, ``winnow.selection.cascade``) the selector orders its
    candidates only; the budget is a share of the whole pool, and the saved ordering is the full one."""
    selector = canonical_selector(selector)
    db = lance.connect(store_uri)
    records_table = records_table or lance.provenance_of(db, pool_table)["records"]
    cand_rows, prefilter_rows = read_cascade(store_uri, cascade) if cascade else (None, None)
    ordering, pool, S = order_pool(store_uri, query_table, pool_table, selector=selector, seed=seed, weights=weights,
                                   rows=cand_rows)
    n_pool = len(prefilter_rows) if cascade else len(pool.ids)
    k = resolve_budget(budget, n_pool) if selector != "all" else len(pool.ids)
    out = Path(out_dir)
    provenance = {"query_table": query_table, "pool_table": pool_table, "weights": weights, "seed": seed,
                  "cascade": cascade or None}
    if cascade:
        full = record_tables.row_index(db, records_table)
        save_ordering(out / f"{name}_ordering.parquet",
                      full_ordering(ordering, np.searchsorted(full.row_idx, pool.row_idx),
                                    Ordering(np.searchsorted(full.row_idx, prefilter_rows), np.zeros(n_pool),
                                             "prefilter"), {"table": cascade, "candidates": len(pool.ids)}),
                      full, provenance)
    else:
        save_ordering(out / f"{name}_ordering.parquet", ordering, pool, provenance)
    if guard is None:
        chosen_idx = ordering.prefix(k)
        records = record_tables.records_at(db, records_table, pool.row_idx[chosen_idx])
        decontamination, top = None, ordering.scores[:k]
    else:
        ordering.prefix(k)  # the budget fits the ordering
        chosen_idx, records, decontamination = guarded_prefix(
            ordering.indices, k, lambda idx: record_tables.records_at(db, records_table, pool.row_idx[idx]), guard)
        write_jsonl(out / f"{name}_contaminated.jsonl", decontamination["found"])
        position = {int(i): p for p, i in enumerate(ordering.indices)}
        k, top = len(chosen_idx), ordering.scores[[position[int(i)] for i in chosen_idx]]
    chosen = [pool.ids[i] for i in chosen_idx]
    write_jsonl(out / f"{name}.jsonl", [r.to_json() for r in records])
    return Subset(name=name, selector=selector, path=str(out / f"{name}.jsonl"), digest=text_digest(chosen), size=k,
                  pool_size=n_pool, sources=dict(Counter(r.source for r in records)),
                  pool_sources=dict(Counter(full.sources if cascade else pool.sources)),
                  distances=subset_distances(S, chosen_idx), decontamination=decontamination,
                  ordering=str(out / f"{name}_ordering.parquet"), candidates=len(pool.ids) if cascade else None,
                  top_scores=tuple(float(s) for s in top))


def write_subset(store_uri: str, records_table: str, row_idx: list[int], path: str | Path,
                 guard: Guard | None = None) -> Subset:
    """A subset given by rows (the experiment's full-data and distance-quantile cells), read by row and written
    the same way ``select_subset`` writes its subsets; with a ``guard``, copies of test items are left out."""
    db = lance.connect(store_uri)
    rows = np.asarray(row_idx, dtype=np.int64)
    decontamination, excluded = None, []
    if guard is None:
        records = record_tables.records_at(db, records_table, rows)
    else:
        kept, records, decontamination = guarded_prefix(rows, len(rows),
                                                        lambda r: record_tables.records_at(db, records_table, r), guard)
        excluded = sorted(set(rows.tolist()) - set(kept.tolist()))
        write_jsonl(Path(path).with_name(Path(path).stem + "_contaminated.jsonl"), decontamination["found"])
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_jsonl(path, [r.to_json() for r in records])
    return Subset(name=Path(path).stem, selector="rows", path=str(path), digest=text_digest([r.id for r in records]),
                  size=len(records), pool_size=len(rows), sources=dict(Counter(r.source for r in records)),
                  pool_sources={}, decontamination=decontamination, excluded_rows=tuple(excluded))
