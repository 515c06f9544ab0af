"""The experiment report: per target, mean ± std over seeds, the paired difference to random with both
intervals, the plots, and the distance-quantile table."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from winnow.budget import describe_budget
from winnow.reports.guard import warnings_block
from winnow.reports.plots import plot_budget, plot_distance, plot_quantiles, plot_utility
from winnow.reports.tables import markdown_table, rounded
from winnow.reports.verdict import experiment_verdicts
from winnow.stats import paired_vs_random, summarize

Tables = dict[tuple[str, str], tuple[pd.DataFrame, pd.DataFrame]]


def results_frame(records: list[dict[str, Any]]) -> tuple[pd.DataFrame, dict[str, dict[str, np.ndarray]]]:
    """One row per cell, and each cell's per-example scores and losses by cell key (for the bootstrap)."""
    df = pd.DataFrame([{**r["cell"], "key": r["key"], **{k: r[k] for k in ("budget_size", "metric", "score",
                                                                            "response_loss", "distance", "excluded")}}
                       for r in records])
    per_example = {"score": {r["key"]: np.asarray(r["scores"]) for r in records},
                   "response_loss": {r["key"]: np.asarray(r["losses"]) for r in records}}
    return df, per_example


def experiment_tables(exp: Any, df: pd.DataFrame, per_example: dict[str, dict[str, np.ndarray]]) -> Tables:
    """Summary and paired tables per target and metric (the target's own metric, its eval metric, the loss)."""
    tables: Tables = {}
    for t in exp.targets:
        main = df[(df.target == t.name) & (df.method != "quantile")].rename(columns={"score": t.eval_metric})
        for metric in dict.fromkeys([t.metric, t.eval_metric, "response_loss"]):
            ex = per_example["response_loss" if metric == "response_loss" else "score"]
            tables[(t.name, metric)] = (summarize(main, metric), paired_vs_random(main, metric, ex))
    return tables


def render_experiment(exp: Any, df: pd.DataFrame, tables: Tables, out_dir: Path, ref_rep: str, computed: int,
                      seconds: float, versions: dict[str, str], guard_rows: list[dict[str, Any]] | None = None,
                      warnings: list[str] | None = None, utility: list[dict[str, Any]] | None = None,
                      planted: dict[str, dict[str, dict[str, Any]]] | None = None) -> str:
    verdicts = experiment_verdicts(exp, tables, utility, planted)
    parts = [f"# Winnow experiment: {exp.name}", "## Verdict (test split)\n" + "\n".join(f"- {v}" for v in verdicts),
             warnings_block(warnings or []),
             f"{len(df)} cells ({computed} computed in this run, {len(df) - computed} reused), {seconds / 60:.1f} min. "
             f"Seeds {exp.seeds}; budgets {', '.join(describe_budget(b) for b in exp.budgets)}."]
    for t in exp.targets:
        d = df[df.target == t.name].rename(columns={"score": t.eval_metric})
        summ, paired = tables[(t.name, t.metric)]
        base = summ[summ.method.isin(["zero_shot", "full"])]
        budget_png = plot_budget(summ[~summ.method.isin(["zero_shot", "full"])], base, t.metric, t.name,
                                 out_dir / f"budget_{t.name}.png")
        distance_png = plot_distance(d[d.method != "zero_shot"], t.metric, t.name, ref_rep,
                                     out_dir / f"distance_{t.name}.png")
        parts += [f"## Target {t.name} ({t.metric}, test split)",
                  "### Mean ± std over seeds\n" + markdown_table(frame_rows(summ)),
                  "### Paired difference to random (same budget and seed)\n" + markdown_table(frame_rows(paired)) +
                  "\n\ndiff = method − random" + (" (negative = lower loss = better)" if t.metric == "response_loss"
                                                 else "") + "; t: 95 % t-interval over seeds (wide with few seeds); "
                  "boot: 95 % hierarchical bootstrap that resamples seeds and test examples (`boot_over` says which; "
                  "with one seed it reflects the test examples only).",
                  f"![{t.metric} vs budget]({Path(budget_png).name})",
                  f"![distance vs {t.metric}]({Path(distance_png).name})"]
        for other in dict.fromkeys([t.eval_metric, "response_loss"]):
            if other != t.metric:
                parts.append(f"### Paired difference to random in {other}\n" +
                             markdown_table(frame_rows(tables[(t.name, other)][1])))
        q = d[d.method == "quantile"]
        if len(q):
            qs = q.groupby("quantile")[t.metric].agg(mean="mean", std="std", n="count").reset_index()
            qs["target"] = t.name
            png = plot_quantiles(qs, t.metric, t.name, ref_rep, out_dir / f"quantiles_{t.name}.png")
            parts += [f"### Distance quantiles ({ref_rep} round-robin order, {exp.distance.sample} examples each)\n" +
                      markdown_table(frame_rows(qs[["quantile", "mean", "std", "n"]])), f"![quantiles]({Path(png).name})"]
    if planted:
        parts.append(planted_section(planted))
    if utility:
        parts.append(utility_section(utility, out_dir))
    if guard_rows:
        parts.append("## Decontamination against each target's test split\n" + markdown_table(guard_rows) +
                     "\n\nCandidates the guard checked and removed, summed over a method's cells; each cell's subset "
                     "folder holds `<subset>_contaminated.jsonl` with the reason for every one.")
    parts.append("Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    return "\n\n".join(p for p in parts if p) + "\n"


def frame_rows(df: pd.DataFrame) -> list[dict[str, Any]]:
    return rounded(df.to_dict("records"))


def planted_section(planted: dict[str, dict[str, dict[str, Any]]]) -> str:
    """Per target × method: can the representation find in-domain data at all (no fine-tune)?"""
    rows = [{"target": t, "method": m, "planted": int(p["planted"]), "recall": f"{p['recall']:.2f}",
             "chance": f"{p['chance']:.2f}", "mean rank percentile": f"{p['mean_percentile']:.1f}"}
            for t, by in planted.items() for m, p in by.items()]
    return ("## Planted recall (validation split)\n" + markdown_table(rows) + "\n\nThe target's validation rows "
            "planted in the pool under hidden ids, ranked by each method's selector at the first budget: the share "
            "within the budget, and what a random ordering would give.")


def utility_section(utility: list[dict[str, Any]], out_dir: Path) -> str:
    """Does a higher score mean a better model? ρ per target, with its bootstrap interval, and the scatter."""
    rows = [{"target": u["target"], "representation": u["representation"], "budget": u["budget"],
             "subsets": u["subsets"], "metric (validation)": u["metric"], "spearman rho": round(u["rho"], 3),
             "95 % bootstrap": f"[{u['low']:+.2f}, {u['high']:+.2f}]"} for u in utility]
    pngs = [plot_utility(u["points"], u["metric"], u["target"], out_dir / f"utility_{u['target']}.png") for u in utility]
    return ("## Subset utility (validation split)\n" + markdown_table(rows) + "\n\nEach subset of the budget's size "
            "(half uniform, half drawn by the representation's scores) fine-tuned with one seed and evaluated on the "
            "target's validation split; ρ is Spearman's between its mean score (similarity to the queries) and "
            "its metric, the interval a bootstrap over subsets.\n\n" +
            "\n\n".join(f"![utility {u['target']}]({Path(p).name})" for u, p in zip(utility, pngs)))
