"""Data tasks: validate a file and merge it into a store table."""
from __future__ import annotations

from typing import Any

from prefect import task

from tasks import unexpected_only
from winnow.store.ingest import ingest


@task(name="ingest-records", retries=1, retry_condition_fn=unexpected_only)
def ingest_task(spec: str, store_uri: str, table: str) -> dict[str, Any]:
    """Not cached: re-reading a file is cheap, and ingest adds only ids the table lacks."""
    return ingest(spec, store_uri, table)


@task(name="validate-records")
def validate_task(spec: str) -> dict[str, Any]:
    """Validate a set that is read directly later (the test set): counts and quarantine only."""
    from dataclasses import asdict

    from winnow.data.loaders import load_records

    result = load_records(spec)
    return {**result.summary(), "quarantine": [asdict(q) for q in result.quarantined]}
