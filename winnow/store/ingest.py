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

DATA_SUFFIXES = (".jsonl", ".json", ".parquet")


def table_name_for(role: str, spec: str) -> str:
    """Tables are named after their content source: ``pool__<stem>_<hash of the absolute path>``."""
    stem = re.sub(r"[^A-Za-z0-9_]+", "_", Path(spec.split(":")[0]).stem)[:40] or "data"
    digest = hashlib.sha256(os.path.abspath(spec).encode()).hexdigest()[:8]
    return f"{role}__{stem}_{digest}"


def ingest(spec: str, store_uri: str, table: str) -> dict[str, Any]:
    """Validate ``spec`` and merge its records into ``table``; returns counts, quarantine and table ref."""
    result = load_records(spec)
    db = lance.connect(store_uri)
    ref = record_tables.write_records(db, table, result.records)
    # Tables are append-only (ids are never removed): say so when the table holds ids the file lacks.
    extra = ref.n_rows - len(result.records)
    return {**result.summary(), "table": ref.name, "version": ref.version, "table_rows": ref.n_rows, "added": ref.added,
            "ids_not_in_file": extra,
            "quarantine": [asdict(q) for q in result.quarantined],
            "truncation": "prompts cut from the left, responses from the right (see winnow.data.formatting)"}


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


def ingest_or_open(spec: str, store_uri: str, role: str) -> dict[str, Any]:
    """The data step of every flow: a store table by name as it is, anything else ingested into the table
    named after it (``table_name_for``), so a grown file keeps its table and its old rows' features."""
    if is_table_spec(spec, store_uri):
        return open_table_data(store_uri, spec)
    return ingest(spec, store_uri, table_name_for(role, spec))


def data_files(paths: list[str]) -> list[str]:
    """Files to ingest: each file as given, and each directory's data files (not recursive), in name order.
    A directory saved by ``datasets`` counts as one data set, not as a folder of files."""
    out: list[str] = []
    for p in map(Path, paths):
        if p.is_dir() and not (p / "dataset_info.json").exists():
            out += [str(f) for f in sorted(p.iterdir()) if f.is_file() and f.suffix in DATA_SUFFIXES]
        elif p.exists():
            out.append(str(p))
        else:
            raise DataFormatError(str(p), "does not exist")
    return out


def ingest_file(path: str, store_uri: str, table: str) -> dict[str, Any]:
    """Ingest one file unless this exact content was ingested into ``table`` before by the same loader code
    (the ledger is keyed by content hash and code version: a renamed copy is skipped, an edited file is read
    again, and so is every file after a fix to the loader — records are added by id, so nothing doubles)."""
    digest = file_digest(path) if Path(path).is_file() else hashlib.sha256(os.path.abspath(path).encode()).hexdigest()
    db = lance.connect(store_uri)
    key = f"{table}:{digest}:{code_version(__name__)}"
    done = ledger.get(db, ledger.INGESTED, key)
    if done is not None:
        tbl = lance.open_table(db, table)
        return {"path": path, "digest": digest, "skipped": True, "added": 0, "in": done["in"], "used": done["used"],
                "quarantined": done["quarantined"], "quarantine": [], "table": table,
                "version": tbl.version, "table_rows": tbl.count_rows()}
    result = ingest(path, store_uri, table)
    ledger.record(db, ledger.INGESTED, key, table, {"path": path, "added": result["added"], "in": result["in"],
                                                      "used": result["used"], "quarantined": result["quarantined"],
                                                      "version": result["version"]})
    return {**result, "digest": digest, "skipped": False}
