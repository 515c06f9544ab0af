"""Feature tables: one row per example and checkpoint, merged by ``id@checkpoint``, vectors in fp16, int8 or
1-bit codes; read whole, by rows, or streamed in batches."""
from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from winnow.data.records import Record
from winnow.store import lance
from winnow.errors import StaleArtifactError
from winnow.store.codes import Codes, decode, encode, vector_type


def feature_schema(dim: int, codes: Codes = "fp16") -> pa.Schema:
    return pa.schema([("key", pa.string()), ("id", pa.string()), ("row_idx", pa.int64()),
                      ("checkpoint", pa.int32()), ("source", pa.string()), ("task", pa.string()),
                      ("vector", vector_type(codes, dim)), ("scale", pa.float32()), ("norm", pa.float32()),
                      ("n_tokens", pa.int32())])


def create_feature_table(db: Any, name: str, dim: int, provenance: dict[str, Any], overwrite: bool = False,
                         codes: Codes = "fp16") -> None:
    """A feature table; its dimension and codes are recorded in the provenance metadata."""
    lance.open_or_create(db, name, feature_schema(dim, codes), {**provenance, "dim": dim, "codes": codes}, overwrite)


def _layout(tbl: Any) -> tuple[int, Codes]:
    meta = json.loads((tbl.schema.metadata or {}).get(b"winnow", b"{}"))
    return int(meta.get("dim", tbl.schema.field("vector").type.list_size)), meta.get("codes", "fp16")


def write_features(db: Any, name: str, *, records: list[Record], row_idx: list[int], checkpoint: int,
                   vectors: np.ndarray, norms: np.ndarray, n_tokens: list[int]) -> int:
    """Upsert feature rows keyed by ``id@checkpoint`` (re-running a shard replaces, never duplicates)."""
    tbl = lance.open_table(db, name)
    dim, codes = _layout(tbl)
    if vectors.shape != (len(records), dim):
        raise ValueError(f"vectors have shape {vectors.shape}, table {name!r} wants ({len(records)}, {dim})")
    if not np.isfinite(vectors).all() or not np.isfinite(norms).all():
        bad = [r.id for r, v, n in zip(records, vectors, norms) if not (np.isfinite(v).all() and np.isfinite(n))]
        raise ValueError(f"non-finite feature vectors for {len(bad)} record(s), e.g. id {bad[0]!r}; "
                         "not stored (check the model's dtype and the data)")
    coded, scale = encode(vectors, codes)
    flat = pa.array(coded.reshape(-1))
    data = pa.table({"key": [f"{r.id}@{checkpoint}" for r in records], "id": [r.id for r in records],
                     "row_idx": row_idx, "checkpoint": [checkpoint] * len(records),
                     "source": [r.source for r in records], "task": [r.task for r in records],
                     "vector": pa.FixedSizeListArray.from_arrays(flat, coded.shape[1]),
                     "scale": scale, "norm": norms.astype(np.float32), "n_tokens": n_tokens}, schema=tbl.schema)
    with lance.writer_lock(db.uri, name):
        tbl.checkout_latest()
        lance.commit(lambda: tbl.merge_insert("key").when_matched_update_all().when_not_matched_insert_all().execute(data))
    return len(records)


@dataclass(frozen=True)
class FeatureMatrix:
    ids: list[str]
    row_idx: np.ndarray  # (N,)
    sources: list[str]
    tasks: list[str]
    vectors: np.ndarray  # (C, N, d) float32, L2-normalised, C checkpoints in index order


def read_features(db: Any, name: str) -> FeatureMatrix:
    """All features of a table decoded to float32 (never do matrix maths in float16 numpy), ordered by row."""
    tbl = lance.open_table(db, name)
    dim, codes = _layout(tbl)
    t = tbl.to_arrow().sort_by([("checkpoint", "ascending"), ("row_idx", "ascending")])
    cks = np.unique(t.column("checkpoint").to_numpy())
    width = t.schema.field("vector").type.list_size
    raw = t.column("vector").combine_chunks().flatten().to_numpy(zero_copy_only=False).reshape(-1, width)
    vec = decode(raw, codes, dim).reshape(len(cks), -1, dim)
    first = t.filter(pa.compute.equal(t.column("checkpoint"), pa.scalar(int(cks[0]), pa.int32())))
    ids = first.column("id").to_pylist()
    for c in cks[1:]:
        other = t.filter(pa.compute.equal(t.column("checkpoint"), pa.scalar(int(c), pa.int32())))
        if other.column("id").to_pylist() != ids:
            raise StaleArtifactError(f"table {name!r}: checkpoint {c} covers other ids than checkpoint {cks[0]}; "
                                     "featurisation is unfinished")
    return FeatureMatrix(ids, first.column("row_idx").to_numpy(), first.column("source").to_pylist(),
                         first.column("task").to_pylist(), vec)


@dataclass(frozen=True)
class FeatureIndex:
    """A feature table's rows without their vectors: what selection needs besides similarities."""

    ids: list[str]
    row_idx: np.ndarray  # (N,) in row order
    sources: list[str]
    tasks: list[str]
    checkpoints: list[int]


def feature_index(db: Any, name: str, rows: np.ndarray | None = None) -> FeatureIndex:
    """Ids, rows, sources and tasks (vectors are not read), checked to be complete for every checkpoint.

    ``rows`` limits the index to those rows, every one of which must have features: a prefilter cascade's
    candidates, out of a table that may hold more (other cascades' candidates, or a full featurisation)."""
    t = lance.open_table(db, name).to_lance().to_table(columns=["id", "row_idx", "checkpoint", "source", "task"])
    if rows is not None:
        t = t.filter(pa.compute.is_in(t.column("row_idx"), value_set=pa.array(np.asarray(rows, dtype=np.int64))))
    t = t.sort_by([("checkpoint", "ascending"), ("row_idx", "ascending")])
    cks = sorted(set(t.column("checkpoint").to_pylist()))
    if not cks:
        raise StaleArtifactError(f"table {name!r} has no features" + (" for the asked rows" if rows is not None else ""))
    first = t.filter(pa.compute.equal(t.column("checkpoint"), pa.scalar(cks[0], pa.int32())))
    for c in cks[1:]:
        other = t.filter(pa.compute.equal(t.column("checkpoint"), pa.scalar(c, pa.int32())))
        if other.column("row_idx").to_pylist() != first.column("row_idx").to_pylist():
            raise StaleArtifactError(f"table {name!r}: checkpoint {c} covers {other.num_rows} rows, checkpoint "
                                     f"{cks[0]} {first.num_rows}; featurisation is unfinished")
    if rows is not None and first.num_rows != len(np.unique(rows)):
        missing = np.setdiff1d(rows, first.column("row_idx").to_numpy())
        raise StaleArtifactError(f"table {name!r}: {len(missing)} of the asked rows have no features (e.g. row "
                                 f"{missing[0]}); the cascade's featurisation is unfinished")
    return FeatureIndex(first.column("id").to_pylist(), first.column("row_idx").to_numpy(),
                        first.column("source").to_pylist(), first.column("task").to_pylist(), cks)


def rows_with_features(db: Any, name: str, checkpoint: int, rows: list[int]) -> set[int]:
    """Which of ``rows`` already have a vector at ``checkpoint`` (a shard writes each checkpoint's rows in one
    commit, so a row present is a row finished)."""
    if not rows:
        return set()
    t = lance.open_table(db, name).to_lance().to_table(
        columns=["row_idx"], filter=f"checkpoint = {int(checkpoint)} AND row_idx IN ({','.join(map(str, rows))})")
    return set(t.column("row_idx").to_pylist())


def iter_feature_batches(db: Any, name: str, batch_rows: int = 65536) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Stream (row_idx (b,), checkpoint (b,), decoded vectors (b, d) float32) in scan order: memory is one batch."""
    tbl = lance.open_table(db, name)
    dim, codes = _layout(tbl)
    for batch in tbl.to_lance().to_batches(columns=["row_idx", "checkpoint", "vector"], batch_size=batch_rows):
        width = batch.schema.field("vector").type.list_size
        raw = batch.column("vector").flatten().to_numpy(zero_copy_only=False).reshape(-1, width)
        yield (batch.column("row_idx").to_numpy(), batch.column("checkpoint").to_numpy(), decode(raw, codes, dim))


def take_features(db: Any, name: str, row_idx: np.ndarray) -> np.ndarray:
    """Vectors (C, n, d) of the given rows, in the given order (e.g. the candidates of a KNN selector)."""
    tbl = lance.open_table(db, name)
    dim, codes = _layout(tbl)
    wanted = ",".join(str(int(r)) for r in row_idx)
    t = tbl.to_lance().to_table(columns=["row_idx", "checkpoint", "vector"], filter=f"row_idx IN ({wanted})")
    cks = sorted(set(t.column("checkpoint").to_pylist()))
    pos = {int(r): i for i, r in enumerate(row_idx)}
    width = t.schema.field("vector").type.list_size
    raw = t.column("vector").combine_chunks().flatten().to_numpy(zero_copy_only=False).reshape(-1, width)
    vec = decode(raw, codes, dim)
    out = np.zeros((len(cks), len(row_idx), dim), dtype=np.float32)
    for r, c, v in zip(t.column("row_idx").to_numpy(), t.column("checkpoint").to_numpy(), vec):
        out[cks.index(int(c)), pos[int(r)]] = v
    return out
