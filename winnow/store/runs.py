"""The run history: one ledger entry per finished command run, in the store every process shares, so past runs
are found by what they did (command, target, method, budget, verdict) rather than by folder."""
from __future__ import annotations

import hashlib
import time
from typing import Any

from winnow.store import lance, ledger

RUNS = "ledger_runs"
_TABLE = "runs"  # ledger entries are grouped by table; the run history is one group


def record_run(store_uri: str, payload: dict[str, Any]) -> str:
    """Append a run; returns its id (short, stable for this entry: folder and finish time)."""
    at = time.time()
    run_id = hashlib.sha256(f"{payload.get('out', '')}|{at}".encode()).hexdigest()[:8]
    ledger.record(lance.connect(store_uri), RUNS, run_id, _TABLE, {**payload, "id": run_id, "finished": at})
    return run_id


def list_runs(store_uri: str) -> list[dict[str, Any]]:
    """Every recorded run, newest first."""
    return list(reversed(ledger.entries(lance.connect(store_uri), RUNS, _TABLE)))


def find_run(store_uri: str, ref: str) -> dict[str, Any] | None:
    """A run by id (or unique id prefix) or by its output folder."""
    runs = list_runs(store_uri)
    hits = [r for r in runs if r["id"].startswith(ref)] or [r for r in runs if r.get("out") == ref]
    return hits[0] if len({r["id"] for r in hits}) == 1 else None
