"""The tuning report: the trials on validation, the best configuration on test beside random, the cost."""
from __future__ import annotations

from typing import Any

import numpy as np
from optuna.trial import FrozenTrial, TrialState

from winnow.reports.tables import markdown_table


def _r(v: float | None) -> float | None:
    return None if v is None or not np.isfinite(v) else round(float(v), 4)


def trial_rows(trials: list[FrozenTrial]) -> list[dict[str, Any]]:
    return [{"trial": t.number, "state": t.state.name.lower(), "value": _r(t.value),
             "epochs": t.user_attrs.get("epochs"), "steps": t.user_attrs.get("steps", 0),
             **({"retry_of": t.user_attrs["retry_of"]} if "retry_of" in t.user_attrs else {}),
             **{k: (round(v, 6) if isinstance(v, float) else v) for k, v in t.params.items()}} for t in trials]


def test_rows(per_ex: dict[str, dict[str, np.ndarray]], metric: str, budget: int) -> list[dict[str, Any]]:
    """best and random on the test split: mean over seeds of each seed's mean, and the spread over seeds."""
    rows = []
    for m in ("best", "random"):
        by_seed, loss = per_ex[m]["score"].mean(axis=1), per_ex[m]["loss"].mean(axis=1)
        rows.append({"method": m, "split": "test", "budget": budget, "seeds": len(by_seed),
                     metric: round(float(by_seed.mean()), 4),
                     f"{metric} std": _r(by_seed.std(ddof=1)) if len(by_seed) > 1 else None,
                     "response_loss": round(float(loss.mean()), 4),
                     "response_loss std": _r(loss.std(ddof=1)) if len(loss) > 1 else None})
    return rows


def paired_row(criterion: str, p: dict[str, Any]) -> dict[str, Any]:
    return {"criterion": criterion, "diff": round(p["diff"], 4), "t_low": _r(p["t_low"]), "t_high": _r(p["t_high"]),
            "boot_low": round(p["boot_low"], 4), "boot_high": round(p["boot_high"], 4), "boot_over": p["boot_over"]}


def render_tune(*, study: str, trials: list[FrozenTrial], best: FrozenTrial, representation: str, pruner: str,
                score: str, split: str, seconds: float, tests: list[dict[str, Any]], paired: dict[str, Any],
                seeds: list[int], cost: list[dict[str, Any]], importance: Any, storage: str, dashboard: str,
                versions: dict[str, str]) -> str:
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    imp = (markdown_table([{"parameter": k, "importance": v} for k, v in importance.items()])
           if isinstance(importance, dict) else importance)
    return "\n\n".join([
        f"# Winnow tuning study `{study}`",
        f"{len(finished)} finished trials ({sum(t.state == TrialState.PRUNED for t in finished)} pruned by the "
        f"{pruner} pruner), {len(trials) - len(finished)} failed or running; {seconds / 60:.1f} min. Trials are "
        f"scored on the **validation** split ({'eval.metric' if score == 'metric' else '−response loss'}); the "
        f"search never saw the test split. Splits: {split}.",
        f"## Best configuration (validation {best.value:.4f}, trial {best.number})\n" +
        markdown_table([{"parameter": k, "value": v} for k, v in best.params.items()]) +
        f"\n\nIts settings: `best.yaml` (representation: {representation}).",
        "## Test split: best configuration vs random at the same budget\n" + markdown_table(tests) +
        f"\n\nPaired difference best − random in the study's criterion ({paired['criterion']}), seeds {seeds}:\n\n" +
        markdown_table([paired]) + "\n\nt: 95 % t-interval over seeds; boot: 95 % hierarchical bootstrap over seeds "
        "and test examples.",
        "## Cost\n" + markdown_table(cost) + "\n\n![best so far](best_so_far.png)",
        "## Parameter importance (fANOVA over complete trials)\n" + imp,
        "## Trials\n" + markdown_table(trial_rows(trials)),
        f"Study in Optuna storage `{storage}`; browse it with `optuna-dashboard {dashboard}`.",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items())]) + "\n"
