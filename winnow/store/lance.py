"""The feature store's LanceDB plumbing: connections, tables opened or created under a provenance, commits that
retry a lost race, one writer per table, compaction. The tables themselves live by kind: ``record_tables``
(the pool and query records), ``feature_tables`` (per-example features), ``shard_markers`` (finished shards).

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

import pyarrow as pa

from winnow.errors import ConfigError, StaleArtifactError

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


def commit(fn: Any) -> Any:
    """Run a commit, retrying one that Lance reports as a retryable conflict (its optimistic concurrency:
    another writer committed first). ``merge_insert`` already retries its own conflicts for up to 30 s;
    this covers the other commits (compaction) and a merge that ran out of those retries. Decided by Lance's
    error type and its ``retryable`` flag, never by the message text."""
    from lance.commit import CommitConflictError

    for attempt in range(COMMIT_RETRIES):
        try:
            return fn()
        except CommitConflictError as e:
            if not e.retryable or attempt == COMMIT_RETRIES - 1:
                raise
            time.sleep(0.05 * 2 ** attempt)


def open_or_create(db: Any, name: str, schema: pa.Schema, provenance: dict[str, Any] | None,
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
            commit(lambda: tbl.optimize(cleanup_older_than=KEEP_VERSIONS))
        return len(open_table(db, name).to_lance().get_fragments())


def provenance_of(db: Any, name: str) -> dict[str, Any]:
    return json.loads((open_table(db, name).schema.metadata or {}).get(b"winnow", b"{}"))


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
