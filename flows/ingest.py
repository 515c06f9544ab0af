"""The ingest flow: append new examples to a pool table and announce them with a Prefect event.

The event (``winnow.pool.updated``, resource ``winnow.pool.<table>``) is what the retrain deployment's
trigger listens for; its payload says how many rows arrived and the table's new version.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.events import emit_event

from flows.env import EnvSettings
from tasks import unexpected_only
from winnow.data.loaders import write_jsonl
from winnow.data.readers import describe_read
from winnow.reports.publish import ui_key
from winnow.results import DataSet
from winnow.settings import DataSettings
from winnow.store.ingest import check_files, data_files, ingest_file

POOL_UPDATED = "winnow.pool.updated"


def pool_resource(table: str) -> dict[str, str]:
    return {"prefect.resource.id": f"winnow.pool.{table}", "prefect.resource.name": table}


@task(name="ingest-file", retries=1, retry_condition_fn=unexpected_only, task_run_name="ingest-{path}")
def ingest_file_task(path: str, store_uri: str, table: str, data: DataSettings) -> tuple[DataSet, bool]:
    """Not cached by Prefect: the store's ingest ledger (content hash per table) is the one record of what
    was ingested, shared by every process on the store."""
    return ingest_file(path, store_uri, table, data.format, data.map)


def _row(d: DataSet, skipped: bool) -> dict[str, Any]:
    r = d.read
    return {"file": r.path, "in": r.n_in, "used": r.used, "quarantined": r.quarantined, "added": d.added,
            "layouts": ", ".join(f"{k} {n}" for k, n in r.layouts.items()), "read as": describe_read(r.read_as or None),
            "default source / task": f"{r.defaulted.get('source', 0)} / {r.defaulted.get('task', 0)}",
            "status": "already ingested" if skipped else "ingested"}


@flow(name="ingest", log_prints=True)
def ingest_flow(paths: list[str], table: str = "pool", store_uri: str = "", data: dict[str, Any] | None = None,
                quarantine: str = "") -> dict[str, Any]:
    """Ingest files and directories (a directory = its data files, compressed or not); emit one event when rows
    were added. ``data``: the format and column map (settings' ``data`` section). Every quarantined record goes
    to ``quarantine`` (default ``WINNOW_HOME/quarantine/<table>.jsonl``), with per-reason counts as an artifact.
    Deployed twice: on demand, and every minute over the watched inbox directory."""
    logger, env = get_run_logger(), EnvSettings()
    store_uri = store_uri or env.store_uri
    options = DataSettings.model_validate(data or {})
    files = data_files(paths)
    check_files(files, store_uri, table, options.format, options.map)  # all files or none
    results = [ingest_file_task(f, store_uri, table, options) for f in files]
    added = sum(d.added for d, _ in results)
    rows = [_row(d, skipped) for d, skipped in results]
    entries = [q for d, _ in results for q in d.read.quarantine]
    for q in entries:
        logger.warning("quarantined %s:%s field %s: %s", q["path"], q["line"], q["field"], q["reason"])
    reasons: dict[str, int] = {}
    for d, _ in results:
        for reason, n in d.read.reasons.items():
            reasons[reason] = reasons.get(reason, 0) + n
    quarantine_path = Path(quarantine) if quarantine else env.home / "quarantine" / f"{table}.jsonl"
    if entries:
        write_jsonl(quarantine_path, entries)
        create_table_artifact(table=[{"reason": k, "records": n} for k, n in reasons.items()],
                              key=ui_key(f"ingest-{table}", "quarantine"),
                              description=f"quarantined records by reason (all of them in {quarantine_path})")
    last = results[-1][0] if results else None
    summary = {"table": table, "files": len(files), "new_rows": added, "table_rows": last.rows if last else 0,
               "version": last.version if last else None, "in": sum(d.read.n_in for d, _ in results),
               "used": sum(d.read.used for d, _ in results), "quarantined": sum(d.read.quarantined for d, _ in results),
               "reasons": reasons,
               "first_quarantined": [f"{q['path']}:{q['line']}: field {q['field']!r}: {q['reason']}" for q in entries[:3]],
               "quarantine_file": str(quarantine_path) if entries else "",
               "files_read": [{k: row[k] for k in ("file", "layouts", "read as", "default source / task")} for row in rows]}
    if rows:
        create_table_artifact(table=rows, key=ui_key(f"ingest-{table}", "files"),
                              description=f"files ingested into {table}: {added} new rows")
    if added:
        emit_event(event=POOL_UPDATED, resource=pool_resource(table),
                   payload={**summary, "sources": [d.read.path for d, _ in results if d.added]})
        logger.info("%d new rows in %s (now %d rows, version %s); emitted %s", added, table,
                    summary["table_rows"], summary["version"], POOL_UPDATED)
    else:
        logger.info("no new rows for %s (%d files already ingested or without new ids)", table, len(files))
    return summary
