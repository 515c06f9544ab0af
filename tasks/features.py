"""Feature tasks: plan a featurisation (a table named after its provenance), then one task per row range."""
from __future__ import annotations

from prefect import task

from tasks import step_task
from winnow.features.job import FeatureJob, plan_ranges
from winnow.registry import representation
from winnow.features.shards import feature_table_name, featurize_range, featurize_rows
from winnow.fingerprint import ModelRef
from winnow.results import FeaturePlan, ShardDone
from winnow.settings import FeatureSettings, ModelSettings
from winnow.store import feature_tables, lance, shard_markers
from winnow.training.checkpoints import read_checkpoints


@task(name="plan-features")
def plan_features_task(store_uri: str, records_table: str, n_rows: int, base: ModelRef, model: ModelSettings,
                       features: FeatureSettings, representation_name: str = "gradients", warmup_dir: str | None = None,
                       kind: str = "sgd", embedder: str = "default") -> FeaturePlan:
    """Create (or reopen) the representation's table for these records, named by what makes its vectors."""
    rep = representation(representation_name)
    cks = tuple(read_checkpoints(warmup_dir)) if rep.needs_warmup else ()
    job = FeatureJob(store_uri, records_table, "", base.path, features, model, representation_name, cks,  # type: ignore[arg-type]
                     kind, embedder, base.fingerprint)
    table, prov = feature_table_name(job)
    codes = features.codes if rep.needs_warmup else "fp16"  # only gradients are wide enough to need int8 / bits
    feature_tables.create_feature_table(lance.connect(store_uri), table, rep.dim(job), prov, codes=codes)
    return FeaturePlan(job=FeatureJob(store_uri, records_table, table, base.path, features, model,  # type: ignore[arg-type]
                                      representation_name, cks, kind, embedder, base.fingerprint),
                       ranges=tuple(plan_ranges(n_rows, features.shard_size)))


def _done(job: FeatureJob, start: int, end: int, counts: dict[str, int]) -> ShardDone:
    return ShardDone(job.feature_table, start, end, counts["rows"], counts["computed"], counts["skipped_checkpoints"])


@step_task("features", name="feature-shard", retries=2, retry_delay_seconds=2,
           task_run_name="{job.feature_table}[{start}:{end}]")
def feature_shard_task(job: FeatureJob, start: int, end: int) -> ShardDone:
    """Cached on its key, and skipped by the store's own markers too: a finished shard never reruns."""
    return _done(job, start, end, featurize_range(job, start, end, progress=False))


@step_task("features", name="feature-rows", retries=2, retry_delay_seconds=2,
           task_run_name="{job.feature_table}[rows {rows[0]}..]")
def feature_rows_task(job: FeatureJob, rows: list[int]) -> ShardDone:
    """A prefilter cascade's shard: explicit candidate rows (at most a shard's worth); rows that already have
    features (this cascade's earlier run, another cascade, a full featurisation) are not computed again."""
    return _done(job, rows[0], rows[-1] + 1, featurize_rows(job, rows, progress=False))


@task(name="compact-features", retries=1)
def compact_task(store_uri: str, tables: list[str]) -> dict[str, int]:
    """After a featurisation: merge the fragments each shard commit left (and the markers'), so later scans
    read a few large fragments. Returns the fragments left per table."""
    db = lance.connect(store_uri)
    return {name: lance.compact(db, name) for name in [*tables, shard_markers.MARKERS]}
