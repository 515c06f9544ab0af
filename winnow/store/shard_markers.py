"""Shard completion markers: a shard counts as finished only once its marker row exists, written after the
features it vouches for."""
from __future__ import annotations

import time
from typing import Any

import pyarrow as pa

from winnow.store import lance

MARKERS = "shard_markers"
MARKER_SCHEMA = pa.schema([("key", pa.string()), ("table", pa.string()), ("checkpoint", pa.int32()),
                           ("row_start", pa.int64()), ("row_end", pa.int64()), ("n_rows", pa.int64()),
                           ("finished_at", pa.float64())])


def _marker_key(table: str, checkpoint: int, start: int, end: int) -> str:
    return f"{table}|{checkpoint}|{start}|{end}"


def mark_done(db: Any, table: str, checkpoint: int, start: int, end: int, n_rows: int) -> None:
    tbl = lance.open_or_create(db, MARKERS, MARKER_SCHEMA, None)
    data = pa.table({"key": [_marker_key(table, checkpoint, start, end)], "table": [table],
                     "checkpoint": [checkpoint], "row_start": [start], "row_end": [end], "n_rows": [n_rows],
                     "finished_at": [time.time()]}, schema=MARKER_SCHEMA)
    with lance.writer_lock(db.uri, MARKERS):
        tbl.checkout_latest()
        lance.commit(lambda: tbl.merge_insert("key").when_matched_update_all().when_not_matched_insert_all().execute(data))


def is_done(db: Any, table: str, checkpoint: int, start: int, end: int, n_rows: int) -> bool:
    """True when the range was finished with ``n_rows`` rows: a last shard that was partly filled when it
    ran is not done once the pool has grown into it."""
    if not lance.table_exists(db, MARKERS):
        return False
    key = _marker_key(table, checkpoint, start, end).replace("'", "''")
    return lance.open_table(db, MARKERS).count_rows(f"key = '{key}' AND n_rows = {int(n_rows)}") > 0
