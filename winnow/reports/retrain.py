"""The retrain report: the new adapter against the previous one, the features computed, the line's history."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from winnow.reports.tables import markdown_table, source_table
from winnow.results import Evaluation, Features, ReadReport, Subset


def results_rows(evals: dict[str, Evaluation]) -> list[dict[str, Any]]:
    prev = evals.get("previous")
    return [{"model": k, **e.scores(), f"Δ {e.metric} vs previous": round(e.score - prev.score, 4) if prev else "–"}
            for k, e in evals.items()]


def history_rows(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"version": r["version"], "rows": r["n_rows"], "budget": r["budget"],
             r.get("metric", "exact_match"): round(r.get("score", r.get("exact_match")), 4),
             "response_loss": round(r["response_loss"], 4)} for r in runs]


def render_retrain(*, table: str, entry: dict[str, Any], last: dict[str, Any] | None, features: Features, sub: Subset,
                   evals: dict[str, Evaluation], test: ReadReport, runs: list[dict[str, Any]], plot: str,
                   why_new: str, versions: dict[str, str]) -> str:
    return "\n\n".join([
        f"# Winnow retrain: {table} at version {entry['version']}",
        f"{entry['new_rows']} new rows since " + (f"the retrain at version {last['version']}" if last else
                                                  "the start") + f"; the pool holds {entry['n_rows']} rows." +
        (f" This is {why_new}." if why_new else ""),
        "## Result on the test set\n" + markdown_table(results_rows(evals)),
        f"new = a fresh adapter on the top {sub.size} examples by {sub.selector}; previous = the adapter "
        "of the last retrain; base = no fine-tuning.",
        "## Features\n" + f"{features.computed} shards computed, {features.skipped} already in the store "
        f"(only shards holding new rows are computed); {features.seconds} s.",
        "## Subset by source\n" + markdown_table(source_table(sub.sources, None, sub.pool_sources)),
        "## History\n" + markdown_table(history_rows(runs)),
        f"![{entry['metric']} per retrain]({Path(plot).name})",
        f"Test set: {test.used} examples ({test.quarantined} quarantined). Versions: " +
        ", ".join(f"{k} {v}" for k, v in versions.items()),
    ]) + "\n"
