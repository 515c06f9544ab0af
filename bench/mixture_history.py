"""How few runs does an active design need to rank mixtures as well as a regression fitted on all 512?

RegMix's 512 proxy runs (../shared/mixture/regmix/) are the oracle: a design may only query rows of the table.
From 8 random starting runs it grows to 16, 32, 64 and 128, choosing each next batch of runs (4 at a time) by

- ``random``: random rows, then gradient boosting (RegMix: random design + regression);
- ``gp_bo``: DUET's acquisition, expected improvement under the GP surrogate (kriging believer in a batch);
- ``taskpgm``: does not apply here and is reported so: TaskPGM needs task affinities from single-source proxy
  models, and the table holds mixtures only.

At each size it reports, over 10 seeds with 95 % percentile intervals: the Spearman ρ of the design's surrogate
on the runs not yet queried, and the true rank (1 = best of 512) of the run that surrogate ranks first. The
reference is boosting fitted on all 512 runs, judged by 5-fold cross-validation (it cannot be judged on runs it
saw). Writes bench JSON and a plot.

    python bench/mixture_history.py [--out runs/bench/mixture_history.json] [--seeds 10]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from scipy.stats import spearmanr  # noqa: E402

from winnow.mixture import surrogates  # noqa: E402
from winnow.mixture.design import suggest_among  # noqa: E402
from winnow.mixture.history import read_history  # noqa: E402

REGMIX = ROOT.parent / "shared" / "mixture" / "regmix"
TARGET = "metric/the_pile_pile_cc_val_loss"
SIZES = (8, 16, 32, 64, 128)
BATCH = 4


def evaluate(name: str, X: np.ndarray, y: np.ndarray, queried: np.ndarray, seed: int) -> tuple[float, int]:
    """The surrogate fitted on the queried rows: ρ on the rest, and the true rank of its top pick overall."""
    model = surrogates.fit(name, X[queried], y[queried], seed)
    pred, _ = surrogates.predict(model, X)
    rest = np.setdiff1d(np.arange(len(y)), queried)
    rho = float(spearmanr(pred[rest], y[rest]).statistic)
    true_rank = {int(i): r + 1 for r, i in enumerate(np.argsort(-y))}
    return rho, true_rank[int(np.argmax(pred))]


def run(strategy: str, X: np.ndarray, y: np.ndarray, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    queried = rng.choice(len(y), SIZES[0], replace=False)
    rows = []
    for size in SIZES:
        while len(queried) < size:
            rest = np.setdiff1d(np.arange(len(y)), queried)
            b = min(BATCH, size - len(queried))
            if strategy == "random":
                pick = rng.choice(rest, b, replace=False)
            else:
                pick = rest[suggest_among(X[queried], y[queried], X[rest], b, seed)]
            queried = np.concatenate([queried, pick])
        rho, top = evaluate("boosting" if strategy == "random" else "gp", X, y, queried, seed)
        rows.append({"strategy": strategy, "seed": seed, "runs": size, "spearman_rest": rho, "top_pick_rank": top,
                     "best_found_rank": int(min({int(i): r + 1 for r, i in enumerate(np.argsort(-y))}[int(q)]
                                                for q in queried))})
    return rows


def summary(rows: list[dict]) -> list[dict]:
    out = []
    for strategy in sorted({r["strategy"] for r in rows}):
        for size in SIZES:
            sel = [r for r in rows if r["strategy"] == strategy and r["runs"] == size]
            rho = np.array([r["spearman_rest"] for r in sel])
            top = np.array([r["top_pick_rank"] for r in sel])
            out.append({"strategy": strategy, "runs": size, "seeds": len(sel), "spearman_rest": float(rho.mean()),
                        "spearman_low": float(np.quantile(rho, 0.025)), "spearman_high": float(np.quantile(rho, 0.975)),
                        "top_pick_rank_median": float(np.median(top)), "top_pick_rank_low": float(np.quantile(top, 0.025)),
                        "top_pick_rank_high": float(np.quantile(top, 0.975))})
    return out


def plot(table: list[dict], reference: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    for strategy in sorted({r["strategy"] for r in table}):
        rs = [r for r in table if r["strategy"] == strategy]
        ax.errorbar([r["runs"] for r in rs], [r["spearman_rest"] for r in rs],
                    yerr=[[r["spearman_rest"] - r["spearman_low"] for r in rs],
                          [r["spearman_high"] - r["spearman_rest"] for r in rs]], marker="o", capsize=3, label=strategy)
    ax.axhline(reference, color="grey", ls="--", label="boosting on all 512 (5-fold CV)")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("runs queried")
    ax.set_ylabel("Spearman on the runs not queried")
    ax.set_title("RegMix 1M proxies: sequential design")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(ROOT / "runs" / "bench" / "mixture_history.json"))
    ap.add_argument("--seeds", type=int, default=10)
    args = ap.parse_args()
    warnings.filterwarnings("ignore")  # the GP's optimiser warns on flat likelihoods at 8 runs
    h = read_history([str(REGMIX / "train_mixture_1m.csv"), str(REGMIX / "train_pile_loss_1m.csv")], TARGET,
                     sources="train_*", minimize=True)
    X, y = h.shares, h.outcome
    t0 = time.time()
    full = surrogates.cross_validate("boosting", X, y, folds=5, repeats=2)
    rows = [r for seed in range(args.seeds) for s in ("random", "gp_bo") for r in run(s, X, y, seed)]
    table = summary(rows)
    ref = full["spearman"]
    matched = {s: next((r["runs"] for r in table if r["strategy"] == s and r["spearman_low"] >= ref - 0.05), None)
               for s in ("random", "gp_bo")}
    res = {"target": TARGET, "runs": len(y), "sources": len(h.sources), "reference": {k: v for k, v in full.items()
                                                                                     if k != "oof"},
           "table": table, "rows": rows, "runs_to_within_0.05_of_reference": matched,
           "taskpgm": "not applicable: TaskPGM needs affinities from single-source proxy models; the table holds "
                      "mixtures and their losses only", "seconds": round(time.time() - t0, 1)}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1))
    plot(table, ref, out.with_suffix(".png"))
    for r in table:
        print(f"{r['strategy']:7s} {r['runs']:4d} runs: rho {r['spearman_rest']:.3f} [{r['spearman_low']:.3f}, "
              f"{r['spearman_high']:.3f}]  top pick rank median {r['top_pick_rank_median']:.0f} "
              f"[{r['top_pick_rank_low']:.0f}, {r['top_pick_rank_high']:.0f}]")
    print(f"reference (boosting, all 512, 5-fold CV): rho {ref:.3f}; runs to within 0.05: {matched}; "
          f"{res['seconds']} s")


if __name__ == "__main__":
    main()
