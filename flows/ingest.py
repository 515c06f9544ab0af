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

from tasks import unexpected_only

from flows.env import EnvSettings
from tasks.report import artifact_key
from winnow.data.loaders import write_jsonl
from winnow.data.readers import describe_read
from winnow.settings import DataSettings
from winnow.store.ingest import data_files, ingest_file

POOL_UPDATED = "winnow.pool.updated"


def pool_resource(table: str) -> dict[str, str]:
    return {"prefect.resource.id": f"winnow.pool.{table}", "prefect.resource.name": table}


@task(name="ingest-file", retries=1, retry_condition_fn=unexpected_only, task_run_name="ingest-{path}")
def ingest_file_task(path: str, store_uri: str, table: str, data: DataSettings) -> dict[str, Any]:
    """Not cached by Prefect: the store's ingest ledger (content hash per table) is the one record of what
    was ingested, shared by every process on the store."""
    return ingest_file(path, store_uri, table, data.format, data.map)


@flow(name="ingest", log_prints=True)
def ingest_flow(paths: list[str], table: str = "pool", store_uri: str = "", data: dict[str, Any] | None = None,
                quarantine: str = "") -> dict[str, Any]:
    """Ingest files and directories (a directory = its data files, compressed or not); emit one event when rows
    were added. ``data``: the format and column map (settings' ``data`` section). Every quarantined record goes
    to ``quarantine`` (default ``WINNOW_HOME/quarantine/<table>.jsonl``), with per-reason counts as an artifact.
    Deployed twice: on demand, and every minute over the watched inbox directory."""
    logger = get_run_logger()
    env = EnvSettings()
    store_uri = store_uri or env.store_uri
    options = DataSettings.model_validate(data or {})
    files = data_files(paths)
    results = [ingest_file_task(f, store_uri, table, options) for f in files]
    added = sum(r["added"] for r in results)
    rows = [{"file": r["path"], "in": r["in"], "used": r["used"], "quarantined": r["quarantined"], "added": r["added"],
             "layouts": ", ".join(f"{k} {n}" for k, n in (r.get("layouts") or {}).items()),
             "read as": describe_read(r.get("read_as")),
             "default source / task": "{source} / {task}".format(**(r.get("defaulted") or {"source": 0, "task": 0})),
             "status": "already ingested" if r["skipped"] else "ingested"} for r in results]
    entries = [q for r in results for q in r["quarantine"]]
    for q in entries:
        logger.warning("quarantined %s:%s field %s: %s", q["path"], q["line"], q["field"], q["reason"])
    reasons: dict[str, int] = {}
    for r in results:
        for reason, n in (r.get("reasons") or {}).items():
            reasons[reason] = reasons.get(reason, 0) + n
    quarantine_path = Path(quarantine) if quarantine else env.home / "quarantine" / f"{table}.jsonl"
    if entries:
        write_jsonl(quarantine_path, entries)
        create_table_artifact(table=[{"reason": k, "records": n} for k, n in reasons.items()],
                              key=artifact_key(f"ingest-{table}", "quarantine"),
                              description=f"quarantined records by reason (all of them in {quarantine_path})")
    summary = {"table": table, "files": len(files), "new_rows": added,
               "table_rows": results[-1]["table_rows"] if results else 0,
               "version": results[-1]["version"] if results else None,
               "in": sum(r["in"] for r in results), "used": sum(r["used"] for r in results),
               "quarantined": sum(r["quarantined"] for r in results), "reasons": reasons,
               "first_quarantined": [f"{q['path']}:{q['line']}: field {q['field']!r}: {q['reason']}" for q in entries[:3]],
               "quarantine_file": str(quarantine_path) if entries else "",
               "files_read": [{k: row[k] for k in ("file", "layouts", "read as", "default source / task")} for row in rows]}
    if rows:
        create_table_artifact(table=rows, key=artifact_key(f"ingest-{table}", "files"),
                              description=f"files ingested into {table}: {added} new rows")
    if added:
        emit_event(event=POOL_UPDATED, resource=pool_resource(table),
                   payload={**summary, "sources": [r["path"] for r in results if r["added"]]})
        logger.info("%d new rows in %s (now %d rows, version %s); emitted %s", added, table,
                    summary["table_rows"], summary["version"], POOL_UPDATED)
    else:
        logger.info("no new rows for %s (%d files already ingested or without new ids)", table, len(files))
    return summary
