"""Featurise one row range of a records table: the unit that executors distribute.

Like a datatrove step, a shard does not know where it runs: it reads its rows from the store, computes one
representation, writes the vectors straight back, and then leaves a completion marker. Re-running a
finished shard is a no-op; re-running an interrupted one overwrites its own rows (writes merge by key), so
a crash loses nothing and duplicates nothing.

Representations: ``gradients`` (LESS; one vector per warm-up checkpoint, Adam-preconditioned for the pool,
plain for queries), ``hidden`` (the base model's position-weighted last layer) and ``embedding`` (a
sentence-transformers model). The last two have a single "checkpoint" 0.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from winnow.data.formatting import encode, template_hash
from winnow.features.embeddings import embedder_path, embedding_features
from winnow.features.gradients import gradient_features
from winnow.features.hidden_states import hidden_state_features
from winnow.features.per_example import lora_modules
from winnow.features.projection import Projector
from winnow.errors import ShardError, WinnowError
from winnow.hashing import file_digest
from winnow.keys import code_version
from winnow.models.loading import load_model, load_tokenizer, resolve_device, set_threads
from winnow.models.lora import load_adapter
from winnow.settings import FeatureSettings, ModelSettings
from winnow.store import feature_tables, lance, record_tables, shard_markers
from winnow.training.checkpoints import Checkpoint, load_adam_moments
from winnow.features import Representation


@dataclass(frozen=True)
class FeatureJob:
    """Everything a worker needs for a range, small enough to travel through Prefect and Dask."""

    store_uri: str
    records_table: str
    feature_table: str
    model_path: str
    features: FeatureSettings
    model: ModelSettings
    representation: Representation = "gradients"
    checkpoints: tuple[Checkpoint, ...] = ()  # gradients only
    kind: Literal["adam", "sgd"] = "sgd"  # gradients only: pool Adam-preconditioned, queries plain
    embedder: str = "default"  # embedding only

    @property
    def checkpoint_indices(self) -> list[int]:
        return [c.index for c in self.checkpoints] if self.representation == "gradients" else [0]


def plan_ranges(n_rows: int, shard_size: int) -> list[tuple[int, int]]:
    """Aligned ranges [k·size, (k+1)·size): old ranges keep their bounds when the table grows."""
    return [(s, min(s + shard_size, n_rows)) for s in range(0, n_rows, shard_size)]


def feature_provenance(job: FeatureJob, tokenizer: Any | None) -> dict[str, Any]:
    """What made these features: stored with the table, and hashed into its name by the caller."""
    prov: dict[str, Any] = {"representation": job.representation, "records": job.records_table,
                            "code": code_version(__name__)}  # a fix in the feature code makes a new table
    if job.representation == "embedding":
        return {**prov, "embedder": embedder_path(job.embedder), "embedder_files": file_digest(embedder_path(job.embedder), n=12)}
    prov.update({"model": job.model_path, "dtype": job.model.dtype, "max_length": job.model.max_length,
                 "template": template_hash(tokenizer)})
    if job.representation == "hidden":
        return prov
    return {**prov, "kind": job.kind,
            "adapters": file_digest(*[c.adapter_dir / "adapter_model.safetensors" for c in job.checkpoints], n=12),
            "checkpoints": [c.epoch for c in job.checkpoints],
            "checkpoint_weights": [round(c.weight, 8) for c in job.checkpoints],
            "projector": job.features.projector, "proj_dim": job.features.proj_dim,
            "sjlt_nnz": job.features.sjlt_nnz, "proj_seed": job.features.seed, "codes": job.features.codes,
            "adam": [[*c.betas, c.eps] for c in job.checkpoints],  # read from the warm-up's own log
            "adam_eps_placement": job.features.adam_eps_placement,
            "autocast_bf16": job.features.autocast_bf16}


def featurize_range(job: FeatureJob, start: int, end: int, *, progress: bool = True) -> dict[str, int]:
    """Featurise rows [start, end) at every checkpoint not yet marked done; returns counts. An unmarked range is
    computed whole, replacing whatever rows of it the table holds (an interrupted run's)."""
    db = lance.connect(job.store_uri)
    todo = [c for c in job.checkpoint_indices if not shard_markers.is_done(db, job.feature_table, c, start, end, end - start)]
    if not todo:
        return {"rows": end - start, "computed": 0, "skipped_checkpoints": len(job.checkpoint_indices)}
    records = record_tables.read_records(db, job.records_table, start, end)
    if len(records) != end - start:
        raise RuntimeError(f"{job.records_table}: rows [{start}, {end}) hold {len(records)} records")
    for ck in todo:
        _compute(job, db, records, list(range(start, end)), [ck], f"[{start}:{end}]", progress)
        shard_markers.mark_done(db, job.feature_table, ck, start, end, end - start)
    return {"rows": end - start, "computed": len(todo),
            "skipped_checkpoints": len(job.checkpoint_indices) - len(todo)}


def featurize_rows(job: FeatureJob, rows: list[int], *, progress: bool = True) -> dict[str, int]:
    """Featurise the given rows (a prefilter cascade's candidates, any order) at every checkpoint where they lack
    features. No range marker: a row with a vector is a row done, so a rerun computes only what is missing."""
    db = lance.connect(job.store_uri)
    missing = {c: sorted(set(rows) - feature_tables.rows_with_features(db, job.feature_table, c, rows))
               for c in job.checkpoint_indices}
    need = sorted({r for m in missing.values() for r in m})
    if need:
        by_row = dict(zip(need, record_tables.records_at(db, job.records_table, need)))
        for ck, ck_rows in missing.items():
            if ck_rows:
                _compute(job, db, [by_row[r] for r in ck_rows], ck_rows, [ck], f"rows {ck_rows[0]}..{ck_rows[-1]}",
                         progress)
    return {"rows": len(rows), "computed": len(need),
            "skipped_checkpoints": sum(not m for m in missing.values())}


def _compute(job: FeatureJob, db: Any, records: list[Any], row_idx: list[int], checkpoints: list[int], where: str,
             progress: bool) -> None:
    """Vectors of ``records`` (at pool rows ``row_idx``) at each checkpoint, written to the job's table in one
    commit per checkpoint (so a row present is a row finished)."""
    set_threads(job.model.num_threads)
    n_tokens: list[int] = [0] * len(records)
    if job.representation != "embedding":
        tok = load_tokenizer(job.model_path, trust_remote_code=job.model.trust_remote_code)
        encoded = [encode(tok, r, job.model.max_length) for r in records]
        n_tokens = [len(e.input_ids) for e in encoded]
    for ck in checkpoints:
        try:
            if job.representation == "embedding":
                vecs, norms = embedding_features(job.embedder, records, batch_size=job.features.batch_size,
                                                 device=str(resolve_device(job.model.device)), progress=progress)
            else:
                base = load_model(job.model_path, device=job.model.device, dtype=job.model.dtype,
                                  trust_remote_code=job.model.trust_remote_code)  # a clean base for every checkpoint
                if job.representation == "hidden":
                    vecs, norms = hidden_state_features(base, encoded, pad_id=tok.pad_token_id,
                                                        batch_size=job.features.batch_size, progress=progress)
                else:
                    checkpoint = job.checkpoints[ck]
                    model = load_adapter(base, checkpoint.adapter_dir, trainable=True).eval()  # eval: no dropout
                    modules = lora_modules(model)
                    moments = load_adam_moments(checkpoint.optimizer_file, list(modules)) if job.kind == "adam" else None
                    projector = Projector(job.features.projector, job.features.proj_dim, job.features.seed,
                                          job.features.sjlt_nnz)
                    vecs, norms = gradient_features(
                        model, encoded, modules, projector, pad_id=tok.pad_token_id,
                        batch_size=job.features.batch_size, moments=moments,
                        betas=checkpoint.betas, eps=checkpoint.eps,
                        eps_inside=job.features.adam_eps_placement == "less_code",
                        progress=progress, autocast_bf16=job.features.autocast_bf16)
            feature_tables.write_features(db, job.feature_table, records=records, row_idx=row_idx,
                                          checkpoint=ck, vectors=vecs, norms=norms, n_tokens=n_tokens)
        except WinnowError:
            raise
        except Exception as e:  # name the shard: Prefect shows this message on the failed task run
            raise ShardError(f"shard {job.feature_table}{where} ({job.representation}, checkpoint {ck}) "
                             f"failed: {type(e).__name__}: {e}") from e


def representation_dim(job: FeatureJob) -> int:
    """Vector width of a job's representation (needed to create its table before any shard runs)."""
    if job.representation == "gradients":
        return job.features.proj_dim
    if job.representation == "embedding":
        from sentence_transformers import SentenceTransformer

        return int(SentenceTransformer(embedder_path(job.embedder), device="cpu").get_sentence_embedding_dimension())
    import json
    from pathlib import Path

    cfg = json.loads((Path(job.model_path) / "config.json").read_text()) if Path(job.model_path).is_dir() else {}
    if "hidden_size" in cfg:
        return int(cfg["hidden_size"])
    from transformers import AutoConfig

    return int(AutoConfig.from_pretrained(job.model_path).hidden_size)
