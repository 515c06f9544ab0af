"""Record tables (pool, query): rows merged by id, numbered by ``row_idx`` in arrival order, read by row."""
from __future__ import annotations

import json
from typing import Any

import numpy as np
import pyarrow as pa

from winnow.data.records import Record
from winnow.store import lance
from winnow.store.feature_tables import FeatureIndex
from winnow.errors import StaleArtifactError


POOL_SCHEMA = pa.schema([("id", pa.string()), ("row_idx", pa.int64()), ("source", pa.string()),
                         ("task", pa.string()), ("messages", pa.string())])


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


def write_records(db: Any, name: str, records: list[Record], provenance: dict[str, Any] | None = None) -> lance.TableRef:
    """Add records whose id the table lacks; ``row_idx`` numbers them in arrival order, so shards of old
    rows keep their ranges when the pool grows and only new ranges need features."""
    with lance.writer_lock(db.uri, name):
        tbl = lance.open_or_create(db, name, POOL_SCHEMA, provenance)
        tbl.checkout_latest()
        have = _known_ids(tbl, [r.id for r in records])
        new = [r for r in records if r.id not in have]
        if new:
            start = tbl.count_rows()
            data = pa.table({"id": [r.id for r in new], "row_idx": list(range(start, start + len(new))),
                             "source": [r.source for r in new], "task": [r.task for r in new],
                             "messages": [json.dumps(r.as_chat(), ensure_ascii=False) for r in new]},
                            schema=POOL_SCHEMA)
            lance.commit(lambda: tbl.merge_insert("id").when_not_matched_insert_all().execute(data))
    if new:
        lance.compact(db, name)
    tbl = lance.open_table(db, name)
    return lance.TableRef(name, tbl.version, tbl.count_rows(), len(new))


def _to_records(t: pa.Table) -> list[Record]:
    out = []
    for row in t.sort_by("row_idx").to_pylist():
        msgs = tuple((m["role"], m["content"]) for m in json.loads(row["messages"]))
        out.append(Record(row["id"], msgs, row["source"], row["task"]))
    return out


def read_records(db: Any, name: str, start: int = 0, end: int | None = None, version: int | None = None) -> list[Record]:
    """Records with ``start <= row_idx < end``, in row order, optionally at a fixed table version."""
    tbl = lance.open_table(db, name)
    if version is not None:
        tbl.checkout(version)
    where = f"row_idx >= {int(start)}" + (f" AND row_idx < {int(end)}" if end is not None else "")
    return _to_records(tbl.search().where(where).limit(None).to_arrow())


def records_at(db: Any, name: str, row_idx: list[int] | np.ndarray) -> list[Record]:
    """The records at the given rows, in the given order: a subset is read by row, never the whole table."""
    rows = [int(r) for r in row_idx]
    if not rows:
        return []
    t = lance.open_table(db, name).to_lance().to_table(filter=f"row_idx IN ({','.join(map(str, rows))})").sort_by("row_idx")
    by_row = dict(zip(t.column("row_idx").to_pylist(), _to_records(t)))  # _to_records keeps row order
    missing = [r for r in rows if r not in by_row]
    if missing:
        raise StaleArtifactError(f"table {name!r} has no row {missing[0]} (of {len(missing)} asked); the features "
                                 "were made from another table")
    return [by_row[r] for r in rows]


def row_index(db: Any, name: str) -> FeatureIndex:
    """Ids, rows, sources and tasks of every record (the messages are not read), in row order: the whole pool
    as selection indexes it, for an ordering that also ranks rows without features (a cascade's non-candidates)."""
    t = lance.open_table(db, name).to_lance().to_table(columns=["id", "row_idx", "source", "task"]).sort_by("row_idx")
    return FeatureIndex(t.column("id").to_pylist(), t.column("row_idx").to_numpy(), t.column("source").to_pylist(),
                        t.column("task").to_pylist(), [])
