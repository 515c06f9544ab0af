"""Small append-only ledgers in the store: which files were ingested, which warm-up defines each pool's
feature space, and each retrain's outcome.

They live in the store (not in a local file) so that every process and machine using the same LanceDB URI
sees the same history — a watched inbox never ingests a file twice, and a retrain finds the adapter it must
beat. Entries are merged by key, so writing one twice is harmless.
"""
from __future__ import annotations

import json
import time
from typing import Any

import pyarrow as pa

from winnow.store import lance

SCHEMA = pa.schema([("key", pa.string()), ("table", pa.string()), ("at", pa.float64()), ("payload", pa.string())])
INGESTED = "ledger_ingested"
RETRAINS = "ledger_retrains"
SPACES = "ledger_spaces"  # feature space (winnow.training.runs.feature_space_key) -> the warm-up that defines it


def record(db: Any, ledger: str, key: str, table: str, payload: dict[str, Any]) -> None:
    tbl = lance.open_or_create(db, ledger, SCHEMA, None)
    data = pa.table({"key": [key], "table": [table], "at": [time.time()],
                     "payload": [json.dumps(payload, sort_keys=True)]}, schema=SCHEMA)
    with lance.writer_lock(db.uri, ledger):
        tbl.checkout_latest()
        lance.commit(lambda: tbl.merge_insert("key").when_matched_update_all().when_not_matched_insert_all()
                     .execute(data))


def entries(db: Any, ledger: str, table: str) -> list[dict[str, Any]]:
    """A table's entries, oldest first, each as its payload plus ``key`` and ``at``."""
    if not lance.table_exists(db, ledger):
        return []
    t = db.open_table(ledger).to_arrow().sort_by("at").to_pylist()
    return [{**json.loads(r["payload"]), "key": r["key"], "at": r["at"]} for r in t if r["table"] == table]


def get(db: Any, ledger: str, key: str) -> dict[str, Any] | None:
    """The entry under ``key`` (its payload), or None."""
    if not lance.table_exists(db, ledger):
        return None
    quoted = key.replace("'", "''")
    rows = db.open_table(ledger).search().where(f"key = '{quoted}'").limit(1).to_list()
    return json.loads(rows[0]["payload"]) if rows else None
