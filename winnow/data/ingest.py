"""Load a data file into a store table: validate, quarantine, and add only ids the table lacks."""
from __future__ import annotations

import hashlib
import os
import re
from dataclasses import asdict
from pathlib import Path
from typing import Any

from winnow.data.loaders import load_records
from winnow.store import lance


def table_name_for(role: str, spec: str) -> str:
    """Tables are named after their content source: ``pool__<stem>_<hash of the absolute path>``."""
    stem = re.sub(r"[^A-Za-z0-9_]+", "_", Path(spec.split(":")[0]).stem)[:40] or "data"
    digest = hashlib.sha256(os.path.abspath(spec).encode()).hexdigest()[:8]
    return f"{role}__{stem}_{digest}"


def ingest(spec: str, store_uri: str, table: str) -> dict[str, Any]:
    """Validate ``spec`` and merge its records into ``table``; returns counts, quarantine and table ref."""
    result = load_records(spec)
    db = lance.connect(store_uri)
    ref = lance.write_records(db, table, result.records)
    # Tables are append-only (ids are never removed): say so when the table holds ids the file lacks.
    extra = ref.n_rows - len(result.records)
    return {**result.summary(), "table": ref.name, "version": ref.version, "table_rows": ref.n_rows, "added": ref.added,
            "ids_not_in_file": extra,
            "quarantine": [asdict(q) for q in result.quarantined],
            "truncation": "prompts cut from the left, responses from the right (see winnow.data.formatting)"}
