"""Data tasks: merge a file into a store table (or open a table by name), validate a held-out set, split one."""
from __future__ import annotations

from prefect import task

from tasks import step_task
from winnow.results import DataSet, ReadReport, Split, TargetFile
from winnow.settings import DataSettings, FileLayout
from winnow.store.ingest import ingest_or_open


@step_task("data", cached=False, task_run_name="data-{role}")
def data_task(spec: str, store_uri: str, role: str, data: DataSettings | None = None) -> DataSet:
    """A flow's pool or query: a store table by name, or a file ingested into the table its content (or, for the
    pool, ``data.dataset_id``) names. Not cached: re-reading a file is cheap, and ingest adds only ids the table
    lacks."""
    data = data or DataSettings()
    return ingest_or_open(spec, store_uri, role, data.format, data.map, data.dataset_id if role == "pool" else "")


@task(name="target-file", task_run_name="target-{role}")
def target_file_task(spec: str, role: str, out_dir: str, layout: FileLayout) -> TargetFile:
    """A query, validation or test file read with ``data.target``'s layout and map, handed on as a canonical
    file (``winnow.data.loaders.canonical_copy``): its path and how the original was read travel, not records."""
    from winnow.data.loaders import canonical_copy

    path, result = canonical_copy(spec, out_dir, layout=layout.format, column_map=layout.map, labelled=role != "query")
    return TargetFile(path, ReadReport.of(result))


@task(name="validate-records")
def validate_task(spec: str) -> ReadReport:
    """Validate a set that is read directly later (the test set): counts and quarantine only."""
    from winnow.data.loaders import load_records

    return ReadReport.of(load_records(spec))


@task(name="query-labels")
def unlabelled_task(spec: str) -> int:
    """How many queries have no response (prompts only): they decide which arms a curation can run."""
    from winnow.data.loaders import load_records

    return sum(not r.labelled for r in load_records(spec, labelled=False).records)


@task(name="validation-split")
def validation_split_task(test_spec: str, out_dir: str, share: float, seed: int) -> Split:
    """No validation set given: carve one out of the test file by id, so a search never sees the records
    its final number is measured on. Paths and counts travel, not records."""
    from pathlib import Path

    from winnow.data.loaders import load_records, write_jsonl
    from winnow.data.splits import split_by_id

    val, test = split_by_id(load_records(test_spec).records, share, seed)
    out = Path(out_dir)
    write_jsonl(out / "val.jsonl", [r.to_json() for r in val])
    write_jsonl(out / "test.jsonl", [r.to_json() for r in test])
    return Split(str(out / "val.jsonl"), str(out / "test.jsonl"), len(val), len(test),
                 f"validation = {len(val)} records of the test file `{Path(test_spec).name}` chosen by id (share "
                 f"{share}); test = its other {len(test)}")
