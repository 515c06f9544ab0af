"""Load a data file into a store table: validate, quarantine, and add only ids the table lacks.

Tables are named by content: a file's records land in ``<role>__<digest of its bytes and how they are read>``,
so a moved or copied file reuses its table, its warm-up and its features, and an edited file is a new data
set. A data set that grows (a pool that receives new examples every week) is given a name instead, the
*dataset id*: ``winnow ingest --table pool`` and ``data.dataset_id=pool`` for a pool file name the same table,
and a grown table keeps its feature space, so only its new rows are featurised.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

from winnow.data.loaders import load_records
from winnow.errors import DataFormatError
from winnow.hashing import file_digest
from winnow.keys import code_version, digest
from winnow.results import DataSet, ReadReport
from winnow.store import lance, ledger, record_tables

DATA_SUFFIXES = (".jsonl", ".json", ".ndjson", ".parquet", ".csv", ".tsv")


def is_data_file(path: Path) -> bool:
    """A file a directory's ingest picks up: a data suffix, under any compression suffix."""
    from winnow.data.readers import data_suffix

    return path.is_file() and data_suffix(path) in DATA_SUFFIXES


def content_digest(spec: str) -> str:
    """The bytes behind a data spec: a file's or a ``datasets`` folder's content; a hub name by its name."""
    if Path(spec).exists():
        return file_digest(spec)
    return hashlib.sha256(spec.encode()).hexdigest()[:16]


def table_name_for(role: str, spec: str, layout: str = "auto", column_map: dict[str, str] | None = None,
                   dataset_id: str = "") -> str:
    """The table a file's records go to: the dataset id when one is given, else ``<role>__<hash>`` over the
    file's content and the reading options (the same bytes read with another column map are other records)."""
    if dataset_id:
        return dataset_id
    return f"{role}__{digest({'content': content_digest(spec), 'format': layout, 'map': column_map or {}}, 16)}"


def ingest(spec: str, store_uri: str, table: str, layout: str = "auto",
           column_map: dict[str, str] | None = None) -> DataSet:
    """Validate ``spec`` and merge its records into ``table``. How the file was read (compression, container,
    layouts, defaults, map) goes into the table's ingest ledger with the file's digest: the provenance of every
    row it added."""
    result = load_records(spec, layout=layout, column_map=column_map)
    db = lance.connect(store_uri)
    ref = record_tables.write_records(db, table, result.records)
    read = ReadReport.of(result)
    out = DataSet(read=read, table=ref.name, version=ref.version, rows=ref.n_rows, added=ref.added,
                  not_in_file=ref.n_rows - len(result.records))  # tables are append-only: ids are never removed
    if Path(spec).is_file():
        fd = file_digest(spec)
        ledger.record(db, ledger.INGESTED, ingest_key(table, fd, layout, column_map), table,
                      {"path": read.path, "in": read.n_in, "used": read.used, "quarantined": read.quarantined,
                       "added": ref.added, "version": ref.version, "read_as": read.read_as, "layouts": read.layouts,
                       "defaulted": read.defaulted, "reasons": read.reasons, "format": layout,
                       "map": dict(column_map or {}), "digest": fd})
    return out


def ingest_key(table: str, digest_: str, layout: str = "auto", column_map: dict[str, str] | None = None) -> str:
    """One ledger key per table, content, reading options and loader code."""
    options = "" if layout == "auto" and not column_map else f":{layout}:{sorted((column_map or {}).items())}"
    return f"{table}:{digest_}{options}:{code_version('winnow.data.loaders')}"


def provenance(store_uri: str, table: str) -> list[dict]:
    """The files a table's rows came from, oldest first: path, digest, how each was read, counts."""
    return ledger.entries(lance.connect(store_uri), ledger.INGESTED, table)


def is_table_spec(spec: str, store_uri: str) -> bool:
    """``spec`` names a table of the store rather than a file: no such path exists, it has no file suffix or
    slash (a hub id has one), and the store holds a table of that name: how ``winnow ingest``'s ``pool`` is
    given to ``curate``, ``compare`` and ``retrain`` alike."""
    if Path(spec).exists() or "/" in spec or Path(spec).suffix:
        return False
    return lance.table_exists(lance.connect(store_uri), spec)


def open_table_data(store_uri: str, table: str) -> DataSet:
    """A table already in the store, as a data set (its rows were validated when they were ingested)."""
    tbl = lance.open_table(lance.connect(store_uri), table)
    n = tbl.count_rows()
    return DataSet(read=ReadReport(path=f"store table {table}", n_in=n, used=n, quarantined=0), table=table,
                   version=tbl.version, rows=n)


def ingest_or_open(spec: str, store_uri: str, role: str, layout: str = "auto",
                   column_map: dict[str, str] | None = None, dataset_id: str = "") -> DataSet:
    """The data step of every flow: a store table by name as it is, anything else ingested into the table its
    content (or its dataset id) names."""
    if is_table_spec(spec, store_uri):
        return open_table_data(store_uri, spec)
    return ingest(spec, store_uri, table_name_for(role, spec, layout, column_map, dataset_id), layout, column_map)


def data_files(paths: list[str]) -> list[str]:
    """Files to ingest: each file as given, and each directory's data files (not recursive), in name order.
    A directory saved by ``datasets`` counts as one data set, not as a folder of files."""
    out: list[str] = []
    for p in map(Path, paths):
        if p.is_dir() and not (p / "dataset_info.json").exists():
            out += [str(f) for f in sorted(p.iterdir()) if is_data_file(f)]
        elif p.exists():
            out.append(str(p))
        else:
            raise DataFormatError(str(p), "does not exist")
    return out


def _ledger_entry(db: object, path: str, table: str, layout: str, column_map: dict[str, str] | None
                  ) -> tuple[str, dict | None]:
    """The file's ledger key and its entry when this content was ingested into ``table`` with these options by
    this loader code (None when it was not)."""
    fd = file_digest(path) if Path(path).is_file() else hashlib.sha256(os.path.abspath(path).encode()).hexdigest()
    return fd, ledger.get(db, ledger.INGESTED, ingest_key(table, fd, layout, column_map))


def check_files(paths: list[str], store_uri: str, table: str, layout: str = "auto",
                column_map: dict[str, str] | None = None) -> None:
    """Read every file a multi-file ingest has not ingested before, writing nothing: a file that cannot be read
    at all (no known layout, not a data file) raises its one-line error here, before any other file is
    committed, so an ingest that exits 2 has added nothing (bad *records* are quarantined, never fatal)."""
    db = lance.connect(store_uri)
    for path in paths:
        if _ledger_entry(db, path, table, layout, column_map)[1] is None:
            load_records(path, layout=layout, column_map=column_map)


def ingest_file(path: str, store_uri: str, table: str, layout: str = "auto",
                column_map: dict[str, str] | None = None) -> tuple[DataSet, bool]:
    """Ingest one file unless this exact content was ingested into ``table`` before with the same options by
    the same loader code (the ledger is keyed by content hash, options and code version: a renamed copy is
    skipped, an edited file is read again, and so is every file after a fix to the loader; records are added
    by id, so nothing doubles). Returns the data set and whether the file was skipped."""
    db = lance.connect(store_uri)
    _, done = _ledger_entry(db, path, table, layout, column_map)
    if done is None:
        return ingest(path, store_uri, table, layout, column_map), False
    tbl = lance.open_table(db, table)
    read = ReadReport(path=path, n_in=done["in"], used=done["used"], quarantined=done["quarantined"],
                      reasons=done.get("reasons") or {}, read_as=done.get("read_as") or {},
                      layouts=done.get("layouts") or {}, defaulted=done.get("defaulted") or {})
    return DataSet(read=read, table=table, version=tbl.version, rows=tbl.count_rows()), True
