"""The experiment's pictures: metric vs budget per method, metric vs distance quantile, and subset-to-query
distance vs metric."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from winnow.report import _pyplot

def _save(plt, fig, ax, xlabel: str, ylabel: str, title: str, path: str | Path, legend: bool = True) -> str:
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if legend:
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)


def label(metric: str) -> str:
    """An axis label that says which way is better (only losses fall)."""
    return f"{metric.replace('_', ' ')} ({'lower' if metric == 'response_loss' else 'higher'} is better, test split)"


def plot_budget(summary: pd.DataFrame, baselines: pd.DataFrame, metric: str, target: str, path: str | Path) -> str:
    """One line per method (mean ± std over seeds); zero-shot and full data as horizontal lines."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    s = summary[summary.target == target]
    for method, g in s[s.method.str.contains("/") | (s.method == "random")].groupby("method"):
        g = g.sort_values("budget_size")
        ax.errorbar(g.budget_size, g["mean"], yerr=g["std"].fillna(0), marker="o", capsize=3, label=method,
                    linestyle="--" if method == "random" else "-", color="black" if method == "random" else None)
    for _, r in baselines[baselines.target == target].iterrows():
        ax.axhline(r["mean"], linestyle=":", color="grey" if r.method == "zero_shot" else "tab:red")
        ax.annotate(r.method.replace("_", "-"), (ax.get_xlim()[0], r["mean"]), fontsize=8, va="bottom")
    return _save(plt, fig, ax, "budget (examples)", label(metric), f"{target}: {metric} vs budget", path)


def plot_quantiles(summary: pd.DataFrame, metric: str, target: str, representation: str, path: str | Path) -> str:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.6))
    g = summary[summary.target == target].sort_values("quantile")
    ax.errorbar(g["quantile"] + 1, g["mean"], yerr=g["std"].fillna(0), marker="o", capsize=3)
    ax.set_xticks(list(g["quantile"] + 1))
    return _save(plt, fig, ax, f"quantile of the {representation} round-robin order (1 = closest to the queries)",
                 label(metric), f"{target}: {metric} vs distance quantile", path, legend=False)


def plot_distance(df: pd.DataFrame, metric: str, target: str, representation: str, path: str | Path) -> str:
    """Each trained cell: its subset's mean distance to the nearest query (in one representation) vs metric."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4))
    d = df[(df.target == target) & df.distance.notna()]
    for method, g in d.groupby("method"):
        ax.scatter(g.distance, g[metric], label=method, s=22, alpha=0.8)
    return _save(plt, fig, ax, f"subset distance to the queries ({representation}; mean distance to nearest)",
                 label(metric), f"{target}: distance vs {metric}", path)
