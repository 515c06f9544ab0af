"""Data tasks: merge a file into a store table (or open a table by name), validate a test set."""
from __future__ import annotations

from typing import Any

from prefect import task

from tasks import unexpected_only
from winnow.settings import DataSettings, FileLayout
from winnow.store.ingest import ingest_or_open


@task(name="data", retries=1, retry_condition_fn=unexpected_only, task_run_name="data-{role}")
def data_task(spec: str, store_uri: str, role: str, data: DataSettings | None = None) -> dict[str, Any]:
    """A flow's pool or query: a store table by name, or a file ingested into the table named after it
    (``data``: the pool's format and column map). Not cached: re-reading a file is cheap, and ingest adds only
    ids the table lacks."""
    data = data or DataSettings()
    return ingest_or_open(spec, store_uri, role, data.format, data.map)


@task(name="target-file", task_run_name="target-{role}")
def target_file_task(spec: str, role: str, out_dir: str, layout: FileLayout) -> dict[str, Any]:
    """A query, validation or test file read with ``data.target``'s layout and map, handed on as a canonical
    file (``winnow.data.loaders.canonical_copy``): its path and how the original was read travel, not records."""
    from dataclasses import asdict

    from winnow.data.loaders import canonical_copy

    path, result = canonical_copy(spec, out_dir, layout=layout.format, column_map=layout.map,
                                  labelled=role != "query")
    return {**result.summary(), "quarantine": [asdict(q) for q in result.quarantined], "canonical": path,
            "format": layout.format, "map": dict(layout.map)}


@task(name="validate-records")
def validate_task(spec: str) -> dict[str, Any]:
    """Validate a set that is read directly later (the test set): counts and quarantine only."""
    from dataclasses import asdict

    from winnow.data.loaders import load_records

    result = load_records(spec)
    return {**result.summary(), "quarantine": [asdict(q) for q in result.quarantined]}


@task(name="query-labels")
def query_labels_task(spec: str) -> dict[str, int]:
    """How many queries have no response (prompts only): they decide which arms a curation can run."""
    from winnow.data.loaders import load_records

    records = load_records(spec, labelled=False).records
    return {"n": len(records), "unlabelled": sum(not r.labelled for r in records)}


@task(name="validation-split")
def validation_split_task(test_spec: str, out_dir: str, share: float, seed: int) -> dict[str, Any]:
    """No validation set given: carve one out of the test file by id, so a search never sees the records
    its final number is measured on. Paths and counts travel, not records."""
    from pathlib import Path

    from winnow.data.loaders import load_records, write_jsonl
    from winnow.data.splits import split_by_id
    from winnow.hashing import file_digest

    val, test = split_by_id(load_records(test_spec).records, share, seed)
    out = Path(out_dir)
    paths = {"val": out / "val.jsonl", "test": out / "test.jsonl"}
    write_jsonl(paths["val"], [r.to_json() for r in val])
    write_jsonl(paths["test"], [r.to_json() for r in test])
    return {k: str(p) for k, p in paths.items()} | {"n_val": len(val), "n_test": len(test),
                                                     "val_digest": file_digest(paths["val"]),
                                                     "test_digest": file_digest(paths["test"])}
