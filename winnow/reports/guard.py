"""What the decontamination guard did, in a report: per subset and per source, why, and its warnings first.

A guard that throws away the target's own data makes selection look useless while every number looks fine, so
its warnings come at the top of a report and in the CLI's last lines, not in a table below the results.
"""
from __future__ import annotations

from typing import Any

from winnow.reports.tables import markdown_table


def guard_warnings(by_subset: dict[str, dict[str, Any] | None]) -> list[str]:
    """Every subset's warnings, each once, prefixed with the subsets that raised it."""
    seen: dict[str, list[str]] = {}
    for name, d in by_subset.items():
        for w in (d or {}).get("warnings", []):
            seen.setdefault(w, []).append(name)
    return [f"{', '.join(names)}: {w}" for w, names in seen.items()]


def warnings_block(warnings: list[str]) -> str:
    return ("**Decontamination warning.** " + " ".join(f"{w}." for w in warnings)) if warnings else ""


def decontamination_section(by_subset: dict[str, dict[str, Any]], listed: int = 20,
                            title: str = "Decontamination against the test set", refill: bool = True) -> str:
    """How many candidates each subset checked against the held-out items, how many copied one (per source
    and by signal), and which. ``refill``: a ranked subset takes the next candidate in place of a
    contaminated one (a domain does not)."""
    rows = [{"subset": k, "source": s, "checked": r["checked"], "flagged": r["flagged"], "overlap": r["overlap"],
             "copied": r["near_exact"], "paraphrase": r["paraphrase"]}
            for k, d in by_subset.items() for s, r in sorted(d.get("by_source", {}).items())]
    found = [{"subset": k, "example": f["id"], "source": f["source"], "nearest test item": f["test_id"],
              "signal": f["signal"], "reason": f["reason"]} for k, d in by_subset.items() for f in d["found"]]
    rule = next(iter(by_subset.values()))["rule"]
    kept = any(d["contaminated"] > d["excluded"] for d in by_subset.values())
    warn = warnings_block(guard_warnings(by_subset))
    return (f"## {title}\n" + (warn + "\n\n" if warn else "") + markdown_table(rows) +
            f"\n\nA candidate is contaminated when {rule} (the system turn and the task's template removed first). "
            + ("They were **kept** (selection.decontaminate.enabled=false). " if kept else
               "Contaminated candidates are left out" + (" and the next in the ranking takes their place. " if refill
                                                         else ". ")) +
            ("Each subset's list is `<subset>_contaminated.jsonl`." if refill else "") +
            ("\n\n" + markdown_table(found[:listed]) + (f"\n\n… and {len(found) - listed} more." if len(found) > listed
                                                        else "") if found else ""))


def guard_summary(d: dict[str, Any] | None) -> dict[str, Any] | None:
    """What an experiment cell keeps of its guard's summary: counts per source and warnings, not the list."""
    if not d:
        return None
    return {k: d[k] for k in ("checked", "contaminated", "excluded", "by_source", "warnings") if k in d}


def experiment_guard_rows(cells: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per target and method: how many candidates the guard checked and removed, summed over cells."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for c in cells:
        g = c.get("guard")
        if not g:
            continue
        key = (c["cell"]["target"], c["cell"]["method"] + (f" {c['cell'].get('representation')}"
                                                          if c["cell"].get("representation") else ""))
        row = out.setdefault(key, {"target": key[0], "arm": key[1], "cells": 0, "checked": 0, "removed": 0})
        row["cells"] += 1
        row["checked"] += g["checked"]
        row["removed"] += g["excluded"]
    return list(out.values())
