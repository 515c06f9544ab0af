"""The mixture search report: trials on validation, the chosen mixture, the test split, TaskPGM, the guard."""
from __future__ import annotations

from typing import Any

from winnow.reports.guard import decontamination_section
from winnow.reports.tables import markdown_table


def render_mixture(*, study: str, budget: int, names: list[str], domain_key: str, score_name: str, how: str,
                   trials: list[dict[str, Any]], best: list[float], best_score: float, final_rows: list[dict[str, Any]],
                   decontamination: dict[str, Any], pgm: dict[str, Any], affinity: str, beta: float, lam: float,
                   dashboard: str) -> str:
    return "\n\n".join([
        f"# Mixture search: {study}",
        f"Budget {budget} examples over {len(names)} domains (key `{domain_key}`). Trials are scored by {score_name} "
        f"on the validation split ({how}); the table below them is the test split, which no trial saw.",
        "## Trials (validation split)\n" + markdown_table(trials),
        "![proportions and best-so-far](trials.png)",
        f"## Chosen mixture (validation {score_name} {best_score:.4f})\n" +
        markdown_table([{d: round(p, 3) for d, p in zip(names, best)}]),
        "## Test split: the chosen mixture and the two fixed before the search\n" + markdown_table(final_rows),
        decontamination_section(decontamination, title="Decontamination of the domains against validation and test",
                                refill=False),
        f"## TaskPGM ({affinity} affinity, β = {beta}, λ = {lam})\n" +
        markdown_table([{d: round(p, 3) for d, p in zip(names, pgm["proportions"])}]),
        "![task affinity](affinity.png)",
        f"Dashboard: `optuna-dashboard {dashboard}`"]) + "\n"
