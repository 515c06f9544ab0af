"""Retrain ledger tasks: find the retrain to beat (same line: settings and target), record a finished one."""
from __future__ import annotations

from typing import Any

from prefect import task

from winnow.hashing import file_digest
from winnow.keys import digest
from winnow.store import lance, ledger


@task(name="previous-retrain")
def previous_retrain_task(store_uri: str, pool_table: str, settings_digest: str, query: str,
                          test: str) -> dict[str, Any]:
    """The table's size and version, this run's line (a digest of the settings and the target's content), the
    line's history and its last entry, and — when the table's last retrain was on another line — why this one
    starts fresh. A missing table is an error naming the store's tables."""
    db = lance.connect(store_uri)
    tbl = lance.open_table(db, pool_table)
    line = digest({"settings": settings_digest, "query": file_digest(query), "test": file_digest(test)})
    every = ledger.entries(db, ledger.RETRAINS, pool_table)
    history = [e for e in every if e.get("line") == line]
    why_new = (f"a new line of retrains ({line}): the settings or the target differ from the last retrain's "
               f"({every[-1].get('line', 'unrecorded')}), so it has nothing to beat yet"
               if every and not history else "")
    return {"line": line, "version": tbl.version, "table_rows": tbl.count_rows(), "history": history,
            "last": history[-1] if history else None, "why_new": why_new}


@task(name="record-retrain")
def record_retrain_task(store_uri: str, pool_table: str, entry: dict[str, Any]) -> None:
    ledger.record(lance.connect(store_uri), ledger.RETRAINS, f"{pool_table}@{entry['version']}:{entry['line']}",
                  pool_table, entry)
