"""Content hashes: artifacts and caches are keyed on what they hold, never on a path alone."""
from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path


def file_digest(*paths: str | os.PathLike[str], n: int = 16) -> str:
    """Hash of the files' bytes: a file by its content alone (a renamed or moved copy is the same data), a
    directory by its files' paths inside it and their content, in sorted order."""
    h = hashlib.sha256()
    for path in paths:
        p = Path(path)
        files = sorted(q for q in p.rglob("*") if q.is_file()) if p.is_dir() else [p]
        for q in files:
            h.update((str(q.relative_to(p)) if p.is_dir() else "").encode() + b"\0")
            with open(q, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
    return h.hexdigest()[:n]


def text_digest(items: Iterable[str], n: int = 16) -> str:
    """Hash of a sequence of strings (e.g. the ids of a subset, in order)."""
    return hashlib.sha256("\n".join(items).encode()).hexdigest()[:n]


def counter_seed(seed: int, *parts: object) -> int:
    """A 63-bit seed derived from ``seed`` and a name/counter, stable across processes and machines (random
    projections per module, samples per prompt)."""
    h = hashlib.sha256(":".join(map(str, (seed, *parts))).encode()).digest()
    return int.from_bytes(h[:8], "little") & (2**63 - 1)
