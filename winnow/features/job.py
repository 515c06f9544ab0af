"""A featurisation job: everything a worker needs for a row range, small enough to travel through Prefect and
Dask (names, settings and checkpoint handles; never vectors)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from winnow.settings import FeatureSettings, ModelSettings
from winnow.training.checkpoints import Checkpoint


@dataclass(frozen=True)
class FeatureJob:
    store_uri: str
    records_table: str
    feature_table: str  # named by its provenance, the model's fingerprint included (winnow.features.shards)
    model_path: str = field(metadata={"key": False})  # where the model is; the table name says what it is
    features: FeatureSettings = FeatureSettings()
    model: ModelSettings = ModelSettings()
    representation: str = "gradients"  # a name of winnow.registry
    checkpoints: tuple[Checkpoint, ...] = ()  # gradients only
    kind: Literal["adam", "sgd"] = "sgd"  # gradients only: pool Adam-preconditioned, queries plain
    embedder: str = "default"  # embedding only
    fingerprint: str = ""  # the model's content fingerprint (winnow.fingerprint); "" = hash it here


def plan_ranges(n_rows: int, shard_size: int) -> list[tuple[int, int]]:
    """Aligned ranges [k·size, (k+1)·size): old ranges keep their bounds when the table grows."""
    return [(s, min(s + shard_size, n_rows)) for s in range(0, n_rows, shard_size)]


def model_provenance(job: FeatureJob) -> dict[str, Any]:
    """What a model-computed feature depends on besides its code: the model's content, dtype, length and chat
    template (the text the model saw)."""
    from winnow.data.formatting import template_hash
    from winnow.fingerprint import model_fingerprint
    from winnow.models.loading import load_tokenizer

    tok = load_tokenizer(job.model_path, trust_remote_code=job.model.trust_remote_code)
    return {"representation": job.representation, "records": job.records_table,
            "model": job.fingerprint or model_fingerprint(job.model_path), "dtype": job.model.dtype,
            "max_length": job.model.max_length, "template": template_hash(tok)}


def load_inputs(job: FeatureJob, records: list[Any]) -> tuple[Any, list[Any], Any]:
    """What a forward pass over ``records`` needs: the tokenizer, the records encoded (chat template, the
    truncation policy) and the base model, as every model-backed representation loads them."""
    from winnow.data.formatting import encode
    from winnow.models.loading import load_model, load_tokenizer

    m = job.model
    tok = load_tokenizer(job.model_path, trust_remote_code=m.trust_remote_code)
    encoded = [encode(tok, r, m.max_length) for r in records]
    return tok, encoded, load_model(job.model_path, device=m.device, dtype=m.dtype, trust_remote_code=m.trust_remote_code)
