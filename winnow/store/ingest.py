"""Load a data file into a store table: validate, quarantine, and add only ids the table lacks."""
from __future__ import annotations

import hashlib
import os
import re
from dataclasses import asdict
from pathlib import Path
from typing import Any

from winnow.data.loaders import load_records
from winnow.errors import DataFormatError
from winnow.hashing import file_digest
from winnow.keys import code_version
from winnow.store import lance, ledger, record_tables

DATA_SUFFIXES = (".jsonl", ".json", ".ndjson", ".parquet")


def is_data_file(path: Path) -> bool:
    """A file a directory's ingest picks up: a data suffix, under any compression suffix."""
    from winnow.data.readers import data_suffix

    return path.is_file() and data_suffix(path) in DATA_SUFFIXES


def table_name_for(role: str, spec: str) -> str:
    """Tables are named after their content source: ``pool__<stem>_<hash of the absolute path>``."""
    stem = re.sub(r"[^A-Za-z0-9_]+", "_", Path(spec.split(":")[0]).stem)[:40] or "data"
    digest = hashlib.sha256(os.path.abspath(spec).encode()).hexdigest()[:8]
    return f"{role}__{stem}_{digest}"


def ingest(spec: str, store_uri: str, table: str, layout: str = "auto",
           column_map: dict[str, str] | None = None) -> dict[str, Any]:
    """Validate ``spec`` and merge its records into ``table``; returns counts, quarantine and table ref.
    How the file was read (compression, container, layouts, defaults, map) goes into the table's ingest
    ledger with the file's digest: the provenance of every row it added."""
    result = load_records(spec, layout=layout, column_map=column_map)
    db = lance.connect(store_uri)
    ref = record_tables.write_records(db, table, result.records)
    # Tables are append-only (ids are never removed): say so when the table holds ids the file lacks.
    extra = ref.n_rows - len(result.records)
    out = {**result.summary(), "format": layout, "map": dict(column_map or {}), "table": ref.name,
           "version": ref.version, "table_rows": ref.n_rows, "added": ref.added, "ids_not_in_file": extra,
           "quarantine": [asdict(q) for q in result.quarantined],
           "truncation": "prompts cut from the left, responses from the right (see winnow.data.formatting)"}
    if Path(spec).is_file():
        digest = file_digest(spec)
        ledger.record(db, ledger.INGESTED, ingest_key(table, digest, layout, column_map), table,
                      {k: out[k] for k in ("path", "in", "used", "quarantined", "added", "version", "read_as", "layouts",
                                           "defaulted", "reasons", "format", "map")} | {"digest": digest})
    return out


def ingest_key(table: str, digest: str, layout: str = "auto", column_map: dict[str, str] | None = None) -> str:
    """One ledger key per table, content, reading options and loader code."""
    options = "" if layout == "auto" and not column_map else f":{layout}:{sorted((column_map or {}).items())}"
    return f"{table}:{digest}{options}:{code_version(__name__, 'winnow.data.loaders', 'winnow.data.readers', 'winnow.data.layouts', 'winnow.data.records')}"


def provenance(store_uri: str, table: str) -> list[dict[str, Any]]:
    """The files a table's rows came from, oldest first: path, digest, how each was read, counts."""
    return ledger.entries(lance.connect(store_uri), ledger.INGESTED, table)


def is_table_spec(spec: str, store_uri: str) -> bool:
    """``spec`` names a table of the store rather than a file: no such path exists, it has no file suffix or
    slash (a hub id has one), and the store holds a table of that name — how ``winnow ingest``'s ``pool`` is
    given to ``curate``, ``compare`` and ``retrain`` alike."""
    if Path(spec).exists() or "/" in spec or Path(spec).suffix:
        return False
    return lance.table_exists(lance.connect(store_uri), spec)


def open_table_data(store_uri: str, table: str) -> dict[str, Any]:
    """A table already in the store, in the shape ``ingest`` returns (its rows were validated when ingested)."""
    tbl = lance.open_table(lance.connect(store_uri), table)
    n = tbl.count_rows()
    return {"path": f"store table {table}", "in": n, "used": n, "quarantined": 0, "quarantine": [], "table": table,
            "version": tbl.version, "table_rows": n, "added": 0, "ids_not_in_file": 0}


def ingest_or_open(spec: str, store_uri: str, role: str, layout: str = "auto",
                   column_map: dict[str, str] | None = None) -> dict[str, Any]:
    """The data step of every flow: a store table by name as it is, anything else ingested into the table
    named after it (``table_name_for``), so a grown file keeps its table and its old rows' features."""
    if is_table_spec(spec, store_uri):
        return open_table_data(store_uri, spec)
    return ingest(spec, store_uri, table_name_for(role, spec), layout, column_map)


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


def ingest_file(path: str, store_uri: str, table: str, layout: str = "auto",
                column_map: dict[str, str] | None = None) -> dict[str, Any]:
    """Ingest one file unless this exact content was ingested into ``table`` before with the same options by
    the same loader code (the ledger is keyed by content hash, options and code version: a renamed copy is
    skipped, an edited file is read again, and so is every file after a fix to the loader — records are added
    by id, so nothing doubles)."""
    digest = file_digest(path) if Path(path).is_file() else hashlib.sha256(os.path.abspath(path).encode()).hexdigest()
    db = lance.connect(store_uri)
    done = ledger.get(db, ledger.INGESTED, ingest_key(table, digest, layout, column_map))
    if done is not None:
        tbl = lance.open_table(db, table)
        return {**done, "path": path, "digest": digest, "skipped": True, "added": 0, "quarantine": [], "table": table,
                "version": tbl.version, "table_rows": tbl.count_rows()}
    return {**ingest(path, store_uri, table, layout, column_map), "digest": digest, "skipped": False}
