"""Markdown tables and the rows every report shares: results, data sets, quarantine, sources."""
from __future__ import annotations

from collections import Counter
from typing import Any

from winnow.data.readers import describe_read
from winnow.results import Evaluation, ReadReport


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """A GitHub markdown table; every cell printed in full (a report is read where output is piped to a file)."""
    if not rows:
        return "_(none)_"
    cols = list(dict.fromkeys(c for r in rows for c in r))
    lines = ["| " + " | ".join(map(str, cols)) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(r.get(c, "")) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def rounded(rows: list[dict[str, Any]], digits: int = 4) -> list[dict[str, Any]]:
    return [{k: (round(v, digits) if isinstance(v, float) else v) for k, v in r.items()} for r in rows]


def results_table(evals: dict[str, Evaluation], split: str = "test") -> list[dict[str, Any]]:
    return [{"model": name, **e.scores(), "split": split, f"n_{split}": e.n} for name, e in evals.items()]


def source_table(selected: dict[str, int], random_: dict[str, int] | None, pool: dict[str, int]) -> list[dict[str, Any]]:
    """Examples per source in the pool and the subsets; without a random subset, only sources selected."""
    s, r, p = Counter(selected), Counter(random_ or {}), Counter(pool)
    rows = [{"source": k, "pool": p[k], "selected": s[k], **({"random": r[k]} if random_ is not None else {})}
            for k in sorted(p, key=lambda k: (-s[k], k))]
    return rows if random_ is not None else [row for row in rows if row["selected"]]


def data_rows(reads: dict[str, ReadReport]) -> list[dict[str, Any]]:
    """One row per data set: counts, how it was read, and how many records took a default source or task."""
    rows = []
    for k, d in reads.items():
        layouts = ", ".join(f"{name} {n}" for name, n in d.layouts.items()) or "store table"
        rows.append({"set": k, "in": d.n_in, "used": d.used, "quarantined": d.quarantined,
                     "read as": describe_read(d.read_as or None), "layouts": layouts,
                     "default source / task": f"{d.defaulted.get('source', 0)} / {d.defaulted.get('task', 0)}"})
    return rows


def quarantine_rows(reads: dict[str, ReadReport]) -> list[dict[str, Any]]:
    """Quarantine counts per set and reason, the table a user acts on first."""
    return [{"set": k, "reason": reason, "records": n} for k, d in reads.items() for reason, n in d.reasons.items()]
