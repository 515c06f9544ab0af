"""What a model *is*, for artifact keys: a hash of its files' bytes, never its path.

Keys once took a model's path (features, NICE tables, experiment cells) or the names and sizes of its weight
files (fine-tunes): new weights written to the same folder, same size, served the old model's features. Here a
model folder is hashed whole (config, tokenizer, weights). Hashing a 7B model's 13 GB takes tens of seconds, so
each file's hash is remembered under its (path, size, mtime, inode) in a small JSON cache when a cache folder is
given (flows pass WINNOW_HOME), and in this process always: rewritten weights get a new mtime and are hashed
again. No torch import: keys are computed in the flow process and on workers alike.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

# Files that do not change what a model computes: docs, licences, git and the HF cache's own bookkeeping.
_SKIP_SUFFIXES = (".md", ".txt", ".lock", ".gitattributes")
_SKIP_NAMES = {"LICENSE", ".gitattributes", ".DS_Store"}
_seen: dict[tuple[str, int, int, int], str] = {}


@dataclass(frozen=True)
class ModelRef:
    """A model as flows pass it around: where to load it from, and what it is. Keys read ``fingerprint`` only
    (``winnow.keys`` serialises a ModelRef as its fingerprint), so a moved model keeps its artifacts and new
    weights at the same path get new ones."""

    path: str
    fingerprint: str


def _file_hash(path: Path, cache: dict[str, str]) -> str:
    st = path.stat()
    stamp = (str(path.resolve()), st.st_size, st.st_mtime_ns, st.st_ino)
    token = "|".join(map(str, stamp))
    if stamp in _seen:
        return _seen[stamp]
    if token in cache:
        _seen[stamp] = cache[token]
        return cache[token]
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    _seen[stamp] = cache[token] = h.hexdigest()[:32]
    return _seen[stamp]


def model_fingerprint(path: str, cache_dir: str | os.PathLike[str] | None = None) -> str:
    """Content hash of a model folder (every file that can change its outputs); a name that is no folder (a hub
    id not downloaded) is fingerprinted by the name itself, marked ``name:`` so it is never mistaken for content."""
    p = Path(path)
    if not p.is_dir():
        return f"name:{path}"
    store = Path(cache_dir) / "fingerprints.json" if cache_dir else None
    cache: dict[str, str] = {}
    if store and store.is_file():
        try:
            cache = json.loads(store.read_text())
        except (OSError, ValueError):
            cache = {}
    before = len(cache)
    files = sorted(f for f in p.rglob("*") if f.is_file() and f.name not in _SKIP_NAMES
                   and not f.name.endswith(_SKIP_SUFFIXES) and ".cache" not in f.parts)
    h = hashlib.sha256()
    for f in files:
        h.update(str(f.relative_to(p)).encode() + b"\0" + _file_hash(f, cache).encode() + b"\0")
    if store and len(cache) != before:
        store.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=store.parent, prefix=".fingerprints-")
        with os.fdopen(fd, "w") as out:
            json.dump(cache, out)
        os.replace(tmp, store)
    return h.hexdigest()[:16]


def model_ref(path: str, cache_dir: str | os.PathLike[str] | None = None) -> ModelRef:
    return ModelRef(path, model_fingerprint(path, cache_dir))
