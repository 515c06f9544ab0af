"""One verdict per target: does the selected subset beat random, can its representation find in-domain data,
and how much of an in-domain ceiling does it reach. When the answer is no, which diagnostic points to why.

The verdict reads only what a run measured: the paired difference to random on the split the run reports
(with its interval), planted recall on the validation split, and the ceiling arm's gain over zero-shot.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from winnow.results import Evaluation
from winnow.stats import paired_difference


def _scores(e: Evaluation) -> np.ndarray:
    return np.array([p["score"] for p in e.predictions], dtype=float)


def verdict(evals: dict[str, Evaluation], arm: str, planted: dict[str, Any] | None = None,
            split: str = "test") -> dict[str, Any]:
    """The verdict for ``arm`` against ``random`` (and ``base``/``ceiling`` when the run has them)."""
    sel, rnd = evals[arm], evals.get("random")
    out: dict[str, Any] = {"arm": arm, "metric": sel.metric, "split": split}
    lines = []
    if rnd is not None and len(sel.predictions) == len(rnd.predictions) and sel.predictions:
        d = paired_difference(_scores(sel), _scores(rnd))
        out["vs_random"] = d
        t = "" if np.isnan(d["t_low"]) else f" t [{d['t_low']:+.3f}, {d['t_high']:+.3f}]"
        lines.append(f"{arm} − random on {split}: {d['diff']:+.3f} {sel.metric}{t} bootstrap "
                     f"[{d['boot_low']:+.3f}, {d['boot_high']:+.3f}] ({d['boot_over']})")
        out["seeds"] = d["n_seeds"]
        # One seed has no interval over fine-tune seeds, and a fine-tune seed moves this metric as much as
        # selection does (docs/results.md): a bootstrap over test items alone is never called a win.
        out["beats_random"] = bool(d["boot_low"] > 0 and d["t_low"] > 0)  # NaN (one seed) compares False
        out["ahead_on_one_seed"] = bool(d["n_seeds"] < 2 and d["boot_low"] > 0)
    recall = (planted or {}).get(arm)
    if recall:
        lines.append(f"planted recall (validation rows planted in the pool, within the budget): {recall['recall']:.2f} "
                     f"(chance {recall['chance']:.2f}); mean rank percentile {recall['mean_percentile']:.1f}")
        out["planted_recall"] = recall["recall"]
    base, ceil = evals.get("base"), evals.get("ceiling")
    if base is not None and ceil is not None:
        gain = ceil.score - base.score
        out["ceiling_gain"] = gain
        if gain > 0:
            out["share_of_ceiling"] = (sel.score - base.score) / gain
            lines.append(f"{100 * out['share_of_ceiling']:.0f} % of the ceiling's gain over zero-shot "
                         f"(ceiling {ceil.score:.3f}, zero-shot {base.score:.3f}, {arm} {sel.score:.3f})")
        else:
            lines.append(f"the ceiling (in-domain rows) is no better than zero-shot ({ceil.score:.3f} vs "
                         f"{base.score:.3f}): this fine-tune does not learn the target from in-domain data")
    out["headline"] = headline(out)
    out["lines"] = lines
    return out


def headline(v: dict[str, Any]) -> str:
    """Yes or no, and when no, the diagnostic that points to the cause."""
    if "beats_random" not in v:
        return "no verdict: there is no random arm to compare with"
    if v["beats_random"]:
        return f"yes: {v['arm']} beats random on {v['split']} ({v['metric']}), both intervals above 0"
    settle = "winnow experiment with 3 or more seeds settles it"
    if v.get("ahead_on_one_seed"):
        return (f"not settled: {v['arm']} is ahead of random on {v['split']} ({v['metric']}) over test items, but "
                f"one fine-tune seed cannot tell selection from seed noise; {settle}")
    why = "no diagnostic ran (winnow curate --validate adds them)"
    if "planted_recall" in v and v["planted_recall"] < 0.5:
        why = "the representation misses in-domain data (planted recall below 0.5)"
    elif "ceiling_gain" in v and v["ceiling_gain"] <= 0:
        why = "the fine-tune does not learn the target even from in-domain data (ceiling ≤ zero-shot)"
    elif "planted_recall" in v or "ceiling_gain" in v:
        why = ("in-domain data is found and learnable, but the selected subset does not beat random: what was "
               "selected is not what the fine-tune learns the target from")
    one = f" (one seed; {settle})" if v.get("seeds", 2) < 2 else ""
    return f"no: {v['arm']} does not beat random on {v['split']} ({v['metric']}){one}; {why}"


def experiment_verdict(target: str, metric: str, paired: Any, lower_is_better: bool = False, summary: Any = None,
                       planted: dict[str, dict[str, Any]] | None = None) -> str:
    """An experiment target's verdict from its paired table (method − random per budget, over seeds): the best
    method if both of its intervals clear zero in the better direction, else a plain no with the best try. With
    a ceiling baseline in ``summary``, the best method's share of the ceiling's gain over zero-shot; with
    ``planted`` (validation rows planted in the pool), the best method's planted recall."""
    if paired is None or not len(paired):
        return f"{target}: no verdict (no method was paired with random)"
    sign = -1.0 if lower_is_better else 1.0
    rows = paired.to_dict("records")
    wins = [r for r in rows if sign * r.get("t_low" if sign > 0 else "t_high", np.nan) > 0
            and sign * r.get("boot_low" if sign > 0 else "boot_high", np.nan) > 0]
    best = max(wins or rows, key=lambda r: sign * r["diff"])
    what = (f"{best['method']} at {best['budget_size']} examples: {best['diff']:+.3f} {metric} t "
            f"[{best['t_low']:+.3f}, {best['t_high']:+.3f}] bootstrap [{best.get('boot_low', np.nan):+.3f}, "
            f"{best.get('boot_high', np.nan):+.3f}] over {best['n_seeds']} seeds")
    line = (f"{target}: yes, {what} (both intervals clear 0)" if wins else
            f"{target}: no method beats random on {metric} with both intervals clear of 0; the best is {what}")
    share = ceiling_share(summary, best["method"], best["budget_size"]) if summary is not None else None
    if share is not None:
        line += (f"; {100 * share['share']:.0f} % of the ceiling's gain over zero-shot (zero-shot {share['zero_shot']:.3f}, "
                 f"ceiling {share['ceiling']:.3f}, {best['method']} {share['method']:.3f})" if share["gain"] * sign > 0
                 else f"; the ceiling (in-domain rows) is no better than zero-shot ({share['ceiling']:.3f} vs "
                      f"{share['zero_shot']:.3f}): the fine-tune does not learn the target even from in-domain data")
        if share["gain"] * sign > 0 and sign * (share["random"] - share["ceiling"]) >= 0:
            line += (f"; random already reaches the ceiling ({share['random']:.3f}): in-domain rows teach this fine-tune "
                     "no more than any rows do (the answer format or the label prior), so nothing is left to select for")
    got = (planted or {}).get(best["method"])
    if got:
        line += f"; planted recall {got['recall']:.2f} (chance {got['chance']:.2f}, validation rows)"
    return line


def ceiling_share(summary: Any, method: str, budget_size: int) -> dict[str, float] | None:
    """Mean over seeds of ``method``, the ceiling and random (same budget) and zero-shot, and the method's share
    of the ceiling's gain (None without a ceiling, random or zero-shot row)."""
    means = {m: summary[(summary.method == m) & ((summary.budget_size == budget_size) | (m == "zero_shot"))]["mean"]
             for m in (method, "ceiling", "zero_shot", "random")}
    if any(v.empty for v in means.values()):
        return None
    m, c, z, r = (float(means[k].iloc[0]) for k in (method, "ceiling", "zero_shot", "random"))
    return {"method": m, "ceiling": c, "zero_shot": z, "random": r, "gain": c - z,
            "share": (m - z) / (c - z) if c != z else np.nan}


def experiment_verdicts(exp: Any, tables: dict[tuple[str, str], Any], utility: list[dict[str, Any]] | None = None,
                        planted: dict[str, dict[str, Any]] | None = None) -> list[str]:
    """Every target's verdict line, with its ceiling share, planted recall and subset-utility correlation when
    the experiment measured them."""
    rho = {u["target"]: u for u in utility or []}
    out = []
    for t in exp.targets:
        summ, paired = tables[(t.name, t.metric)]
        line = experiment_verdict(t.name, t.metric, paired, t.metric == "response_loss", summ,
                                  (planted or {}).get(t.name))
        if t.name in rho:
            u = rho[t.name]
            line += (f"; scores predict validation outcomes: ρ = {u['rho']:+.2f} [{u['low']:+.2f}, {u['high']:+.2f}] "
                     f"over {u['subsets']} subsets" if np.isfinite(u["rho"]) else
                     f"; scores predict validation outcomes: not measurable, all {u['subsets']} subsets reached the "
                     "same validation metric")
        out.append(line)
    return out
