"""The feature store: LanceDB tables for the pool, per-example features and shard completion markers.

Every write is idempotent: rows are merged by a key (``id`` for records, ``id@checkpoint`` for features), so
a shard that is re-run after a crash replaces its own rows instead of duplicating them. A shard counts as
finished only once its marker row exists, and the marker is written after the features it vouches for.
Provenance (settings, model, seeds, template hash) lives in each table's schema metadata; opening a table
under other provenance raises ``StaleArtifactError`` showing both.

Only table names, versions and row ranges leave this module towards Prefect and Dask, never arrays.
"""
from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from datetime import timedelta
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from winnow.data.records import Record
from winnow.errors import ConfigError, StaleArtifactError
from winnow.store.codes import Codes, decode, encode, vector_type

MARKERS = "shard_markers"
COMMIT_RETRIES = 8


@dataclass(frozen=True)
class TableRef:
    """What travels between tasks: a table's name, version and size (never its contents)."""

    name: str
    version: int
    n_rows: int
    added: int = 0


def connect(uri: str) -> Any:
    import lancedb

    return lancedb.connect(uri)


def table_exists(db: Any, name: str) -> bool:
    """Open-and-see: ``DBConnection.table_exists`` is unimplemented for local connections in lancedb 0.40."""
    try:
        db.open_table(name)
        return True
    except ValueError:
        return False


def open_table(db: Any, name: str) -> Any:
    """A table by name, or an error naming it and the tables the store has (names often come from users)."""
    try:
        return db.open_table(name)
    except ValueError:
        names = sorted(db.list_tables().tables)
        raise ConfigError(f"no table {name!r} in the store {db.uri} (tables: {', '.join(names) or 'none'})") from None


def _retry(fn: Any) -> Any:
    """Retry a commit that lost a race with another writer (Lance's optimistic concurrency)."""
    for attempt in range(COMMIT_RETRIES):
        try:
            return fn()
        except (OSError, RuntimeError, ValueError) as e:
            if "onflict" not in str(e) and "retry" not in str(e).lower() or attempt == COMMIT_RETRIES - 1:
                raise
            time.sleep(0.05 * 2 ** attempt)


def _open_or_create(db: Any, name: str, schema: pa.Schema, provenance: dict[str, Any] | None,
                    overwrite: bool = False) -> Any:
    meta = {b"winnow": json.dumps(provenance or {}, sort_keys=True).encode()}
    schema = schema.with_metadata(meta)
    if table_exists(db, name):
        tbl = open_table(db, name)
        stored = json.loads((tbl.schema.metadata or {}).get(b"winnow", b"{}"))
        if provenance is not None and stored != json.loads(meta[b"winnow"]):
            if not overwrite:
                raise StaleArtifactError(f"table {name!r} was made under other settings:\n"
                                         f"  stored: {json.dumps(stored, sort_keys=True)}\n"
                                         f"  asked:  {json.dumps(provenance, sort_keys=True)}\n"
                                         "use a new table name or pass overwrite=True")
            db.drop_table(name)
            return db.create_table(name, schema=schema)
        return tbl
    try:
        return db.create_table(name, schema=schema)
    except (ValueError, OSError, RuntimeError):
        if table_exists(db, name):  # another process created it between our check and create
            return open_table(db, name)
        raise


# Compaction keeps every version: a warm-up samples its pool at a recorded version, and a kept feature space
# may be months old (Lance's default would delete versions older than 7 days).
KEEP_VERSIONS = timedelta(days=36500)


def compact(db: Any, name: str) -> int:
    """Merge a table's small fragments (each append or shard commit adds one; scans slow down with their
    number) with Lance's own ``optimize``; returns the fragments left. Under the table's writer lock."""
    with writer_lock(db.uri, name):
        tbl = open_table(db, name)
        tbl.checkout_latest()
        if len(tbl.to_lance().get_fragments()) > 1:
            _retry(lambda: tbl.optimize(cleanup_older_than=KEEP_VERSIONS))
        return len(open_table(db, name).to_lance().get_fragments())


def provenance_of(db: Any, name: str) -> dict[str, Any]:
    return json.loads((open_table(db, name).schema.metadata or {}).get(b"winnow", b"{}"))


# --------------------------------------------------------------------------------------------- records
POOL_SCHEMA = pa.schema([("id", pa.string()), ("row_idx", pa.int64()), ("source", pa.string()),
                         ("task", pa.string()), ("messages", pa.string())])


def is_local(uri: str) -> bool:
    return "://" not in uri or uri.startswith("file://")


@contextlib.contextmanager
def writer_lock(uri: str, name: str) -> Iterator[None]:
    """One writer per table at a time, across processes.

    Two races need it (both seen in tests): ``row_idx`` is read-then-written (the next number is the table's
    size), so concurrent appends would number their rows alike; and two concurrent ``merge_insert`` commits
    that both insert the same new key both succeed, leaving duplicate keys. On a local store a lock file
    beside the table serialises writers (the lock is held only for the commit, not the compute). Object
    storage has no lock files: there, flows writing one table run under a Prefect concurrency limit of 1
    (see infra/)."""
    if not is_local(uri):
        yield
        return
    from filelock import FileLock

    root = uri.removeprefix("file://")
    os.makedirs(root, exist_ok=True)
    with FileLock(os.path.join(root, f".{name}.append.lock"), timeout=600):
        yield


def _known_ids(tbl: Any, ids: list[str], batch_rows: int = 65536) -> set[str]:
    """Which of ``ids`` the table holds, scanning its id column in batches: memory is the incoming ids plus
    one batch, not every id of a pool that may hold millions."""
    if not ids or not tbl.count_rows():
        return set()
    wanted = pa.array(ids, pa.string())
    have: set[str] = set()
    for batch in tbl.to_lance().to_batches(columns=["id"], batch_size=batch_rows):
        col = batch.column("id")
        have.update(pa.compute.filter(col, pa.compute.is_in(col, value_set=wanted)).to_pylist())
    return have


def write_records(db: Any, name: str, records: list[Record], provenance: dict[str, Any] | None = None) -> TableRef:
    """Add records whose id the table lacks; ``row_idx`` numbers them in arrival order, so shards of old
    rows keep their ranges when the pool grows and only new ranges need features."""
    with writer_lock(db.uri, name):
        tbl = _open_or_create(db, name, POOL_SCHEMA, provenance)
        tbl.checkout_latest()
        have = _known_ids(tbl, [r.id for r in records])
        new = [r for r in records if r.id not in have]
        if new:
            start = tbl.count_rows()
            data = pa.table({"id": [r.id for r in new], "row_idx": list(range(start, start + len(new))),
                             "source": [r.source for r in new], "task": [r.task for r in new],
                             "messages": [json.dumps(r.as_chat(), ensure_ascii=False) for r in new]},
                            schema=POOL_SCHEMA)
            _retry(lambda: tbl.merge_insert("id").when_not_matched_insert_all().execute(data))
    if new:
        compact(db, name)
    tbl = open_table(db, name)
    return TableRef(name, tbl.version, tbl.count_rows(), len(new))


def _to_records(t: pa.Table) -> list[Record]:
    out = []
    for row in t.sort_by("row_idx").to_pylist():
        msgs = tuple((m["role"], m["content"]) for m in json.loads(row["messages"]))
        out.append(Record(row["id"], msgs, row["source"], row["task"]))
    return out


def read_records(db: Any, name: str, start: int = 0, end: int | None = None, version: int | None = None) -> list[Record]:
    """Records with ``start <= row_idx < end``, in row order, optionally at a fixed table version."""
    tbl = open_table(db, name)
    if version is not None:
        tbl.checkout(version)
    where = f"row_idx >= {int(start)}" + (f" AND row_idx < {int(end)}" if end is not None else "")
    return _to_records(tbl.search().where(where).limit(None).to_arrow())


def records_at(db: Any, name: str, row_idx: list[int] | np.ndarray) -> list[Record]:
    """The records at the given rows, in the given order: a subset is read by row, never the whole table."""
    rows = [int(r) for r in row_idx]
    if not rows:
        return []
    t = open_table(db, name).to_lance().to_table(filter=f"row_idx IN ({','.join(map(str, rows))})").sort_by("row_idx")
    by_row = dict(zip(t.column("row_idx").to_pylist(), _to_records(t)))  # _to_records keeps row order
    missing = [r for r in rows if r not in by_row]
    if missing:
        raise StaleArtifactError(f"table {name!r} has no row {missing[0]} (of {len(missing)} asked); the features "
                                 "were made from another table")
    return [by_row[r] for r in rows]


# -------------------------------------------------------------------------------------------- features
def feature_schema(dim: int, codes: Codes = "fp16") -> pa.Schema:
    return pa.schema([("key", pa.string()), ("id", pa.string()), ("row_idx", pa.int64()),
                      ("checkpoint", pa.int32()), ("source", pa.string()), ("task", pa.string()),
                      ("vector", vector_type(codes, dim)), ("scale", pa.float32()), ("norm", pa.float32()),
                      ("n_tokens", pa.int32())])


def create_feature_table(db: Any, name: str, dim: int, provenance: dict[str, Any], overwrite: bool = False,
                         codes: Codes = "fp16") -> None:
    """A feature table; its dimension and codes are recorded in the provenance metadata."""
    _open_or_create(db, name, feature_schema(dim, codes), {**provenance, "dim": dim, "codes": codes}, overwrite)


def _layout(tbl: Any) -> tuple[int, Codes]:
    meta = json.loads((tbl.schema.metadata or {}).get(b"winnow", b"{}"))
    return int(meta.get("dim", tbl.schema.field("vector").type.list_size)), meta.get("codes", "fp16")


def write_features(db: Any, name: str, *, records: list[Record], row_idx: list[int], checkpoint: int,
                   vectors: np.ndarray, norms: np.ndarray, n_tokens: list[int]) -> int:
    """Upsert feature rows keyed by ``id@checkpoint`` (re-running a shard replaces, never duplicates)."""
    tbl = open_table(db, name)
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
    with writer_lock(db.uri, name):
        tbl.checkout_latest()
        _retry(lambda: tbl.merge_insert("key").when_matched_update_all().when_not_matched_insert_all().execute(data))
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
    tbl = open_table(db, name)
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


def feature_index(db: Any, name: str) -> FeatureIndex:
    """Ids, rows, sources and tasks (vectors are not read), checked to be complete for every checkpoint."""
    t = open_table(db, name).to_lance().to_table(columns=["id", "row_idx", "checkpoint", "source", "task"])
    t = t.sort_by([("checkpoint", "ascending"), ("row_idx", "ascending")])
    cks = sorted(set(t.column("checkpoint").to_pylist()))
    first = t.filter(pa.compute.equal(t.column("checkpoint"), pa.scalar(cks[0], pa.int32())))
    for c in cks[1:]:
        other = t.filter(pa.compute.equal(t.column("checkpoint"), pa.scalar(c, pa.int32())))
        if other.column("row_idx").to_pylist() != first.column("row_idx").to_pylist():
            raise StaleArtifactError(f"table {name!r}: checkpoint {c} covers {other.num_rows} rows, checkpoint "
                                     f"{cks[0]} {first.num_rows}; featurisation is unfinished")
    return FeatureIndex(first.column("id").to_pylist(), first.column("row_idx").to_numpy(),
                        first.column("source").to_pylist(), first.column("task").to_pylist(), cks)


def iter_feature_batches(db: Any, name: str, batch_rows: int = 65536) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Stream (row_idx (b,), checkpoint (b,), decoded vectors (b, d) float32) in scan order: memory is one batch."""
    tbl = open_table(db, name)
    dim, codes = _layout(tbl)
    for batch in tbl.to_lance().to_batches(columns=["row_idx", "checkpoint", "vector"], batch_size=batch_rows):
        width = batch.schema.field("vector").type.list_size
        raw = batch.column("vector").flatten().to_numpy(zero_copy_only=False).reshape(-1, width)
        yield (batch.column("row_idx").to_numpy(), batch.column("checkpoint").to_numpy(), decode(raw, codes, dim))


def take_features(db: Any, name: str, row_idx: np.ndarray) -> np.ndarray:
    """Vectors (C, n, d) of the given rows, in the given order (e.g. the candidates of a KNN selector)."""
    tbl = open_table(db, name)
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


# ------------------------------------------------------------------------------------------- markers
MARKER_SCHEMA = pa.schema([("key", pa.string()), ("table", pa.string()), ("checkpoint", pa.int32()),
                           ("row_start", pa.int64()), ("row_end", pa.int64()), ("n_rows", pa.int64()),
                           ("finished_at", pa.float64())])


def _marker_key(table: str, checkpoint: int, start: int, end: int) -> str:
    return f"{table}|{checkpoint}|{start}|{end}"


def mark_done(db: Any, table: str, checkpoint: int, start: int, end: int, n_rows: int) -> None:
    tbl = _open_or_create(db, MARKERS, MARKER_SCHEMA, None)
    data = pa.table({"key": [_marker_key(table, checkpoint, start, end)], "table": [table],
                     "checkpoint": [checkpoint], "row_start": [start], "row_end": [end], "n_rows": [n_rows],
                     "finished_at": [time.time()]}, schema=MARKER_SCHEMA)
    with writer_lock(db.uri, MARKERS):
        tbl.checkout_latest()
        _retry(lambda: tbl.merge_insert("key").when_matched_update_all().when_not_matched_insert_all().execute(data))


def is_done(db: Any, table: str, checkpoint: int, start: int, end: int, n_rows: int) -> bool:
    """True when the range was finished with ``n_rows`` rows: a last shard that was partly filled when it
    ran is not done once the pool has grown into it."""
    if not table_exists(db, MARKERS):
        return False
    key = _marker_key(table, checkpoint, start, end).replace("'", "''")
    return open_table(db, MARKERS).count_rows(f"key = '{key}' AND n_rows = {int(n_rows)}") > 0
