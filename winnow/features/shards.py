"""Featurise one row range of a records table: the unit that executors distribute.

Like a datatrove step, a shard does not know where it runs: it reads its rows from the store, computes one
representation (``winnow.registry``: any of them, the same way), writes the vectors straight back,
and then leaves a completion marker. Re-running a finished shard is a no-op; re-running an interrupted one
overwrites its own rows (writes merge by key), so a crash loses nothing and duplicates nothing.
"""
from __future__ import annotations

from typing import Any

from winnow.errors import ShardError, WinnowError
from winnow.features.job import FeatureJob, plan_ranges
from winnow.registry import representation, representation_code
from winnow.keys import artifact_key
from winnow.models.loading import set_threads
from winnow.store import feature_tables, lance, record_tables, shard_markers

__all__ = ["FeatureJob", "featurize_range", "featurize_rows", "feature_table_name", "plan_ranges"]


def feature_table_name(job: FeatureJob) -> tuple[str, dict[str, Any]]:
    """The table a job's vectors go to, named by what made them (records, model content, settings: the
    representation's provenance) and the code that computes them; and that provenance, stored with the table."""
    rep = representation(job.representation)
    prov = rep.provenance(job)
    return artifact_key(rep.table_prefix(job), inputs=prov, code=representation_code(job.representation)), prov


def featurize_range(job: FeatureJob, start: int, end: int, *, progress: bool = True) -> dict[str, int]:
    """Featurise rows [start, end) at every checkpoint not yet marked done; returns counts. An unmarked range is
    computed whole, replacing whatever rows of it the table holds (an interrupted run's)."""
    db = lance.connect(job.store_uri)
    cks = representation(job.representation).checkpoint_indices(job)
    todo = [c for c in cks if not shard_markers.is_done(db, job.feature_table, c, start, end, end - start)]
    if not todo:
        return {"rows": end - start, "computed": 0, "skipped_checkpoints": len(cks)}
    records = record_tables.read_records(db, job.records_table, start, end)
    if len(records) != end - start:
        raise RuntimeError(f"{job.records_table}: rows [{start}, {end}) hold {len(records)} records")
    for ck in todo:
        _compute(job, db, records, list(range(start, end)), ck, f"[{start}:{end}]", progress)
        shard_markers.mark_done(db, job.feature_table, ck, start, end, end - start)
    return {"rows": end - start, "computed": len(todo), "skipped_checkpoints": len(cks) - len(todo)}


def featurize_rows(job: FeatureJob, rows: list[int], *, progress: bool = True) -> dict[str, int]:
    """Featurise the given rows (a prefilter cascade's candidates, any order) at every checkpoint where they lack
    features. No range marker: a row with a vector is a row done, so a rerun computes only what is missing."""
    db = lance.connect(job.store_uri)
    missing = {c: sorted(set(rows) - feature_tables.rows_with_features(db, job.feature_table, c, rows))
               for c in representation(job.representation).checkpoint_indices(job)}
    need = sorted({r for m in missing.values() for r in m})
    if need:
        by_row = dict(zip(need, record_tables.records_at(db, job.records_table, need)))
        for ck, ck_rows in missing.items():
            if ck_rows:
                _compute(job, db, [by_row[r] for r in ck_rows], ck_rows, ck, f"rows {ck_rows[0]}..{ck_rows[-1]}",
                         progress)
    return {"rows": len(rows), "computed": len(need), "skipped_checkpoints": sum(not m for m in missing.values())}


def _compute(job: FeatureJob, db: Any, records: list[Any], row_idx: list[int], checkpoint: int, where: str,
             progress: bool) -> None:
    """Vectors of ``records`` (at pool rows ``row_idx``) at one checkpoint, written to the job's table in one
    commit (so a row present is a row finished)."""
    set_threads(job.model.num_threads)
    try:
        vecs, norms, n_tokens = representation(job.representation).compute(job, records, checkpoint, progress)
        feature_tables.write_features(db, job.feature_table, records=records, row_idx=row_idx, checkpoint=checkpoint,
                                      vectors=vecs, norms=norms, n_tokens=n_tokens)
    except WinnowError:
        raise
    except Exception as e:  # name the shard: Prefect shows this message on the failed task run
        raise ShardError(f"shard {job.feature_table}{where} ({job.representation}, checkpoint {checkpoint}) "
                         f"failed: {type(e).__name__}: {e}") from e
