"""Feature tasks: plan a featurisation (tables named after provenance), then one task per row range."""
from __future__ import annotations

from typing import Any

from prefect import task

from tasks import CACHED
from winnow.features.shards import GradientJob, featurize_range, gradient_provenance, plan_ranges
from winnow.models.loading import load_tokenizer
from winnow.settings import FeatureSettings, ModelSettings, settings_hash
from winnow.store import lance
from winnow.training.checkpoints import read_checkpoints


@task(name="plan-gradient-features")
def plan_gradient_task(store_uri: str, records_table: str, n_rows: int, kind: str, model_path: str,
                       model: ModelSettings, features: FeatureSettings, warmup_dir: str) -> dict[str, Any]:
    """Create (or reopen) ``grads_<kind>__<provenance hash>`` and return the job plus its row ranges."""
    cks = tuple(read_checkpoints(warmup_dir))
    draft = GradientJob(store_uri, records_table, "", model_path, cks, kind, features, model)  # type: ignore[arg-type]
    prov = gradient_provenance(draft, load_tokenizer(model_path, trust_remote_code=model.trust_remote_code))
    table = f"grads_{kind}__{settings_hash(prov)}"
    lance.create_feature_table(lance.connect(store_uri), table, features.proj_dim, prov, codes=features.codes)
    job = GradientJob(store_uri, records_table, table, model_path, cks, kind, features, model)  # type: ignore[arg-type]
    return {"job": job, "ranges": plan_ranges(n_rows, features.shard_size)}


@task(name="gradient-shard", cache_policy=CACHED, persist_result=True, retries=2, retry_delay_seconds=2,
      task_run_name="{job.feature_table}[{start}:{end}]")
def gradient_shard_task(job: GradientJob, start: int, end: int) -> dict[str, Any]:
    """Cached on inputs + source, and skipped by the store's own markers too: a finished shard never reruns."""
    return {"table": job.feature_table, "start": start, "end": end, **featurize_range(job, start, end, progress=False)}
