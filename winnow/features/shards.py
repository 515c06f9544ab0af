"""Featurise one row range of a records table at one checkpoint: the unit that executors distribute.

Like a datatrove step, a shard does not know where it runs: it reads its rows from the store, loads a
clean base model plus the checkpoint's adapter, writes its vectors straight back to the store, and then
leaves a completion marker. Re-running a finished shard is a no-op; re-running an interrupted one
overwrites its own rows (writes merge by key), so a crash loses nothing and duplicates nothing.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from winnow.data.formatting import encode, template_hash
from winnow.features.gradients import gradient_features
from winnow.features.per_example import lora_modules
from winnow.features.projection import Projector
from winnow.hashing import file_digest
from winnow.models.loading import load_model, load_tokenizer, set_threads
from winnow.models.lora import load_adapter
from winnow.settings import FeatureSettings, ModelSettings
from winnow.store import lance
from winnow.training.checkpoints import Checkpoint, load_adam_moments


@dataclass(frozen=True)
class GradientJob:
    """Everything a worker needs for a range, small enough to travel through Prefect and Dask."""

    store_uri: str
    records_table: str
    feature_table: str
    model_path: str
    checkpoints: tuple[Checkpoint, ...]
    kind: Literal["adam", "sgd"]  # pool: Adam-preconditioned; query: plain gradient
    features: FeatureSettings
    model: ModelSettings


def plan_ranges(n_rows: int, shard_size: int) -> list[tuple[int, int]]:
    """Aligned ranges [k·size, (k+1)·size): old ranges keep their bounds when the table grows."""
    return [(s, min(s + shard_size, n_rows)) for s in range(0, n_rows, shard_size)]


def gradient_provenance(job: GradientJob, tokenizer: Any) -> dict[str, Any]:
    """What made these features: stored with the table, and hashed into its name by the caller."""
    return {"representation": "gradients", "kind": job.kind, "model": job.model_path,
            "adapters": file_digest(*[c.adapter_dir / "adapter_model.safetensors" for c in job.checkpoints], n=12),
            "checkpoints": [c.epoch for c in job.checkpoints],
            "checkpoint_weights": [round(c.weight, 8) for c in job.checkpoints],
            "projector": job.features.projector, "proj_dim": job.features.proj_dim,
            "sjlt_nnz": job.features.sjlt_nnz, "proj_seed": job.features.seed, "codes": job.features.codes,
            "adam": [job.features.adam_beta1, job.features.adam_beta2, job.features.adam_eps],
            "dtype": job.model.dtype, "autocast_bf16": job.features.autocast_bf16, "max_length": job.model.max_length,
            "template": template_hash(tokenizer), "records": job.records_table}


def featurize_range(job: GradientJob, start: int, end: int, *, progress: bool = True) -> dict[str, int]:
    """Featurise rows [start, end) at every checkpoint not yet marked done; returns counts."""
    db = lance.connect(job.store_uri)
    todo = [c for c in job.checkpoints
            if not lance.is_done(db, job.feature_table, c.index, start, end, end - start)]
    if not todo:
        return {"rows": end - start, "computed": 0, "skipped_checkpoints": len(job.checkpoints)}
    set_threads(job.model.num_threads)
    records = lance.read_records(db, job.records_table, start, end)
    if len(records) != end - start:
        raise RuntimeError(f"{job.records_table}: rows [{start}, {end}) hold {len(records)} records")
    tok = load_tokenizer(job.model_path, trust_remote_code=job.model.trust_remote_code)
    encoded = [encode(tok, r, job.model.max_length) for r in records]
    projector = Projector(job.features.projector, job.features.proj_dim, job.features.seed, job.features.sjlt_nnz)
    for ck in todo:
        base = load_model(job.model_path, device=job.model.device, dtype=job.model.dtype,
                          trust_remote_code=job.model.trust_remote_code)
        model = load_adapter(base, ck.adapter_dir, trainable=True).eval()  # eval: no dropout in features
        modules = lora_modules(model)
        moments = load_adam_moments(ck.optimizer_file, list(modules)) if job.kind == "adam" else None
        vecs, norms = gradient_features(
            model, encoded, modules, projector, pad_id=tok.pad_token_id, batch_size=job.features.batch_size,
            moments=moments, betas=(job.features.adam_beta1, job.features.adam_beta2), eps=job.features.adam_eps,
            progress=progress, autocast_bf16=job.features.autocast_bf16)
        lance.write_features(db, job.feature_table, records=records, row_idx=list(range(start, end)),
                             checkpoint=ck.index, vectors=vecs, norms=norms,
                             n_tokens=[len(e.input_ids) for e in encoded])
        lance.mark_done(db, job.feature_table, ck.index, start, end, end - start)
    return {"rows": end - start, "computed": len(todo), "skipped_checkpoints": len(job.checkpoints) - len(todo)}
