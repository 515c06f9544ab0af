"""Feature tasks: plan a featurisation (a table named after its provenance), then one task per row range."""
from __future__ import annotations

from typing import Any

from prefect import task

from tasks import CACHED, unexpected_only
from winnow.features.shards import FeatureJob, feature_provenance, featurize_range, featurize_rows, plan_ranges, \
    representation_dim
from winnow.models.loading import load_tokenizer
from winnow.keys import digest
from winnow.settings import FeatureSettings, ModelSettings
from winnow.store import feature_tables, lance, shard_markers
from winnow.training.checkpoints import read_checkpoints


@task(name="plan-features")
def plan_features_task(store_uri: str, records_table: str, n_rows: int, model_path: str, model: ModelSettings,
                       features: FeatureSettings, representation: str = "gradients", warmup_dir: str | None = None,
                       kind: str = "sgd", embedder: str = "default") -> dict[str, Any]:
    """Create (or reopen) ``<representation>_<kind>__<provenance hash>``; return the job and its ranges."""
    cks = tuple(read_checkpoints(warmup_dir)) if representation == "gradients" else ()
    job = FeatureJob(store_uri, records_table, "", model_path, features, model, representation,  # type: ignore[arg-type]
                     cks, kind, embedder)  # type: ignore[arg-type]
    tok = None if representation == "embedding" else load_tokenizer(model_path,
                                                                      trust_remote_code=model.trust_remote_code)
    prov = feature_provenance(job, tok)
    prefix = {"gradients": f"grads_{kind}", "hidden": "hidden", "embedding": "embed"}[representation]
    table = f"{prefix}__{digest(prov)}"  # the provenance holds the code version: a fix makes a new table
    codes = features.codes if representation == "gradients" else "fp16"
    feature_tables.create_feature_table(lance.connect(store_uri), table, representation_dim(job), prov, codes=codes)
    job = FeatureJob(store_uri, records_table, table, model_path, features, model, representation,  # type: ignore[arg-type]
                     cks, kind, embedder)  # type: ignore[arg-type]
    return {"job": job, "ranges": plan_ranges(n_rows, features.shard_size)}


@task(name="feature-shard", cache_policy=CACHED, persist_result=True, retries=2, retry_delay_seconds=2,
      retry_condition_fn=unexpected_only, task_run_name="{job.feature_table}[{start}:{end}]")
def feature_shard_task(job: FeatureJob, start: int, end: int) -> dict[str, Any]:
    """Cached on inputs + source, and skipped by the store's own markers too: a finished shard never reruns."""
    return {"table": job.feature_table, "start": start, "end": end, **featurize_range(job, start, end, progress=False)}


@task(name="feature-rows", cache_policy=CACHED, persist_result=True, retries=2, retry_delay_seconds=2,
      retry_condition_fn=unexpected_only, task_run_name="{job.feature_table}[rows {rows[0]}..]")
def feature_rows_task(job: FeatureJob, rows: list[int]) -> dict[str, Any]:
    """A prefilter cascade's shard: explicit candidate rows (at most a shard's worth); rows that already have
    features (this cascade's earlier run, another cascade, a full featurisation) are not computed again."""
    return {"table": job.feature_table, "start": rows[0], "end": rows[-1] + 1, **featurize_rows(job, rows, progress=False)}


@task(name="compact-features", retries=1, retry_condition_fn=unexpected_only)
def compact_task(store_uri: str, tables: list[str]) -> dict[str, int]:
    """After a featurisation: merge the fragments each shard commit left (and the markers'), so later scans
    read a few large fragments. Returns the fragments left per table."""
    db = lance.connect(store_uri)
    return {name: lance.compact(db, name) for name in [*tables, shard_markers.MARKERS]}
