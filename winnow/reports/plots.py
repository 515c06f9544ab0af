"""Every plot a report shows, headless (Agg): files beside the markdown that names them."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd


def _pyplot():
    """matplotlib with the file-only backend (flows run headless, often in worker processes)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save_figure(fig: Any, path: str | Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def plot_sources(rows: list[dict[str, Any]], path: str | Path) -> str:
    """Bar chart of how many examples each source contributes to the selected and random subsets."""
    plt = _pyplot()

    rows = [r for r in rows if r["selected"] or r["random"]]
    fig, ax = plt.subplots(figsize=(8, 0.28 * len(rows) + 1.2))
    y = range(len(rows))
    ax.barh([i - 0.2 for i in y], [r["selected"] for r in rows], height=0.4, label="selected")
    ax.barh([i + 0.2 for i in y], [r["random"] for r in rows], height=0.4, label="random")
    ax.set_yticks(list(y), [r["source"] for r in rows], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("examples in subset")
    ax.legend()
    fig.tight_layout()
    _save_figure(fig, path)
    plt.close(fig)
    return str(path)


def plot_affinity(S: list[list[float]], names: list[str], path: str | Path) -> str:
    """Heat-map of the task-affinity matrix."""
    plt = _pyplot()

    fig, ax = plt.subplots(figsize=(0.35 * len(names) + 2.5, 0.35 * len(names) + 2))
    im = ax.imshow(S, cmap="viridis")
    ax.set_xticks(range(len(names)), names, rotation=90, fontsize=7)
    ax.set_yticks(range(len(names)), names, fontsize=7)
    fig.colorbar(im, ax=ax, shrink=0.8, label="affinity")
    fig.tight_layout()
    _save_figure(fig, path)
    plt.close(fig)
    return str(path)


def plot_trials(trials: list[dict[str, Any]], names: list[str], path: str | Path) -> str:
    """Proportions of each trial (stacked bars) and the best score so far (line)."""
    plt = _pyplot()
    import numpy as np

    fig, (a1, a2) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    x = np.arange(len(trials))
    bottom = np.zeros(len(trials))
    for d in names:
        vals = np.array([t[d] for t in trials])
        a1.bar(x, vals, bottom=bottom, label=d)
        bottom += vals
    a1.set_ylabel("proportion")
    a1.legend(fontsize=6, ncol=4, loc="upper right")
    best = np.maximum.accumulate([t["score"] for t in trials])
    a2.plot(x, [t["score"] for t in trials], "o", label="trial")
    a2.plot(x, best, "-", label="best so far")
    a2.set_xticks(x, [f"{t['trial']}\n{t['start']}" for t in trials], fontsize=6)
    a2.set_ylabel("score")
    a2.legend()
    fig.tight_layout()
    _save_figure(fig, path)
    plt.close(fig)
    return str(path)


def plot_history(values: list[float], rows: list[int], metric: str, path: str | Path) -> str:
    """The test metric of each retrain's adapter against the pool size it was selected from."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.plot(range(1, len(rows) + 1), values, marker="o")
    ax.set_xticks(range(1, len(rows) + 1), [f"{n} rows" for n in rows], fontsize=8)
    ax.set_ylabel(f"{metric} (test)")
    ax.set_xlabel("retrain (pool size)")
    ax.set_ylim(bottom=0)
    fig.tight_layout()
    _save_figure(fig, path)
    plt.close(fig)
    return str(path)


def plot_study(steps: list[int], values: list[float | None], pruned: list[bool], grid_steps: int, label: str,
               path: str | Path) -> str:
    """A tuning study's best validation score so far against the fine-tune steps spent (pruned trials marked),
    with what the full grid over the same space would have spent."""
    plt = _pyplot()
    import numpy as np

    spent = np.cumsum(steps)
    fig, ax = plt.subplots(figsize=(7, 3.6))
    finished = [(s, v) for s, v, p in zip(spent, values, pruned) if v is not None and not p]
    if finished:
        xs, ys = zip(*finished)
        ax.step(xs, np.maximum.accumulate(ys), where="post", label="best so far (complete trials)")
        ax.plot(xs, ys, "o", ms=4, label="complete trial")
    cut = [(s, v) for s, v, p in zip(spent, values, pruned) if p and v is not None]
    if cut:
        ax.plot(*zip(*cut), "x", color="tab:red", label="pruned (last epoch's score)")
    ax.axvline(grid_steps, color="grey", ls="--", label=f"full grid: {grid_steps} steps")
    ax.set_xlabel("fine-tune steps spent")
    ax.set_ylabel(f"{label} (validation)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    _save_figure(fig, path)
    plt.close(fig)
    return str(path)


def _save(plt, fig, ax, xlabel: str, ylabel: str, title: str, path: str | Path, legend: bool = True) -> str:
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if legend:
        ax.legend(fontsize=7)
    fig.tight_layout()
    _save_figure(fig, path)
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


def plot_utility(points: list[dict[str, float]], metric: str, target: str, path: str | Path) -> str:
    """The subset-utility correlation: each subset's mean score against the metric its fine-tune reached."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4))
    ax.scatter([p["predicted"] for p in points], [p["observed"] for p in points], s=26)
    return _save(plt, fig, ax, "subset's mean score (similarity to the queries)", f"{metric} (validation)",
                 f"{target}: score vs outcome", path, legend=False)
